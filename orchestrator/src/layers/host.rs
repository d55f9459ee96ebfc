//! `Host` allow-list: a request must name this server by a name it answers to,
//! so a web page cannot reach it by DNS rebinding (its own domain pointed at
//! the Pi's address, which makes the visitor's browser send `Host: <that domain>`).
//!
//! Allowed: any IP address (a rebinding page never has one: the browser sends
//! the name it resolved), `localhost` and `*.localhost` (browsers resolve them
//! to loopback themselves), this machine's host name bare or with `.local`
//! (mDNS), `.lan`, `.home.arpa`, or one tailnet label and `.ts.net` (Tailscale
//! MagicDNS), which no outside party can point elsewhere, and the names in
//! `allowed_hosts` (`*`: any). A request without `Host` (HTTP/1.0 tools) passes:
//! browsers always send one.
//!
//! Refused with 403 `peer_not_allowed`, not 421: every client classes a 403
//! (refused, do not retry) and the node already answers callers it does not
//! serve so; 421 (Misdirected Request) is for HTTP/2 connection reuse, and
//! clients without a code for it read it as an unknown error.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cerebrum_shared::error::{ApiError, ErrorCode};

use crate::api::HttpError;

/// The names this server answers to.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    any: bool,
    /// Configured names, lower case.
    names: Vec<String>,
    /// This machine's host name, lower case, when known.
    machine: Option<String>,
}

impl AllowedHosts {
    /// The configured names (`*` among them: any) and this machine's name.
    pub fn new(configured: &[String], machine: Option<&str>) -> Self {
        Self {
            any: configured.iter().any(|h| h == "*"),
            names: configured.iter().map(|h| normal(h)).collect(),
            machine: machine.map(normal).filter(|m| !m.is_empty()),
        }
    }

    /// [`AllowedHosts::new`] with the name of the machine this runs on.
    pub fn here(configured: &[String]) -> Self {
        let machine = sysinfo::System::host_name().ok();
        Self::new(configured, machine.as_deref())
    }

    /// Whether a `Host` header value (with or without a port) is allowed.
    pub fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        let name = strip_port(host.trim());
        if name.parse::<IpAddr>().is_ok() {
            return true;
        }
        let name = normal(name);
        if name == "localhost" || name.ends_with(".localhost") || self.names.contains(&name) {
            return true;
        }
        let Some(machine) = &self.machine else {
            return false;
        };
        let Some(rest) = name.strip_prefix(machine.as_str()) else {
            return false;
        };
        match rest.strip_prefix('.') {
            None => rest.is_empty(),
            Some("local" | "lan" | "home.arpa") => true,
            Some(rest) => rest
                .strip_suffix(".ts.net")
                .is_some_and(|tailnet| !tailnet.is_empty() && !tailnet.contains('.')),
        }
    }
}

/// Lower case, without a trailing dot (`pi.local.` is `pi.local`).
fn normal(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `host:port` → `host`; `[v6]:port` and `[v6]` → `v6`.
fn strip_port(host: &str) -> &str {
    if let Some(v6) = host.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// The middleware; mounted on every route.
pub async fn require_allowed_host(
    State(allowed): State<Arc<AllowedHosts>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|v| v.to_str().map(str::to_owned))
        .or_else(|| request.uri().host().map(|h| Ok(h.to_owned())));
    let refused = match &host {
        None => None,
        Some(Ok(h)) if allowed.allows(h) => None,
        Some(Ok(h)) => Some(h.clone()),
        Some(Err(_)) => Some("(not text)".to_owned()),
    };
    let Some(host) = refused else {
        return next.run(request).await;
    };
    tracing::warn!(%host, "refused: Host is not a name this server answers to");
    HttpError::for_path(
        ApiError::new(
            ErrorCode::PeerNotAllowed,
            format!(
                "'{host}' is not a name this server answers to; if it is yours, add it to \
                 allowed_hosts (CEREBRUM_ALLOWED_HOSTS)"
            ),
        ),
        request.uri().path(),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_and_this_machines_names_pass_others_do_not() {
        let a = AllowedHosts::new(&["cerebrum.example.org".into()], Some("Pi5"));
        for yes in [
            "localhost",
            "localhost:7000",
            "app.localhost:7000",
            "127.0.0.1:7000",
            "192.168.1.20",
            "100.101.102.103:7000",
            "[::1]:7000",
            "[fe80::1]",
            "pi5",
            "PI5:7000",
            "pi5.local",
            "pi5.local.:7000",
            "pi5.lan",
            "pi5.home.arpa",
            "pi5.tail1234.ts.net",
            "cerebrum.example.org:443",
        ] {
            assert!(a.allows(yes), "{yes}");
        }
        for no in [
            "evil.example.com",
            "pi5.evil.com",
            "pi5evil.local",
            "pi5.a.b.ts.net",
            "pi5..ts.net",
            "localhost.evil.com",
            "127.0.0.1.nip.io",
            "example.org",
            "",
        ] {
            assert!(!a.allows(no), "{no}");
        }
        assert!(!AllowedHosts::new(&[], None).allows("pi5.local"));
        assert!(AllowedHosts::new(&["*".into()], None).allows("anything.example"));
    }
}
