//! The Pi's own CPU busy %, sampled in the background for `/health`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sysinfo::{RefreshKind, System};

/// Latest CPU busy % (all cores), updated every few seconds.
#[derive(Debug, Default)]
pub struct CpuGauge(AtomicU32);

impl CpuGauge {
    /// Starts the sampler thread.
    pub fn start(interval: Duration) -> std::sync::Arc<Self> {
        let gauge = std::sync::Arc::new(Self::default());
        let g = gauge.clone();
        let Ok(mut sys) = System::new_with_specifics(RefreshKind::nothing()) else {
            tracing::warn!("cannot read CPU figures; /health reports 0");
            return gauge;
        };
        let _ = std::thread::Builder::new()
            .name("cpu-sampler".into())
            .spawn(move || {
                loop {
                    sys.refresh_cpu_usage();
                    g.0.store(sys.global_cpu_usage().to_bits(), Ordering::Relaxed);
                    std::thread::sleep(interval);
                }
            });
        gauge
    }

    /// Busy %.
    pub fn percent(&self) -> f32 {
        f32::from_bits(self.0.load(Ordering::Relaxed))
    }
}
