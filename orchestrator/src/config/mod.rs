//! The orchestrator's configuration: every setting declared once in [`Settings`]
//! (TOML key, environment variable, flag, default, help), read from a TOML file,
//! then the environment, then flags, and turned into [`OrchestratorConfig`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use cerebrum_service::settings::{
    FlagValues, Origin, Secret, Settings as _, Sources, at_least, load,
};
use cerebrum_shared::limits;

use crate::routing::RoutingTable;

pub mod upstreams;
use upstreams::{Kind, UpstreamConfig, UpstreamEntries};

pub use cerebrum_service::config::ConfigError;
pub use cerebrum_service::settings::ConfigFile;

cerebrum_service::settings! {
    /// The orchestrator's settings as read; [`OrchestratorConfig`] is what runs.
    pub struct Settings {
        /// Base URL of the inference node, or of any OpenAI-compatible server (http or https): the one upstream when `upstreams` is not set.
        vps_endpoint: String = "http://127.0.0.1:9000".into(), env "VPS_ENDPOINT",
            flag "vps-endpoint", check |url: &String| endpoint(url);
        /// The node's API key (its CEREBRUM_API_KEY); empty: none sent.
        vps_api_key: Secret<String> = Secret::default(), env "VPS_API_KEY";
        /// What VPS_ENDPOINT is: auto (a Cerebrum node's /health when it has one), cerebrum-node, or openai (llama-server, vLLM, Ollama: ready when GET /v1/models answers 200).
        vps_kind: Kind = Kind::default(), env "VPS_KIND";
        /// Several upstreams instead of VPS_ENDPOINT: a TOML array of tables ([[upstreams]] in the file, an inline array in the variable) with name, endpoint, key or key_env, kind, models, slots, weight, fallback; see docs/scaling.md.
        upstreams: UpstreamEntries = UpstreamEntries::default(), env "CEREBRUM_UPSTREAMS",
            check upstreams::check;
        /// Model that answers when the requested or routed one is served by no upstream; empty: such a request gets 404 naming the model.
        fallback_model: String = String::new(), env "CEREBRUM_FALLBACK_MODEL";
        /// Address to bind.
        host: IpAddr = IpAddr::from([0, 0, 0, 0]), env "CEREBRUM_HOST", flag "host";
        /// Port to listen on.
        port: u16 = 7000, env "CEREBRUM_PORT", flag "port";
        /// Inference requests handled at once (a stream counts until it ends); more get 503.
        max_in_flight: usize = 2, env "CEREBRUM_MAX_IN_FLIGHT", check at_least(1);
        /// Consecutive upstream failures that open the circuit breaker.
        breaker_threshold: u32 = 3, env "CEREBRUM_BREAKER_THRESHOLD", check at_least(1);
        /// Seconds the breaker stays open before a trial request.
        breaker_cooldown_secs: Duration = secs(10), env "CEREBRUM_BREAKER_COOLDOWN_SECS",
            check at_least(secs(1));
        /// Seconds to establish a connection to the node.
        connect_timeout_secs: Duration = secs(3), env "CEREBRUM_CONNECT_TIMEOUT_SECS",
            check at_least(secs(1));
        /// Seconds to wait for the first token, a cold model load included.
        first_token_timeout_secs: Duration = secs(120), env "CEREBRUM_FIRST_TOKEN_TIMEOUT_SECS",
            check at_least(secs(1));
        /// Seconds allowed between two tokens of a stream.
        idle_timeout_secs: Duration = secs(60), env "CEREBRUM_IDLE_TIMEOUT_SECS",
            check at_least(secs(1));
        /// Language to model, as language=model pairs; replaces the built-in table.
        routes: BTreeMap<String, String> = RoutingTable::default_routes(), env "CEREBRUM_ROUTES";
        /// Model for languages not in the routes.
        default_model: String = "qwen_7b".into(), env "CEREBRUM_DEFAULT_MODEL";
        /// Keys clients must send (X-API-Key or Authorization: Bearer), comma-separated; empty: no client auth (then /v1/stats shows the node's file paths to loopback callers only).
        client_keys: Secret<Vec<String>> = Secret::default(), env "CEREBRUM_CLIENT_KEYS";
        /// Host names clients may address this server by, besides loopback, any IP address and this machine's name (NAME, NAME.local, NAME.lan, NAME.home.arpa, NAME.<tailnet>.ts.net); * = any. Others get 403.
        allowed_hosts: Vec<String> = Vec::new(), env "CEREBRUM_ALLOWED_HOSTS",
            check |hosts: &Vec<String>| host_names(hosts);
        /// Seconds a client has to send a request's headers (also how long an idle keep-alive connection is kept); then the connection is closed.
        header_read_timeout_secs: Duration = cerebrum_service::shutdown::HEADER_READ_TIMEOUT,
            env "CEREBRUM_HEADER_READ_TIMEOUT_SECS", check at_least(secs(1));
        /// Seconds a client has to send a request's body, read before the request takes an in-flight slot; then 408.
        body_read_timeout_secs: Duration = secs(30), env "CEREBRUM_BODY_READ_TIMEOUT_SECS",
            check at_least(secs(1));
        /// Seconds a client may leave a stream unread before it loses its in-flight slot and its stream is cut.
        stalled_reader_timeout_secs: Duration = secs(30), env "CEREBRUM_STALLED_READER_TIMEOUT_SECS",
            check at_least(secs(1));
        /// Requests per second per client (a configured client key, else the peer address); 0: no rate limit.
        rate_limit_per_second: u32 = 0, env "CEREBRUM_RATE_LIMIT_PER_SECOND";
        /// Burst allowed above the rate (0 counts as 1).
        rate_limit_burst: u32 = 5, env "CEREBRUM_RATE_LIMIT_BURST";
        /// Largest prompt in characters; longer ones get 413.
        max_prompt_chars: usize = limits::MAX_PROMPT_CHARS, env "CEREBRUM_MAX_PROMPT_CHARS";
        /// Seconds open streams get to finish after SIGTERM.
        shutdown_grace_secs: Duration = secs(30), env "CEREBRUM_SHUTDOWN_GRACE_SECS";
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// An http or https URL.
fn endpoint(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(()),
        Ok(u) => Err(format!("scheme '{}' is not http or https", u.scheme())),
        Err(e) => Err(e.to_string()),
    }
}

/// Host names (no port, no scheme), or `*`.
fn host_names(hosts: &[String]) -> Result<(), String> {
    match hosts.iter().find(|h| {
        h.is_empty()
            || h.contains(|c: char| c == '/' || c == ':' || c == '@' || c.is_whitespace())
            || (h.contains('*') && h.as_str() != "*")
    }) {
        Some(bad) => Err(format!(
            "'{bad}' is not a host name (no port or scheme; * alone means any)"
        )),
        None => Ok(()),
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct OrchestratorConfig {
    /// Where generations go, in the configured order (never empty).
    pub upstreams: Vec<UpstreamConfig>,
    /// The model for requests whose model no upstream serves.
    pub fallback_model: Option<String>,
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
    /// Host names allowed besides the automatic ones; `*`: any.
    pub allowed_hosts: Vec<String>,
    /// Time to send a request's headers (and idle keep-alive bound).
    pub header_read_timeout: Duration,
    /// Time to send a request's body.
    pub body_read_timeout: Duration,
    /// Time a stream may go unread before its in-flight slot is taken back.
    pub stalled_reader_timeout: Duration,
    /// Requests per second per client (0 = off).
    pub rate_limit_per_second: u32,
    /// Rate-limit burst.
    pub rate_limit_burst: u32,
    /// Largest prompt in characters.
    pub max_prompt_chars: usize,
    /// Grace period for open streams at shutdown.
    pub shutdown_grace: Duration,
}

impl OrchestratorConfig {
    /// Reads the file (if any), then the process environment, then flags.
    pub fn load(file: Option<&Path>, flags: &FlagValues) -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        Self::build(load::<Settings>(file, flags)?, &env)
    }

    /// Merges file < environment < flags and validates. Pure: the environment is passed in.
    pub fn resolve(
        file: Option<&ConfigFile>,
        env: &BTreeMap<String, String>,
        flags: &FlagValues,
    ) -> Result<Self, ConfigError> {
        Self::build(Settings::read(&Sources::new(file, env, flags))?, env)
    }

    /// The settings as they run; `env` holds the upstreams' `key_env` variables.
    fn build(s: Settings, env: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let upstreams = if s.upstreams.value.0.is_empty() {
            vec![UpstreamConfig::shorthand(
                &s.vps_endpoint.value,
                &s.vps_api_key.value.0,
                s.vps_kind.value.0,
            )]
        } else {
            if let Some(origin) = [
                &s.vps_endpoint.origin,
                &s.vps_api_key.origin,
                &s.vps_kind.origin,
            ]
            .into_iter()
            .find(|o| !matches!(o, Origin::Default(_)))
            {
                return Err(origin.error(
                    "upstreams is set too: give each upstream's endpoint and key there, and leave VPS_ENDPOINT, VPS_API_KEY and VPS_KIND unset",
                ));
            }
            s.upstreams
                .value
                .0
                .iter()
                .map(|u| UpstreamConfig::resolve(u, env))
                .collect::<Result<_, _>>()
                .map_err(|e| s.upstreams.origin.error(e))?
        };
        let fallback_model =
            Some(s.fallback_model.value.trim().to_string()).filter(|m| !m.is_empty());
        Ok(Self {
            upstreams,
            fallback_model,
            host: s.host.value,
            port: s.port.value,
            max_in_flight: s.max_in_flight.value,
            breaker_threshold: s.breaker_threshold.value,
            breaker_cooldown: s.breaker_cooldown_secs.value,
            connect_timeout: s.connect_timeout_secs.value,
            first_token_timeout: s.first_token_timeout_secs.value,
            idle_timeout: s.idle_timeout_secs.value,
            routing: RoutingTable::new(s.routes.value, s.default_model.value),
            client_keys: s.client_keys.value.0,
            allowed_hosts: s.allowed_hosts.value,
            header_read_timeout: s.header_read_timeout_secs.value,
            body_read_timeout: s.body_read_timeout_secs.value,
            stalled_reader_timeout: s.stalled_reader_timeout_secs.value,
            rate_limit_per_second: s.rate_limit_per_second.value,
            rate_limit_burst: s.rate_limit_burst.value.max(1),
            max_prompt_chars: s.max_prompt_chars.value,
            shutdown_grace: s.shutdown_grace_secs.value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cerebrum_service::settings::check_env_example;
    use upstreams::UpstreamKind;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn resolve(
        file: Option<&str>,
        env_pairs: &[(&str, &str)],
        flags: &[(&'static str, &str)],
    ) -> Result<OrchestratorConfig, String> {
        let file = file.map(|t| ConfigFile::parse("/etc/cerebrum/orchestrator.toml", t).unwrap());
        let flags = flags.iter().map(|(k, v)| (*k, v.to_string())).collect();
        OrchestratorConfig::resolve(file.as_ref(), &env(env_pairs), &flags)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_the_originals() {
        let c = resolve(None, &[], &[]).unwrap();
        assert_eq!(
            c.upstreams,
            [UpstreamConfig::shorthand(
                "http://127.0.0.1:9000",
                "",
                Default::default()
            )]
        );
        assert_eq!(c.fallback_model, None);
        assert_eq!(c.host, IpAddr::from([0, 0, 0, 0]));
        assert_eq!(c.port, 7000);
        assert_eq!(c.max_in_flight, 2);
        assert_eq!(c.breaker_threshold, 3);
        assert_eq!(c.breaker_cooldown, Duration::from_secs(10));
        assert_eq!(c.connect_timeout, Duration::from_secs(3));
        assert_eq!(c.first_token_timeout, Duration::from_secs(120));
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert_eq!(
            c.max_prompt_chars,
            cerebrum_shared::limits::MAX_PROMPT_CHARS
        );
        assert_eq!((c.rate_limit_per_second, c.rate_limit_burst), (0, 5));
        assert_eq!(c.shutdown_grace, Duration::from_secs(30));
        assert_eq!(c.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.body_read_timeout, Duration::from_secs(30));
        assert_eq!(c.stalled_reader_timeout, Duration::from_secs(30));
        assert!(c.allowed_hosts.is_empty());
        assert!(c.client_keys.is_empty() && c.upstreams[0].key.is_empty());
        assert_eq!(c.routing.route(Some("rust")), "codellama_7b");
        assert_eq!(c.routing.route(Some("cobol")), "qwen_7b");
    }

    #[test]
    fn env_and_flags_override() {
        let file = "port = 1\nvps_endpoint = \"http://a:1/\"\n[routes]\nrust = \"big\"";
        let c = resolve(
            Some(file),
            &[
                ("CEREBRUM_PORT", "2"),
                ("CEREBRUM_ROUTES", "python=small, Rust=tiny"),
                ("CEREBRUM_CLIENT_KEYS", "k1, k2,"),
            ],
            &[("port", "3")],
        )
        .unwrap();
        assert_eq!(c.port, 3);
        assert_eq!(c.upstreams[0].endpoint, "http://a:1");
        assert_eq!(c.routing.route(Some("rust")), "tiny");
        assert_eq!(c.routing.route(Some("python")), "small");
        assert_eq!(c.client_keys, ["k1", "k2"]);
        let c = resolve(Some(file), &[], &[("vps-endpoint", "https://b")]).unwrap();
        assert_eq!(c.upstreams[0].endpoint, "https://b");
        assert_eq!(c.routing.route(Some("rust")), "big");
    }

    #[test]
    fn bad_settings_name_where_they_came_from() {
        for (k, v, want) in [
            (
                "VPS_ENDPOINT",
                "ftp://x",
                "environment VPS_ENDPOINT='ftp://x': scheme 'ftp'",
            ),
            (
                "VPS_ENDPOINT",
                "not a url",
                "environment VPS_ENDPOINT='not a url': ",
            ),
            (
                "CEREBRUM_PORT",
                "seventy",
                "environment CEREBRUM_PORT='seventy': ",
            ),
            (
                "CEREBRUM_MAX_IN_FLIGHT",
                "0",
                "environment CEREBRUM_MAX_IN_FLIGHT='0': must be",
            ),
            (
                "CEREBRUM_IDLE_TIMEOUT_SECS",
                "0",
                "environment CEREBRUM_IDLE_TIMEOUT_SECS='0': ",
            ),
            (
                "CEREBRUM_ROUTES",
                "python",
                "environment CEREBRUM_ROUTES='python': 'python' is not",
            ),
            (
                "CEREBRUM_ALLOWED_HOSTS",
                "pi.lan, http://x",
                "environment CEREBRUM_ALLOWED_HOSTS='pi.lan, http://x': 'http://x' is not a host",
            ),
            (
                "CEREBRUM_ALLOWED_HOSTS",
                "*.example.com",
                "environment CEREBRUM_ALLOWED_HOSTS='*.example.com': '*.example.com' is not",
            ),
            (
                "CEREBRUM_BODY_READ_TIMEOUT_SECS",
                "0",
                "environment CEREBRUM_BODY_READ_TIMEOUT_SECS='0': must be at least 1",
            ),
        ] {
            let e = resolve(None, &[(k, v)], &[]).unwrap_err();
            assert!(e.starts_with(want), "{k}={v}: {e}");
        }
        let e = resolve(None, &[], &[("vps-endpoint", "ftp://x")]).unwrap_err();
        assert!(
            e.starts_with("flag --vps-endpoint='ftp://x': scheme"),
            "{e}"
        );
        let e = resolve(Some("breaker_threshold = 0"), &[], &[]).unwrap_err();
        assert_eq!(
            e,
            "config file /etc/cerebrum/orchestrator.toml: key breaker_threshold: must be at least 1"
        );
        let e = resolve(Some("prot = 1"), &[], &[]).unwrap_err();
        assert!(e.contains("unknown key 'prot'"), "{e}");
    }

    #[test]
    fn the_vps_key_stays_out_of_errors() {
        let e = resolve(Some("vps_api_key = 5"), &[], &[]).unwrap_err();
        assert!(
            e.starts_with("config file /etc/cerebrum/orchestrator.toml: key vps_api_key:"),
            "{e}"
        );
        let c = resolve(None, &[("VPS_API_KEY", "s3cret-s3cret")], &[]).unwrap();
        assert_eq!(c.upstreams[0].key, "s3cret-s3cret");
    }

    #[test]
    fn several_upstreams_from_the_file_or_the_environment() {
        let file = r#"
fallback_model = "smollm2"
[[upstreams]]
name = "a"
endpoint = "http://10.0.0.1:9000/"
key_env = "A_KEY"
kind = "cerebrum-node"
models = ["smollm2"]
slots = 4
[[upstreams]]
name = "gpu"
endpoint = "https://gpu.example:8080"
key = "k2"
kind = "openai"
weight = 3
fallback = true
"#;
        let c = resolve(Some(file), &[("A_KEY", " ka ")], &[]).unwrap();
        assert_eq!(c.fallback_model.as_deref(), Some("smollm2"));
        let a = &c.upstreams[0];
        assert_eq!(
            (a.name.as_str(), a.endpoint.as_str(), a.key.as_str(), a.kind),
            (
                "a",
                "http://10.0.0.1:9000",
                "ka",
                UpstreamKind::CerebrumNode
            )
        );
        assert_eq!(
            (a.models.as_deref(), a.slots, a.weight, a.fallback),
            (Some(&["smollm2".to_string()][..]), 4, 1, false)
        );
        let g = &c.upstreams[1];
        assert_eq!(
            (
                g.key.as_str(),
                g.kind,
                g.weight,
                g.slots,
                g.fallback,
                g.models.is_none()
            ),
            ("k2", UpstreamKind::OpenAi, 3, 1, true, true)
        );
        let env = r#"[{name = "x", endpoint = "http://127.0.0.1:1"}, {name = "y", endpoint = "http://127.0.0.1:2", kind = "openai"}]"#;
        let c = resolve(None, &[("CEREBRUM_UPSTREAMS", env)], &[]).unwrap();
        let names: Vec<_> = c
            .upstreams
            .iter()
            .map(|u| (u.name.as_str(), u.kind))
            .collect();
        assert_eq!(
            names,
            [("x", UpstreamKind::Auto), ("y", UpstreamKind::OpenAi)]
        );
        let c = resolve(
            None,
            &[("VPS_KIND", "openai"), ("VPS_ENDPOINT", "http://l:8080")],
            &[],
        )
        .unwrap();
        assert_eq!(
            (
                c.upstreams.len(),
                c.upstreams[0].name.as_str(),
                c.upstreams[0].kind
            ),
            (1, "vps", UpstreamKind::OpenAi)
        );
    }

    #[test]
    fn bad_upstreams_say_what_is_wrong_without_showing_keys() {
        let one = |extra: &str| format!(r#"[{{name = "a", endpoint = "http://h:1"{extra}}}]"#);
        for (text, want) in [
            ("[1, 2]".to_string(), "invalid type"),
            ("name = 1".to_string(), "not a TOML array of tables"),
            (
                one(r#", key = "sekrit", key_env = "X""#),
                "give key or key_env, not both",
            ),
            (one(", slots = 0"), "weight and slots must be at least 1"),
            (one(", models = []"), "must list at least one"),
            (one(r#", kind = "vllm""#), "unknown variant"),
            (one(r#", colour = "red""#), "unknown field"),
            (one(", fallback = true"), "every upstream is a fallback"),
            (
                r#"[{name = "a b", endpoint = "http://h:1"}]"#.into(),
                "upstream name 'a b' must be",
            ),
            (
                r#"[{name = "a", endpoint = "ftp://h"}]"#.into(),
                "upstream 'a': endpoint: scheme 'ftp'",
            ),
            (
                r#"[{name = "a", endpoint = "http://h:1"}, {name = "a", endpoint = "http://h:2"}]"#
                    .into(),
                "used twice",
            ),
            (
                one(r#", key_env = "NOPE""#),
                "key_env names NOPE, which is not set",
            ),
        ] {
            let e = resolve(None, &[("CEREBRUM_UPSTREAMS", &text)], &[]).unwrap_err();
            assert!(
                e.starts_with("environment CEREBRUM_UPSTREAMS: "),
                "{text}: {e}"
            );
            assert!(e.contains(want), "{text}: {e}");
            assert!(!e.contains("sekrit"), "{e}");
        }
        let e = resolve(
            None,
            &[
                ("CEREBRUM_UPSTREAMS", &one("")),
                ("VPS_ENDPOINT", "http://x"),
            ],
            &[],
        )
        .unwrap_err();
        assert!(
            e.starts_with("environment VPS_ENDPOINT='http://x': upstreams is set too"),
            "{e}"
        );
        let e = resolve(None, &[("VPS_KIND", "vllm")], &[]).unwrap_err();
        assert!(e.contains("'vllm' is not a kind"), "{e}");
    }

    #[test]
    fn the_env_example_documents_exactly_the_settings() {
        check_env_example::<Settings>(include_str!("../../../deploy/orchestrator.env.example"))
            .unwrap();
    }
}
