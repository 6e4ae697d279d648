//! The pod runtime: every pod bound to this node runs here, one [`worker`] task per pod.
//!
//! - [`worker`]: a pod's life: sandbox, init containers, containers, restarts with back-off,
//!   probes, graceful termination, status.
//! - [`start`]: starting one run of a container.
//! - [`status`]: kubelet's status rules, pure.
//! - [`env`]: a container's environment (service links, downward API, ConfigMaps, Secrets).
//! - [`backoff`]: CrashLoopBackOff and ImagePullBackOff delays.
//! - [`streams`]: logs, exec, attach and port-forward for the kubelet endpoint.
//!
//! A restarted agent adopts what runs: each pod's shim keeps its containers and their exit
//! codes, so the new worker reads the same state and starts nothing that is healthy.

pub mod backoff;
pub mod env;
pub mod hooks;
pub mod images_glue;
pub mod probes;
pub mod rotation;
pub mod shim_client;
pub mod start;
pub mod status;
pub mod streams;
pub mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use tokio::sync::watch;

use crate::sandbox::files::ClusterDns;
use crate::sandbox::SandboxSetup;

/// What the runtime needs to know about its node.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Node name.
    pub node_name: String,
    /// Node IP (the pods' `hostIP`).
    pub node_ip: String,
    /// Sandboxes: shim executable, CNI, state directory.
    pub sandbox: SandboxSetup,
    /// Cluster DNS for the pods' resolv.conf.
    pub dns: ClusterDns,
    /// The user's image catalog file.
    pub image_catalog: PathBuf,
}

/// What a worker shares with the streams (exec, logs) about its pod.
#[derive(Debug, Clone, Default)]
pub struct PodView {
    /// The shim's pid (to enter the pod's namespaces), 0 before the sandbox exists.
    pub shim_pid: i32,
    /// The pod's directory.
    pub dir: PathBuf,
    /// The pod's IP.
    pub ip: String,
    /// Per container: its environment (exec runs with it) and restart count (its log file).
    pub containers: HashMap<String, ContainerView>,
}

/// A container as the streams see it.
#[derive(Debug, Clone, Default)]
pub struct ContainerView {
    /// Its environment.
    pub env: Vec<(String, String)>,
    /// Its working directory.
    pub cwd: String,
    /// Index of the current log file (the restart count at its start).
    pub log_index: i32,
    /// Whether a run of it is going on.
    pub running: bool,
    /// Whether it has run at all.
    pub ever_started: bool,
    /// The waiting reason when not running (for "waiting to start" errors).
    pub waiting_reason: String,
    /// Whether it takes stdin (a FIFO in its directory).
    pub stdin: bool,
    /// Changes when a run starts or ends, so `logs -f` knows when to stop.
    pub generation: u64,
}

struct PodEntry {
    namespace: String,
    name: String,
    spec: watch::Sender<Option<Pod>>,
    view: Arc<Mutex<PodView>>,
}

/// The node's pods.
pub struct Runtime {
    cfg: RuntimeConfig,
    client: kube::Client,
    recorder: podway_events::Recorder,
    services: Store<Service>,
    pods: Mutex<HashMap<String, PodEntry>>,
    changes: tokio::sync::broadcast::Sender<()>,
    host_programs: std::sync::OnceLock<crate::images::HostPrograms>,
    /// How many sandboxes are created at once (twice the CPUs).
    sandbox_slots: tokio::sync::Semaphore,
}

impl Runtime {
    /// A runtime for this node. Call [`Runtime::run`] to start it.
    pub fn new(client: kube::Client, cfg: RuntimeConfig) -> Arc<Runtime> {
        let (services, writer) = reflector::store();
        let svc_api: Api<Service> = Api::all(client.clone());
        let stream = reflector::reflector(writer, watcher(svc_api, watcher::Config::default()))
            .default_backoff()
            .touched_objects();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while stream.next().await.is_some() {}
        });
        let recorder = podway_events::Recorder::new(client.clone(), "kubelet").with_host(&cfg.node_name);
        Arc::new(Runtime {
            cfg,
            client,
            recorder,
            services,
            pods: Mutex::new(HashMap::new()),
            changes: tokio::sync::broadcast::channel(16).0,
            host_programs: std::sync::OnceLock::new(),
            sandbox_slots: tokio::sync::Semaphore::new(
                2 * std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            ),
        })
    }

    /// The host programs images run with, detected once.
    pub fn host_programs(&self) -> &crate::images::HostPrograms {
        self.host_programs.get_or_init(crate::images::HostPrograms::detect)
    }

    /// The configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.cfg
    }

    /// Run every pod bound to this node until `shutdown`. Pods keep running when the agent
    /// stops (a restarted agent adopts them); only deleted pods are torn down.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let pods: Api<Pod> = Api::all(self.client.clone());
        let config = watcher::Config::default().fields(&format!("spec.nodeName={}", self.cfg.node_name));
        let mut stream = std::pin::pin!(watcher(pods, config).default_backoff());
        tokio::pin!(shutdown);
        let mut listed: Option<Vec<String>> = None;
        loop {
            let event = tokio::select! {
                _ = &mut shutdown => return,
                e = stream.next() => e,
            };
            match event {
                Some(Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) => {
                    if let Some(l) = listed.as_mut() {
                        l.push(pod.metadata.uid.clone().unwrap_or_default());
                    }
                    self.clone().apply(pod);
                }
                Some(Ok(watcher::Event::Delete(pod))) => self.gone(pod.metadata.uid.as_deref().unwrap_or("")),
                Some(Ok(watcher::Event::Init)) => listed = Some(Vec::new()),
                Some(Ok(watcher::Event::InitDone)) => {
                    let seen = listed.take().unwrap_or_default();
                    let stale: Vec<String> = self
                        .pods
                        .lock()
                        .expect("pods lock")
                        .keys()
                        .filter(|uid| !seen.contains(uid))
                        .cloned()
                        .collect();
                    for uid in stale {
                        self.gone(&uid);
                    }
                    self.clone().remove_orphans(&seen);
                }
                Some(Err(e)) => tracing::warn!("watching pods: {e}"),
                None => return,
            }
        }
    }

    fn apply(self: Arc<Self>, pod: Pod) {
        if crate::mirror::is_mirror(&pod) {
            return; // served by the agent itself, not run
        }
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut pods = self.pods.lock().expect("pods lock");
        if let Some(entry) = pods.get(&uid) {
            entry.spec.send_replace(Some(pod));
            return;
        }
        let (tx, rx) = watch::channel(Some(pod.clone()));
        let view = Arc::new(Mutex::new(PodView::default()));
        pods.insert(
            uid.clone(),
            PodEntry {
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                name: pod.metadata.name.clone().unwrap_or_default(),
                spec: tx,
                view: view.clone(),
            },
        );
        drop(pods);
        let rt = self.clone();
        tokio::spawn(async move {
            worker::Worker::new(rt.clone(), pod, view).run(rx).await;
            rt.pods.lock().expect("pods lock").remove(&uid);
        });
    }

    /// The pod is gone from the API (force-deleted, or deleted while the agent was away):
    /// its worker stops it at once.
    fn gone(&self, uid: &str) {
        if let Some(entry) = self.pods.lock().expect("pods lock").get(uid) {
            entry.spec.send_replace(None);
        }
    }

    /// Sandboxes left by an earlier agent for pods that no longer exist: tear them down.
    fn remove_orphans(self: Arc<Self>, live: &[String]) {
        let dir = self.cfg.sandbox.state_dir.join("pods");
        let Ok(entries) = std::fs::read_dir(&dir) else { return };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(uid) = name.rsplit('_').next() else { continue };
            if live.iter().any(|l| l == uid) {
                continue;
            }
            let setup = self.cfg.sandbox.clone();
            let path = e.path();
            tokio::task::spawn_blocking(move || {
                if let Some(sb) = crate::sandbox::Sandbox::load(&path) {
                    let _ = setup.destroy(&sb);
                }
                let _ = std::fs::remove_dir_all(&path);
            });
        }
    }

    /// The view of a pod by namespace and name.
    pub fn view(&self, namespace: &str, name: &str) -> Option<Arc<Mutex<PodView>>> {
        self.pods
            .lock()
            .expect("pods lock")
            .values()
            .find(|e| e.namespace == namespace && e.name == name)
            .map(|e| e.view.clone())
    }

    /// Wakes whenever any pod's containers start or stop (for `logs -f`).
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<()> {
        self.changes.subscribe()
    }

    fn notify(&self) {
        let _ = self.changes.send(());
    }
}
