//! Where the orchestrator is and the key to present (`--url`, `--key`), and
//! the async runtime a client command runs its calls on.

use cerebrum::client::{Client, DEFAULT_URL};
use clap::Args;

use super::CliError;

/// Where the orchestrator is, and the key to present.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The orchestrator's base URL.
    #[arg(long, env = "CEREBRUM_URL", default_value = DEFAULT_URL, value_name = "URL")]
    pub url: String,
    /// Client API key, sent as X-API-Key (needed when the server sets
    /// CEREBRUM_CLIENT_KEYS).
    #[arg(
        long,
        env = "CEREBRUM_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub key: Option<String>,
}

impl ServerArgs {
    /// A client for this orchestrator. An empty `CEREBRUM_URL` (exported but
    /// unset in a script) means the default address.
    pub fn client(&self) -> Result<Client, CliError> {
        let url = if self.url.trim().is_empty() {
            DEFAULT_URL
        } else {
            &self.url
        };
        Ok(Client::new(url)?.with_key(self.key.as_deref()))
    }
}

/// A runtime for a command's calls: one thread, or `workers` worker threads
/// that keep driving connections while the main thread waits for input.
pub fn runtime(workers: Option<usize>) -> Result<tokio::runtime::Runtime, CliError> {
    let mut builder = match workers {
        None => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_url_means_the_default() {
        let args = ServerArgs {
            url: " ".into(),
            key: Some(String::new()),
        };
        let client = args.client().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(client.url(), DEFAULT_URL);
        assert!(!client.has_key(), "an empty key is no key");
    }
}
