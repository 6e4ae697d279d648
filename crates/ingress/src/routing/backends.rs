//! A Service backend (name and port) to the addresses to send to: the ready endpoints of the
//! Service's EndpointSlices, on the port the slice names for the Service port.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::ServiceBackendPort;

/// Services and their slices by (namespace, name), for lookups during one build.
pub struct Catalog<'a> {
    services: HashMap<(&'a str, &'a str), &'a Service>,
    slices: HashMap<(&'a str, &'a str), Vec<&'a EndpointSlice>>,
}

/// Why a backend has nothing to send to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// The Service does not exist.
    NoService,
    /// The Service has no such port.
    NoPort(String),
    /// The Service is an ExternalName (podway routes to endpoints only).
    ExternalName,
    /// No ready endpoint.
    NoEndpoints,
}

impl Unavailable {
    /// What is wrong, to follow "backend Service ns/name".
    pub fn describe(&self) -> String {
        match self {
            Unavailable::NoService => "does not exist".into(),
            Unavailable::NoPort(p) => format!("has no port {p}"),
            Unavailable::ExternalName => "is an ExternalName Service (podway routes to endpoints only)".into(),
            Unavailable::NoEndpoints => "has no ready endpoints".into(),
        }
    }
}

impl<'a> Catalog<'a> {
    /// Index `services` and `slices`.
    pub fn new(services: &'a [Service], slices: &'a [EndpointSlice]) -> Catalog<'a> {
        let key = |m: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
            (m.namespace.as_deref().unwrap_or(""), m.name.as_deref().unwrap_or(""))
        };
        let services = services.iter().map(|s| (key(&s.metadata), s)).collect();
        let mut by_service: HashMap<(&str, &str), Vec<&EndpointSlice>> = HashMap::new();
        for slice in slices {
            let owner = slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kubernetes.io/service-name"));
            if let Some(owner) = owner {
                by_service
                    .entry((slice.metadata.namespace.as_deref().unwrap_or(""), owner.as_str()))
                    .or_default()
                    .push(slice);
            }
        }
        Catalog {
            services,
            slices: by_service,
        }
    }

    /// The first port of Service `namespace/name` (the `default-backend` annotation names a
    /// Service without a port, and ingress-nginx takes its first).
    pub fn first_port(&self, namespace: &str, name: &str) -> ServiceBackendPort {
        let number = self
            .services
            .get(&(namespace, name))
            .and_then(|s| s.spec.as_ref()?.ports.as_ref()?.first().map(|p| p.port));
        ServiceBackendPort { name: None, number }
    }

    /// The ready endpoints of Service `namespace/name` on `port`, sorted.
    pub fn endpoints(
        &self,
        namespace: &str,
        name: &str,
        port: &ServiceBackendPort,
    ) -> Result<Vec<SocketAddr>, Unavailable> {
        let service = self.services.get(&(namespace, name)).ok_or(Unavailable::NoService)?;
        let spec = service.spec.as_ref();
        if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
            return Err(Unavailable::ExternalName);
        }
        let ports = spec.and_then(|s| s.ports.as_ref()).map(Vec::as_slice).unwrap_or(&[]);
        let wanted = ports
            .iter()
            .find(|p| match (&port.name, port.number) {
                (Some(n), _) if !n.is_empty() => p.name.as_deref() == Some(n.as_str()),
                (_, Some(num)) => p.port == num,
                _ => false,
            })
            .ok_or_else(|| {
                Unavailable::NoPort(
                    port.name
                        .clone()
                        .filter(|n| !n.is_empty())
                        .unwrap_or_else(|| port.number.map(|n| n.to_string()).unwrap_or_default()),
                )
            })?;
        let port_name = wanted.name.as_deref().unwrap_or("");
        let mut out = Vec::new();
        for slice in self.slices.get(&(namespace, name)).into_iter().flatten() {
            let Some(number) = slice
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref().unwrap_or("") == port_name)
                .and_then(|p| p.port)
            else {
                continue;
            };
            let Ok(number) = u16::try_from(number) else { continue };
            for e in &slice.endpoints {
                let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                if !ready {
                    continue;
                }
                for a in &e.addresses {
                    if let Ok(ip) = a.parse::<IpAddr>() {
                        out.push(SocketAddr::new(ip, number));
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        if out.is_empty() {
            return Err(Unavailable::NoEndpoints);
        }
        Ok(out)
    }
}
