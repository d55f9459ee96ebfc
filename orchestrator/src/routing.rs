//! Which model answers a request. Pure: no I/O.
//!
//! The model a request names wins. Otherwise the request's language (or the one
//! detected from fences, shebangs and keywords) picks a model through the
//! routing table. When no upstream serves the model wanted, the configured
//! `fallback_model` answers if one is served, and otherwise the request is
//! refused naming the model: never a silent stand-in nobody asked for. A model
//! the request names that no route knows (a typo, a model that is gone) is
//! refused even with a fallback configured. While
//! some upstream's list is unknown, a model not in the known lists is sent as
//! is (that upstream may serve it).

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
    /// The request named the model.
    Explicit,
    /// The routing table, from the given or detected language.
    Language,
    /// The model wanted is served nowhere; the configured `fallback_model` answers.
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

/// No upstream serves the model wanted, and no fallback model is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model '{model}'{} is not served by any upstream", match (explicit, language) {
    (true, _) => String::new(),
    (false, Some(l)) => format!(" (the route for {l})"),
    (false, None) => " (the default model)".into(),
})]
pub struct NotServed {
    /// The model wanted.
    pub model: String,
    /// Whether the request named it (else the routing table chose it).
    pub explicit: bool,
    /// The language used, if any.
    pub language: Option<String>,
}

/// The models the upstreams serve, as far as known.
#[derive(Debug, Clone, Copy)]
pub struct Served<'a> {
    /// Every model some upstream's list names.
    pub models: &'a [String],
    /// Whether some upstream's list is not known yet.
    pub incomplete: bool,
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

    /// Decides the model for a request (see the module docs); `fallback` is
    /// the configured `fallback_model`.
    pub fn decide(
        &self,
        explicit: Option<&str>,
        language: Option<&str>,
        text: &str,
        served: Served<'_>,
        fallback: Option<&str>,
    ) -> Result<RouteDecision, NotServed> {
        let language = language
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                normalize_language(l)
                    .map(str::to_string)
                    .unwrap_or_else(|| l.trim().to_lowercase())
            })
            .or_else(|| detect_language(text).map(str::to_string));
        let (wanted, reason) = match explicit.map(str::trim).filter(|m| !m.is_empty()) {
            Some(model) => (model.to_string(), RouteReason::Explicit),
            None => (
                self.route(language.as_deref()).to_string(),
                RouteReason::Language,
            ),
        };
        let is_served = |m: &str| served.models.iter().any(|s| s == m);
        if is_served(&wanted) || (served.incomplete && served.models.is_empty()) {
            return Ok(RouteDecision {
                model: wanted,
                language,
                reason,
            });
        }
        // A name the request typed that no route knows is a typo or a model
        // that is gone: the client hears so, it gets no other model instead.
        let a_route = |m: &str| self.routes.values().any(|r| r == m) || m == self.default_model;
        let may_fall_back = reason == RouteReason::Language || a_route(&wanted);
        if let Some(fallback) = fallback.filter(|f| may_fall_back && is_served(f)) {
            return Ok(RouteDecision {
                model: fallback.to_string(),
                language,
                reason: RouteReason::Fallback,
            });
        }
        if served.incomplete {
            return Ok(RouteDecision {
                model: wanted,
                language,
                reason,
            });
        }
        Err(NotServed {
            model: wanted,
            explicit: reason == RouteReason::Explicit,
            language,
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

    fn known(models: &[String]) -> Served<'_> {
        Served {
            models,
            incomplete: false,
        }
    }

    #[test]
    fn detects_the_language_when_none_is_given() {
        let d = table()
            .decide(
                None,
                None,
                "```rust\nfn main() { let x = 1; }\n```",
                Served {
                    models: &[],
                    incomplete: true,
                },
                None,
            )
            .unwrap();
        assert_eq!(d.model, "codellama_7b");
        assert_eq!(d.language.as_deref(), Some("rust"));
    }

    #[test]
    fn an_explicit_served_model_wins() {
        let all = served(&["qwen_7b", "codellama_7b", "tiny"]);
        let d = table()
            .decide(Some("tiny"), Some("rust"), "", known(&all), Some("qwen_7b"))
            .unwrap();
        assert_eq!(
            (d.model.as_str(), d.reason),
            ("tiny", RouteReason::Explicit)
        );
    }

    #[test]
    fn a_model_served_nowhere_is_refused_without_a_fallback() {
        let e = table()
            .decide(Some("gpt-9"), None, "", known(&served(&["tiny"])), None)
            .unwrap_err();
        assert_eq!((e.model.as_str(), e.explicit), ("gpt-9", true));
        assert_eq!(e.to_string(), "model 'gpt-9' is not served by any upstream");
        let e = table()
            .decide(None, Some("rust"), "", known(&served(&["tiny"])), None)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "model 'codellama_7b' (the route for rust) is not served by any upstream"
        );
        let e = table()
            .decide(None, None, "", known(&served(&["tiny"])), Some("other"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "model 'qwen_7b' (the default model) is not served by any upstream",
            "a fallback model that is not served is no fallback"
        );
    }

    #[test]
    fn the_configured_fallback_model_stands_in() {
        let list = served(&["gemma3", "smollm2"]);
        // The route itself, or a request naming a routed model (the original's clients do).
        for explicit in [None, Some("codellama_7b")] {
            let d = table()
                .decide(explicit, Some("rust"), "", known(&list), Some("smollm2"))
                .unwrap();
            assert_eq!(
                (d.model.as_str(), d.reason),
                ("smollm2", RouteReason::Fallback)
            );
        }
    }

    #[test]
    fn a_name_no_route_knows_is_refused_even_with_a_fallback() {
        let e = table()
            .decide(
                Some("gtp-4"),
                None,
                "",
                known(&served(&["smollm2"])),
                Some("smollm2"),
            )
            .unwrap_err();
        assert_eq!((e.model.as_str(), e.explicit), ("gtp-4", true));
    }

    #[test]
    fn an_unknown_list_sends_the_name_as_is() {
        let list = served(&["gemma3"]);
        let some_unknown = Served {
            models: &list,
            incomplete: true,
        };
        let d = table()
            .decide(None, Some("rust"), "", some_unknown, None)
            .unwrap();
        assert_eq!(
            (d.model.as_str(), d.reason),
            ("codellama_7b", RouteReason::Language)
        );
    }
}
