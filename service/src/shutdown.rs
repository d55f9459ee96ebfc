//! Serving until SIGTERM, then a bounded drain: both servers stop accepting,
//! give open streams `grace` to finish, and return.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

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
/// `grace` for open requests and streams before returning.
pub async fn serve_with_grace(
    listener: TcpListener,
    app: Router,
    grace: Duration,
) -> std::io::Result<()> {
    serve_until(listener, app, grace, shutdown_signal()).await
}

/// [`serve_with_grace`] with the stop signal given (tests pass their own).
pub async fn serve_until(
    listener: TcpListener,
    app: Router,
    grace: Duration,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        r = &mut server => return r,
        () = stop => {}
    }
    tracing::info!(
        grace_s = grace.as_secs(),
        "shutting down: no new connections; open streams may finish"
    );
    crate::notify::stopping();
    let _ = stop_tx.send(true);
    match tokio::time::timeout(grace, server).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!(
                grace_s = grace.as_secs(),
                "grace period over; closing the remaining streams"
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let server = tokio::spawn(serve_until(
            listener,
            app,
            Duration::from_millis(300),
            async {
                let _ = rx.await;
            },
        ));
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
}
