//! `charter config`: prints the effective configuration, secrets redacted.

use charter::config::Config;

/// Prints `config` as YAML.
pub fn run(config: &Config) -> Result<(), String> {
    let yaml = serde_yaml_ng::to_string(config).map_err(|e| e.to_string())?;
    print!("{yaml}");
    Ok(())
}
