//! Reading what a GGUF file is before (or without) serving it: `cerebrum-node inspect`
//! and the shape behind the registry's memory estimate ([`crate::fit`]).

use std::path::Path;

use llama_cpp_2::gguf::GgufContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use serde::Serialize;

use crate::fit::{ModelShape, RunShape};

// gguf_type values (ggml/include/gguf.h).
const GGUF_U32: u32 = 4;
const GGUF_I32: u32 = 5;
const GGUF_STRING: u32 = 8;
const GGUF_U64: u32 = 10;

/// Typed reads over llama.cpp's GGUF metadata reader that never hit its type asserts.
struct Meta(GgufContext);

impl Meta {
    fn open(path: &Path) -> Option<Self> {
        GgufContext::from_file(path).map(Meta)
    }

    fn int(&self, key: &str) -> Option<u64> {
        let idx = self.0.find_key(key);
        if idx < 0 {
            return None;
        }
        match self.0.kv_type(idx) {
            GGUF_U32 => Some(u64::from(self.0.val_u32(idx))),
            GGUF_I32 => u64::try_from(self.0.val_i32(idx)).ok(),
            GGUF_U64 => Some(self.0.val_u64(idx)),
            _ => None,
        }
    }

    fn string(&self, key: &str) -> Option<String> {
        let idx = self.0.find_key(key);
        if idx < 0 || self.0.kv_type(idx) != GGUF_STRING {
            return None;
        }
        self.0.val_str(idx).map(str::to_string)
    }

    fn has(&self, key: &str) -> bool {
        self.0.find_key(key) >= 0
    }
}

/// The shape the memory estimate needs ([`crate::fit`]), from the GGUF's metadata.
/// `None` when the file is not a readable GGUF or lacks the keys. The vocabulary
/// size comes from `{arch}.vocab_size`, else from loading the vocabulary alone.
pub fn model_shape(path: &Path) -> Option<ModelShape> {
    let meta = Meta::open(path)?;
    let arch = meta.string("general.architecture")?;
    let key = |k: &str| meta.int(&format!("{arch}.{k}"));
    let layers = key("block_count")?;
    let embd = key("embedding_length")?;
    let heads = key("attention.head_count")?.max(1);
    let heads_kv = key("attention.head_count_kv").unwrap_or(heads);
    let key_len = key("attention.key_length").unwrap_or(embd / heads);
    let value_len = key("attention.value_length").unwrap_or(key_len);
    let ff = key("feed_forward_length").unwrap_or(4 * embd);
    let vocab = match key("vocab_size") {
        Some(v) => v,
        None => vocab_size(path)?,
    };
    Some(ModelShape {
        layers,
        embd,
        heads_kv,
        key_len,
        value_len,
        ff,
        vocab,
    })
}

fn vocab_size(path: &Path) -> Option<u64> {
    let params = LlamaModelParams::default().with_vocab_only(true);
    let model = LlamaModel::load_from_file(crate::engine::backend(), path, &params).ok()?;
    u64::try_from(model.n_vocab()).ok()
}

/// llama.cpp's `general.file_type` names.
fn file_type_name(ft: u64) -> &'static str {
    match ft {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        30 => "IQ4_XS",
        32 => "BF16",
        _ => "unknown",
    }
}

/// What `cerebrum-node inspect` reports.
#[derive(Debug, Serialize)]
pub struct ModelReport {
    /// The file.
    pub path: String,
    /// `general.name`.
    pub name: Option<String>,
    /// `general.architecture`.
    pub architecture: String,
    /// Parameters (from llama.cpp).
    pub parameters: u64,
    /// Quantization (`general.file_type`).
    pub quantization: String,
    /// Training context length.
    pub context_length: u64,
    /// Whether `tokenizer.chat_template` is present.
    pub has_chat_template: bool,
    /// File size.
    pub file_bytes: u64,
    /// KV bytes per context token.
    pub kv_bytes_per_token: u64,
    /// What loading it takes with `run` (file + KV cache + compute margin), as the
    /// node judges before loading; 0 when the metadata lacks the shape.
    pub load_bytes: u64,
    /// Of which KV cache.
    pub kv_bytes: u64,
    /// Of which llama.cpp's compute buffers and the runtime.
    pub margin_bytes: u64,
    /// Context tokens the estimate is for (context size × parallel sequences).
    pub context_tokens: u64,
}

/// Reads a GGUF's metadata and loads it once (memory-mapped) to count parameters;
/// the memory estimate is for `run` (slots × context per slot).
pub fn inspect(path: &Path, run: &RunShape) -> Result<ModelReport, String> {
    let file_bytes = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let meta = Meta::open(path).ok_or_else(|| {
        format!(
            "{}: not a GGUF file (bad magic, version or header)",
            path.display()
        )
    })?;
    let architecture = meta
        .string("general.architecture")
        .ok_or_else(|| format!("{}: GGUF without general.architecture", path.display()))?;
    let model =
        LlamaModel::load_from_file(crate::engine::backend(), path, &LlamaModelParams::default())
            .map_err(|e| format!("{}: llama.cpp cannot load it: {e}", path.display()))?;
    let shape = model_shape(path);
    let estimate = shape.map(|s| crate::fit::estimate(file_bytes, &s, run));
    Ok(ModelReport {
        path: path.display().to_string(),
        name: meta.string("general.name"),
        quantization: meta
            .int("general.file_type")
            .map(file_type_name)
            .unwrap_or("unknown")
            .to_string(),
        context_length: meta
            .int(&format!("{architecture}.context_length"))
            .unwrap_or(u64::from(model.n_ctx_train())),
        has_chat_template: meta.has("tokenizer.chat_template"),
        parameters: model.n_params(),
        architecture,
        file_bytes,
        kv_bytes_per_token: shape.map_or(0, |s| s.kv_bytes_per_token()),
        load_bytes: estimate.map_or(0, |e| e.total()),
        kv_bytes: estimate.map_or(0, |e| e.kv),
        margin_bytes: estimate.map_or(0, |e| e.margin),
        context_tokens: run.slots * run.context,
    })
}

impl std::fmt::Display for ModelReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
        writeln!(f, "file           {}", self.path)?;
        if let Some(name) = &self.name {
            writeln!(f, "name           {name}")?;
        }
        writeln!(f, "architecture   {}", self.architecture)?;
        writeln!(
            f,
            "parameters     {:.1} M ({})",
            self.parameters as f64 / 1e6,
            self.parameters
        )?;
        writeln!(f, "quantization   {}", self.quantization)?;
        writeln!(f, "context length {}", self.context_length)?;
        writeln!(
            f,
            "chat template  {}",
            if self.has_chat_template { "yes" } else { "no" }
        )?;
        writeln!(f, "file size      {:.1} MiB", mb(self.file_bytes))?;
        write!(
            f,
            "load needs     {:.1} MiB (file + KV cache {:.1} MiB for {} tokens at {} B/token + compute margin {:.1} MiB)",
            mb(self.load_bytes),
            mb(self.kv_bytes),
            self.context_tokens,
            self.kv_bytes_per_token,
            mb(self.margin_bytes)
        )
    }
}
