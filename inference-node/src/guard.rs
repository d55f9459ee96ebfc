//! `AdmissionGuard`: refuses inference when the machine cannot take it.
//!
//! A background thread samples CPU and memory once a second (sysinfo), so neither
//! `/health` nor a request ever waits for a measurement. The decision itself is
//! the pure [`decide`].
//!
//! **CPU is judged on other processes only.** The node's own generation keeps
//! its threads busy by design; counting it would make the node refuse work because
//! it is working (the original's mistake). So the guard measures total busy CPU,
//! subtracts this process's own share (its CPU time over the same interval,
//! divided by the number of cores), and compares what is left, the load from
//! everything else on the VPS, with `max_cpu_percent`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, RefreshKind, System};

use crate::metrics::Rejection;
use crate::registry::MemoryProbe;

/// One measurement of the machine.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResourceSnapshot {
    /// Busy % of all cores, every process.
    pub cpu_total_percent: f32,
    /// This process's share of all cores, %.
    pub cpu_own_percent: f32,
    /// Available RAM in bytes.
    pub ram_available: u64,
    /// Used RAM in bytes.
    pub ram_used: u64,
}

impl ResourceSnapshot {
    /// Busy % from other processes than the node.
    pub fn cpu_other_percent(&self) -> f32 {
        (self.cpu_total_percent - self.cpu_own_percent).clamp(0.0, 100.0)
    }
}

/// The limits the guard enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Refuse when other processes use more CPU than this (%).
    pub max_cpu_percent: f32,
    /// Refuse when less RAM than this is available (bytes).
    pub ram_floor: u64,
}

/// A refusal: reason label, message and the advice sent with the 503.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// Metric label.
    pub kind: Rejection,
    /// What is wrong, with figures.
    pub reason: String,
    /// What the caller can do.
    pub suggestion: String,
    /// Seconds to wait.
    pub retry_after: u64,
}

/// Admit or refuse, from one snapshot. Pure.
pub fn decide(s: &ResourceSnapshot, limits: &Limits) -> Result<(), Refusal> {
    if s.ram_available < limits.ram_floor {
        return Err(Refusal {
            kind: Rejection::Memory,
            reason: format!(
                "available RAM {} MB is under the {} MB floor",
                s.ram_available >> 20,
                limits.ram_floor >> 20
            ),
            suggestion:
                "Free memory on the VPS, unload idle models (POST /v1/cleanup), or retry later"
                    .into(),
            retry_after: 30,
        });
    }
    let other = s.cpu_other_percent();
    if other > limits.max_cpu_percent {
        return Err(Refusal {
            kind: Rejection::Cpu,
            reason: format!(
                "other processes use {other:.0}% CPU, over the {:.0}% limit",
                limits.max_cpu_percent
            ),
            suggestion: "Retry in a few seconds, or stop the other work on the VPS".into(),
            retry_after: 5,
        });
    }
    Ok(())
}

/// Keeps a fresh [`ResourceSnapshot`] and answers admission questions from it.
#[derive(Clone)]
pub struct AdmissionGuard {
    snapshot: Arc<Mutex<ResourceSnapshot>>,
    limits: Limits,
}

impl AdmissionGuard {
    /// Starts the sampler thread (one sample right away, then every `interval`).
    pub fn start(limits: Limits, interval: Duration) -> Self {
        let snapshot = Arc::new(Mutex::new(ResourceSnapshot::default()));
        let mut sampler = match Sampler::new() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot read system figures; the guard admits everything");
                return Self { snapshot, limits };
            }
        };
        // Memory is right at once; CPU needs two readings some time apart, so it
        // starts at 0 and is filled in by the first tick.
        if let Ok(mut s) = snapshot.lock() {
            *s = sampler.memory_only();
        }
        let shared = snapshot.clone();
        let spawned = std::thread::Builder::new()
            .name("resource-sampler".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(interval);
                    let next = sampler.sample();
                    match shared.lock() {
                        Ok(mut s) => *s = next,
                        Err(_) => return,
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the resource sampler; figures stay at start-up values");
        }
        Self { snapshot, limits }
    }

    /// The latest figures.
    pub fn snapshot(&self) -> ResourceSnapshot {
        self.snapshot.lock().map(|s| *s).unwrap_or_default()
    }

    /// Admit or refuse now.
    pub fn check(&self) -> Result<(), Refusal> {
        decide(&self.snapshot(), &self.limits)
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }
}

impl MemoryProbe for AdmissionGuard {
    fn memory(&self) -> (u64, u64) {
        let s = self.snapshot();
        (s.ram_available + s.ram_used, s.ram_available)
    }
}

struct Sampler {
    system: System,
    pid: Option<Pid>,
    cores: f32,
}

impl Sampler {
    fn new() -> Result<Self, String> {
        let mut system =
            System::new_with_specifics(RefreshKind::nothing()).map_err(|e| e.to_string())?;
        system.refresh_cpu_usage();
        let cores = std::thread::available_parallelism()
            .map(|n| n.get() as f32)
            .unwrap_or(1.0);
        let pid = sysinfo::get_current_pid().ok();
        if let Some(pid) = pid {
            // A baseline, so the first tick's process figure covers one interval.
            system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                true,
                ProcessRefreshKind::nothing().with_cpu(),
            );
        }
        Ok(Self { system, pid, cores })
    }

    fn memory_only(&mut self) -> ResourceSnapshot {
        self.system.refresh_memory();
        ResourceSnapshot {
            ram_available: self.system.available_memory(),
            ram_used: self.system.used_memory(),
            ..Default::default()
        }
    }

    fn sample(&mut self) -> ResourceSnapshot {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        let own = match self.pid {
            Some(pid) => {
                self.system.refresh_processes_specifics(
                    ProcessesToUpdate::Some(&[pid]),
                    true,
                    ProcessRefreshKind::nothing().with_cpu(),
                );
                self.system
                    .process(pid)
                    .map(|p| p.cpu_usage() / self.cores)
                    .unwrap_or(0.0)
            }
            None => 0.0,
        };
        ResourceSnapshot {
            cpu_total_percent: self.system.global_cpu_usage(),
            cpu_own_percent: own.min(100.0),
            ram_available: self.system.available_memory(),
            ram_used: self.system.used_memory(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn limits() -> Limits {
        Limits {
            max_cpu_percent: 70.0,
            ram_floor: GIB,
        }
    }

    #[test]
    fn own_inference_does_not_count() {
        // The node itself keeps both cores busy: total 98%, own 95%.
        let s = ResourceSnapshot {
            cpu_total_percent: 98.0,
            cpu_own_percent: 95.0,
            ram_available: 4 * GIB,
            ram_used: GIB,
        };
        assert!(decide(&s, &limits()).is_ok());
    }

    #[test]
    fn other_processes_over_the_limit_are_refused() {
        let s = ResourceSnapshot {
            cpu_total_percent: 90.0,
            cpu_own_percent: 10.0,
            ram_available: 4 * GIB,
            ram_used: GIB,
        };
        let r = decide(&s, &limits()).unwrap_err();
        assert_eq!(r.kind, Rejection::Cpu);
        assert!(r.reason.contains("80%"), "{}", r.reason);
    }

    #[test]
    fn ram_under_the_floor_is_refused_first() {
        let s = ResourceSnapshot {
            cpu_total_percent: 99.0,
            cpu_own_percent: 0.0,
            ram_available: GIB / 2,
            ram_used: GIB,
        };
        let r = decide(&s, &limits()).unwrap_err();
        assert_eq!(r.kind, Rejection::Memory);
        assert_eq!(r.retry_after, 30);
    }

    #[test]
    fn own_share_larger_than_total_clamps_to_zero() {
        let s = ResourceSnapshot {
            cpu_total_percent: 50.0,
            cpu_own_percent: 60.0,
            ..Default::default()
        };
        assert_eq!(s.cpu_other_percent(), 0.0);
    }
}
