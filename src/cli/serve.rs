//! `charter serve`: migrations, then the API, the projectors and the outbox relay until a
//! signal stops them.

use charter::config::Config;
use charter::startup::Application;

/// Builds the application from `config` and runs it until SIGTERM or SIGINT.
pub async fn run(config: Config) -> Result<(), String> {
    let app = Application::build(config)
        .await
        .map_err(|e| e.to_string())?;
    app.run_until_stopped().await.map_err(|e| e.to_string())
}
