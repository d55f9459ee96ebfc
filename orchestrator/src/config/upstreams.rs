//! The `upstreams` setting: the servers generations go to, each with its
//! endpoint, key, kind, models, weight, slots and role.
//!
//! In the config file it is an array of tables:
//!
//! ```toml
//! [[upstreams]]
//! name = "vps-a"
//! endpoint = "http://100.64.0.2:9000"
//! key_env = "VPS_A_KEY"        # or key = "…"
//! kind = "cerebrum-node"       # "auto" (default) | "cerebrum-node" | "openai"
//! models = ["smollm2"]         # optional: else read from its GET /v1/models
//! slots = 4                    # optional, default 1
//! weight = 1                   # optional, default 1
//! fallback = false             # optional: true = only when no primary could
//! ```
//!
//! In the environment (`CEREBRUM_UPSTREAMS`) the same as a TOML inline array:
//! `[{name = "a", endpoint = "http://…"}, {name = "b", endpoint = "http://…"}]`.

use std::collections::{BTreeMap, BTreeSet};

use cerebrum_service::settings::SettingValue;
pub use cerebrum_shared::cerebrum::UpstreamKind;
use serde::Deserialize;

/// One upstream as written (the key still possibly an environment variable's name).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamEntry {
    /// Shown in `/health`, `/metrics` and logs.
    pub name: String,
    /// Base URL (http or https).
    pub endpoint: String,
    /// Its API key.
    #[serde(default)]
    pub key: Option<String>,
    /// The environment variable holding its API key.
    #[serde(default)]
    pub key_env: Option<String>,
    /// How its health is read.
    #[serde(default)]
    pub kind: UpstreamKind,
    /// The models it serves; `None`: as its `/v1/models` says.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Capacity multiplier among equally loaded upstreams.
    #[serde(default = "one")]
    pub weight: u32,
    /// Generations it runs at once.
    #[serde(default = "one")]
    pub slots: u32,
    /// Only for requests no primary could take.
    #[serde(default)]
    pub fallback: bool,
}

fn one() -> u32 {
    1
}

/// The list, as the setting holds it.
#[derive(Clone, Default, PartialEq)]
pub struct UpstreamEntries(pub Vec<UpstreamEntry>);

impl std::fmt::Debug for UpstreamEntries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.show())
    }
}

impl SettingValue for UpstreamEntries {
    // Keys may be inline: the text never appears in errors.
    const SECRET: bool = true;

    fn parse(text: &str) -> Result<Self, String> {
        let table: toml::Table = toml::from_str(&format!("upstreams = {text}")).map_err(|e| {
            format!(
                "not a TOML array of tables like [{{name = \"a\", endpoint = \"http://…\"}}]: {}",
                e.message()
            )
        })?;
        let value = table
            .get("upstreams")
            .cloned()
            .unwrap_or(toml::Value::Array(Vec::new()));
        Self::from_toml(value)
    }

    fn from_toml(value: toml::Value) -> Result<Self, String> {
        let entries: Vec<UpstreamEntry> = value
            .try_into()
            .map_err(|e: toml::de::Error| e.message().to_string())?;
        Ok(Self(entries))
    }

    fn show(&self) -> String {
        if self.0.is_empty() {
            return "none (VPS_ENDPOINT is the one upstream)".into();
        }
        self.0
            .iter()
            .map(|u| format!("{}={}", u.name, u.endpoint))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The checks that need no environment: names, URLs, numbers, a primary.
pub fn check(entries: &UpstreamEntries) -> Result<(), String> {
    let mut names = BTreeSet::new();
    for u in &entries.0 {
        let valid = !u.name.is_empty()
            && u.name.len() <= 64
            && u.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !valid {
            return Err(format!(
                "upstream name '{}' must be 1 to 64 letters, digits, '-', '_' or '.'",
                u.name
            ));
        }
        if !names.insert(u.name.as_str()) {
            return Err(format!("upstream name '{}' is used twice", u.name));
        }
        super::endpoint(&u.endpoint)
            .map_err(|e| format!("upstream '{}': endpoint: {e}", u.name))?;
        if u.key.is_some() && u.key_env.is_some() {
            return Err(format!(
                "upstream '{}': give key or key_env, not both",
                u.name
            ));
        }
        if u.weight == 0 || u.slots == 0 {
            return Err(format!(
                "upstream '{}': weight and slots must be at least 1",
                u.name
            ));
        }
        if let Some(models) = &u.models
            && (models.is_empty() || models.iter().any(|m| m.trim().is_empty()))
        {
            return Err(format!(
                "upstream '{}': models, when given, must list at least one non-empty name",
                u.name
            ));
        }
    }
    if !entries.0.is_empty() && entries.0.iter().all(|u| u.fallback) {
        return Err("every upstream is a fallback: at least one must be a primary".into());
    }
    Ok(())
}

/// One upstream, ready to use.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamConfig {
    /// Its name.
    pub name: String,
    /// Base URL without a trailing slash.
    pub endpoint: String,
    /// API key (empty: none sent).
    pub key: String,
    /// How its health is read.
    pub kind: UpstreamKind,
    /// The models it serves, when configured.
    pub models: Option<Vec<String>>,
    /// Capacity multiplier.
    pub weight: u32,
    /// Generations at once.
    pub slots: u32,
    /// Only when no primary could.
    pub fallback: bool,
}

/// The name of the one upstream the `VPS_ENDPOINT` shorthand makes.
pub const SHORTHAND_NAME: &str = "vps";

impl UpstreamConfig {
    /// The entry with its key read (from `env` for `key_env`).
    pub fn resolve(entry: &UpstreamEntry, env: &BTreeMap<String, String>) -> Result<Self, String> {
        let key = match (&entry.key, &entry.key_env) {
            (Some(key), _) => key.clone(),
            (None, Some(var)) => env
                .get(var)
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .ok_or_else(|| {
                    format!(
                        "upstream '{}': key_env names {var}, which is not set",
                        entry.name
                    )
                })?,
            (None, None) => String::new(),
        };
        Ok(Self {
            name: entry.name.clone(),
            endpoint: entry.endpoint.trim_end_matches('/').to_string(),
            key,
            kind: entry.kind,
            models: entry.models.clone(),
            weight: entry.weight,
            slots: entry.slots,
            fallback: entry.fallback,
        })
    }

    /// The one upstream of `VPS_ENDPOINT`, `VPS_API_KEY` and `VPS_KIND`.
    pub fn shorthand(endpoint: &str, key: &str, kind: UpstreamKind) -> Self {
        Self {
            name: SHORTHAND_NAME.into(),
            endpoint: endpoint.trim_end_matches('/').to_string(),
            key: key.to_string(),
            kind,
            models: None,
            weight: 1,
            slots: 1,
            fallback: false,
        }
    }
}

/// [`UpstreamKind`] as a setting (`VPS_KIND`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kind(pub UpstreamKind);

impl SettingValue for Kind {
    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "auto" => Ok(Self(UpstreamKind::Auto)),
            "cerebrum-node" => Ok(Self(UpstreamKind::CerebrumNode)),
            "openai" => Ok(Self(UpstreamKind::OpenAi)),
            other => Err(format!(
                "'{other}' is not a kind: auto, cerebrum-node or openai"
            )),
        }
    }

    fn from_toml(value: toml::Value) -> Result<Self, String> {
        String::from_toml(value).and_then(|s| Self::parse(&s))
    }

    fn show(&self) -> String {
        self.0.as_str().into()
    }
}
