//! `bare`: a bare actix-web JSON route, the baseline of the HTTP scenarios.

use std::time::Duration;

use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct BareArgs {
    /// actix-web workers (the service runs one per core).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Write the bound port here once listening.
    #[arg(long)]
    port_file: String,
    /// Exit after this long whatever happens.
    #[arg(long, default_value = "300s", value_parser = crate::duration::parse)]
    max_lifetime: Duration,
}

async fn ok_json() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

/// Serves `GET /` until the lifetime is up; writes the bound port to --port-file.
pub fn bare(a: BareArgs) -> i32 {
    let lifetime = a.max_lifetime;
    std::thread::spawn(move || {
        std::thread::sleep(lifetime);
        eprintln!("bare: max lifetime reached, exiting");
        std::process::exit(0);
    });
    let res: std::io::Result<()> = actix_web::rt::System::new().block_on(async move {
        let server = actix_web::HttpServer::new(|| {
            actix_web::App::new().route("/", actix_web::web::get().to(ok_json))
        })
        .workers(a.workers.max(1))
        .bind(("127.0.0.1", 0))?;
        let port = server
            .addrs()
            .first()
            .map(|s| s.port())
            .ok_or_else(|| std::io::Error::other("no address bound"))?;
        let tmp = format!("{}.tmp", a.port_file);
        std::fs::write(&tmp, format!("{port}\n"))?;
        std::fs::rename(&tmp, &a.port_file)?;
        eprintln!(
            "bare: listening on 127.0.0.1:{port} with {} workers",
            a.workers
        );
        server.run().await
    });
    match res {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: bare server: {e}");
            1
        }
    }
}
