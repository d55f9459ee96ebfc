//! Why a call failed: the transport (no connection, a broken stream, a body
//! that is not what the route promises) or the server's own answer, an
//! [`ApiError`] whose [`ErrorCode`](cerebrum_shared::error::ErrorCode) says
//! what went wrong.

use cerebrum_shared::error::ApiError;

/// Why a call to the orchestrator failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The base URL is not an http(s) URL.
    #[error("invalid server URL '{url}': {reason}")]
    BadUrl {
        /// What was given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made, or the server did not answer in time.
    #[error("cannot reach {url}: {detail}")]
    Unreachable {
        /// The orchestrator's base URL.
        url: String,
        /// The transport's innermost reason ("Connection refused (os error 111)").
        detail: String,
    },
    /// The connection broke while a body or stream was being read.
    #[error("the connection broke: {0}")]
    Broken(String),
    /// The server answered something the route does not promise.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// The server refused or failed the request: an error response in either
    /// dialect, or the error event that ended a stream.
    #[error("{0}")]
    Api(ApiError),
}

impl From<ApiError> for ClientError {
    fn from(e: ApiError) -> Self {
        ClientError::Api(e)
    }
}

impl ClientError {
    /// The server's error, when the server gave one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            ClientError::Api(e) => Some(e),
            _ => None,
        }
    }

    /// A transport failure of a call to `url`.
    pub(crate) fn transport(url: &str, e: &reqwest::Error) -> Self {
        if e.is_body() || e.is_decode() {
            ClientError::Broken(root_cause(e))
        } else {
            ClientError::Unreachable {
                url: url.to_owned(),
                detail: root_cause(e),
            }
        }
    }
}

/// The innermost cause of an error ("Connection refused (os error 111)").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
