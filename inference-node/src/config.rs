//! The node's configuration: every setting declared once in [`Settings`] (TOML
//! key, environment variable, flag, default, help), read from a TOML file, then
//! the environment, then flags, and turned into [`NodeConfig`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cerebrum_service::config::invalid;
use cerebrum_service::settings::{
    FlagValues, Secret, Settings as _, Sources, at_least, load, within,
};

pub use cerebrum_service::config::ConfigError;
pub use cerebrum_service::settings::ConfigFile;

cerebrum_service::settings! {
    /// The node's settings as read; [`NodeConfig`] is what runs.
    pub struct Settings {
        /// Address to bind: 127.0.0.1, or the Tailscale address (`tailscale ip -4`); never 0.0.0.0 on a public machine.
        bind_ip: IpAddr = IpAddr::from([127, 0, 0, 1]), env "VPS_BIND_IP", flag "bind";
        /// Port to listen on.
        port: u16 = 9000, env "CEREBRUM_VPS_PORT", flag "port";
        /// The key clients send (X-API-Key or Authorization: Bearer), 16 characters or more; make one with `cerebrum-node gen-key`.
        api_key: Secret<Option<String>> = Secret(None), env "CEREBRUM_API_KEY",
            shown "none (this or api_key_file is required)";
        /// A file holding the API key; api_key wins over it, --api-key-file over api_key.
        api_key_file: Option<PathBuf> = None, env "CEREBRUM_API_KEY_FILE", flag "api-key-file";
        /// Refuse work while other processes use more than this % of all cores (1..=100).
        max_cpu_percent: f32 = 70.0, env "MAX_CPU_PERCENT", check within(1.0, 100.0);
        /// llama.cpp threads (1..=256).
        n_threads: u32 = default_threads(), env "CEREBRUM_N_THREADS",
            shown "the number of cores, at most 8", check within(1, 256);
        /// Peers allowed besides loopback (the Pi's Tailscale address), comma-separated.
        allowed_peers: Vec<IpAddr> = Vec::new(), env "ALLOWED_CM4_IP";
        /// Directory scanned for *.gguf; a model's name is its file stem.
        models_dir: PathBuf = default_models_dir(), env "CEREBRUM_MODELS_DIR", flag "models-dir",
            shown "~/.cache/cerebrum/models";
        /// Extra models by path, as name=/path/file.gguf pairs.
        models: BTreeMap<String, PathBuf> = BTreeMap::new(), env "CEREBRUM_MODELS",
            check gguf_models;
        /// Model used when a request names none; empty: the request must name one.
        default_model: Option<String> = None, env "CEREBRUM_DEFAULT_MODEL";
        /// Refuse work and model loads that would leave less available RAM than this, in MB.
        ram_floor_mb: u64 = 1024, env "CEREBRUM_RAM_FLOOR_MB";
        /// Unload a model idle this many seconds (from its last completed request).
        idle_unload_secs: Duration = Duration::from_secs(3600), env "CEREBRUM_IDLE_UNLOAD_SECS",
            check at_least(Duration::from_secs(1));
        /// Seconds open streams may run on after SIGTERM; then each ends with an error event (and [DONE] on OpenAI streams) and the node exits about 2 s later. Keep it under systemd's TimeoutStopSec.
        shutdown_grace_secs: Duration = Duration::from_secs(10), env "CEREBRUM_SHUTDOWN_GRACE_SECS",
            check at_least(Duration::from_secs(1));
        /// Models loaded at once; the least recently used idle one is unloaded first.
        max_loaded_models: usize = 1, env "CEREBRUM_MAX_LOADED_MODELS", check at_least(1);
        /// Sequences decoded together per model: concurrent streams per model (1..=64).
        parallel: u32 = 2, env "CEREBRUM_PARALLEL", check within(1, 64);
        /// Context tokens per sequence (64..=131072).
        context_size: u32 = 2048, env "CEREBRUM_CONTEXT_SIZE", check within(64, 131_072);
        /// Largest prompt accepted, in bytes, before tokenizing.
        max_prompt_bytes: usize = 256 * 1024, env "CEREBRUM_MAX_PROMPT_BYTES";
        /// Keep each slot's KV cells after a request and reuse the longest common prompt prefix (true or false).
        prompt_cache: bool = true, env "CEREBRUM_PROMPT_CACHE";
    }
}

/// Model names are not empty and have no `/`; their files are `.gguf`.
fn gguf_models(models: &BTreeMap<String, PathBuf>) -> Result<(), String> {
    for (name, path) in models {
        if name.is_empty() || name.contains('/') {
            return Err(format!("'{name}' is not a valid model name"));
        }
        if path.extension().and_then(|e| e.to_str()) != Some("gguf") {
            return Err(format!("{name}: {} is not a .gguf file", path.display()));
        }
    }
    Ok(())
}

/// The validated configuration the node runs with.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Address to bind.
    pub bind_ip: IpAddr,
    /// Port.
    pub port: u16,
    /// The shared secret clients send as `X-API-Key` or `Authorization: Bearer`.
    pub api_key: String,
    /// CPU busy % from other processes above which work is refused.
    pub max_cpu_percent: f32,
    /// llama.cpp threads for generation and prompt processing.
    pub n_threads: u32,
    /// Peers allowed besides loopback.
    pub allowed_peers: Vec<IpAddr>,
    /// Directory scanned for `*.gguf`.
    pub models_dir: PathBuf,
    /// Extra names → GGUF paths.
    pub models: BTreeMap<String, PathBuf>,
    /// Model used when a request names none.
    pub default_model: Option<String>,
    /// RAM floor in bytes.
    pub ram_floor_bytes: u64,
    /// Idle time before unload.
    pub idle_unload: Duration,
    /// How long open streams may run after the stop signal.
    pub shutdown_grace: Duration,
    /// Models loaded at once.
    pub max_loaded_models: usize,
    /// Sequences decoded together per model.
    pub parallel: u32,
    /// Context tokens per sequence.
    pub context_size: u32,
    /// Largest prompt accepted, in bytes.
    pub max_prompt_bytes: usize,
    /// Reuse cached prompt prefixes across requests.
    pub prompt_cache: bool,
}

/// Default models directory: `~/.cache/cerebrum/models` (where `scripts/fetch-model` puts them).
pub fn default_models_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/cerebrum"))
        .join(".cache/cerebrum/models")
}

fn default_threads() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(2)
        .min(8)
}

impl NodeConfig {
    /// Reads the file (if any), then the process environment, then flags.
    pub fn load(file: Option<&Path>, flags: &FlagValues) -> Result<Self, ConfigError> {
        Self::try_from(load::<Settings>(file, flags)?)
    }

    /// Merges file < environment < flags and validates. Pure: the environment is passed in.
    pub fn resolve(
        file: Option<&ConfigFile>,
        env: &BTreeMap<String, String>,
        flags: &FlagValues,
    ) -> Result<Self, ConfigError> {
        Self::try_from(Settings::read(&Sources::new(file, env, flags))?)
    }
}

/// The key: `api_key`, or the contents of `api_key_file` when only that is set or
/// `--api-key-file` gave it; none at all stops the node.
fn api_key(s: &Settings) -> Result<String, ConfigError> {
    let file = &s.api_key_file;
    let key_wins = !file.origin.is_flag();
    let (key, origin, what) = match (&s.api_key.value.0, &file.value) {
        (Some(key), _) if key_wins => (key.clone(), &s.api_key.origin, "the key"),
        (_, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                file.origin
                    .error(format!("cannot read {}: {e}", path.display()))
            })?;
            (text.trim().to_string(), &file.origin, "the key in it")
        }
        _ => {
            return Err(invalid(
                "CEREBRUM_API_KEY",
                "no API key: set CEREBRUM_API_KEY, api_key_file, or --api-key-file \
                 (make one with `cerebrum-node gen-key`)",
            ));
        }
    };
    if key.len() < 16 {
        return Err(origin.error(format!(
            "{what} is shorter than 16 characters; use `cerebrum-node gen-key`"
        )));
    }
    Ok(key)
}

impl TryFrom<Settings> for NodeConfig {
    type Error = ConfigError;

    fn try_from(s: Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            api_key: api_key(&s)?,
            bind_ip: s.bind_ip.value,
            port: s.port.value,
            max_cpu_percent: s.max_cpu_percent.value,
            n_threads: s.n_threads.value,
            allowed_peers: s.allowed_peers.value,
            models_dir: s.models_dir.value,
            models: s.models.value,
            default_model: s.default_model.value,
            ram_floor_bytes: s.ram_floor_mb.value * 1024 * 1024,
            idle_unload: s.idle_unload_secs.value,
            shutdown_grace: s.shutdown_grace_secs.value,
            max_loaded_models: s.max_loaded_models.value,
            parallel: s.parallel.value,
            context_size: s.context_size.value,
            max_prompt_bytes: s.max_prompt_bytes.value,
            prompt_cache: s.prompt_cache.value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cerebrum_service::settings::check_env_example;

    const KEY: &str = "0123456789abcdef0123";

    fn resolve(
        file: Option<&str>,
        env: &[(&str, &str)],
        flags: &[(&'static str, &str)],
    ) -> Result<NodeConfig, String> {
        let file = file.map(|t| ConfigFile::parse("/etc/cerebrum/node.toml", t).unwrap());
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let flags = flags.iter().map(|(k, v)| (*k, v.to_string())).collect();
        NodeConfig::resolve(file.as_ref(), &env, &flags).map_err(|e| e.to_string())
    }

    #[test]
    fn refuses_to_start_without_a_key() {
        let e = resolve(None, &[], &[]).unwrap_err();
        assert!(
            e.contains("CEREBRUM_API_KEY") && e.contains("gen-key"),
            "{e}"
        );
        let e = resolve(None, &[("CEREBRUM_API_KEY", "short-key")], &[]).unwrap_err();
        assert_eq!(
            e,
            "environment CEREBRUM_API_KEY: the key is shorter than 16 characters; \
             use `cerebrum-node gen-key`"
        );
    }

    #[test]
    fn defaults_are_the_originals() {
        let c = resolve(None, &[("CEREBRUM_API_KEY", KEY)], &[]).unwrap();
        assert_eq!(c.api_key, KEY);
        assert_eq!(c.port, 9000);
        assert_eq!(c.bind_ip.to_string(), "127.0.0.1");
        assert_eq!(c.max_cpu_percent, 70.0);
        assert_eq!(c.n_threads, default_threads());
        assert_eq!(c.models_dir, default_models_dir());
        assert_eq!(c.ram_floor_bytes, 1 << 30);
        assert_eq!(c.idle_unload.as_secs(), 3600);
        assert_eq!(c.max_loaded_models, 1);
        assert_eq!((c.parallel, c.context_size), (2, 2048));
        assert_eq!(c.max_prompt_bytes, 256 * 1024);
        assert!(c.allowed_peers.is_empty() && c.models.is_empty());
        assert_eq!(c.default_model, None);
    }

    #[test]
    fn env_beats_file_and_flags_beat_env() {
        let file = "port = 1000\nmax_cpu_percent = 50\nbind_ip = \"10.0.0.1\"";
        let c = resolve(
            Some(file),
            &[("CEREBRUM_API_KEY", KEY), ("CEREBRUM_VPS_PORT", "2000")],
            &[("port", "3000"), ("models-dir", "/m")],
        )
        .unwrap();
        assert_eq!(c.port, 3000);
        assert_eq!(c.max_cpu_percent, 50.0);
        assert_eq!(c.bind_ip.to_string(), "10.0.0.1");
        assert_eq!(c.models_dir, PathBuf::from("/m"));
        let c = resolve(
            Some(file),
            &[("CEREBRUM_API_KEY", KEY), ("VPS_BIND_IP", "100.64.0.2")],
            &[("bind", "100.64.0.3")],
        )
        .unwrap();
        assert_eq!(c.bind_ip.to_string(), "100.64.0.3");
    }

    #[test]
    fn bad_values_name_where_they_came_from() {
        for (k, v, want) in [
            (
                "MAX_CPU_PERCENT",
                "lots",
                "environment MAX_CPU_PERCENT='lots': invalid float literal",
            ),
            (
                "MAX_CPU_PERCENT",
                "0.5",
                "environment MAX_CPU_PERCENT='0.5': 0.5 is not within 1..=100",
            ),
            (
                "ALLOWED_CM4_IP",
                "10.0.0.1,nope",
                "environment ALLOWED_CM4_IP='10.0.0.1,nope': 'nope': ",
            ),
            (
                "CEREBRUM_PARALLEL",
                "65",
                "environment CEREBRUM_PARALLEL='65': 65 is not within 1..=64",
            ),
            (
                "CEREBRUM_IDLE_UNLOAD_SECS",
                "0",
                "environment CEREBRUM_IDLE_UNLOAD_SECS='0': must be",
            ),
            (
                "CEREBRUM_MODELS",
                "a=/m/a.bin",
                "environment CEREBRUM_MODELS='a=/m/a.bin': a: /m/a.bin is not a .gguf",
            ),
            (
                "CEREBRUM_MODELS",
                "/m/a.gguf",
                "environment CEREBRUM_MODELS='/m/a.gguf': '/m/a.gguf' is not name=value",
            ),
        ] {
            let e = resolve(None, &[("CEREBRUM_API_KEY", KEY), (k, v)], &[]).unwrap_err();
            assert!(e.starts_with(want), "{k}={v}: {e}");
        }
        let e = resolve(Some("context_size = 32"), &[("CEREBRUM_API_KEY", KEY)], &[]).unwrap_err();
        assert_eq!(
            e,
            "config file /etc/cerebrum/node.toml: key context_size: 32 is not within 64..=131072"
        );
        let e = resolve(None, &[("CEREBRUM_API_KEY", KEY)], &[("port", "x")]).unwrap_err();
        assert!(e.starts_with("flag --port='x': "), "{e}");
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        let e = resolve(Some("prot = 9000"), &[("CEREBRUM_API_KEY", KEY)], &[]).unwrap_err();
        assert!(e.contains("unknown key 'prot'"), "{e}");
    }

    #[test]
    fn model_table_from_env_or_file() {
        let env = [
            ("CEREBRUM_API_KEY", KEY),
            (
                "CEREBRUM_MODELS",
                "qwen_7b=/m/a.gguf, codellama_7b=/m/b.gguf",
            ),
        ];
        let c = resolve(None, &env, &[]).unwrap();
        assert_eq!(c.models["qwen_7b"], PathBuf::from("/m/a.gguf"));
        assert_eq!(c.models.len(), 2);
        let file = "[models]\nsmall = \"/m/s.gguf\"";
        let c = resolve(Some(file), &[("CEREBRUM_API_KEY", KEY)], &[]).unwrap();
        assert_eq!(c.models["small"], PathBuf::from("/m/s.gguf"));
    }

    #[test]
    fn the_key_file_and_its_precedence() {
        let dir = std::env::temp_dir().join(format!("cerebrum-node-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("node.key");
        std::fs::write(&path, "fedcba9876543210fedcba\n").unwrap();
        let p = path.to_str().unwrap();
        // Only the file: its key, trimmed.
        let c = resolve(None, &[("CEREBRUM_API_KEY_FILE", p)], &[]).unwrap();
        assert_eq!(c.api_key, "fedcba9876543210fedcba");
        // The key wins over the file from the environment or TOML...
        let c = resolve(
            None,
            &[("CEREBRUM_API_KEY", KEY), ("CEREBRUM_API_KEY_FILE", p)],
            &[],
        )
        .unwrap();
        assert_eq!(c.api_key, KEY);
        // ...but not over --api-key-file.
        let c = resolve(None, &[("CEREBRUM_API_KEY", KEY)], &[("api-key-file", p)]).unwrap();
        assert_eq!(c.api_key, "fedcba9876543210fedcba");
        let missing = dir.join("absent.key");
        let e = resolve(None, &[], &[("api-key-file", missing.to_str().unwrap())]).unwrap_err();
        assert!(
            e.starts_with("flag --api-key-file='") && e.contains("cannot read"),
            "{e}"
        );
        std::fs::write(&path, "short\n").unwrap();
        let e = resolve(Some(&format!("api_key_file = \"{p}\"")), &[], &[]).unwrap_err();
        assert!(
            e.starts_with(
                "config file /etc/cerebrum/node.toml: key api_key_file: the key in it is shorter"
            ),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_env_example_documents_exactly_the_settings() {
        check_env_example::<Settings>(include_str!("../../deploy/node.env.example")).unwrap();
    }
}
