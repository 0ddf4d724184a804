//! `charter admin bootstrap`: the root tenant and its first administrator.

use charter::auth::bootstrap;
use charter::config::Config;
use clap::Subcommand;

/// The subcommands of `charter admin`.
#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create (idempotently) the root tenant and its first administrator, who holds
    /// `tenant_admin` there and a platform-wide `iam.*` grant.
    Bootstrap(BootstrapArgs),
}

// The arguments of `charter admin bootstrap` (no doc comment: it would replace the help the
// subcommand's own comment gives).
#[derive(clap::Args)]
pub struct BootstrapArgs {
    /// Slug of the root tenant.
    #[arg(long)]
    tenant: String,
    #[arg(long)]
    username: String,
    /// Defaults to <username>@<tenant>.invalid.
    #[arg(long)]
    email: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long, required = true)]
    password_stdin: bool,
}

/// Reads the password from standard input and bootstraps, idempotently.
pub async fn bootstrap(config: Config, args: BootstrapArgs) -> Result<(), String> {
    let BootstrapArgs {
        tenant,
        username,
        email,
        password_stdin: _,
    } = args;
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .map_err(|e| format!("reading the password from stdin: {e}"))?;
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    let writer = super::writer(&config).await?;
    let request = bootstrap::Bootstrap {
        email: email.unwrap_or_else(|| format!("{username}@{tenant}.invalid")),
        tenant_slug: tenant,
        username,
        password,
    };
    let done = bootstrap::bootstrap(&writer, config.auth.pbkdf2_iterations, &request)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "tenant {} ({}), administrator {} ({}): ready",
        request.tenant_slug, done.tenant_id, request.username, done.user_id
    );
    Ok(())
}
