//! `cerebrum serve`: run the orchestrator server (the Pi tier).

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use cerebrum::config::{FlagOverrides, OrchestratorConfig};

/// Arguments of `cerebrum serve`.
#[derive(Debug, Args)]
#[command(
    long_about = "Run the orchestrator: the API on :7000 in front of the inference node.\n\n\
Settings come from a TOML file (--config), then environment variables (VPS_ENDPOINT, \
VPS_API_KEY, CEREBRUM_HOST, CEREBRUM_PORT, LOG_LEVEL, CEREBRUM_MAX_IN_FLIGHT, \
CEREBRUM_BREAKER_THRESHOLD, CEREBRUM_BREAKER_COOLDOWN_SECS, CEREBRUM_CONNECT_TIMEOUT_SECS, \
CEREBRUM_FIRST_TOKEN_TIMEOUT_SECS, CEREBRUM_IDLE_TIMEOUT_SECS, CEREBRUM_ROUTES, \
CEREBRUM_DEFAULT_MODEL, CEREBRUM_CLIENT_KEYS, CEREBRUM_RATE_LIMIT_PER_SECOND, \
CEREBRUM_RATE_LIMIT_BURST, CEREBRUM_MAX_PROMPT_CHARS, CEREBRUM_SHUTDOWN_GRACE_SECS), then flags."
)]
pub struct ServeArgs {
    /// TOML config file.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Address to bind (default 0.0.0.0).
    #[arg(long)]
    pub host: Option<std::net::IpAddr>,
    /// Port (default 7000).
    #[arg(long)]
    pub port: Option<u16>,
    /// The inference node's base URL (default http://127.0.0.1:9000).
    #[arg(long)]
    pub vps_endpoint: Option<String>,
}

/// Runs the server until SIGTERM.
pub fn run(args: &ServeArgs) -> Result<(), CliError> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOG_LEVEL")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // Logs go to stderr (the journal under systemd); stdout stays for output.
        .with_writer(std::io::stderr)
        .try_init();
    let flags = FlagOverrides {
        host: args.host,
        port: args.port,
        vps_endpoint: args.vps_endpoint.clone(),
    };
    let config = OrchestratorConfig::load(args.config.as_deref(), &flags)
        .map_err(|e| CliError::Input(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime
        .block_on(cerebrum::serve::serve(config))
        .map_err(CliError::Runtime)
}
