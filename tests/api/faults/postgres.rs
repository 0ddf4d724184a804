//! A PostgreSQL cluster of one test's own, so the test can stop and start it without
//! disturbing the rest of the suite (which shares `ops/test`'s cluster).

use std::path::{Path, PathBuf};
use std::process::Command;

use tokio_postgres::NoTls;

use crate::helpers::env;

pub struct PrivatePostgres {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
    running: bool,
}

/// Runs a PostgreSQL tool as the `postgres` user when the suite runs as root (PostgreSQL
/// refuses to run as root), as the current user otherwise.
fn pg_command(bin: &Path, tool: &str) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false);
    let tool = bin.join(tool);
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(tool);
        command
    } else {
        Command::new(tool)
    }
}

fn run(mut command: Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl PrivatePostgres {
    /// initdb, start, and create the roles and the `charter` database as `ops/` does.
    pub async fn create() -> PrivatePostgres {
        let bin = PathBuf::from(env("PG_BIN"));
        let dir =
            std::env::temp_dir().join(format!("charter-pg-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut chown = Command::new("chown");
        chown.arg("postgres:").arg(&dir);
        let _ = chown.output(); // only needed (and only possible) as root
        let port = super::free_port();
        let mut initdb = pg_command(&bin, "initdb");
        initdb.arg("-D").arg(dir.join("data")).args([
            "--auth=trust",
            "--username=postgres",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        run(initdb, "initdb");
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             max_connections = 200\nfsync = on\nsynchronous_commit = on\n",
            dir.display()
        );
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("data/postgresql.conf"))
            .unwrap()
            .write_all(conf.as_bytes())
            .unwrap();
        let mut pg = PrivatePostgres {
            dir,
            bin,
            port,
            running: false,
        };
        pg.start();
        let (client, connection) = tokio_postgres::connect(&pg.url("postgres", "postgres"), NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        for statement in [
            "CREATE ROLE charter_owner LOGIN PASSWORD 'charter_owner' CREATEDB",
            "CREATE ROLE charter LOGIN PASSWORD 'charter'",
            "CREATE DATABASE charter OWNER charter_owner",
        ] {
            client.batch_execute(statement).await.unwrap();
        }
        pg
    }

    /// The URL of database `charter` for `role` (whose password is its name).
    pub fn url(&self, role: &str, database: &str) -> String {
        format!(
            "postgres://{role}:{role}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Starts the cluster and returns once it accepts connections.
    pub fn start(&mut self) {
        let mut start = pg_command(&self.bin, "pg_ctl");
        start
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("postgres.log"))
            .args(["-w", "-t", "60", "-s", "start"]);
        run(start, "pg_ctl start");
        self.running = true;
    }

    /// A fast shutdown: clients are disconnected, open transactions roll back.
    pub fn stop(&mut self) {
        let mut stop = pg_command(&self.bin, "pg_ctl");
        stop.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "-t", "60", "-s", "stop"]);
        run(stop, "pg_ctl stop");
        self.running = false;
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            let mut stop = pg_command(&self.bin, "pg_ctl");
            stop.arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "immediate", "-w", "-s", "stop"]);
            let _ = stop.output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
