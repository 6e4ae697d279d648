//! podway's controllers. Each is an ordinary Kubernetes API client (kube-rs watchers): it
//! watches, waits for its cache to sync, then reconciles level-triggered and idempotently,
//! so every controller here also runs against a real cluster.
//!
//! - [`deployment`]: Deployments → ReplicaSets (rolling update, recreate, scale, history).
//! - [`replicaset`]: ReplicaSets → Pods.
//! - [`endpoints`]: Services → Endpoints and EndpointSlices.
//! - [`garbagecollector`]: deletes dependents of deleted owners; foreground and orphan.
//! - [`namespace`]: empties and finalizes deleted namespaces.
//! - [`serviceaccount`]: a `default` ServiceAccount per namespace.
//! - [`scheduler`]: binds pending pods to nodes.
//! - [`nodelifecycle`]: marks silent nodes unreachable and evicts their pods.
//! - [`podgc`]: deletes pods bound to nodes that do not exist.
//! - [`serviceevents`]: Events saying why a Service has no endpoints or an undeclared targetPort.
//! - [`lbipam`]: LoadBalancer Services' addresses from pools, as MetalLB hands them out.
//! - [`ingressstatus`]: the Ready nodes' addresses in the status of Ingresses of class podway.
//! - [`events`]: the Event recorder they all use.
//!
//! [`run`] starts them all; shared informers ([`runtime`]) keep one watch per kind.
#![warn(missing_docs)]

pub mod deployment;
pub mod discovery;
pub mod endpoints;
pub use podway_events as events;
pub mod garbagecollector;
pub mod informers;
pub mod ingressstatus;
pub mod lbipam;
pub mod namespace;
pub mod nodelifecycle;
pub mod podgc;
pub mod podutil;
pub mod replicaset;
pub mod runtime;
pub mod scheduler;
pub mod serviceaccount;
pub mod serviceevents;

use std::time::Duration;

/// Tunables of the controllers, with upstream's defaults.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// How long a node may be silent (no Lease renewal, no Ready heartbeat) before it is
    /// marked `Unknown` (kube-controller-manager's `--node-monitor-grace-period`: 50s since
    /// 1.32, 40s before). How long its pods then stay is their toleration of the unreachable
    /// taint (300s from the DefaultTolerationSeconds admission the API server applies).
    pub node_monitor_grace: Duration,
    /// How often node health is re-checked (`--node-monitor-period`, 5s).
    pub node_monitor_period: Duration,
    /// The default LoadBalancer pool (`podway up --lb-pool`; podway derives it from the node
    /// network). Empty: only pools from the `podway-lb-pools` ConfigMap.
    pub lb_pool: Vec<lbipam::IpRange>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            node_monitor_grace: Duration::from_secs(50),
            node_monitor_period: Duration::from_secs(5),
            lb_pool: lbipam::default_pool("172.30.0.0/24").expect("a valid CIDR"),
        }
    }
}

/// Runs every controller until `shutdown` completes, then stops them all.
///
/// The informers start first; each controller waits for the caches it reads to sync before
/// its first reconcile. A controller that returns an error ends the run with that error.
pub async fn run(
    client: kube::Client,
    config: ControllerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let (inf, drivers) = informers::Informers::new(&client);
    let mut tasks: tokio::task::JoinSet<(&'static str, anyhow::Result<()>)> = tokio::task::JoinSet::new();
    for d in drivers {
        tasks.spawn(async move { ("informer", d.await) });
    }
    macro_rules! controller {
        ($name:literal, $fut:expr) => {
            let fut = $fut;
            tasks.spawn(async move { ($name, fut.await) });
        };
    }
    controller!("deployment", deployment::run(client.clone(), inf.clone()));
    controller!("replicaset", replicaset::run(client.clone(), inf.clone()));
    controller!("endpoints", endpoints::run(client.clone(), inf.clone()));
    controller!("garbagecollector", garbagecollector::run(client.clone()));
    controller!("namespace", namespace::run(client.clone(), inf.clone()));
    controller!("serviceaccount", serviceaccount::run(client.clone(), inf.clone()));
    controller!("scheduler", scheduler::run(client.clone(), inf.clone()));
    controller!("podgc", podgc::run(client.clone(), inf.clone()));
    controller!("serviceevents", serviceevents::run(client.clone(), inf.clone()));
    controller!(
        "lbipam",
        lbipam::run(client.clone(), inf.clone(), config.lb_pool.clone())
    );
    controller!("ingressstatus", ingressstatus::run(client.clone(), inf.clone()));
    controller!(
        "nodelifecycle",
        nodelifecycle::run(client.clone(), inf.clone(), config.clone())
    );
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => {
                tasks.shutdown().await;
                return Ok(());
            }
            Some(done) = tasks.join_next() => match done {
                Ok((name, Ok(()))) => tracing::warn!(controller = name, "controller stopped"),
                Ok((name, Err(e))) => return Err(e).with_context(|| format!("{name} controller failed")),
                Err(e) => return Err(anyhow::anyhow!("a controller task panicked: {e}")),
            },
        }
    }
}
