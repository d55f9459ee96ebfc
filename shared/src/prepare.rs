//! What prompt preparation did: the orchestrator's `POST /v1/prepare` answer,
//! the `preparation` of its answers, and what `cerebrum prepare` prints.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `POST /v1/prepare`: a prompt to prepare without inference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrepareRequest {
    /// The prompt.
    pub prompt: String,
    /// Its language, if known (else detected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// An instruction given separately (sent first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction: Option<String>,
}

/// What to send, and what was done to get it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreparedPrompt {
    /// The text to send to the model as the user turn. When an instruction was
    /// given separately it is included, first.
    pub prompt: String,
    /// What preparation did.
    pub stats: PrepareStats,
    /// True when the prompt was cut down; false when the original was sent.
    pub applied: bool,
    /// The language used for the fence (request's, fence's, or detected).
    #[serde(default)]
    pub language: Option<String>,
    /// The instruction found (given one first), if any.
    #[serde(default)]
    pub instruction: Option<String>,
}

/// Per-request figures, to log with the request id (`Display` gives one line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrepareStats {
    /// Characters of the original prompt (given instruction included).
    pub original_chars: usize,
    /// Characters of the prompt sent.
    pub final_chars: usize,
    /// Chunks the code was cut into (0 when preparation did not run).
    pub chunks_total: usize,
    /// Chunks left after dedup.
    pub chunks_unique: usize,
    /// Chunks the selection kept (also reported when the skip rule then sent
    /// the original).
    pub chunks_kept: usize,
    /// `100 × (original − final) / original`, one decimal.
    pub reduction_percent: f64,
    /// Time spent preparing, in microseconds.
    pub elapsed_us: u64,
    /// Ranges of the input text that were sent, as character offsets
    /// (`end` exclusive) and 1-based inclusive lines.
    pub kept_ranges: Vec<KeptRange>,
    /// Why the original was sent unchanged, when it was.
    #[serde(default)]
    pub skipped_reason: Option<String>,
}

/// A range of the input text that was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeptRange {
    /// First character (offset into the input text).
    pub start: usize,
    /// One past the last character.
    pub end: usize,
    /// First line, 1-based.
    pub start_line: usize,
    /// Last line, 1-based, inclusive.
    pub end_line: usize,
}

impl fmt::Display for PrepareStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "chars {}→{} ({:.1}% less), chunks {} total / {} unique / {} kept, {} µs, kept lines [",
            self.original_chars,
            self.final_chars,
            self.reduction_percent,
            self.chunks_total,
            self.chunks_unique,
            self.chunks_kept,
            self.elapsed_us
        )?;
        for (i, r) in self.kept_ranges.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{}-{}", r.start_line, r.end_line)?;
        }
        write!(f, "]")?;
        if let Some(reason) = &self.skipped_reason {
            write!(f, ", sent unchanged: {reason}")?;
        }
        Ok(())
    }
}

/// The `preparation` of an orchestrator answer: whether the prompt was cut
/// down, and the figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Preparation {
    /// True when the prompt was cut down.
    pub applied: bool,
    /// The figures.
    #[serde(flatten)]
    pub stats: PrepareStats,
}

impl From<&PreparedPrompt> for Preparation {
    fn from(p: &PreparedPrompt) -> Self {
        Self {
            applied: p.applied,
            stats: p.stats.clone(),
        }
    }
}
