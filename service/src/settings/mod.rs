//! Settings declared once per binary.
//!
//! A binary lists its settings in one [`settings!`](crate::settings!) block. Each
//! entry is a field (its name is the TOML key), its type, its default, its
//! environment variable, optionally its flag, the default as help should show it
//! and a check, and a doc comment that is its one line of help:
//!
//! ```
//! use cerebrum_service::settings::{FlagValues, Settings as _, Sources, at_least};
//!
//! cerebrum_service::settings! {
//!     pub struct Settings {
//!         /// Port to listen on.
//!         port: u16 = 7000, env "CEREBRUM_PORT", flag "port";
//!         /// Requests handled at once.
//!         max_in_flight: usize = 2, env "CEREBRUM_MAX_IN_FLIGHT", check at_least(1);
//!     }
//! }
//!
//! let env = [("CEREBRUM_PORT".to_string(), "8000".to_string())].into();
//! let flags = FlagValues::new();
//! let s = Settings::read(&Sources::new(None, &env, &flags)).unwrap();
//! assert_eq!((s.port.value, s.max_in_flight.value), (8000, 2));
//! assert_eq!(s.port.origin.to_string(), "environment CEREBRUM_PORT='8000'");
//! ```
//!
//! From that one entry come:
//! - reading, by [`Settings::read`]: TOML file < environment < flag, the value parsed
//!   ([`SettingValue`]) and checked, kept with its [`Origin`] so every error names
//!   where the bad value came from (`environment CEREBRUM_PORT='seventy': …`);
//! - the rejection of unknown TOML keys;
//! - the flags (a clap `Args`, [`SettingFlags`]) and the settings list of `--help`;
//! - the variables the `.env` examples must document ([`check_env_example`]).
//!
//! Parts: `value` (the types a setting can have, and checks), `source` (the file,
//! environment and flags, and where each value came from), `cli` (flags and help),
//! `env_example` (the `.env` example check).

mod cli;
mod env_example;
mod source;
mod value;

pub use cli::{SettingFlags, help};
pub use env_example::{check_env_example, env_names};
pub use source::{ConfigFile, FlagValues, Origin, Sourced, Sources};
pub use value::{Secret, SettingValue, at_least, unchecked, within};

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::ConfigError;

/// The variable both binaries take their log filter from. Logging starts before
/// the settings are read, so it is not in the tables; help and the env-example
/// check add it.
pub const LOG_LEVEL: &str = "LOG_LEVEL";

/// One setting, as declared.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Key in the TOML file (the field name).
    pub key: &'static str,
    /// Environment variable.
    pub env: &'static str,
    /// Flag, without the leading `--`.
    pub flag: Option<&'static str>,
    /// The default as help shows it, when the value itself would not read well.
    pub shown: Option<&'static str>,
    /// One line of help (the field's doc comment).
    pub help: &'static str,
}

/// A setting with its default as help shows it.
#[derive(Debug, Clone)]
pub struct Row {
    /// The setting.
    pub setting: Setting,
    /// Its default, for help (`none` when empty).
    pub default: String,
}

impl Row {
    /// The row of `setting`, whose default `default` makes.
    pub fn new<T: SettingValue>(setting: Setting, default: impl FnOnce() -> T) -> Self {
        let default = match setting.shown {
            Some(shown) => shown.to_string(),
            None => default().show(),
        };
        Self {
            setting,
            default: if default.is_empty() {
                "none".into()
            } else {
                default
            },
        }
    }

    fn help(&self) -> &'static str {
        self.setting.help.trim()
    }
}

/// A settings struct declared with [`settings!`](crate::settings!).
pub trait Settings: Sized {
    /// Every setting, in declaration order.
    fn table() -> Vec<Row>;
    /// Reads every setting: file < environment < flag, parsed and checked.
    fn read(sources: &Sources<'_>) -> Result<Self, ConfigError>;
}

/// Reads `T` from the file at `path` (if any), the process environment and `flags`.
pub fn load<T: Settings>(path: Option<&Path>, flags: &FlagValues) -> Result<T, ConfigError> {
    let file = path.map(ConfigFile::read).transpose()?;
    let env: BTreeMap<String, String> = std::env::vars().collect();
    T::read(&Sources::new(file.as_ref(), &env, flags))
}

/// Declares a settings struct and its table; see the [module](mod@crate::settings).
///
/// Each entry: doc comment (the help), `field: Type = default, env "NAME"`, then
/// optionally, in this order, `, flag "name"`, `, shown "default as help shows it"`,
/// `, check expr` (an `Fn(&Type) -> Result<(), String>`), and `;`. The struct's
/// fields are [`Sourced`](crate::settings::Sourced) values; it implements
/// [`Settings`](crate::settings::Settings).
#[macro_export]
macro_rules! settings {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $doc:literal])+
                $field:ident: $ty:ty = $default:expr, env $env:literal
                $(, flag $flag:literal)?
                $(, shown $shown:literal)?
                $(, check $check:expr)?
                ;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        $vis struct $name {
            $(
                $(#[doc = $doc])+
                pub $field: $crate::settings::Sourced<$ty>,
            )*
        }

        impl $crate::settings::Settings for $name {
            fn table() -> ::std::vec::Vec<$crate::settings::Row> {
                ::std::vec![$(
                    $crate::settings::Row::new::<$ty>(
                        $crate::__setting!($field, $env, [$($flag)?], [$($shown)?], $($doc)+),
                        || $default,
                    ),
                )*]
            }

            fn read(
                sources: &$crate::settings::Sources<'_>,
            ) -> ::std::result::Result<Self, $crate::config::ConfigError> {
                sources.check_keys(&[$(::std::stringify!($field)),*])?;
                ::std::result::Result::Ok(Self {$(
                    $field: sources.get::<$ty>(
                        &$crate::__setting!($field, $env, [$($flag)?], [$($shown)?], $($doc)+),
                        || $default,
                        $crate::__setting_or!([$($check)?] [$crate::settings::unchecked]),
                    )?,
                )*})
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __setting {
    ($field:ident, $env:literal, [$($flag:literal)?], [$($shown:literal)?], $($doc:literal)+) => {
        $crate::settings::Setting {
            key: ::std::stringify!($field),
            env: $env,
            flag: $crate::__setting_or!([$(::std::option::Option::Some($flag))?] [::std::option::Option::None]),
            shown: $crate::__setting_or!([$(::std::option::Option::Some($shown))?] [::std::option::Option::None]),
            help: ::std::concat!($($doc),+),
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __setting_or {
    ([] [$($otherwise:tt)*]) => { $($otherwise)* };
    ([$($given:tt)+] [$($otherwise:tt)*]) => { $($given)+ };
}

#[cfg(test)]
mod tests;
