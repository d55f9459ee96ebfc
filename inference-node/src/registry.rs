//! `ModelRegistry`: which names the node serves, and which models are in memory.
//!
//! Names resolve through the config's table and every `*.gguf` in the models
//! directory (name = file stem), never to any other path. A model loads on first
//! use on a blocking thread, once however many requests ask at the same time
//! (single flight), and is unloaded after it has been idle for the configured time,
//! measured from its last completed request, never while it is serving.
//!
//! A request holds its engine through a [`Lease`], taken under the same lock the
//! unloaders (idle, `/v1/cleanup`, `unload`, eviction) check: a request that has
//! its engine is counted, whether or not the engine has seen it yet. Before a
//! load, the model's need is estimated and checked ([`crate::fit`]) on the load's
//! own blocking thread, never under the lock, so `/health` and `/metrics` never
//! wait on a GGUF read.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::engine::{Engine, EngineOptions, LoadError};
use crate::fit::{MemoryFigures, RunShape, Unfit};
use crate::metrics::Metrics;

/// Why a model could not be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    /// No such name.
    #[error("unknown model '{name}'; available: {}", available.join(", "))]
    Unknown {
        /// Asked for.
        name: String,
        /// What exists.
        available: Vec<String>,
    },
    /// No model named and no default configured.
    #[error("no model given and no default model configured; available: {}", available.join(", "))]
    NoDefault {
        /// What exists.
        available: Vec<String>,
    },
    /// The model does not fit in the memory the node may use (now, or ever).
    #[error("{0}")]
    DoesNotFit(#[from] Unfit),
    /// Every loaded model is serving and no more may be loaded.
    #[error("all {max} model slots are serving requests; '{name}' cannot be loaded now")]
    AllBusy {
        /// Model asked for.
        name: String,
        /// The maximum loaded.
        max: usize,
    },
    /// The load failed.
    #[error("{0}")]
    Load(#[from] LoadError),
}

type LoadFuture = Shared<BoxFuture<'static, Result<Arc<Engine>, RegistryError>>>;

enum Slot {
    Loading(LoadFuture),
    Loaded {
        engine: Arc<Engine>,
        /// Its memory estimate, counted against the cgroup limit for the next load.
        need: u64,
    },
}

/// Source of the machine's memory figures, so the registry needs no sysinfo.
pub trait MemoryProbe: Send + Sync {
    /// `(MemTotal, MemAvailable)` in bytes.
    fn memory(&self) -> (u64, u64);
}

/// A request's hold on a loaded engine, from lookup to the end of its response.
/// Taken only under the registry's lock, which every unloader checks under, so
/// the engine counts as busy from the moment a request has it. Dropping it ends
/// the hold and restarts the engine's idle clock.
pub struct Lease {
    engine: Arc<Engine>,
}

impl Lease {
    /// Call with the registry's lock held.
    fn take(engine: &Arc<Engine>) -> Self {
        engine.stats().lease();
        Self {
            engine: engine.clone(),
        }
    }

    /// The engine, to hand to a blocking thread.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }
}

impl std::ops::Deref for Lease {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.engine
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.engine.stats().release_lease();
    }
}

/// The registry; cheap to clone.
#[derive(Clone)]
pub struct ModelRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    catalog: BTreeMap<String, PathBuf>,
    default_model: Option<String>,
    opts: EngineOptions,
    max_loaded: usize,
    ram_floor: u64,
    slots: Mutex<HashMap<String, Slot>>,
    memory: Arc<dyn MemoryProbe>,
    metrics: Arc<Metrics>,
}

/// Builds the name → path table: every `*.gguf` in `dir` by stem, then the explicit table.
pub fn build_catalog(
    dir: &std::path::Path,
    table: &BTreeMap<String, PathBuf>,
) -> BTreeMap<String, PathBuf> {
    let mut catalog = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) == Some("gguf")
                && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            {
                catalog.insert(stem.to_string(), path);
            }
        }
    }
    for (name, path) in table {
        catalog.insert(name.clone(), path.clone());
    }
    catalog
}

impl ModelRegistry {
    /// A registry over a fixed catalog.
    pub fn new(
        catalog: BTreeMap<String, PathBuf>,
        default_model: Option<String>,
        opts: EngineOptions,
        max_loaded: usize,
        ram_floor: u64,
        memory: Arc<dyn MemoryProbe>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                catalog,
                default_model,
                opts,
                max_loaded,
                ram_floor,
                slots: Mutex::new(HashMap::new()),
                memory,
                metrics,
            }),
        }
    }

    /// Every name this node can serve.
    pub fn available(&self) -> Vec<String> {
        self.inner.catalog.keys().cloned().collect()
    }

    /// Names loaded now.
    pub fn loaded(&self) -> Vec<String> {
        let slots = self.lock();
        let mut v: Vec<String> = slots
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Loaded { engine, .. } if !engine.stats().is_dead()))
            .map(|(n, _)| n.clone())
            .collect();
        v.sort();
        v
    }

    /// Names loading now.
    pub fn loading(&self) -> Vec<String> {
        let slots = self.lock();
        let mut v: Vec<String> = slots
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Loading(_)))
            .map(|(n, _)| n.clone())
            .collect();
        v.sort();
        v
    }

    /// Loaded engines, for counters.
    pub fn engines(&self) -> Vec<Arc<Engine>> {
        self.lock()
            .values()
            .filter_map(|s| match s {
                Slot::Loaded { engine, .. } if !engine.stats().is_dead() => Some(engine.clone()),
                _ => None,
            })
            .collect()
    }

    /// The name a request asked for, or the default (config, else the only/first model).
    pub fn resolve_name(&self, requested: Option<&str>) -> Result<String, RegistryError> {
        let name = match requested.map(str::trim).filter(|s| !s.is_empty()) {
            Some(n) => n.to_string(),
            None => match &self.inner.default_model {
                Some(d) => d.clone(),
                None => self.inner.catalog.keys().next().cloned().ok_or_else(|| {
                    RegistryError::NoDefault {
                        available: self.available(),
                    }
                })?,
            },
        };
        if !self.inner.catalog.contains_key(&name) {
            return Err(RegistryError::Unknown {
                name,
                available: self.available(),
            });
        }
        Ok(name)
    }

    /// A lease on the engine for `name`, loading it if needed (single flight).
    pub async fn get(&self, name: &str) -> Result<Lease, RegistryError> {
        loop {
            let fut = {
                let mut slots = self.lock();
                match slots.get(name) {
                    Some(Slot::Loaded { engine, .. }) if !engine.stats().is_dead() => {
                        return Ok(Lease::take(engine));
                    }
                    Some(Slot::Loading(f)) => f.clone(),
                    dead_or_none => {
                        if dead_or_none.is_some() {
                            tracing::warn!(model = %name, "model worker died; loading the model afresh");
                            self.retire(&mut slots, name);
                        }
                        let path = self.inner.catalog.get(name).cloned().ok_or_else(|| {
                            RegistryError::Unknown {
                                name: name.to_string(),
                                available: self.available(),
                            }
                        })?;
                        self.make_room(&mut slots, name)?;
                        let held = slots
                            .values()
                            .map(|s| match s {
                                Slot::Loaded { need, .. } => *need,
                                Slot::Loading(_) => 0,
                            })
                            .sum();
                        let fut = self.start_load(name.to_string(), path, held);
                        slots.insert(name.to_string(), Slot::Loading(fut.clone()));
                        fut
                    }
                }
            };
            // Loaded (or failed). The lease is taken on the next turn, under the
            // lock; if the model was unloaded in between (a cleanup right after
            // the load), that turn loads it again.
            fut.await?;
        }
    }

    fn run_shape(&self) -> RunShape {
        let o = &self.inner.opts;
        RunShape {
            slots: u64::from(o.parallel),
            context: u64::from(o.context_size),
            ubatch: u64::from(o.n_batch),
        }
    }

    fn start_load(&self, name: String, path: PathBuf, held: u64) -> LoadFuture {
        let this = self.clone();
        let opts = self.inner.opts;
        let handle = tokio::spawn(async move {
            let t0 = std::time::Instant::now();
            let (n, p, fitter) = (name.clone(), path.clone(), this.clone());
            let result = tokio::task::spawn_blocking(move || {
                let need = fitter.check_fit(&n, &p, held)?;
                Engine::load(&n, &p, opts)
                    .map(|e| (Arc::new(e), need))
                    .map_err(RegistryError::from)
            })
            .await
            .unwrap_or_else(|e| Err(LoadError::Thread(e.to_string()).into()));
            if !matches!(result, Err(RegistryError::DoesNotFit(_))) {
                this.inner
                    .metrics
                    .record_load(t0.elapsed().as_secs_f64(), result.is_ok());
            }
            let mut slots = this.lock();
            match result {
                Ok((engine, need)) => {
                    slots.insert(
                        name,
                        Slot::Loaded {
                            engine: engine.clone(),
                            need,
                        },
                    );
                    Ok(engine)
                }
                Err(e) => {
                    tracing::error!(model = %name, error = %e, "model load failed");
                    slots.remove(&name);
                    Err(e)
                }
            }
        });
        async move {
            handle
                .await
                .unwrap_or_else(|e| Err(RegistryError::Load(LoadError::Thread(e.to_string()))))
        }
        .boxed()
        .shared()
    }

    /// Estimates what `name` needs and refuses it when it does not fit; returns
    /// the estimate (0 when the file's metadata gives no shape: llama.cpp's own
    /// load then says what is wrong with it). Reads the file: never under the lock.
    fn check_fit(&self, name: &str, path: &std::path::Path, held: u64) -> Result<u64, Unfit> {
        let file = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let Some(shape) = crate::inspect::model_shape(path) else {
            return Ok(0);
        };
        let need = crate::fit::estimate(file, &shape, &self.run_shape());
        let (total, available) = self.inner.memory.memory();
        let mem = MemoryFigures::read(total, available);
        crate::fit::check(name, &need, &mem, self.inner.ram_floor, held)?;
        tracing::info!(model = %name, need = %need, total_mib = total >> 20,
            available_mib = available >> 20, cgroup_max_mib = ?mem.cgroup_max.map(|m| m >> 20),
            held_mib = held >> 20, "model fits; loading");
        Ok(need.total())
    }

    /// With the maximum loaded, evicts the idle least-recently-used model.
    fn make_room(
        &self,
        slots: &mut HashMap<String, Slot>,
        name: &str,
    ) -> Result<(), RegistryError> {
        if slots.len() < self.inner.max_loaded {
            return Ok(());
        }
        let victim = slots
            .iter()
            .filter_map(|(n, s)| match s {
                Slot::Loaded { engine: e, .. } if !e.stats().busy() || e.stats().is_dead() => {
                    Some((n.clone(), e.stats().idle_for()))
                }
                _ => None,
            })
            .max_by_key(|(_, idle)| *idle)
            .map(|(n, _)| n);
        match victim {
            Some(v) => {
                tracing::info!(model = %v, for_model = %name, "evicting idle model to make room");
                self.retire(slots, &v);
                Ok(())
            }
            None => Err(RegistryError::AllBusy {
                name: name.to_string(),
                max: self.inner.max_loaded,
            }),
        }
    }

    /// Unloads `name` if loaded and not serving. `Ok(false)`: it was not loaded.
    pub fn unload(&self, name: &str) -> Result<bool, String> {
        let mut slots = self.lock();
        match slots.get(name) {
            Some(Slot::Loaded { engine, .. }) if engine.stats().busy() => Err(format!(
                "'{name}' is serving {} request(s); not unloaded",
                engine.stats().leases()
            )),
            Some(Slot::Loaded { .. }) => {
                self.retire(&mut slots, name);
                tracing::info!(model = %name, "unloaded on request");
                Ok(true)
            }
            Some(Slot::Loading(_)) => Err(format!("'{name}' is loading; not unloaded")),
            None => Ok(false),
        }
    }

    /// Drops `name` whatever its state: its worker died (a llama.cpp panic), so the
    /// next request loads it afresh instead of failing forever.
    pub fn forget(&self, name: &str) {
        let mut slots = self.lock();
        if matches!(slots.get(name), Some(Slot::Loaded { .. })) {
            tracing::error!(model = %name, "model worker is gone; dropping it so the next request reloads");
            self.retire(&mut slots, name);
        }
    }

    /// Unloads every model idle for at least `idle`; returns their names.
    pub fn unload_idle(&self, idle: Duration) -> Vec<String> {
        let mut slots = self.lock();
        let victims: Vec<String> = slots
            .iter()
            .filter_map(|(n, s)| match s {
                Slot::Loaded { engine: e, .. }
                    if e.stats().is_dead()
                        || (!e.stats().busy() && e.stats().idle_for() >= idle) =>
                {
                    Some(n.clone())
                }
                _ => None,
            })
            .collect();
        for v in &victims {
            self.retire(&mut slots, v);
            tracing::info!(model = %v, idle_secs = idle.as_secs_f64(), "unloaded after idle");
        }
        victims
    }

    /// Runs idle unloading forever; spawn it once.
    pub async fn idle_unloader(self, idle: Duration) {
        let tick = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            self.unload_idle(idle);
        }
    }

    /// Drops a loaded model from the map, keeping its counters.
    fn retire(&self, slots: &mut HashMap<String, Slot>, name: &str) {
        if let Some(Slot::Loaded { engine: e, .. }) = slots.remove(name) {
            self.inner.metrics.retire_tokens(
                e.stats()
                    .tokens_generated
                    .load(std::sync::atomic::Ordering::Relaxed),
            );
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        // A poisoned lock only means a panic elsewhere; the map itself is consistent.
        self.inner
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
