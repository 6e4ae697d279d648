//! The informers the controllers share, one watch per kind for the whole process.

use std::future::Future;
use std::pin::Pin;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Pod, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::{Api, Client};

use crate::runtime::Informer;

/// A future driving one informer's watch.
pub type Driver = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// The shared informers, cluster-wide except leases (only `kube-node-lease`).
#[derive(Clone)]
pub struct Informers {
    /// Pods.
    pub pods: Informer<Pod>,
    /// Nodes.
    pub nodes: Informer<Node>,
    /// Services.
    pub services: Informer<Service>,
    /// Endpoints.
    pub endpoints: Informer<Endpoints>,
    /// EndpointSlices.
    pub slices: Informer<EndpointSlice>,
    /// ReplicaSets.
    pub replicasets: Informer<ReplicaSet>,
    /// Deployments.
    pub deployments: Informer<Deployment>,
    /// Namespaces.
    pub namespaces: Informer<Namespace>,
    /// ServiceAccounts.
    pub serviceaccounts: Informer<ServiceAccount>,
    /// Node heartbeat Leases in `kube-node-lease`.
    pub leases: Informer<Lease>,
}

impl Informers {
    /// Creates every informer; the returned drivers must be spawned for the caches to fill.
    pub fn new(client: &Client) -> (Informers, Vec<Driver>) {
        let mut drivers: Vec<Driver> = Vec::new();
        macro_rules! informer {
            ($api:expr) => {{
                let (inf, drive) = Informer::new($api);
                drivers.push(Box::pin(drive));
                inf
            }};
        }
        let c = client.clone();
        let informers = Informers {
            pods: informer!(Api::<Pod>::all(c.clone())),
            nodes: informer!(Api::<Node>::all(c.clone())),
            services: informer!(Api::<Service>::all(c.clone())),
            endpoints: informer!(Api::<Endpoints>::all(c.clone())),
            slices: informer!(Api::<EndpointSlice>::all(c.clone())),
            replicasets: informer!(Api::<ReplicaSet>::all(c.clone())),
            deployments: informer!(Api::<Deployment>::all(c.clone())),
            namespaces: informer!(Api::<Namespace>::all(c.clone())),
            serviceaccounts: informer!(Api::<ServiceAccount>::all(c.clone())),
            leases: informer!(Api::<Lease>::namespaced(c, "kube-node-lease")),
        };
        (informers, drivers)
    }
}
