//! Whether a model fits before it is loaded: what it needs (file, KV cache for
//! the configured slots and context, llama.cpp's compute buffers), what the node
//! may use (the machine's available memory above the floor, and the cgroup's
//! `memory.max` when systemd or a container sets one), and the verdict, which
//! names every figure. [`estimate`] and [`check`] are pure; [`MemoryFigures::read`]
//! reads `/proc` and `/sys/fs/cgroup`.

use std::path::{Path, PathBuf};

const MIB: u64 = 1 << 20;

/// What the estimate needs from a GGUF's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelShape {
    /// Transformer blocks (`n_layer`).
    pub layers: u64,
    /// Embedding width (`n_embd`).
    pub embd: u64,
    /// Key/value heads (`n_head_kv`; grouped-query attention keeps fewer than `n_head`).
    pub heads_kv: u64,
    /// Width of one key head.
    pub key_len: u64,
    /// Width of one value head.
    pub value_len: u64,
    /// Feed-forward width (`n_ff`).
    pub ff: u64,
    /// Vocabulary size.
    pub vocab: u64,
}

impl ModelShape {
    /// KV-cache bytes one context token costs: f16 K and V in every layer.
    pub fn kv_bytes_per_token(&self) -> u64 {
        self.layers * self.heads_kv * (self.key_len + self.value_len) * 2
    }
}

/// How the engine will run the model (from the node's settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunShape {
    /// Sequence slots (`CEREBRUM_PARALLEL`).
    pub slots: u64,
    /// Context tokens per slot (`CEREBRUM_CONTEXT_SIZE`).
    pub context: u64,
    /// Tokens per decode (llama.cpp's `n_ubatch`).
    pub ubatch: u64,
}

/// Bytes beyond the weights, KV cache and compute graph: the binary, runtime,
/// tokenizer tables and allocator slack. Measured: SmolLM2's node holds ~11 MiB of
/// binary pages and its anonymous memory over KV and compute is a few MiB.
pub const RUNTIME_BYTES: u64 = 32 * MIB;

/// What loading a model will take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// The GGUF file (memory-mapped; every page is read while generating).
    pub file: u64,
    /// KV cache: every slot's full context.
    pub kv: u64,
    /// llama.cpp's compute buffer and output buffer, plus [`RUNTIME_BYTES`].
    pub margin: u64,
    /// The run it is for.
    pub run: RunShape,
}

impl Estimate {
    /// The whole need.
    pub fn total(&self) -> u64 {
        self.file + self.kv + self.margin
    }
}

impl std::fmt::Display for Estimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "~{} MiB (file {} + KV cache {} for {} slots x {} tokens + compute margin {})",
            mib(self.total()),
            mib(self.file),
            mib(self.kv),
            self.run.slots,
            self.run.context,
            mib(self.margin)
        )
    }
}

/// Estimates what a model needs. Pure.
///
/// The compute buffer is llama.cpp's graph for one `ubatch` in f32: the logits
/// (`vocab` per token) dominate, then the feed-forward and embedding activations;
/// `4 x ubatch x (vocab + 2 ff + 4 embd)` is at or above what llama.cpp reports
/// (SmolLM2-135M, ubatch 512: 106.5 MiB estimated, 104.8 MiB reported). The
/// output buffer (logits of one token per slot) is added exactly.
pub fn estimate(file_bytes: u64, shape: &ModelShape, run: &RunShape) -> Estimate {
    let kv = shape.kv_bytes_per_token() * run.context * run.slots;
    let compute = 4 * run.ubatch * (shape.vocab + 2 * shape.ff + 4 * shape.embd);
    let output = 4 * shape.vocab * run.slots;
    Estimate {
        file: file_bytes,
        kv,
        margin: compute + output + RUNTIME_BYTES,
        run: *run,
    }
}

/// The memory figures a load is judged against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryFigures {
    /// `MemTotal`.
    pub total: u64,
    /// `MemAvailable` now.
    pub available: u64,
    /// The node's cgroup v2 `memory.max` (the smallest on its path); `None`: no limit.
    pub cgroup_max: Option<u64>,
}

impl MemoryFigures {
    /// The cgroup limit read now, with the machine's figures given (from the guard's sampler).
    pub fn read(total: u64, available: u64) -> Self {
        Self {
            total,
            available,
            cgroup_max: cgroup_memory_max(),
        }
    }
}

/// Why a model does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unfit {
    /// It cannot fit even with nothing else loaded: a configuration problem.
    #[error(
        "model '{name}' needs {need} but can never fit: {limit}; use a smaller model or quantization, lower CEREBRUM_PARALLEL or CEREBRUM_CONTEXT_SIZE, or raise the limit"
    )]
    Never {
        /// The model.
        name: String,
        /// Its estimate.
        need: Estimate,
        /// The limit it exceeds, with its figures.
        limit: Limit,
    },
    /// It does not fit now: other models or processes hold the memory.
    #[error("model '{name}' needs {need} but {limit}")]
    Now {
        /// The model.
        name: String,
        /// Its estimate.
        need: Estimate,
        /// The limit it exceeds, with its figures.
        limit: Limit,
    },
}

/// A limit, with the figures it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The machine's memory (total or available now) minus the floor.
    Machine {
        /// `MemTotal` or `MemAvailable`.
        bytes: u64,
        /// Whether `bytes` is `MemAvailable` (else `MemTotal`).
        available: bool,
        /// The node's RAM floor.
        floor: u64,
    },
    /// The cgroup's `memory.max`, minus what the node's loaded models hold.
    Cgroup {
        /// `memory.max`.
        max: u64,
        /// Held by the other loaded models (their estimates).
        held: u64,
    },
}

impl Limit {
    /// Bytes a new model may take under this limit.
    pub fn room(&self) -> u64 {
        match *self {
            Limit::Machine { bytes, floor, .. } => bytes.saturating_sub(floor),
            Limit::Cgroup { max, held } => max.saturating_sub(held),
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Limit::Machine {
                bytes,
                available,
                floor,
            } => write!(
                f,
                "the node may use {} MiB: {} MiB {} minus the {} MiB floor (CEREBRUM_RAM_FLOOR_MB)",
                mib(self.room()),
                mib(bytes),
                if available {
                    "available (MemAvailable)"
                } else {
                    "of RAM (MemTotal)"
                },
                mib(floor)
            ),
            Limit::Cgroup { max, held } => write!(
                f,
                "the node may use {} MiB: its cgroup limit (memory.max, systemd MemoryMax=) of {} MiB minus {} MiB held by loaded models",
                mib(self.room()),
                mib(max),
                mib(held)
            ),
        }
    }
}

/// Whether `need` fits, given the machine, the floor and what the node's other
/// loaded models hold (`held`, their estimates). Pure.
///
/// The floor is kept free on the machine (`MemAvailable`); the cgroup limit is the
/// node's own ceiling, which its models (file pages included) must stay under. A
/// model that exceeds `MemTotal - floor` or `memory.max` with nothing else loaded
/// can never fit ([`Unfit::Never`]); one that exceeds what is left now does not
/// fit now ([`Unfit::Now`]).
pub fn check(
    name: &str,
    need: &Estimate,
    mem: &MemoryFigures,
    floor: u64,
    held: u64,
) -> Result<(), Unfit> {
    let total = need.total();
    let ever = [
        Some(Limit::Machine {
            bytes: mem.total,
            available: false,
            floor,
        }),
        mem.cgroup_max.map(|max| Limit::Cgroup { max, held: 0 }),
    ];
    if let Some(limit) = ever.into_iter().flatten().find(|l| total > l.room()) {
        return Err(Unfit::Never {
            name: name.to_string(),
            need: *need,
            limit,
        });
    }
    let now = [
        Some(Limit::Machine {
            bytes: mem.available,
            available: true,
            floor,
        }),
        mem.cgroup_max.map(|max| Limit::Cgroup { max, held }),
    ];
    if let Some(limit) = now.into_iter().flatten().find(|l| total > l.room()) {
        return Err(Unfit::Now {
            name: name.to_string(),
            need: *need,
            limit,
        });
    }
    Ok(())
}

/// The cgroup v2 path in `/proc/self/cgroup` (the `0::` line).
pub fn cgroup_v2_path(proc_self_cgroup: &str) -> Option<&str> {
    proc_self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::trim)
}

/// A `memory.max` file's value; `max` (no limit) and garbage are `None`.
pub fn parse_memory_max(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// The smallest `memory.max` from the node's cgroup up to the root, under `root`
/// (`/sys/fs/cgroup`): systemd's `MemoryMax=` sits on the service's own cgroup, a
/// container's on an ancestor.
pub fn cgroup_memory_max_under(root: &Path, cgroup: &str) -> Option<u64> {
    let mut dir = PathBuf::from(cgroup.trim_start_matches('/'));
    let mut smallest: Option<u64> = None;
    loop {
        let file = root.join(&dir).join("memory.max");
        if let Some(max) = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| parse_memory_max(&t))
        {
            smallest = Some(smallest.map_or(max, |s| s.min(max)));
        }
        if !dir.pop() {
            return smallest;
        }
    }
}

/// The node's cgroup v2 memory limit, if it runs under one.
pub fn cgroup_memory_max() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    cgroup_memory_max_under(Path::new("/sys/fs/cgroup"), cgroup_v2_path(&text)?)
}

fn mib(bytes: u64) -> u64 {
    (bytes + MIB / 2) / MIB
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    /// SmolLM2-135M-Instruct (the GGUF's own metadata).
    const SMOLLM2: ModelShape = ModelShape {
        layers: 30,
        embd: 576,
        heads_kv: 3,
        key_len: 64,
        value_len: 64,
        ff: 1536,
        vocab: 49152,
    };

    /// Qwen2.5-7B (Qwen2.5-Coder-7B-Instruct's config).
    const QWEN_7B: ModelShape = ModelShape {
        layers: 28,
        embd: 3584,
        heads_kv: 4,
        key_len: 128,
        value_len: 128,
        ff: 18944,
        vocab: 152_064,
    };

    /// Qwen2.5-3B (Qwen2.5-Coder-3B-Instruct's config).
    const QWEN_3B: ModelShape = ModelShape {
        layers: 36,
        embd: 2048,
        heads_kv: 2,
        key_len: 128,
        value_len: 128,
        ff: 11008,
        vocab: 151_936,
    };

    /// Qwen2.5-1.5B (Qwen2.5-Coder-1.5B-Instruct's config).
    const QWEN_1_5B: ModelShape = ModelShape {
        layers: 28,
        embd: 1536,
        heads_kv: 2,
        key_len: 128,
        value_len: 128,
        ff: 8960,
        vocab: 151_936,
    };
    /// qwen2.5-coder-1.5b-instruct-q4_k_m.gguf: 1.12 GB as listed.
    const QWEN_1_5B_Q4_K_M_BYTES: u64 = 1_120_000_000;

    /// qwen2.5-coder-7b-instruct-q4_k_m.gguf: 4.68 GB as the Qwen repository lists it.
    const QWEN_7B_Q4_K_M_BYTES: u64 = 4_680_000_000;
    /// qwen2.5-coder-3b-instruct-q4_k_m.gguf: 2.1 GB as listed (the node measures the real file).
    const QWEN_3B_Q4_K_M_BYTES: u64 = 2_100_000_000;

    /// The node's defaults: 2 slots of 2048 tokens, ubatch 512.
    const DEFAULT_RUN: RunShape = RunShape {
        slots: 2,
        context: 2048,
        ubatch: 512,
    };

    #[test]
    fn smollm2_matches_what_llama_cpp_reports() {
        let e = estimate(98_362_432, &SMOLLM2, &DEFAULT_RUN);
        // llama.cpp: "KV buffer size = 90.00 MiB (2048 cells, 30 layers, 2/2 seqs)".
        assert_eq!(e.kv, 90 * MIB);
        assert_eq!(SMOLLM2.kv_bytes_per_token(), 23_040);
        // llama.cpp: compute 104.77 MiB + output 0.38 MiB; ours is at or above.
        let compute_and_output = e.margin - RUNTIME_BYTES;
        assert!(compute_and_output >= 105 * MIB, "{compute_and_output}");
        assert!(compute_and_output < 110 * MIB, "{compute_and_output}");
        assert_eq!(mib(e.total()), 94 + 90 + 107 + 32);
    }

    #[test]
    fn a_7b_q4_k_m_needs_about_five_gib() {
        let e = estimate(QWEN_7B_Q4_K_M_BYTES, &QWEN_7B, &DEFAULT_RUN);
        assert_eq!(QWEN_7B.kv_bytes_per_token(), 57_344);
        assert_eq!(e.kv, 224 * MIB);
        assert_eq!(mib(e.file), 4463);
        assert_eq!(mib(e.total()), 5119, "{e}");
    }

    fn vps_4gb(cgroup_max: Option<u64>) -> MemoryFigures {
        // A 4 GB VPS: MemTotal ~3.8 GiB, ~3.4 GiB available with nothing loaded.
        MemoryFigures {
            total: 3890 * MIB,
            available: 3480 * MIB,
            cgroup_max,
        }
    }

    #[test]
    fn a_7b_never_fits_a_4gb_vps_and_the_message_names_the_numbers() {
        let e = estimate(QWEN_7B_Q4_K_M_BYTES, &QWEN_7B, &DEFAULT_RUN);
        let err = check("qwen_7b", &e, &vps_4gb(Some(3 * GIB)), GIB, 0).unwrap_err();
        assert!(matches!(err, Unfit::Never { .. }));
        let msg = err.to_string();
        for figure in [
            "qwen_7b",
            "~5119 MiB",
            "file 4463",
            "KV cache 224",
            "2 slots",
            "2048 tokens",
            "3890 MiB",
            "MemTotal",
            "1024 MiB floor",
        ] {
            assert!(msg.contains(figure), "{figure} missing: {msg}");
        }
    }

    #[test]
    fn the_cgroup_limit_binds_when_it_is_the_smaller() {
        let e = estimate(QWEN_7B_Q4_K_M_BYTES, &QWEN_7B, &DEFAULT_RUN);
        let big = MemoryFigures {
            total: 16 * GIB,
            available: 15 * GIB,
            cgroup_max: Some(3 * GIB),
        };
        let msg = check("qwen_7b", &e, &big, GIB, 0).unwrap_err().to_string();
        assert!(
            msg.contains("memory.max") && msg.contains("3072 MiB"),
            "{msg}"
        );
        // Raised to 6 GiB, it fits.
        let raised = MemoryFigures {
            cgroup_max: Some(6 * GIB),
            ..big
        };
        assert!(check("qwen_7b", &e, &raised, GIB, 0).is_ok());
    }

    #[test]
    fn a_3b_q4_k_m_fits_a_4gb_vps_with_a_512_mib_floor_but_not_1024() {
        let e = estimate(QWEN_3B_Q4_K_M_BYTES, &QWEN_3B, &DEFAULT_RUN);
        assert_eq!(mib(e.total()), 2536, "{e}");
        assert!(check("qwen_3b", &e, &vps_4gb(Some(3 * GIB)), 512 * MIB, 0).is_ok());
        let err = check("qwen_3b", &e, &vps_4gb(Some(3 * GIB)), GIB, 0).unwrap_err();
        assert!(matches!(err, Unfit::Now { .. }), "{err}");
    }

    #[test]
    fn a_1_5b_q4_k_m_fits_a_4gb_vps_with_the_default_floor() {
        let e = estimate(QWEN_1_5B_Q4_K_M_BYTES, &QWEN_1_5B, &DEFAULT_RUN);
        assert_eq!(mib(e.total()), 1557, "{e}");
        assert!(check("qwen_1_5b", &e, &vps_4gb(Some(3 * GIB)), GIB, 0).is_ok());
    }

    #[test]
    fn memory_held_by_other_models_or_processes_makes_it_not_fit_now() {
        let e = estimate(98_362_432, &SMOLLM2, &DEFAULT_RUN);
        let mem = MemoryFigures {
            total: 8 * GIB,
            available: GIB + 100 * MIB,
            cgroup_max: Some(2 * GIB),
        };
        let err = check("smollm2", &e, &mem, GIB, 0).unwrap_err();
        assert!(matches!(err, Unfit::Now { .. }), "{err}");
        assert!(err.to_string().contains("MemAvailable"), "{err}");
        let mem = MemoryFigures {
            available: 6 * GIB,
            ..mem
        };
        let err = check("smollm2", &e, &mem, GIB, 1900 * MIB).unwrap_err();
        assert!(
            err.to_string().contains("1900 MiB held by loaded models"),
            "{err}"
        );
        assert!(check("smollm2", &e, &mem, GIB, 100 * MIB).is_ok());
    }

    #[test]
    fn reads_the_v2_cgroup_and_the_smallest_limit_on_its_path() {
        let text = "12:memory:/legacy\n0::/system.slice/cerebrum-node.service\n";
        let path = cgroup_v2_path(text).unwrap();
        assert_eq!(path, "/system.slice/cerebrum-node.service");
        assert_eq!(cgroup_v2_path("4:memory:/x\n"), None);
        assert_eq!(parse_memory_max("max\n"), None);
        assert_eq!(parse_memory_max("3221225472\n"), Some(3 * GIB));

        let root = std::env::temp_dir().join(format!("cerebrum-cgroup-{}", std::process::id()));
        let service = root.join("system.slice/cerebrum-node.service");
        std::fs::create_dir_all(&service).unwrap();
        std::fs::write(root.join("system.slice/memory.max"), "max\n").unwrap();
        std::fs::write(service.join("memory.max"), "3221225472\n").unwrap();
        assert_eq!(cgroup_memory_max_under(&root, path), Some(3 * GIB));
        std::fs::write(root.join("system.slice/memory.max"), "2147483648\n").unwrap();
        assert_eq!(cgroup_memory_max_under(&root, path), Some(2 * GIB));
        assert_eq!(cgroup_memory_max_under(&root, "/elsewhere"), None);
        let _ = std::fs::remove_dir_all(&root);
    }
}
