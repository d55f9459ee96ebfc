//! The orchestrator's configuration: one typed struct, read from a TOML file,
//! overridden by environment variables (the original's names where it had them)
//! and flags, validated at start with errors that name the bad key.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::routing::RoutingTable;

pub use cerebrum_service::config::ConfigError;
use cerebrum_service::config::{env_parse as parse, invalid, read_toml};

/// The settings as they appear in the TOML file; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Base URL of the inference node (or any OpenAI-compatible server).
    pub vps_endpoint: Option<String>,
    /// The node's API key.
    pub vps_api_key: Option<String>,
    /// Address to bind.
    pub host: Option<IpAddr>,
    /// Port.
    pub port: Option<u16>,
    /// Inference requests in flight at once (streams count until they end).
    pub max_in_flight: Option<usize>,
    /// Consecutive upstream failures that open the breaker.
    pub breaker_threshold: Option<u32>,
    /// Seconds the breaker stays open.
    pub breaker_cooldown_secs: Option<u64>,
    /// Seconds to establish a connection to the node.
    pub connect_timeout_secs: Option<u64>,
    /// Seconds to wait for the first token (a cold model load included).
    pub first_token_timeout_secs: Option<u64>,
    /// Seconds allowed between two tokens.
    pub idle_timeout_secs: Option<u64>,
    /// Language → model.
    pub routes: Option<BTreeMap<String, String>>,
    /// Model for languages not in `routes`.
    pub default_model: Option<String>,
    /// If set, clients must send one of these as `X-API-Key` or `Authorization: Bearer`.
    pub client_keys: Option<Vec<String>>,
    /// Requests per second per client (key or address); 0 = off.
    pub rate_limit_per_second: Option<u32>,
    /// Burst size for the rate limit.
    pub rate_limit_burst: Option<u32>,
    /// Largest prompt in characters (413 above).
    pub max_prompt_chars: Option<usize>,
    /// Seconds open streams get to finish on SIGTERM.
    pub shutdown_grace_secs: Option<u64>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct OrchestratorConfig {
    /// Base URL of the node, without a trailing slash.
    pub vps_endpoint: String,
    /// The node's API key (empty: none sent).
    pub vps_api_key: String,
    /// Address to bind.
    pub host: IpAddr,
    /// Port.
    pub port: u16,
    /// Inference requests in flight at once.
    pub max_in_flight: usize,
    /// Consecutive failures that open the breaker.
    pub breaker_threshold: u32,
    /// How long the breaker stays open.
    pub breaker_cooldown: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Time allowed until the first token.
    pub first_token_timeout: Duration,
    /// Time allowed between tokens.
    pub idle_timeout: Duration,
    /// Language → model routing.
    pub routing: RoutingTable,
    /// Accepted client keys (empty: no client auth).
    pub client_keys: Vec<String>,
    /// Requests per second per client (0 = off).
    pub rate_limit_per_second: u32,
    /// Rate-limit burst.
    pub rate_limit_burst: u32,
    /// Largest prompt in characters.
    pub max_prompt_chars: usize,
    /// Grace period for open streams at shutdown.
    pub shutdown_grace: Duration,
}

/// Overrides from the command line (highest precedence).
#[derive(Debug, Default, Clone)]
pub struct FlagOverrides {
    /// `--host`.
    pub host: Option<IpAddr>,
    /// `--port`.
    pub port: Option<u16>,
    /// `--vps-endpoint`.
    pub vps_endpoint: Option<String>,
}

impl OrchestratorConfig {
    /// Reads the file (if any), then the process environment, then flags.
    pub fn load(file: Option<&Path>, flags: &FlagOverrides) -> Result<Self, ConfigError> {
        let file_cfg: FileConfig = read_toml(file)?;
        let env: BTreeMap<String, String> = std::env::vars().collect();
        Self::resolve(file_cfg, &env, flags)
    }

    /// Merges file < environment < flags and validates. Pure: the environment is passed in.
    pub fn resolve(
        mut f: FileConfig,
        env: &BTreeMap<String, String>,
        flags: &FlagOverrides,
    ) -> Result<Self, ConfigError> {
        macro_rules! env_over {
            ($field:ident, $key:literal) => {
                if let Some(v) = parse(env, $key)? {
                    f.$field = Some(v);
                }
            };
        }
        env_over!(vps_endpoint, "VPS_ENDPOINT");
        env_over!(vps_api_key, "VPS_API_KEY");
        env_over!(host, "CEREBRUM_HOST");
        env_over!(port, "CEREBRUM_PORT");
        env_over!(max_in_flight, "CEREBRUM_MAX_IN_FLIGHT");
        env_over!(breaker_threshold, "CEREBRUM_BREAKER_THRESHOLD");
        env_over!(breaker_cooldown_secs, "CEREBRUM_BREAKER_COOLDOWN_SECS");
        env_over!(connect_timeout_secs, "CEREBRUM_CONNECT_TIMEOUT_SECS");
        env_over!(
            first_token_timeout_secs,
            "CEREBRUM_FIRST_TOKEN_TIMEOUT_SECS"
        );
        env_over!(idle_timeout_secs, "CEREBRUM_IDLE_TIMEOUT_SECS");
        env_over!(default_model, "CEREBRUM_DEFAULT_MODEL");
        env_over!(rate_limit_per_second, "CEREBRUM_RATE_LIMIT_PER_SECOND");
        env_over!(rate_limit_burst, "CEREBRUM_RATE_LIMIT_BURST");
        env_over!(max_prompt_chars, "CEREBRUM_MAX_PROMPT_CHARS");
        env_over!(shutdown_grace_secs, "CEREBRUM_SHUTDOWN_GRACE_SECS");
        if let Some(v) = env.get("CEREBRUM_ROUTES").filter(|v| !v.trim().is_empty()) {
            let table = f.routes.get_or_insert_with(BTreeMap::new);
            for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (lang, model) = pair.split_once('=').ok_or_else(|| {
                    invalid("CEREBRUM_ROUTES", format!("'{pair}' is not language=model"))
                })?;
                table.insert(lang.trim().to_lowercase(), model.trim().to_string());
            }
        }
        if let Some(v) = env
            .get("CEREBRUM_CLIENT_KEYS")
            .filter(|v| !v.trim().is_empty())
        {
            f.client_keys = Some(
                v.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
        }
        if flags.host.is_some() {
            f.host = flags.host;
        }
        if flags.port.is_some() {
            f.port = flags.port;
        }
        if flags.vps_endpoint.is_some() {
            f.vps_endpoint = flags.vps_endpoint.clone();
        }

        let endpoint = f
            .vps_endpoint
            .unwrap_or_else(|| "http://127.0.0.1:9000".into())
            .trim_end_matches('/')
            .to_string();
        match reqwest::Url::parse(&endpoint) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
            Ok(u) => {
                return Err(invalid(
                    "VPS_ENDPOINT",
                    format!("scheme '{}' is not http or https", u.scheme()),
                ));
            }
            Err(e) => return Err(invalid("VPS_ENDPOINT", format!("'{endpoint}': {e}"))),
        }
        let max_in_flight = f.max_in_flight.unwrap_or(2);
        if max_in_flight == 0 {
            return Err(invalid("CEREBRUM_MAX_IN_FLIGHT", "must be at least 1"));
        }
        let breaker_threshold = f.breaker_threshold.unwrap_or(3);
        if breaker_threshold == 0 {
            return Err(invalid("CEREBRUM_BREAKER_THRESHOLD", "must be at least 1"));
        }
        let secs = |v: Option<u64>, default: u64, key: &str| -> Result<Duration, ConfigError> {
            let s = v.unwrap_or(default);
            if s == 0 {
                return Err(invalid(key, "must be at least 1 second"));
            }
            Ok(Duration::from_secs(s))
        };
        let routing = RoutingTable::new(
            f.routes.unwrap_or_else(RoutingTable::default_routes),
            f.default_model.unwrap_or_else(|| "qwen_7b".into()),
        );
        Ok(Self {
            vps_endpoint: endpoint,
            vps_api_key: f.vps_api_key.unwrap_or_default(),
            host: f.host.unwrap_or(IpAddr::from([0, 0, 0, 0])),
            port: f.port.unwrap_or(7000),
            max_in_flight,
            breaker_threshold,
            breaker_cooldown: secs(
                f.breaker_cooldown_secs,
                10,
                "CEREBRUM_BREAKER_COOLDOWN_SECS",
            )?,
            connect_timeout: secs(f.connect_timeout_secs, 3, "CEREBRUM_CONNECT_TIMEOUT_SECS")?,
            first_token_timeout: secs(
                f.first_token_timeout_secs,
                120,
                "CEREBRUM_FIRST_TOKEN_TIMEOUT_SECS",
            )?,
            idle_timeout: secs(f.idle_timeout_secs, 60, "CEREBRUM_IDLE_TIMEOUT_SECS")?,
            routing,
            client_keys: f.client_keys.unwrap_or_default(),
            rate_limit_per_second: f.rate_limit_per_second.unwrap_or(0),
            rate_limit_burst: f.rate_limit_burst.unwrap_or(5).max(1),
            max_prompt_chars: f.max_prompt_chars.unwrap_or(16_000),
            shutdown_grace: Duration::from_secs(f.shutdown_grace_secs.unwrap_or(30)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_the_originals() {
        let c = OrchestratorConfig::resolve(
            FileConfig::default(),
            &env(&[]),
            &FlagOverrides::default(),
        )
        .unwrap();
        assert_eq!(c.vps_endpoint, "http://127.0.0.1:9000");
        assert_eq!(c.port, 7000);
        assert_eq!(c.max_in_flight, 2);
        assert_eq!(c.breaker_threshold, 3);
        assert_eq!(c.breaker_cooldown, Duration::from_secs(10));
        assert_eq!(c.max_prompt_chars, 16_000);
        assert_eq!(c.routing.route(Some("rust")), "codellama_7b");
    }

    #[test]
    fn env_and_flags_override() {
        let file: FileConfig = toml::from_str("port = 1\nvps_endpoint = \"http://a:1/\"").unwrap();
        let c = OrchestratorConfig::resolve(
            file,
            &env(&[
                ("CEREBRUM_PORT", "2"),
                ("CEREBRUM_ROUTES", "python=small, rust=tiny"),
            ]),
            &FlagOverrides {
                port: Some(3),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.port, 3);
        assert_eq!(c.vps_endpoint, "http://a:1");
        assert_eq!(c.routing.route(Some("rust")), "tiny");
    }

    #[test]
    fn bad_settings_name_the_key() {
        for (k, v) in [
            ("VPS_ENDPOINT", "ftp://x"),
            ("VPS_ENDPOINT", "not a url"),
            ("CEREBRUM_PORT", "seventy"),
            ("CEREBRUM_MAX_IN_FLIGHT", "0"),
            ("CEREBRUM_ROUTES", "python"),
        ] {
            let e = OrchestratorConfig::resolve(
                FileConfig::default(),
                &env(&[(k, v)]),
                &FlagOverrides::default(),
            )
            .unwrap_err();
            assert!(e.to_string().contains(k), "{k}={v}: {e}");
        }
        assert!(toml::from_str::<FileConfig>("prot = 1").is_err());
    }
}
