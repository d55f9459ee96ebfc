//! Serving: the accept loop both servers run, with a bound on how long a
//! client may take to send its request headers, and, on SIGTERM, a bounded
//! drain: both servers stop accepting, give open streams `grace` to finish,
//! and return.
//!
//! `axum::serve` sets no timer on hyper's connections, so hyper's
//! header-read timeout never fires there: a client that opens a connection and
//! sends half a header (or nothing) holds it for ever. This loop serves each
//! connection with hyper's HTTP/1 builder and a tokio timer, so such a
//! connection is closed after [`Serving::header_read_timeout`]. The same bound
//! applies to an idle keep-alive connection waiting for its next request.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// How long a client may take to send a request's headers (and how long an
/// idle keep-alive connection is kept) unless a server configures its own.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How a server serves its connections.
#[derive(Debug, Clone, Copy)]
pub struct Serving {
    /// Time open requests and streams get to finish after the stop signal.
    pub grace: Duration,
    /// Time a client has to send a request's headers, from the moment the
    /// server is ready to read them (connection accepted, or the previous
    /// response sent); the connection is closed after it.
    pub header_read_timeout: Duration,
}

impl Serving {
    /// `grace` with the default [`HEADER_READ_TIMEOUT`].
    pub fn with_grace(grace: Duration) -> Self {
        Self {
            grace,
            header_read_timeout: HEADER_READ_TIMEOUT,
        }
    }
}

/// Resolves on SIGTERM (systemd's stop) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Serves `app` (with each connection's peer address) until SIGTERM or Ctrl-C,
/// then refuses new connections, tells systemd it is stopping, and waits at most
/// `grace` for open requests and streams before returning. Headers must arrive
/// within [`HEADER_READ_TIMEOUT`].
pub async fn serve_with_grace(
    listener: TcpListener,
    app: Router,
    grace: Duration,
) -> std::io::Result<()> {
    serve_until(listener, app, Serving::with_grace(grace), shutdown_signal()).await
}

/// Serves `app` as `serving` says until `stop` resolves (SIGTERM in the
/// servers, the test's own signal in tests), then drains as
/// [`serve_with_grace`] does.
pub async fn serve_until(
    listener: TcpListener,
    app: Router,
    serving: Serving,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    // Connections hold a receiver of `open`; `drain` tells them to finish.
    let (open_tx, open_rx) = watch::channel(());
    let (drain_tx, drain_rx) = watch::channel(false);
    let mut stop = std::pin::pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        match accepted {
            Ok((tcp, peer)) => {
                // A stream's events go out when written: with Nagle's algorithm on, an
                // event written while the last one is unacknowledged waits for the
                // client's delayed ACK (40 ms), once per stream that comes fast.
                let _ = tcp.set_nodelay(true);
                let conn = connection(tcp, peer, app.clone(), serving, drain_rx.clone());
                let open = open_rx.clone();
                tokio::spawn(async move {
                    conn.await;
                    drop(open);
                });
            }
            Err(e) if is_per_connection(&e) => {}
            // Out of file descriptors and the like: wait instead of spinning.
            Err(e) => {
                tracing::error!(error = %e, "cannot accept connections");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    drop(listener);
    drop(open_rx);
    let grace = serving.grace;
    tracing::info!(
        grace_s = grace.as_secs(),
        "shutting down: no new connections; open streams may finish"
    );
    crate::notify::stopping();
    let _ = drain_tx.send(true);
    match tokio::time::timeout(grace, open_tx.closed()).await {
        Ok(()) => Ok(()),
        Err(_) => {
            tracing::warn!(
                grace_s = grace.as_secs(),
                "grace period over; closing the remaining streams"
            );
            Ok(())
        }
    }
}

/// Errors that concern one connection only (it was reset before it was accepted).
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Serves one connection until it ends, or, once `drain` turns true, until its
/// open request is answered.
async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    serving: Serving,
    mut drain: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(serving.header_read_timeout);
    let conn = builder.serve_connection(TokioIo::new(tcp), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            return;
        }
        _ = drain.wait_for(|d| *d) => {}
    }
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn serving(grace_ms: u64, header_ms: u64) -> Serving {
        Serving {
            grace: Duration::from_millis(grace_ms),
            header_read_timeout: Duration::from_millis(header_ms),
        }
    }

    /// Reads until the peer closes; `true` if it did within `within`.
    async fn closed_within(conn: &mut tokio::net::TcpStream, within: Duration) -> bool {
        let mut buf = [0u8; 256];
        tokio::time::timeout(within, async {
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    }

    #[tokio::test]
    async fn a_stream_that_outlives_the_grace_is_cut_and_serve_returns() {
        // A handler that never finishes its body.
        let app = Router::new().route(
            "/",
            axum::routing::get(|| async {
                axum::body::Body::from_stream(futures::stream::pending::<
                    Result<axum::body::Bytes, std::io::Error>,
                >())
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_until(listener, app, serving(300, 10_000), async {
            let _ = rx.await;
        }));
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let n = conn.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        let started = std::time::Instant::now();
        tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve returned within the bound")
            .unwrap()
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn a_finished_drain_returns_before_the_grace_and_refuses_new_connections() {
        let app = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_until(listener, app, serving(60_000, 60_000), async {
            let _ = rx.await;
        }));
        // An idle keep-alive connection is closed by the drain, not waited for.
        let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = idle.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("an idle connection does not hold the drain for the 60 s grace")
            .unwrap()
            .unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn a_client_that_never_finishes_its_headers_is_disconnected() {
        let app = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve_until(
            listener,
            app,
            serving(100, 300),
            std::future::pending(),
        ));
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut partial = tokio::net::TcpStream::connect(addr).await.unwrap();
        partial
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nx-slow: ")
            .await
            .unwrap();
        // A complete request on a third connection is answered meanwhile.
        let mut normal = tokio::net::TcpStream::connect(addr).await.unwrap();
        normal
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        normal.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        for conn in [&mut silent, &mut partial] {
            assert!(closed_within(conn, Duration::from_secs(10)).await);
        }
    }
}
