//! `ModelRegistry`: which names the node serves, and which models are in memory.
//!
//! Names resolve through the config's table and every `*.gguf` in the models
//! directory (name = file stem), never to any other path. A model loads on first
//! use on a blocking thread, once however many requests ask at the same time
//! (single flight), and is unloaded after it has been idle for the configured time,
//! measured from its last completed request, never while it is serving.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::engine::{Engine, EngineOptions, LoadError};
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
    /// Loading would leave less RAM than the floor.
    #[error(
        "loading '{name}' needs ~{need_mb} MB but only {available_mb} MB is available above the {floor_mb} MB floor"
    )]
    NotEnoughMemory {
        /// Model.
        name: String,
        /// Estimated need.
        need_mb: u64,
        /// Available now minus the floor.
        available_mb: u64,
        /// The floor.
        floor_mb: u64,
    },
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
    Loaded(Arc<Engine>),
}

/// Source of "how much RAM is available now", so the registry needs no sysinfo.
pub trait MemoryProbe: Send + Sync {
    /// Available bytes.
    fn available_bytes(&self) -> u64;
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
            .filter(|(_, s)| matches!(s, Slot::Loaded(_)))
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
                Slot::Loaded(e) => Some(e.clone()),
                Slot::Loading(_) => None,
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

    /// The engine for `name`, loading it if needed (single flight).
    pub async fn get(&self, name: &str) -> Result<Arc<Engine>, RegistryError> {
        let fut = {
            let mut slots = self.lock();
            match slots.get(name) {
                Some(Slot::Loaded(e)) => return Ok(e.clone()),
                Some(Slot::Loading(f)) => f.clone(),
                None => {
                    let path = self.inner.catalog.get(name).cloned().ok_or_else(|| {
                        RegistryError::Unknown {
                            name: name.to_string(),
                            available: self.available(),
                        }
                    })?;
                    self.make_room(&mut slots, name)?;
                    self.check_memory(name, &path)?;
                    let fut = self.start_load(name.to_string(), path);
                    slots.insert(name.to_string(), Slot::Loading(fut.clone()));
                    fut
                }
            }
        };
        fut.await
    }

    fn start_load(&self, name: String, path: PathBuf) -> LoadFuture {
        let this = self.clone();
        let opts = self.inner.opts;
        let handle = tokio::spawn(async move {
            let t0 = std::time::Instant::now();
            let (n, p) = (name.clone(), path.clone());
            let result = tokio::task::spawn_blocking(move || Engine::load(&n, &p, opts))
                .await
                .unwrap_or_else(|e| Err(LoadError::Thread(e.to_string())))
                .map(Arc::new)
                .map_err(RegistryError::from);
            this.inner
                .metrics
                .record_load(t0.elapsed().as_secs_f64(), result.is_ok());
            let mut slots = this.lock();
            match &result {
                Ok(engine) => {
                    slots.insert(name, Slot::Loaded(engine.clone()));
                }
                Err(e) => {
                    tracing::error!(model = %name, error = %e, "model load failed");
                    slots.remove(&name);
                }
            }
            result
        });
        async move {
            handle
                .await
                .unwrap_or_else(|e| Err(RegistryError::Load(LoadError::Thread(e.to_string()))))
        }
        .boxed()
        .shared()
    }

    /// Refuses a load when file size plus context memory would cross the RAM floor.
    fn check_memory(&self, name: &str, path: &std::path::Path) -> Result<(), RegistryError> {
        let file = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let need = file + self.context_estimate(path);
        let available = self.inner.memory.available_bytes();
        let floor = self.inner.ram_floor;
        if available < floor.saturating_add(need) {
            return Err(RegistryError::NotEnoughMemory {
                name: name.to_string(),
                need_mb: need >> 20,
                available_mb: available.saturating_sub(floor) >> 20,
                floor_mb: floor >> 20,
            });
        }
        Ok(())
    }

    fn context_estimate(&self, path: &std::path::Path) -> u64 {
        let tokens = u64::from(self.inner.opts.context_size) * u64::from(self.inner.opts.parallel);
        crate::inspect::kv_bytes_per_token(path).unwrap_or(64 * 1024) * tokens
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
                Slot::Loaded(e) if !e.stats().busy() => Some((n.clone(), e.stats().idle_for())),
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
            Some(Slot::Loaded(e)) if e.stats().busy() => {
                Err(format!("'{name}' is serving requests; not unloaded"))
            }
            Some(Slot::Loaded(_)) => {
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
        if matches!(slots.get(name), Some(Slot::Loaded(_))) {
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
                Slot::Loaded(e) if !e.stats().busy() && e.stats().idle_for() >= idle => {
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
        if let Some(Slot::Loaded(e)) = slots.remove(name) {
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
