//! `cerebrum serve`: run the orchestrator server (the Pi tier).

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use cerebrum::config::{OrchestratorConfig, Settings};
use cerebrum_service::settings::SettingFlags;

/// Arguments of `cerebrum serve`: the config file and the flags of the settings
/// table (whose help lists every setting).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML config file (keys as listed below).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: SettingFlags<Settings>,
}

/// Runs the server until SIGTERM.
pub fn run(args: &ServeArgs) -> Result<(), CliError> {
    cerebrum_service::logging::init("info");
    let config = OrchestratorConfig::load(args.config.as_deref(), args.settings.values())
        .map_err(|e| CliError::Input(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime
        .block_on(cerebrum::serve::serve(config))
        .map_err(CliError::Runtime)
}
