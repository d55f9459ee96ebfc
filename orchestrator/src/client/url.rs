//! The orchestrator's address as people give it: `http(s)://host[:port][/prefix]`
//! or `host:port`.

use reqwest::Url;

use super::ClientError;

/// Parses a base URL: `http(s)://host[:port][/prefix]`, or `host:port` (http
/// is assumed). The result ends in `/`, so routes join under a path prefix.
pub fn parse_url(given: &str) -> Result<Url, ClientError> {
    let trimmed = given.trim();
    let bad = |reason: &str| ClientError::BadUrl {
        url: given.to_owned(),
        reason: reason.to_owned(),
    };
    if trimmed.is_empty() {
        return Err(bad("it is empty"));
    }
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("http://{trimmed}")
    };
    let mut url = Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(bad("only http:// and https:// are supported"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Whether the URL names this machine (`localhost`, `127.0.0.1`, `[::1]`):
/// a proxy from the environment could not reach it.
pub fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> Option<String> {
        parse_url(s).map(|u| u.to_string()).ok()
    }

    #[test]
    fn urls_are_normalised() {
        assert_eq!(
            parsed("http://127.0.0.1:7000").as_deref(),
            Some("http://127.0.0.1:7000/")
        );
        assert_eq!(parsed("pi:7000").as_deref(), Some("http://pi:7000/"));
        assert_eq!(
            parsed(" https://x.example/cerebrum ").as_deref(),
            Some("https://x.example/cerebrum/")
        );
    }

    #[test]
    fn bad_urls_say_why() {
        for (given, why) in [
            ("ftp://x", "only http"),
            ("", "empty"),
            ("http://", "empty host"),
        ] {
            match parse_url(given) {
                Err(ClientError::BadUrl { url, reason }) => {
                    assert_eq!(url, given);
                    assert!(reason.contains(why), "{given}: {reason}");
                }
                other => panic!("{given}: {other:?}"),
            }
        }
    }

    #[test]
    fn loopback_is_recognised() {
        for (url, expected) in [
            ("http://localhost:7000", true),
            ("http://127.0.0.1:7000", true),
            ("http://[::1]:7000", true),
            ("http://pi.local:7000", false),
            ("http://10.0.0.2:7000", false),
        ] {
            let u = parse_url(url).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(is_loopback(&u), expected, "{url}");
        }
    }
}
