//! Wiring the engine together: PKI, store, cache, registry, discovery, OpenAPI, listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use podway_store::Store;
use tokio::net::TcpListener;

pub use crate::pki::Pki;
pub use crate::registry::ServiceSettings;
use crate::{bootstrap, cache, discovery, handlers, kubelet, openapi, registry, server};

/// How to run the API server.
pub struct Config {
    /// Where to listen, e.g. `127.0.0.1:6443` (port 0 picks a free one).
    pub listen: SocketAddr,
    /// The address nodes reach the API server at (the host's address on the node network):
    /// listened on too, at the same port, and published as the `kubernetes` Service's endpoint.
    pub advertise: Option<std::net::IpAddr>,
    /// Where certificates live (`<data dir>/pki`).
    pub pki_dir: PathBuf,
    /// Extra names/IPs for the serving certificate.
    pub extra_names: Vec<String>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Service IP range and NodePort range.
    pub services: ServiceSettings,
}

/// A started API server.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its certificates and token.
    pub pki: Pki,
    /// The engine, for in-process callers (tests, benchmarks).
    pub api: Arc<handlers::Api>,
}

/// Start the API server; it serves until `shutdown` resolves.
pub async fn start(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Running> {
    let (service_ip, dns_ip) = bootstrap::well_known_ips(&config.services.cluster_ip_range)
        .map_err(|e| anyhow::anyhow!("--service-cidr {}: {e}", config.services.cluster_ip_range))?;
    // The serving certificate names the kubernetes Service's IP too, which comes from the range.
    let names: Vec<String> = config.extra_names.iter().cloned().chain([service_ip.clone()]).collect();
    let pki = Pki::load_or_create(&config.pki_dir, &names)?;
    let acceptor = server::tls_acceptor(&pki)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let mut listeners = vec![listener];
    if let Some(ip) = config.advertise.filter(|ip| *ip != addr.ip()) {
        let extra = SocketAddr::new(ip, addr.port());
        listeners.push(
            TcpListener::bind(extra)
                .await
                .with_context(|| format!("listening on {extra}"))?,
        );
    }

    let registry = registry::Registry::new(config.services.clone());
    let cache = cache::WatchCache::start(config.store.clone())
        .await
        .context("reading the store")?;
    for s in registry.all() {
        let (items, _) = cache.list(&s.info().key_prefix());
        let objects: Vec<serde_json::Value> = items.iter().map(|o| (**o).clone()).collect();
        s.restore(&objects);
    }
    let discovery = discovery::Discovery::new(&registry);
    let openapi = openapi::OpenApiDocuments::build(&openapi_kinds(&registry));
    let api = Arc::new(handlers::Api {
        registry,
        store: config.store,
        cache,
        discovery,
        openapi,
        kubelet: kubelet::KubeletClient::new(&pki)?,
    });
    bootstrap::seed(&api, &service_ip, &dns_ip, addr.port())
        .await
        .map_err(|e| anyhow::anyhow!("bootstrap: {}", e.message))?;
    if let Some(ip) = config.advertise {
        bootstrap::kubernetes_endpoints(&api, ip, addr.port())
            .await
            .map_err(|e| anyhow::anyhow!("bootstrap: {}", e.message))?;
    }

    tokio::spawn(compact_periodically(api.store.clone()));
    // One shutdown signal for every listener.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    for listener in listeners {
        let (serving, acceptor, token, mut stop) = (api.clone(), acceptor.clone(), pki.token.clone(), stop_rx.clone());
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        tokio::spawn(async move { server::serve(listener, acceptor, serving, token, stopped).await });
    }
    Ok(Running { addr, pki, api })
}

/// The OpenAPI description of every served kind.
fn openapi_kinds(registry: &registry::Registry) -> Vec<openapi::OpenApiKind> {
    registry
        .all()
        .iter()
        .filter_map(|s| {
            let i = s.info();
            let schema = schema_fn(i.group, i.version, i.kind)?;
            Some(openapi::OpenApiKind {
                group: i.group,
                version: i.version,
                kind: i.kind,
                plural: i.plural,
                namespaced: i.namespaced,
                subresources: subresource_names(i.subresources),
                schema,
            })
        })
        .collect()
}

fn subresource_names(subs: &[registry::Subresource]) -> &'static [&'static str] {
    // Built once at start; leaking keeps the OpenAPI description's 'static shape simple.
    Box::leak(subs.iter().map(|s| s.name()).collect::<Vec<_>>().into_boxed_slice())
}

/// The typed schema of a served kind, from k8s-openapi.
fn schema_fn(group: &str, version: &str, kind: &str) -> Option<fn(&mut schemars::SchemaGenerator) -> schemars::Schema> {
    use k8s_openapi::api::{apps::v1 as apps, coordination::v1 as coordination, core::v1 as core};
    use k8s_openapi::api::{discovery::v1 as discovery, events::v1 as events, networking::v1 as networking};
    use schemars::JsonSchema;
    if (version, kind) == ("v1beta1", "Ingress") {
        // Both beta Ingresses (networking.k8s.io and extensions) have one shape.
        return Some(registry::BetaIngress::json_schema);
    }
    Some(match (group, kind) {
        ("", "Namespace") => core::Namespace::json_schema,
        ("", "Node") => core::Node::json_schema,
        ("", "Pod") => core::Pod::json_schema,
        ("", "Service") => core::Service::json_schema,
        ("", "Endpoints") => core::Endpoints::json_schema,
        ("", "ConfigMap") => core::ConfigMap::json_schema,
        ("", "Secret") => core::Secret::json_schema,
        ("", "ServiceAccount") => core::ServiceAccount::json_schema,
        ("", "Event") => core::Event::json_schema,
        ("apps", "Deployment") => apps::Deployment::json_schema,
        ("apps", "ReplicaSet") => apps::ReplicaSet::json_schema,
        ("discovery.k8s.io", "EndpointSlice") => discovery::EndpointSlice::json_schema,
        ("networking.k8s.io", "Ingress") => networking::Ingress::json_schema,
        ("networking.k8s.io", "IngressClass") => networking::IngressClass::json_schema,
        ("events.k8s.io", "Event") => events::Event::json_schema,
        ("coordination.k8s.io", "Lease") => coordination::Lease::json_schema,
        _ => return None,
    })
}

/// How often history is compacted: the real API server's default.
const COMPACTION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Every interval, forget store history older than the previous interval, as the real API
/// server does with etcd. Without it the SQLite log and etcd history grow without bound. Watches
/// from before the compacted revision get 410 Expired and relist, which every client handles.
async fn compact_periodically(store: Arc<dyn Store>) {
    let mut previous: Option<i64> = None;
    let mut tick = tokio::time::interval(COMPACTION_INTERVAL);
    loop {
        tick.tick().await;
        if let Some(rev) = previous.filter(|r| *r > 0) {
            if let Err(e) = store.compact(rev).await {
                tracing::warn!("compacting the store at revision {rev}: {e}");
            }
        }
        previous = store.current_revision().await.ok();
    }
}
