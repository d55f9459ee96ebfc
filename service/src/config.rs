//! The error that stops start-up over a setting. Reading settings is
//! [`crate::settings`](mod@crate::settings); this is what goes wrong there, always naming where.

use std::path::PathBuf;

use crate::settings::Origin;

/// A setting that stops start-up, naming the file, variable or flag at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown key.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong (names the key, or toml's line and column).
        message: String,
    },
    /// One setting's value is unparsable or out of range.
    #[error("{origin}: {message}")]
    Setting {
        /// Where the value came from: `config file F: key K`,
        /// `environment NAME='value'` or `flag --name='value'`.
        origin: Origin,
        /// What is wrong.
        message: String,
    },
    /// Settings that are wrong together (or a required one missing).
    #[error("invalid setting {key}: {message}")]
    Invalid {
        /// The key (TOML name or environment variable).
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// A [`ConfigError::Invalid`] for `key`.
pub fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}
