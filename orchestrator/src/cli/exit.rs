//! What a failed call means to the person and to the script that ran
//! `cerebrum`: a message and an exit code, decided by the error's
//! [`ErrorCode`] (its status only for codes this build does not know), never
//! by the server's words.

use cerebrum::client::ClientError;
use cerebrum_shared::error::{ApiError, ErrorCode};

/// Exit code: the server failed the request, the answer stream broke, or
/// output could not be written.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: usage or input error (bad flag, unreadable file, empty prompt, bad URL).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the orchestrator cannot be reached.
pub const EXIT_UNREACHABLE: u8 = 3;
/// Exit code: the stack cannot serve now (busy, rate limited, node down or
/// overloaded, circuit breaker open); retrying later may work.
pub const EXIT_UNAVAILABLE: u8 = 4;
/// Exit code: the request was refused (prompt too large, invalid field,
/// unknown model, missing or wrong API key); retrying will not help.
pub const EXIT_REFUSED: u8 = 5;

/// The exit codes, as `--help` shows them.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  the server failed the request or the answer stream broke
  2  usage or input error (bad flag, unreadable file, empty prompt, bad URL)
  3  cannot reach the orchestrator (is `cerebrum serve` running?)
  4  the stack cannot serve now: busy, rate limited, node down or overloaded,
     circuit breaker open (retry later)
  5  the request was refused: prompt too large, invalid value, unknown model,
     missing or wrong API key";

/// How the server's answer classes an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Retrying later may work (429, 503).
    Unavailable,
    /// The request itself is at fault (4xx).
    Refused,
    /// The server or the node failed it (5xx).
    Failed,
}

fn class(e: &ApiError) -> Class {
    use ErrorCode::*;
    match e.code {
        RateLimited | Cm4Busy | VpsUnavailable | BreakerOpen | VpsOverloaded | ModelUnavailable => {
            Class::Unavailable
        }
        BadRequest | InvalidRequest | BodyTooLarge | PromptTooLarge | PromptTooLong
        | UnsupportedMediaType | RequestTimeout | MissingApiKey | InvalidApiKey
        | PeerNotAllowed | ModelNotFound | ModelNotLoaded | RouteNotFound | MethodNotAllowed
        | ModelBusy => Class::Refused,
        VpsTimeout | StreamingFailed | UpstreamAuth | ModelLoadFailed | InferenceFailed
        | Internal => Class::Failed,
        // A code this build does not know, or an upstream's error passed on
        // with its own status: the status tells the class.
        Unknown | UpstreamError => match e.status {
            s if ErrorCode::from_status(s).is_transient() => Class::Unavailable,
            400..=499 => Class::Refused,
            _ => Class::Failed,
        },
    }
}

/// The process exit code for a failed call (see [`EXIT_CODES_HELP`]).
pub fn exit_code(e: &ClientError) -> u8 {
    match e {
        ClientError::BadUrl { .. } => EXIT_USAGE,
        ClientError::Unreachable { .. } => EXIT_UNREACHABLE,
        ClientError::Broken(_) | ClientError::Protocol(_) => EXIT_FAILED,
        ClientError::Api(api) => match class(api) {
            Class::Unavailable => EXIT_UNAVAILABLE,
            Class::Refused => EXIT_REFUSED,
            Class::Failed => EXIT_FAILED,
        },
    }
}

/// A failed call, in words a person understands.
pub fn describe(e: &ClientError) -> String {
    match e {
        ClientError::BadUrl { url, reason } => format!("invalid server URL '{url}': {reason}"),
        ClientError::Unreachable { url, detail } => {
            format!("cannot reach {url}: is `cerebrum serve` running? ({detail})")
        }
        ClientError::Broken(detail) => format!("the answer stream failed: {detail}"),
        ClientError::Protocol(detail) => format!("unexpected answer from the server: {detail}"),
        ClientError::Api(api) => describe_api(api),
    }
}

fn describe_api(e: &ApiError) -> String {
    use ErrorCode::*;
    let message = e.message.as_str();
    let detail = if message.is_empty() {
        e.title()
    } else {
        message
    };
    match class(e) {
        Class::Unavailable => {
            let what = match e.code {
                Cm4Busy => "the orchestrator is busy: too many requests in flight".to_owned(),
                RateLimited => format!("rate limited: {detail}"),
                BreakerOpen => "the inference node is unavailable: it failed repeatedly, so the \
                                circuit breaker is open and calls are paused"
                    .to_owned(),
                VpsUnavailable => format!("the inference node is unavailable: {detail}"),
                VpsOverloaded => format!("the inference node is overloaded: {detail}"),
                ModelUnavailable => format!("the model is unavailable: {detail}"),
                _ => format!("the stack cannot serve now: {detail}"),
            };
            match e.retry_after {
                Some(secs) => format!("{what}; retry in {secs} s"),
                None => format!("{what}; retry shortly"),
            }
        }
        Class::Refused => match e.code {
            PromptTooLarge => format!("prompt too large: {detail}"),
            BodyTooLarge => format!("request too large: {detail}"),
            MissingApiKey | InvalidApiKey => format!(
                "{}: {message} (pass --key or set CEREBRUM_CLIENT_KEY)",
                e.title()
            ),
            ModelNotFound => format!(
                "{}: {message} (`cerebrum models` lists the models)",
                e.title()
            ),
            RouteNotFound | MethodNotAllowed => {
                format!("request refused: {detail} (is --url the orchestrator's address?)")
            }
            _ => format!("request refused: {detail}"),
        },
        Class::Failed => match e.code {
            StreamingFailed => format!("the answer stream failed: {detail}"),
            // The operator's settings, not the user's key: say so, and what to fix.
            UpstreamAuth => format!("the stack is misconfigured (not your request): {detail}"),
            _ => format!(
                "the server failed the request ({} {}): {message}",
                e.status,
                e.title()
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(e: ApiError) -> ClientError {
        ClientError::Api(e)
    }

    /// What the CLI makes of each code, as the server would send it.
    fn outcome(code: ErrorCode, message: &str, retry: Option<u64>) -> (u8, String) {
        let e = api(ApiError {
            retry_after: retry,
            ..ApiError::new(code, message)
        });
        (exit_code(&e), describe(&e))
    }

    #[test]
    fn every_code_has_an_exit_code_by_its_class() {
        use ErrorCode::*;
        for (codes, expected) in [
            (
                &[
                    RateLimited,
                    Cm4Busy,
                    VpsUnavailable,
                    BreakerOpen,
                    VpsOverloaded,
                    ModelUnavailable,
                ][..],
                EXIT_UNAVAILABLE,
            ),
            (
                &[
                    BadRequest,
                    InvalidRequest,
                    BodyTooLarge,
                    PromptTooLarge,
                    PromptTooLong,
                    UnsupportedMediaType,
                    RequestTimeout,
                    MissingApiKey,
                    InvalidApiKey,
                    PeerNotAllowed,
                    ModelNotFound,
                    ModelNotLoaded,
                    RouteNotFound,
                    MethodNotAllowed,
                    ModelBusy,
                ][..],
                EXIT_REFUSED,
            ),
            (
                &[
                    VpsTimeout,
                    StreamingFailed,
                    UpstreamAuth,
                    ModelLoadFailed,
                    InferenceFailed,
                    Internal,
                    UpstreamError,
                ][..],
                EXIT_FAILED,
            ),
        ] {
            for &code in codes {
                assert_eq!(outcome(code, "m", None).0, expected, "{code:?}");
                // The code's class agrees with the protocol's own notion of transient.
                assert_eq!(
                    code.is_transient(),
                    expected == EXIT_UNAVAILABLE,
                    "{code:?}"
                );
            }
        }
    }

    #[test]
    fn unknown_codes_are_classed_by_status() {
        for (status, expected) in [
            (503, EXIT_UNAVAILABLE),
            (429, EXIT_UNAVAILABLE),
            (418, EXIT_REFUSED),
            (500, EXIT_FAILED),
        ] {
            let body = br#"{"error":"X","code":"brand_new","message":"m"}"#;
            let e = api(ApiError::from_body(status, None, body));
            assert_eq!(exit_code(&e), expected, "{status}");
        }
        // An upstream's error passed on with its own status.
        let e = api(ApiError {
            status: 400,
            ..ApiError::new(ErrorCode::UpstreamError, "context too long")
        });
        assert_eq!(exit_code(&e), EXIT_REFUSED);
        assert_eq!(describe(&e), "request refused: context too long");
    }

    #[test]
    fn busy_has_a_retry_hint() {
        let (code, text) = outcome(ErrorCode::Cm4Busy, "Too many concurrent requests", Some(2));
        assert_eq!(code, EXIT_UNAVAILABLE);
        assert_eq!(
            text,
            "the orchestrator is busy: too many requests in flight; retry in 2 s"
        );
        let (_, text) = outcome(ErrorCode::Cm4Busy, "x", None);
        assert!(text.ends_with("; retry shortly"), "{text}");
    }

    #[test]
    fn an_open_breaker_says_calls_are_paused() {
        // Whatever words the server chose: the code decides.
        let (code, text) = outcome(ErrorCode::BreakerOpen, "anything at all", Some(27));
        assert_eq!(code, EXIT_UNAVAILABLE);
        assert!(
            text.contains("circuit breaker is open and calls are paused"),
            "{text}"
        );
        assert!(text.ends_with("retry in 27 s"), "{text}");
        let (_, text) = outcome(
            ErrorCode::VpsUnavailable,
            "cannot reach it: refused",
            Some(5),
        );
        assert_eq!(
            text,
            "the inference node is unavailable: cannot reach it: refused; retry in 5 s"
        );
        let (_, text) = outcome(ErrorCode::VpsOverloaded, "cpu 97%", None);
        assert!(
            text.starts_with("the inference node is overloaded: cpu 97%"),
            "{text}"
        );
        let (_, text) = outcome(ErrorCode::RateLimited, "10 per second", Some(1));
        assert_eq!(text, "rate limited: 10 per second; retry in 1 s");
    }

    #[test]
    fn refusals_say_what_to_do() {
        let (code, text) = outcome(ErrorCode::MissingApiKey, "send your key as X-API-Key", None);
        assert_eq!(code, EXIT_REFUSED);
        assert_eq!(
            text,
            "Missing API key: send your key as X-API-Key (pass --key or set CEREBRUM_CLIENT_KEY)"
        );
        let (_, text) = outcome(ErrorCode::InvalidApiKey, "no match", None);
        assert!(
            text.starts_with("Invalid API key") && text.contains("--key"),
            "{text}"
        );
        let (_, text) = outcome(ErrorCode::ModelNotFound, "no model 'gpt-9'", None);
        assert_eq!(
            text,
            "Model not found: no model 'gpt-9' (`cerebrum models` lists the models)"
        );
        let (_, text) = outcome(ErrorCode::PromptTooLarge, "prompt is 300 characters", None);
        assert_eq!(text, "prompt too large: prompt is 300 characters");
        let invalid = ApiError::invalid_field("max_tokens", "must be between 1 and 2048, got 0");
        let e = api(invalid);
        assert_eq!(exit_code(&e), EXIT_REFUSED);
        assert_eq!(
            describe(&e),
            "request refused: max_tokens: must be between 1 and 2048, got 0"
        );
    }

    #[test]
    fn a_node_refusing_the_orchestrator_is_the_operators_problem_not_the_users_key() {
        let (code, text) = outcome(
            ErrorCode::UpstreamAuth,
            "the inference node refused the orchestrator: set VPS_API_KEY on the Pi",
            None,
        );
        assert_eq!(code, EXIT_FAILED);
        assert_eq!(
            text,
            "the stack is misconfigured (not your request): the inference node refused the \
             orchestrator: set VPS_API_KEY on the Pi"
        );
        assert!(!text.contains("--key"), "{text}");
    }

    #[test]
    fn server_failures_and_broken_streams_are_exit_1() {
        let (code, text) = outcome(ErrorCode::VpsTimeout, "no answer in 30 s", None);
        assert_eq!(code, EXIT_FAILED);
        assert_eq!(
            text,
            "the server failed the request (504 VPS timeout): no answer in 30 s"
        );
        let (code, text) = outcome(
            ErrorCode::StreamingFailed,
            "the node's stream broke off",
            None,
        );
        assert_eq!(code, EXIT_FAILED);
        assert_eq!(
            text,
            "the answer stream failed: the node's stream broke off"
        );
        let broken = ClientError::Broken("connection reset".into());
        assert_eq!(exit_code(&broken), EXIT_FAILED);
        assert_eq!(
            describe(&broken),
            "the answer stream failed: connection reset"
        );
        assert_eq!(exit_code(&ClientError::Protocol("x".into())), EXIT_FAILED);
    }

    #[test]
    fn transport_failures_have_their_own_codes() {
        let unreachable = ClientError::Unreachable {
            url: "http://127.0.0.1:1".into(),
            detail: "Connection refused".into(),
        };
        assert_eq!(exit_code(&unreachable), EXIT_UNREACHABLE);
        assert_eq!(
            describe(&unreachable),
            "cannot reach http://127.0.0.1:1: is `cerebrum serve` running? (Connection refused)"
        );
        let bad = ClientError::BadUrl {
            url: "ftp://x".into(),
            reason: "only http:// and https:// are supported".into(),
        };
        assert_eq!(exit_code(&bad), EXIT_USAGE);
        assert!(describe(&bad).starts_with("invalid server URL 'ftp://x'"));
    }
}
