//! The node's configuration: one typed struct, read from a TOML file, overridden
//! by environment variables (the original's names where it had them) and flags,
//! and validated at start with errors that name the bad key.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use cerebrum_service::config::ConfigError;
use cerebrum_service::config::{env_parse as parse, invalid, read_toml};

/// The settings as they appear in the TOML file; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to bind (127.0.0.1 or the Tailscale address).
    pub bind_ip: Option<IpAddr>,
    /// Port.
    pub port: Option<u16>,
    /// The API key (prefer `api_key_file` or the environment).
    pub api_key: Option<String>,
    /// A file holding the API key.
    pub api_key_file: Option<PathBuf>,
    /// CPU busy % from other processes above which work is refused.
    pub max_cpu_percent: Option<f32>,
    /// llama.cpp threads.
    pub n_threads: Option<u32>,
    /// Peer addresses allowed besides loopback (the Pi's Tailscale address).
    pub allowed_peers: Option<Vec<IpAddr>>,
    /// Directory scanned for `*.gguf` (name = file stem).
    pub models_dir: Option<PathBuf>,
    /// Extra names → GGUF paths.
    pub models: Option<BTreeMap<String, PathBuf>>,
    /// Model used when a request names none.
    pub default_model: Option<String>,
    /// Refuse work (and loads) that would leave less available RAM than this.
    pub ram_floor_mb: Option<u64>,
    /// Unload a model idle this long (from its last completed request).
    pub idle_unload_secs: Option<u64>,
    /// Models loaded at once.
    pub max_loaded_models: Option<usize>,
    /// Sequences decoded together per model (continuous batching slots).
    pub parallel: Option<u32>,
    /// Context tokens per sequence.
    pub context_size: Option<u32>,
    /// Largest prompt accepted, in bytes, before tokenizing.
    pub max_prompt_bytes: Option<usize>,
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
    pub idle_unload: std::time::Duration,
    /// Models loaded at once.
    pub max_loaded_models: usize,
    /// Sequences decoded together per model.
    pub parallel: u32,
    /// Context tokens per sequence.
    pub context_size: u32,
    /// Largest prompt accepted, in bytes.
    pub max_prompt_bytes: usize,
}

/// Overrides from the command line (highest precedence).
#[derive(Debug, Default, Clone)]
pub struct FlagOverrides {
    /// `--bind`.
    pub bind_ip: Option<IpAddr>,
    /// `--port`.
    pub port: Option<u16>,
    /// `--api-key-file`.
    pub api_key_file: Option<PathBuf>,
    /// `--models-dir`.
    pub models_dir: Option<PathBuf>,
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
        if let Some(v) = parse(env, "VPS_BIND_IP")? {
            f.bind_ip = Some(v);
        }
        if let Some(v) = parse(env, "CEREBRUM_VPS_PORT")? {
            f.port = Some(v);
        }
        if let Some(v) = parse(env, "MAX_CPU_PERCENT")? {
            f.max_cpu_percent = Some(v);
        }
        if let Some(v) = parse(env, "CEREBRUM_N_THREADS")? {
            f.n_threads = Some(v);
        }
        if let Some(v) = env.get("ALLOWED_CM4_IP").filter(|v| !v.trim().is_empty()) {
            let mut peers = Vec::new();
            for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                peers.push(
                    part.parse::<IpAddr>()
                        .map_err(|e| invalid("ALLOWED_CM4_IP", format!("'{part}': {e}")))?,
                );
            }
            f.allowed_peers = Some(peers);
        }
        if let Some(v) = parse::<PathBuf>(env, "CEREBRUM_MODELS_DIR")? {
            f.models_dir = Some(v);
        }
        if let Some(v) = env.get("CEREBRUM_MODELS").filter(|v| !v.trim().is_empty()) {
            let table = f.models.get_or_insert_with(BTreeMap::new);
            for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (name, path) = pair.split_once('=').ok_or_else(|| {
                    invalid(
                        "CEREBRUM_MODELS",
                        format!("'{pair}' is not name=/path/to/model.gguf"),
                    )
                })?;
                table.insert(name.trim().to_string(), PathBuf::from(path.trim()));
            }
        }
        if let Some(v) = parse(env, "CEREBRUM_DEFAULT_MODEL")? {
            f.default_model = Some(v);
        }
        if let Some(v) = parse(env, "CEREBRUM_RAM_FLOOR_MB")? {
            f.ram_floor_mb = Some(v);
        }
        if let Some(v) = parse(env, "CEREBRUM_IDLE_UNLOAD_SECS")? {
            f.idle_unload_secs = Some(v);
        }
        if let Some(v) = parse(env, "CEREBRUM_MAX_LOADED_MODELS")? {
            f.max_loaded_models = Some(v);
        }
        if let Some(v) = parse(env, "CEREBRUM_PARALLEL")? {
            f.parallel = Some(v);
        }
        if let Some(v) = parse(env, "CEREBRUM_CONTEXT_SIZE")? {
            f.context_size = Some(v);
        }
        if let Some(v) = parse::<PathBuf>(env, "CEREBRUM_API_KEY_FILE")? {
            f.api_key_file = Some(v);
        }
        if let Some(v) = env.get("CEREBRUM_API_KEY").filter(|v| !v.trim().is_empty()) {
            f.api_key = Some(v.trim().to_string());
        }
        // Flags win.
        if flags.bind_ip.is_some() {
            f.bind_ip = flags.bind_ip;
        }
        if flags.port.is_some() {
            f.port = flags.port;
        }
        if flags.models_dir.is_some() {
            f.models_dir = flags.models_dir.clone();
        }
        if let Some(p) = &flags.api_key_file {
            f.api_key_file = Some(p.clone());
            f.api_key = None;
        }

        let api_key = match (&f.api_key, &f.api_key_file) {
            (Some(k), _) => k.clone(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| invalid("api_key_file", format!("{}: {e}", path.display())))?
                .trim()
                .to_string(),
            (None, None) => {
                return Err(invalid(
                    "CEREBRUM_API_KEY",
                    "no API key: set CEREBRUM_API_KEY, api_key_file, or --api-key-file \
                     (make one with `cerebrum-node gen-key`)",
                ));
            }
        };
        if api_key.len() < 16 {
            return Err(invalid(
                "CEREBRUM_API_KEY",
                "the key is shorter than 16 characters; use `cerebrum-node gen-key`",
            ));
        }
        let max_cpu_percent = f.max_cpu_percent.unwrap_or(70.0);
        if !(1.0..=100.0).contains(&max_cpu_percent) {
            return Err(invalid(
                "MAX_CPU_PERCENT",
                format!("{max_cpu_percent} is not within 1..=100"),
            ));
        }
        let n_threads = f.n_threads.unwrap_or_else(default_threads);
        if !(1..=256).contains(&n_threads) {
            return Err(invalid(
                "CEREBRUM_N_THREADS",
                format!("{n_threads} is not within 1..=256"),
            ));
        }
        let parallel = f.parallel.unwrap_or(2);
        if !(1..=64).contains(&parallel) {
            return Err(invalid(
                "CEREBRUM_PARALLEL",
                format!("{parallel} is not within 1..=64"),
            ));
        }
        let context_size = f.context_size.unwrap_or(2048);
        if !(64..=131_072).contains(&context_size) {
            return Err(invalid(
                "CEREBRUM_CONTEXT_SIZE",
                format!("{context_size} is not within 64..=131072"),
            ));
        }
        let max_loaded_models = f.max_loaded_models.unwrap_or(1);
        if max_loaded_models == 0 {
            return Err(invalid("CEREBRUM_MAX_LOADED_MODELS", "must be at least 1"));
        }
        let idle = f.idle_unload_secs.unwrap_or(3600);
        if idle == 0 {
            return Err(invalid(
                "CEREBRUM_IDLE_UNLOAD_SECS",
                "must be at least 1 second",
            ));
        }
        let models_dir = f.models_dir.unwrap_or_else(default_models_dir);
        if let Some(models) = &f.models {
            for (name, path) in models {
                if name.is_empty() || name.contains('/') {
                    return Err(invalid(
                        "models",
                        format!("'{name}' is not a valid model name"),
                    ));
                }
                if path.extension().and_then(|e| e.to_str()) != Some("gguf") {
                    return Err(invalid(
                        &format!("models.{name}"),
                        format!("{} is not a .gguf file", path.display()),
                    ));
                }
            }
        }
        Ok(Self {
            bind_ip: f.bind_ip.unwrap_or(IpAddr::from([127, 0, 0, 1])),
            port: f.port.unwrap_or(9000),
            api_key,
            max_cpu_percent,
            n_threads,
            allowed_peers: f.allowed_peers.unwrap_or_default(),
            models_dir,
            models: f.models.unwrap_or_default(),
            default_model: f.default_model,
            ram_floor_bytes: f.ram_floor_mb.unwrap_or(1024) * 1024 * 1024,
            idle_unload: std::time::Duration::from_secs(idle),
            max_loaded_models,
            parallel,
            context_size,
            max_prompt_bytes: f.max_prompt_bytes.unwrap_or(256 * 1024),
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

    const KEY: &str = "0123456789abcdef0123";

    #[test]
    fn refuses_to_start_without_a_key() {
        let e = NodeConfig::resolve(FileConfig::default(), &env(&[]), &FlagOverrides::default())
            .unwrap_err();
        assert!(e.to_string().contains("CEREBRUM_API_KEY"), "{e}");
    }

    #[test]
    fn defaults_are_the_originals() {
        let c = NodeConfig::resolve(
            FileConfig::default(),
            &env(&[("CEREBRUM_API_KEY", KEY)]),
            &FlagOverrides::default(),
        )
        .unwrap();
        assert_eq!(c.port, 9000);
        assert_eq!(c.bind_ip.to_string(), "127.0.0.1");
        assert_eq!(c.max_cpu_percent, 70.0);
        assert_eq!(c.ram_floor_bytes, 1 << 30);
        assert_eq!(c.idle_unload.as_secs(), 3600);
        assert_eq!(c.max_loaded_models, 1);
        assert_eq!(c.parallel, 2);
    }

    #[test]
    fn env_beats_file_and_flags_beat_env() {
        let file: FileConfig = toml::from_str("port = 1000\nmax_cpu_percent = 50").unwrap();
        let c = NodeConfig::resolve(
            file,
            &env(&[("CEREBRUM_API_KEY", KEY), ("CEREBRUM_VPS_PORT", "2000")]),
            &FlagOverrides {
                port: Some(3000),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.port, 3000);
        assert_eq!(c.max_cpu_percent, 50.0);
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = NodeConfig::resolve(
            FileConfig::default(),
            &env(&[("CEREBRUM_API_KEY", KEY), ("MAX_CPU_PERCENT", "lots")]),
            &FlagOverrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("MAX_CPU_PERCENT"), "{e}");
        let e = NodeConfig::resolve(
            FileConfig::default(),
            &env(&[
                ("CEREBRUM_API_KEY", KEY),
                ("ALLOWED_CM4_IP", "10.0.0.1,nope"),
            ]),
            &FlagOverrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("ALLOWED_CM4_IP"), "{e}");
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        let e = toml::from_str::<FileConfig>("prot = 9000").unwrap_err();
        assert!(e.to_string().contains("prot"), "{e}");
    }

    #[test]
    fn model_table_from_env() {
        let c = NodeConfig::resolve(
            FileConfig::default(),
            &env(&[
                ("CEREBRUM_API_KEY", KEY),
                (
                    "CEREBRUM_MODELS",
                    "qwen_7b=/m/a.gguf, codellama_7b=/m/b.gguf",
                ),
            ]),
            &FlagOverrides::default(),
        )
        .unwrap();
        assert_eq!(c.models["qwen_7b"], PathBuf::from("/m/a.gguf"));
        assert_eq!(c.models.len(), 2);
    }
}
