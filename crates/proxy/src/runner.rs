//! The control loop: watch Services and EndpointSlices, wait for the caches, then sync a
//! [`Backend`] whenever something changed, at a bounded frequency, retrying on failure.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::Api;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

use crate::announce::{Announcer, IpCommand};
use crate::backend::{Backend, NftablesBackend};
use crate::config::{ProxyConfig, ProxyMode};
use crate::healthcheck::HealthChecks;
use crate::model::tracker::ChangeTracker;
use crate::model::NodeContext;
use crate::nftables::{nftables_usable, NftCommand, RenderConfig};
use crate::userspace::{UserspaceBackend, UserspaceConfig};

/// How often the runner syncs (kube-proxy's BoundedFrequencyRunner, with podway's bars).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Least time between two syncs: a burst of events within it becomes one sync. A few
    /// milliseconds keeps pod-ready-to-in-rotation far under the 100 ms bar.
    pub min_interval: Duration,
    /// Most time between two syncs: the caches are compared even without events, which also
    /// repairs anything a missed event would have left stale.
    pub max_interval: Duration,
    /// First retry delay after a failed sync; doubles per failure.
    pub retry_min: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            min_interval: Duration::from_millis(5),
            max_interval: Duration::from_secs(1),
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(30),
        }
    }
}

impl Timing {
    /// The delay before retry number `failures` (1 for the first).
    pub fn retry_delay(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.retry_min.saturating_mul(factor).min(self.retry_max)
    }
}

/// Runs the proxy for this node until `shutdown` completes, then removes its rules.
///
/// `config.mode` picks the data plane: nftables where usable, else the userspace backend
/// (`Auto`); nftables or fail (`Nftables`); userspace only (`Userspace`).
pub async fn run(
    client: kube::Client,
    config: ProxyConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let node = NodeContext {
        node_name: config.node_name.clone(),
        node_ips: config.node_ips.clone(),
    };
    let userspace = || -> Box<dyn Backend> {
        Box::new(UserspaceBackend::new(UserspaceConfig::new(
            config.node_ips.clone(),
            config.pod_cidr,
        )))
    };
    let nftables = || -> Box<dyn Backend> {
        Box::new(NftablesBackend::new(RenderConfig {
            pod_cidr: config.pod_cidr,
        }))
    };
    let backend = match config.mode {
        ProxyMode::Userspace => userspace(),
        ProxyMode::Nftables => {
            nftables_usable(&NftCommand::new())
                .await
                .context("nftables cannot carry Services on this node (use --proxy-mode userspace)")?;
            nftables()
        }
        ProxyMode::Auto => match nftables_usable(&NftCommand::new()).await {
            Ok(()) => nftables(),
            Err(error) => {
                tracing::warn!(%error, "nftables cannot carry Services on this node; using the userspace proxy");
                userspace()
            }
        },
    };
    let backend = Box::new(HealthChecks::new(backend, config.node_ips.clone()));
    let backend: Box<dyn Backend> = match config.announce_interface {
        Some(interface) => Box::new(Announcer::new(
            backend,
            config.node_name.clone(),
            Box::new(IpCommand { interface }),
        )),
        None => backend,
    };
    run_with_backend(client, node, backend, Timing::default(), shutdown).await
}

/// Runs the control loop with any [`Backend`] until `shutdown` completes, then calls
/// [`Backend::cleanup`].
///
/// Nothing is synced before both caches hold a full list (acting on a partial list would
/// remove rules of Services not listed yet). The first sync is full; later ones pass only the
/// Services that changed. A failed sync is retried after a growing delay, as a full sync,
/// because the backend's state is then unknown.
pub async fn run_with_backend(
    client: kube::Client,
    node: NodeContext,
    mut backend: Box<dyn Backend>,
    timing: Timing,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (services, services_writer) = reflector::store::<Service>();
    let (slices, slices_writer) = reflector::store::<EndpointSlice>();
    let dirty = Arc::new(Notify::new());
    let mut tasks = JoinSet::new();
    let cfg = watcher::Config::default();
    tasks.spawn(mark_dirty(
        reflector(
            services_writer,
            watcher(Api::<Service>::all(client.clone()), cfg.clone()),
        ),
        dirty.clone(),
        "services",
    ));
    tasks.spawn(mark_dirty(
        reflector(slices_writer, watcher(Api::<EndpointSlice>::all(client), cfg)),
        dirty.clone(),
        "endpointslices",
    ));

    let mut shutdown = pin!(shutdown);
    tokio::select! {
        _ = &mut shutdown => {
            tasks.shutdown().await;
            return Ok(());
        }
        ready = async { services.wait_until_ready().await?; slices.wait_until_ready().await } => {
            ready.context("the watch caches closed before they synced")?;
        }
    }
    tracing::info!(node = %node.node_name, "service and endpointslice caches synced; programming the proxy");

    let mut tracker = ChangeTracker::new(node);
    let mut need_full = true;
    let mut failures = 0u32;
    loop {
        let changes = tracker.observe(&services.state(), &slices.state());
        let result = if need_full {
            backend.sync_full(tracker.table()).await
        } else if changes.is_empty() {
            Ok(())
        } else {
            backend.sync_changes(tracker.table(), &changes).await
        };
        let synced_at = Instant::now();
        let deadline = match result {
            Ok(()) => {
                if need_full || !changes.is_empty() {
                    tracing::debug!(
                        services = tracker.table().len(),
                        changed = changes.len(),
                        full = need_full,
                        "proxy synced"
                    );
                }
                need_full = false;
                failures = 0;
                synced_at + timing.max_interval
            }
            Err(error) => {
                need_full = true;
                failures += 1;
                let delay = timing.retry_delay(failures);
                tracing::warn!(%error, retry_in = ?delay, "proxy sync failed; retrying with a full sync");
                synced_at + delay
            }
        };
        tokio::select! {
            _ = &mut shutdown => break,
            _ = sleep_until(deadline) => {}
            // After a failure, events wait for the retry delay: hammering a failing backend
            // helps nobody.
            _ = dirty.notified(), if !need_full => {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = sleep_until(synced_at + timing.min_interval) => {}
                }
            }
        }
    }
    tasks.shutdown().await;
    backend
        .cleanup()
        .await
        .map_err(|e| anyhow::anyhow!(e))
        .context("removing the proxy's rules on shutdown")?;
    Ok(())
}

/// Drives one reflector and wakes the loop on every event.
async fn mark_dirty<K>(
    stream: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
    dirty: Arc<Notify>,
    what: &str,
) {
    let mut stream = pin!(stream.default_backoff());
    while let Some(event) = stream.next().await {
        match event {
            Ok(_) => dirty.notify_one(),
            Err(error) => tracing::warn!(%error, what, "proxy watch failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_from_the_minimum_and_stops_at_the_maximum() {
        let t = Timing::default();
        assert_eq!(t.retry_delay(1), Duration::from_millis(100));
        assert_eq!(t.retry_delay(2), Duration::from_millis(200));
        assert_eq!(t.retry_delay(4), Duration::from_millis(800));
        assert_eq!(t.retry_delay(40), Duration::from_secs(30));
    }
}
