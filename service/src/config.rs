//! The parts of configuration loading both binaries share: the error that names
//! the bad key, reading the TOML file, and parsing one environment variable.
//! Each binary keeps its own typed settings struct and precedence rules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A setting that stops start-up, naming the key at fault.
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
    /// The file is not valid TOML or has an unknown key or wrong type.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What toml said (names the key and line).
        message: String,
    },
    /// A value is out of range or unparsable.
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

/// Reads and parses the TOML file, or the defaults when there is none.
pub fn read_toml<T: DeserializeOwned + Default>(file: Option<&Path>) -> Result<T, ConfigError> {
    let Some(path) = file else {
        return Ok(T::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str::<T>(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Parses environment variable `key` (absent or blank: `None`), naming it on error.
pub fn env_parse<T: std::str::FromStr>(
    env: &BTreeMap<String, String>,
    key: &str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match env.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<T>()
            .map(Some)
            .map_err(|e| invalid(key, format!("'{v}': {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_parse_or_name_the_variable() {
        let env: BTreeMap<String, String> = [
            ("PORT".to_string(), " 70 ".to_string()),
            ("BAD".into(), "x".into()),
        ]
        .into();
        assert_eq!(env_parse::<u16>(&env, "PORT").unwrap(), Some(70));
        assert_eq!(env_parse::<u16>(&env, "MISSING").unwrap(), None);
        assert!(
            env_parse::<u16>(&env, "BAD")
                .unwrap_err()
                .to_string()
                .contains("BAD")
        );
    }

    #[test]
    fn a_missing_file_is_an_error_and_no_file_is_the_defaults() {
        #[derive(Default, serde::Deserialize)]
        struct C {
            #[allow(dead_code)]
            port: Option<u16>,
        }
        assert!(read_toml::<C>(None).is_ok());
        let e = read_toml::<C>(Some(Path::new("/nonexistent/cerebrum.toml")))
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent/cerebrum.toml"));
    }
}
