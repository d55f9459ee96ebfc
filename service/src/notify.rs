//! systemd service notifications, shared by both binaries (`Type=notify` units):
//! `READY=1` once the socket is bound, `WATCHDOG=1` at half the unit's
//! `WatchdogSec`, `STOPPING=1` at shutdown. Without `NOTIFY_SOCKET` (not under
//! systemd) every call does nothing.

use std::time::Duration;

use sd_notify::NotifyState;

/// Tells systemd the service is ready, with a status line.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd the service is shutting down.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// One watchdog keep-alive.
pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// How often to send [`watchdog`]: half of `WatchdogSec`, or `None` when the unit has no watchdog.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .map(|d| d / 2)
        .filter(|d| !d.is_zero())
}

/// Sends [`watchdog`] pings forever at [`watchdog_interval`]; returns at once
/// when the unit has no watchdog. Spawn it on the server's runtime: pings come
/// from the runtime itself, so a wedged runtime stops them and systemd restarts us.
pub async fn run_watchdog() {
    let Some(every) = watchdog_interval() else {
        return;
    };
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        watchdog();
    }
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        // Not fatal: the service works; systemd will say it never became ready.
        eprintln!("cerebrum: cannot notify systemd: {e}");
    }
}
