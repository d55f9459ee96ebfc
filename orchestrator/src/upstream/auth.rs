//! Whether the node accepts the orchestrator itself: its key (`VPS_API_KEY`)
//! and its address (the node's `ALLOWED_CM4_IP`). A 401 or 403 from the node
//! is the operator's misconfiguration, never the client's: it is answered 502
//! `upstream_auth` with the setting to fix, logged once per change (at error
//! level), and shown by `/health` and `/health/ready`.

use std::sync::RwLock;

use cerebrum_shared::cerebrum::VpsAuth;
use cerebrum_shared::error::{ApiError, ErrorCode};

use crate::config::upstreams::SHORTHAND_NAME;

/// What the operator must fix, from the refusal of the upstream `name` (its
/// code says which: a missing or wrong key, or an address not allowed).
pub fn problem(node: &ApiError, key_set: bool, name: &str) -> String {
    let said = if node.message.is_empty() {
        node.code.to_string()
    } else {
        format!("{}: {}", node.code, node.message)
    };
    let fix = match node.code {
        ErrorCode::PeerNotAllowed => {
            "the node does not allow this orchestrator's address: add it to ALLOWED_CM4_IP \
             on the node (/etc/cerebrum/node.env) and restart cerebrum-node"
        }
        _ if name != SHORTHAND_NAME => {
            return format!(
                "upstream '{name}' refuses the orchestrator's key: set its key (or key_env) in \
                 the orchestrator's upstreams to the key that server expects and restart \
                 cerebrum-orchestrator (it answered {} {said})",
                node.status
            );
        }
        _ if !key_set => {
            "the node wants an API key and VPS_API_KEY is empty: set VPS_API_KEY on the Pi \
             (/etc/cerebrum/orchestrator.env) to the node's CEREBRUM_API_KEY and restart \
             cerebrum-orchestrator"
        }
        _ => {
            "the node refuses the orchestrator's key: set VPS_API_KEY on the Pi \
             (/etc/cerebrum/orchestrator.env) to the node's CEREBRUM_API_KEY and restart \
             cerebrum-orchestrator"
        }
    };
    format!("{fix} (the node answered {} {said})", node.status)
}

/// The client-facing error for a refusal described by `problem`.
pub fn to_api_error(problem: &str) -> ApiError {
    ApiError::new(
        ErrorCode::UpstreamAuth,
        format!("the inference node refused the orchestrator: {problem}"),
    )
}

/// The last word on the orchestrator's credentials, kept for `/health`.
#[derive(Debug, Default)]
pub struct AuthWatch {
    state: RwLock<(VpsAuth, Option<String>)>,
}

impl AuthWatch {
    /// `(state, problem)` as last seen.
    pub fn get(&self) -> (VpsAuth, Option<String>) {
        self.state
            .read()
            .map(|s| s.clone())
            .unwrap_or((VpsAuth::Unknown, None))
    }

    /// The node accepted an authenticated call.
    pub fn accepted(&self) {
        let Ok(mut s) = self.state.write() else {
            return;
        };
        if s.0 == VpsAuth::Refused {
            tracing::info!("the inference node accepts the orchestrator again");
        }
        *s = (VpsAuth::Ok, None);
    }

    /// The node refused the orchestrator; logged loudly when this is news.
    pub fn refused(&self, problem: &str) {
        let Ok(mut s) = self.state.write() else {
            return;
        };
        if s.0 != VpsAuth::Refused || s.1.as_deref() != Some(problem) {
            tracing::error!(
                problem,
                "the inference node refuses the orchestrator; every request fails until this is fixed"
            );
        }
        *s = (VpsAuth::Refused, Some(problem.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fix_follows_the_nodes_code() {
        let peer = ApiError {
            status: 403,
            ..ApiError::new(ErrorCode::PeerNotAllowed, "peer 10.0.0.2 is not allowed")
        };
        let p = problem(&peer, true, "vps");
        assert!(p.contains("ALLOWED_CM4_IP"), "{p}");
        assert!(p.contains("10.0.0.2") && p.contains("403"), "{p}");
        let wrong = ApiError::new(ErrorCode::InvalidApiKey, "the node's key does not match");
        let p = problem(&wrong, true, "vps");
        assert!(p.contains("set VPS_API_KEY") && !p.contains("empty"), "{p}");
        let missing = ApiError::new(ErrorCode::MissingApiKey, "");
        assert!(problem(&missing, false, "vps").contains("VPS_API_KEY is empty"));
        let p = problem(&wrong, true, "gpu");
        assert!(
            p.starts_with("upstream 'gpu' refuses") && p.contains("key_env"),
            "{p}"
        );
        let e = to_api_error("x");
        assert_eq!((e.code, e.status), (ErrorCode::UpstreamAuth, 502));
    }

    #[test]
    fn the_watch_keeps_the_last_word() {
        let w = AuthWatch::default();
        assert_eq!(w.get(), (VpsAuth::Unknown, None));
        w.refused("fix it");
        assert_eq!(w.get(), (VpsAuth::Refused, Some("fix it".into())));
        w.accepted();
        assert_eq!(w.get(), (VpsAuth::Ok, None));
    }
}
