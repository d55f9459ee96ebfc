//! Which model answers a request. Pure: no I/O.
//!
//! An explicit model the node serves wins. Otherwise the request's language (or
//! the one detected from fences, shebangs and keywords) picks a model through the
//! routing table. When the routed model is not among those the node serves, the
//! first served model answers instead (logged), so a node with other model names
//! still works; with no list of served models the routed name is sent as is.

use std::collections::BTreeMap;

use crate::prompt::language::{detect_language, normalize_language};

/// Language → model, plus a default.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingTable {
    routes: BTreeMap<String, String>,
    default_model: String,
}

/// Why a model was chosen (logged per request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteReason {
    /// The request named a model the node serves.
    Explicit,
    /// The routing table, from the given or detected language.
    Language,
    /// The routed model is not served; the node's first model stands in.
    Fallback,
}

/// The outcome of routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDecision {
    /// Model name to ask the node for.
    pub model: String,
    /// The language used (given, else detected), if any.
    pub language: Option<String>,
    /// Why.
    pub reason: RouteReason,
}

/// A model the request named that the node does not serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model '{model}' is not served; available: {}", available.join(", "))]
pub struct UnknownModel {
    /// Asked for.
    pub model: String,
    /// What the node serves.
    pub available: Vec<String>,
}

impl RoutingTable {
    /// The original's table: python, javascript, typescript → qwen_7b; rust, go, c, cpp → codellama_7b.
    pub fn default_routes() -> BTreeMap<String, String> {
        [
            ("python", "qwen_7b"),
            ("javascript", "qwen_7b"),
            ("typescript", "qwen_7b"),
            ("rust", "codellama_7b"),
            ("go", "codellama_7b"),
            ("c", "codellama_7b"),
            ("cpp", "codellama_7b"),
        ]
        .into_iter()
        .map(|(l, m)| (l.to_string(), m.to_string()))
        .collect()
    }

    /// A table; language keys are matched case-insensitively and through aliases.
    pub fn new(routes: BTreeMap<String, String>, default_model: String) -> Self {
        let routes = routes
            .into_iter()
            .map(|(l, m)| {
                let key = normalize_language(&l)
                    .map(str::to_string)
                    .unwrap_or_else(|| l.to_lowercase());
                (key, m)
            })
            .collect();
        Self {
            routes,
            default_model,
        }
    }

    /// The model for a language (the default for unknown or absent ones).
    pub fn route(&self, language: Option<&str>) -> &str {
        language
            .map(|l| {
                normalize_language(l)
                    .map(str::to_string)
                    .unwrap_or_else(|| l.to_lowercase())
            })
            .and_then(|l| self.routes.get(&l))
            .unwrap_or(&self.default_model)
    }

    /// Decides the model for a request.
    ///
    /// `served` is the node's model list when known (empty: unknown).
    pub fn decide(
        &self,
        explicit: Option<&str>,
        language: Option<&str>,
        text: &str,
        served: &[String],
    ) -> Result<RouteDecision, UnknownModel> {
        let language = language
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                normalize_language(l)
                    .map(str::to_string)
                    .unwrap_or_else(|| l.trim().to_lowercase())
            })
            .or_else(|| detect_language(text).map(str::to_string));
        if let Some(model) = explicit.map(str::trim).filter(|m| !m.is_empty()) {
            if served.is_empty() || served.iter().any(|s| s == model) {
                return Ok(RouteDecision {
                    model: model.to_string(),
                    language,
                    reason: RouteReason::Explicit,
                });
            }
            // A name the routing table knows is a route, not a typo.
            if !self.routes.values().any(|m| m == model) && model != self.default_model {
                return Err(UnknownModel {
                    model: model.to_string(),
                    available: served.to_vec(),
                });
            }
        }
        let routed = self.route(language.as_deref()).to_string();
        if served.is_empty() || served.contains(&routed) {
            return Ok(RouteDecision {
                model: routed,
                language,
                reason: RouteReason::Language,
            });
        }
        Ok(RouteDecision {
            model: served[0].clone(),
            language,
            reason: RouteReason::Fallback,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RoutingTable {
        RoutingTable::new(RoutingTable::default_routes(), "qwen_7b".into())
    }

    fn served(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn routes_like_the_original() {
        let t = table();
        assert_eq!(t.route(Some("python")), "qwen_7b");
        assert_eq!(t.route(Some("TypeScript")), "qwen_7b");
        assert_eq!(t.route(Some("rust")), "codellama_7b");
        assert_eq!(t.route(Some("c++")), "codellama_7b");
        assert_eq!(t.route(Some("cobol")), "qwen_7b");
        assert_eq!(t.route(None), "qwen_7b");
    }

    #[test]
    fn detects_the_language_when_none_is_given() {
        let d = table()
            .decide(None, None, "```rust\nfn main() { let x = 1; }\n```", &[])
            .unwrap();
        assert_eq!(d.model, "codellama_7b");
        assert_eq!(d.language.as_deref(), Some("rust"));
    }

    #[test]
    fn an_explicit_served_model_wins() {
        let all = served(&["qwen_7b", "codellama_7b", "tiny"]);
        let d = table()
            .decide(Some("tiny"), Some("rust"), "", &all)
            .unwrap();
        assert_eq!(
            (d.model.as_str(), d.reason),
            ("tiny", RouteReason::Explicit)
        );
    }

    #[test]
    fn an_unknown_explicit_model_is_an_error() {
        let e = table()
            .decide(Some("gpt-9"), None, "", &served(&["tiny"]))
            .unwrap_err();
        assert_eq!(e.available, vec!["tiny".to_string()]);
    }

    #[test]
    fn falls_back_to_a_served_model() {
        let d = table()
            .decide(None, Some("rust"), "", &served(&["smollm2"]))
            .unwrap();
        assert_eq!(
            (d.model.as_str(), d.reason),
            ("smollm2", RouteReason::Fallback)
        );
    }
}
