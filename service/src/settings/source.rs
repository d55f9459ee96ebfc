//! The three places a setting comes from (TOML file, environment, flags), read
//! in that order of precedence, and where each value came from.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{Setting, SettingValue};
use crate::config::ConfigError;

/// Where a value came from; errors start with it.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// Nothing set it: the default of this key.
    Default(&'static str),
    /// A key of the TOML file.
    File {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
    },
    /// An environment variable (its value omitted for secrets).
    Env {
        /// The variable.
        name: &'static str,
        /// Its value, unless secret.
        value: Option<String>,
    },
    /// A command-line flag (its value omitted for secrets).
    Flag {
        /// The flag, without `--`.
        name: &'static str,
        /// Its value, unless secret.
        value: Option<String>,
    },
}

impl Origin {
    /// The error "`self`: `message`".
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Setting {
            origin: self.clone(),
            message: message.into(),
        }
    }

    /// Whether a flag set the value.
    pub fn is_flag(&self) -> bool {
        matches!(self, Self::Flag { .. })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default(key) => write!(f, "the default of {key}"),
            Self::File { path, key } => write!(f, "config file {}: key {key}", path.display()),
            Self::Env { name, value } => match value {
                Some(v) => write!(f, "environment {name}='{v}'"),
                None => write!(f, "environment {name}"),
            },
            Self::Flag { name, value } => match value {
                Some(v) => write!(f, "flag --{name}='{v}'"),
                None => write!(f, "flag --{name}"),
            },
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub origin: Origin,
}

/// A parsed TOML settings file.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    table: toml::Table,
}

impl ConfigFile {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses `text` as the file `path`.
    pub fn parse(path: impl Into<PathBuf>, text: &str) -> Result<Self, ConfigError> {
        let path = path.into();
        match toml::from_str::<toml::Table>(text) {
            Ok(table) => Ok(Self { path, table }),
            Err(e) => Err(ConfigError::Parse {
                path,
                message: e.to_string(),
            }),
        }
    }
}

/// Flag values as given on the command line: flag name (without `--`) → text.
pub type FlagValues = BTreeMap<&'static str, String>;

/// The three places a setting is read from.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    file: Option<&'a ConfigFile>,
    env: &'a BTreeMap<String, String>,
    flags: &'a FlagValues,
}

impl<'a> Sources<'a> {
    /// The sources: a file (if any), an environment, the flags.
    pub fn new(
        file: Option<&'a ConfigFile>,
        env: &'a BTreeMap<String, String>,
        flags: &'a FlagValues,
    ) -> Self {
        Self { file, env, flags }
    }

    /// Rejects a file key that is not one of `keys`, naming it.
    pub fn check_keys(&self, keys: &[&str]) -> Result<(), ConfigError> {
        let Some(file) = self.file else {
            return Ok(());
        };
        match file.table.keys().find(|k| !keys.contains(&k.as_str())) {
            None => Ok(()),
            Some(unknown) => Err(ConfigError::Parse {
                path: file.path.clone(),
                message: format!("unknown key '{unknown}' (the keys are {})", keys.join(", ")),
            }),
        }
    }

    /// Reads one setting: the flag if given, else the variable if set and not
    /// blank, else the file's key if present, else `default()`; then `check`s it.
    pub fn get<T: SettingValue>(
        &self,
        setting: &Setting,
        default: impl FnOnce() -> T,
        check: impl Fn(&T) -> Result<(), String>,
    ) -> Result<Sourced<T>, ConfigError> {
        let shown = |text: &str| (!T::SECRET).then(|| text.to_string());
        let flag = setting
            .flag
            .and_then(|name| Some((name, self.flags.get(name)?.trim())));
        let env = self
            .env
            .get(setting.env)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty());
        let file = self
            .file
            .and_then(|f| Some((f, f.table.get(setting.key)?.clone())));
        let (value, origin) = if let Some((name, text)) = flag {
            let origin = Origin::Flag {
                name,
                value: shown(text),
            };
            (T::parse(text).map_err(|e| origin.error(e))?, origin)
        } else if let Some(text) = env {
            let origin = Origin::Env {
                name: setting.env,
                value: shown(text),
            };
            (T::parse(text).map_err(|e| origin.error(e))?, origin)
        } else if let Some((file, value)) = file {
            let origin = Origin::File {
                path: file.path.clone(),
                key: setting.key,
            };
            (T::from_toml(value).map_err(|e| origin.error(e))?, origin)
        } else {
            (default(), Origin::Default(setting.key))
        };
        check(&value).map_err(|e| origin.error(e))?;
        Ok(Sourced { value, origin })
    }
}
