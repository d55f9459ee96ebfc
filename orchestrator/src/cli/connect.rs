//! Where the orchestrator is and the key to present (`--url`, `--key`), and
//! the async runtime a client command runs its calls on.

use cerebrum::client::{Client, DEFAULT_URL};
use clap::Args;

use super::CliError;

/// The variable the client reads its key from: one of the orchestrator's
/// `CEREBRUM_CLIENT_KEYS`.
pub const KEY_ENV: &str = "CEREBRUM_CLIENT_KEY";

/// What the client read its key from until it had its own name: the inference
/// node's secret. No longer read, so that the node's key, exported in a shell,
/// is never sent to an orchestrator (or any `--url`) as a client key.
pub const OLD_KEY_ENV: &str = "CEREBRUM_API_KEY";

/// Where the orchestrator is, and the key to present.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The orchestrator's base URL.
    #[arg(long, env = "CEREBRUM_URL", default_value = DEFAULT_URL, value_name = "URL")]
    pub url: String,
    /// Client API key, sent as X-API-Key: one of the orchestrator's
    /// CEREBRUM_CLIENT_KEYS (needed when it sets them). CEREBRUM_API_KEY, the
    /// node's secret, is not read.
    #[arg(
        long,
        env = KEY_ENV,
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub key: Option<String>,
}

/// Said once on stderr when no key is given but the old variable is set: it is
/// not sent, and this is what to set instead.
pub fn old_key_notice(key_given: bool, old_set: bool) -> Option<String> {
    (!key_given && old_set).then(|| {
        format!(
            "cerebrum: warning: {OLD_KEY_ENV} is set but not read: it names the inference \
             node's secret, which a client must not send. Set {KEY_ENV} (a key from the \
             orchestrator's CEREBRUM_CLIENT_KEYS) or pass --key."
        )
    })
}

impl ServerArgs {
    /// A client for this orchestrator. An empty `CEREBRUM_URL` (exported but
    /// unset in a script) means the default address.
    pub fn client(&self) -> Result<Client, CliError> {
        let old_set = std::env::var_os(OLD_KEY_ENV).is_some_and(|v| !v.is_empty());
        if let Some(notice) = old_key_notice(self.key.is_some(), old_set) {
            eprintln!("{notice}");
        }
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

    #[test]
    fn the_nodes_variable_is_named_only_when_it_would_have_been_used() {
        let notice = old_key_notice(false, true).expect("no key, old variable set");
        assert!(
            notice.contains(OLD_KEY_ENV) && notice.contains(KEY_ENV),
            "{notice}"
        );
        assert_eq!(old_key_notice(true, true), None, "a key was given");
        assert_eq!(old_key_notice(false, false), None);
    }
}
