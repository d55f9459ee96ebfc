//! The types a setting can have ([`SettingValue`]), secrets, and the checks.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A value whose text never appears in errors or `Debug` output (keys).
#[derive(Clone, Default, PartialEq)]
pub struct Secret<T>(pub T);

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A type a setting can have: parsed from the text of a variable or flag, or read
/// from a TOML value.
pub trait SettingValue: Sized {
    /// Whether the value must stay out of errors.
    const SECRET: bool = false;
    /// Parses the (trimmed, non-empty) text of a variable or flag.
    fn parse(text: &str) -> Result<Self, String>;
    /// Reads a TOML value.
    fn from_toml(value: toml::Value) -> Result<Self, String>;
    /// The value as help and check messages show it (the text `parse` reads).
    fn show(&self) -> String;
}

macro_rules! text_values {
    ($($t:ty),*) => {$(
        impl SettingValue for $t {
            fn parse(text: &str) -> Result<Self, String> {
                text.parse().map_err(|e: <$t as std::str::FromStr>::Err| e.to_string())
            }
            fn from_toml(value: toml::Value) -> Result<Self, String> {
                value.try_into().map_err(|e: toml::de::Error| e.message().to_string())
            }
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
text_values!(bool, u16, u32, u64, usize, f32, String, IpAddr);

impl SettingValue for PathBuf {
    fn parse(text: &str) -> Result<Self, String> {
        Ok(PathBuf::from(text))
    }
    fn from_toml(value: toml::Value) -> Result<Self, String> {
        String::from_toml(value).map(PathBuf::from)
    }
    fn show(&self) -> String {
        self.display().to_string()
    }
}

/// Whole seconds (the keys say `_secs`).
impl SettingValue for Duration {
    fn parse(text: &str) -> Result<Self, String> {
        u64::parse(text).map(Duration::from_secs)
    }
    fn from_toml(value: toml::Value) -> Result<Self, String> {
        u64::from_toml(value).map(Duration::from_secs)
    }
    fn show(&self) -> String {
        self.as_secs().to_string()
    }
}

impl<T: SettingValue> SettingValue for Secret<T> {
    const SECRET: bool = true;
    fn parse(text: &str) -> Result<Self, String> {
        T::parse(text).map(Secret)
    }
    fn from_toml(value: toml::Value) -> Result<Self, String> {
        T::from_toml(value).map(Secret)
    }
    fn show(&self) -> String {
        self.0.show()
    }
}

/// Unset by default; any value sets it.
impl<T: SettingValue> SettingValue for Option<T> {
    fn parse(text: &str) -> Result<Self, String> {
        T::parse(text).map(Some)
    }
    fn from_toml(value: toml::Value) -> Result<Self, String> {
        T::from_toml(value).map(Some)
    }
    fn show(&self) -> String {
        self.as_ref().map(T::show).unwrap_or_default()
    }
}

/// A comma-separated list (`a,b`), or a TOML array.
impl<T: SettingValue> SettingValue for Vec<T> {
    fn parse(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| T::parse(p).map_err(|e| format!("'{p}': {e}")))
            .collect()
    }
    fn from_toml(value: toml::Value) -> Result<Self, String> {
        let toml::Value::Array(items) = value else {
            return Err(format!("expected an array, found {}", value.type_str()));
        };
        items.into_iter().map(T::from_toml).collect()
    }
    fn show(&self) -> String {
        self.iter().map(T::show).collect::<Vec<_>>().join(",")
    }
}

/// Comma-separated `name=value` pairs, or a TOML table.
impl<T: SettingValue> SettingValue for BTreeMap<String, T> {
    fn parse(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (name, value) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("'{pair}' is not name=value"))?;
                let value = T::parse(value.trim()).map_err(|e| format!("'{pair}': {e}"))?;
                Ok((name.trim().to_string(), value))
            })
            .collect()
    }
    fn from_toml(value: toml::Value) -> Result<Self, String> {
        let toml::Value::Table(table) = value else {
            return Err(format!("expected a table, found {}", value.type_str()));
        };
        table
            .into_iter()
            .map(|(name, v)| {
                Ok((
                    name.clone(),
                    T::from_toml(v).map_err(|e| format!("{name}: {e}"))?,
                ))
            })
            .collect()
    }
    fn show(&self) -> String {
        let pairs: Vec<String> = self
            .iter()
            .map(|(k, v)| format!("{k}={}", v.show()))
            .collect();
        pairs.join(",")
    }
}

/// A check that accepts everything (settings declared without `check`).
pub fn unchecked<T>(_: &T) -> Result<(), String> {
    Ok(())
}

/// A check: the value is at least `min`.
pub fn at_least<T: SettingValue + PartialOrd>(min: T) -> impl Fn(&T) -> Result<(), String> {
    move |v| {
        if *v >= min {
            Ok(())
        } else {
            Err(format!("must be at least {}", min.show()))
        }
    }
}

/// A check: the value is within `lo..=hi` (NaN is not).
pub fn within<T: SettingValue + PartialOrd>(lo: T, hi: T) -> impl Fn(&T) -> Result<(), String> {
    move |v| {
        if lo <= *v && *v <= hi {
            Ok(())
        } else {
            Err(format!(
                "{} is not within {}..={}",
                v.show(),
                lo.show(),
                hi.show()
            ))
        }
    }
}
