//! [`ServiceAllocator`]: cluster IPs and node ports for Service creates, updates and
//! deletes, the way kube-apiserver's Service storage does it
//! (pkg/registry/core/service/storage/alloc.go).

use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::core::v1::Service;
use podway_api::service::{
    cluster_ips, health_check_node_port, needs_health_check, node_ports, normalize_cluster_ips, patch_allocated_values,
    service_type, CLUSTER_IP_NONE,
};
use podway_api::status::ApiError;
use podway_api::validation::{go_slice, parse_ip_sloppy, FieldError, FieldErrorKind};
use serde_json::Value;

use super::families::{init_ip_family_fields, is_matching_prefer_dual_stack};
use super::ip::{CidrError, IpAllocator};
use super::port::{PortAllocator, PortRangeError};

/// Why a Service could not get its IPs or ports.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AllocError {
    /// The request asks for something it cannot have (an IP out of range, a taken
    /// nodePort); becomes 422 Invalid with these causes. Retrying the same request fails
    /// the same way.
    #[error("invalid: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", "))]
    Invalid(Vec<FieldError>),
    /// The pool is exhausted or a health-check port could not be had; becomes 500 with
    /// `Internal error occurred: <message>`, as in Kubernetes. Retrying helps only after
    /// Services are deleted.
    #[error("{0}")]
    Internal(String),
}

impl AllocError {
    /// The `Status` the client sees for Service `name`.
    pub fn into_api_error(self, name: &str) -> ApiError {
        match self {
            AllocError::Invalid(errs) => ApiError::invalid("", "Service", name, &errs),
            AllocError::Internal(message) => ApiError::internal(message),
        }
    }
}

/// What one operation took from the pools, so it can be given back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allocated {
    /// Cluster IPs taken.
    pub ips: Vec<Ipv4Addr>,
    /// Node ports (including health-check ports) taken.
    pub node_ports: Vec<i32>,
}

impl Allocated {
    /// Whether nothing was taken.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty() && self.node_ports.is_empty()
    }
}

/// An update's effect on the pools, not final until [`ServiceAllocator::commit`] (the
/// update was stored: free what the old object held and the new one does not) or
/// [`ServiceAllocator::rollback`] (it was not: free what the update took).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use = "an update must be committed or rolled back"]
pub struct PendingUpdate {
    /// Taken by the update; freed on rollback.
    pub allocated: Allocated,
    /// Held by the old object only; freed on commit.
    pub to_release: Allocated,
}

/// The cluster's Service IP and NodePort pools.
///
/// Not synchronised: the API server keeps it behind one mutex and holds that mutex from
/// allocation until the object is stored (or the allocation given back), so two creates
/// never see the same free IP.
#[derive(Debug, Clone)]
pub struct ServiceAllocator {
    ips: IpAllocator,
    ports: PortAllocator,
}

/// A configuration error in the service CIDR or node port range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The service CIDR is not an IPv4 CIDR.
    #[error(transparent)]
    Cidr(#[from] CidrError),
    /// The node port range is malformed.
    #[error(transparent)]
    Ports(#[from] PortRangeError),
}

/// Allocation steps taken so far by one operation, undone if a later step fails.
#[derive(Default)]
struct Op {
    taken: Allocated,
    deferred: Allocated,
}

fn node_port_error(index: usize, port: i32, err: impl ToString) -> AllocError {
    AllocError::Invalid(vec![FieldError::invalid(
        format!("spec.ports[{index}].nodePort"),
        Value::from(port),
        err.to_string(),
    )])
}

fn should_allocate_node_ports(svc: &Service) -> bool {
    match service_type(svc) {
        "NodePort" => true,
        "LoadBalancer" => svc
            .spec
            .as_ref()
            .and_then(|s| s.allocate_load_balancer_node_ports)
            .unwrap_or(true),
        _ => false,
    }
}

fn wants_node_ports(svc: &Service) -> bool {
    matches!(service_type(svc), "NodePort" | "LoadBalancer")
}

impl ServiceAllocator {
    /// Pools over `cidr` (e.g. `10.96.0.0/12`) and `port_range` (e.g. `30000-32767`).
    pub fn new(cidr: &str, port_range: &str) -> Result<Self, ConfigError> {
        Ok(ServiceAllocator {
            ips: IpAllocator::new(cidr)?,
            ports: PortAllocator::new(port_range)?,
        })
    }

    /// Repeatable random choices, for tests.
    pub fn with_seed(self, seed: u64) -> Self {
        ServiceAllocator {
            ips: self.ips.with_seed(seed),
            ports: self.ports.with_seed(seed.wrapping_add(1)),
        }
    }

    /// The IP pool.
    pub fn ips(&self) -> &IpAllocator {
        &self.ips
    }

    /// The NodePort pool.
    pub fn ports(&self) -> &PortAllocator {
        &self.ports
    }

    /// Rebuilds both pools from the stored Services, e.g. after a restart. Values outside
    /// the ranges or held twice are reported (as `namespace/name: what`), not fatal: the
    /// objects stay as they are, as with Kubernetes' repair controllers.
    pub fn restore(&mut self, existing: &[Service]) -> Vec<String> {
        self.ips.clear();
        self.ports.clear();
        let mut problems = Vec::new();
        for svc in existing {
            let who = format!(
                "{}/{}",
                svc.metadata.namespace.as_deref().unwrap_or(""),
                svc.metadata.name.as_deref().unwrap_or("")
            );
            if service_type(svc) != "ExternalName" {
                for ip in cluster_ips(svc).iter().filter(|ip| *ip != CLUSTER_IP_NONE) {
                    match parse_ip_sloppy(ip) {
                        Some(IpAddr::V4(v4)) => {
                            if let Err(e) = self.ips.allocate(v4) {
                                problems.push(format!("{who}: clusterIP {ip}: {e}"));
                            }
                        }
                        _ => problems.push(format!("{who}: clusterIP {ip} is not an IPv4 address")),
                    }
                }
            }
            let mut ports = node_ports(svc);
            ports.sort_unstable();
            ports.dedup(); // TCP and UDP ports of one Service may share a nodePort.
            if health_check_node_port(svc) != 0 {
                ports.push(health_check_node_port(svc));
            }
            for port in ports {
                if let Err(e) = self.ports.allocate(port) {
                    problems.push(format!("{who}: nodePort {port}: {e}"));
                }
            }
        }
        problems
    }

    /// Allocates for a new Service, filling `clusterIP`/`clusterIPs`, `ipFamilies`,
    /// `ipFamilyPolicy`, `nodePort`s and `healthCheckNodePort` in `svc`. Explicit values
    /// must be in range and free. On error nothing stays taken. Call after
    /// [`podway_api::service::default_service`]; give the result to [`release`] if the
    /// Service is then not stored.
    ///
    /// [`release`]: ServiceAllocator::release
    pub fn allocate_create(&mut self, svc: &mut Service) -> Result<Allocated, AllocError> {
        normalize_cluster_ips(svc, None);
        init_ip_family_fields(svc, None).map_err(AllocError::Invalid)?;
        let mut op = Op::default();
        let result = self.alloc_cluster_ips(svc, &mut op).and_then(|()| {
            if wants_node_ports(svc) {
                self.init_node_ports(svc, &mut op)?;
            }
            if needs_health_check(svc) {
                self.alloc_health_check_port(svc, &mut op)?;
            }
            Ok(())
        });
        match result {
            Ok(()) => Ok(op.taken),
            Err(e) => {
                self.release(&op.taken);
                Err(e)
            }
        }
    }

    /// Gives back what [`allocate_create`](ServiceAllocator::allocate_create) took, when
    /// the create failed later.
    pub fn release(&mut self, allocated: &Allocated) {
        for ip in &allocated.ips {
            self.ips.release(*ip);
        }
        for port in &allocated.node_ports {
            self.ports.release(*port);
        }
    }

    /// Frees everything a deleted Service held.
    pub fn release_service(&mut self, svc: &Service) {
        if service_type(svc) != "ExternalName" && !is_headless_ips(svc) {
            for ip in cluster_ips(svc) {
                if let Some(IpAddr::V4(v4)) = parse_ip_sloppy(ip) {
                    self.ips.release(v4);
                }
            }
        }
        for port in node_ports(svc) {
            self.ports.release(port);
        }
        if needs_health_check(svc) && health_check_node_port(svc) > 0 {
            self.ports.release(health_check_node_port(svc));
        }
    }

    /// Allocates for an update of `old` to `new`, filling `new` like
    /// [`allocate_create`](ServiceAllocator::allocate_create) does. Values a replace left
    /// out are kept from `old`; becoming ExternalName gives the IP up, leaving it takes a
    /// new one; becoming NodePort or LoadBalancer takes node ports, leaving gives them up;
    /// unchanged node ports stay. Nothing is freed until [`commit`]; on error nothing stays
    /// taken. Call after [`podway_api::service::prepare_for_update`].
    ///
    /// [`commit`]: ServiceAllocator::commit
    pub fn allocate_update(&mut self, old: &Service, new: &mut Service) -> Result<PendingUpdate, AllocError> {
        patch_allocated_values(new, old);
        normalize_cluster_ips(new, Some(old));
        init_ip_family_fields(new, Some(old)).map_err(AllocError::Invalid)?;
        let mut op = Op::default();
        match self.update_steps(old, new, &mut op) {
            Ok(()) => Ok(PendingUpdate {
                allocated: op.taken,
                to_release: op.deferred,
            }),
            Err(e) => {
                self.release(&op.taken);
                Err(e)
            }
        }
    }

    /// The update was stored: frees what only the old object held.
    pub fn commit(&mut self, pending: PendingUpdate) {
        self.release(&pending.to_release);
    }

    /// The update was not stored: frees what it took.
    pub fn rollback(&mut self, pending: PendingUpdate) {
        self.release(&pending.allocated);
    }

    fn update_steps(&mut self, old: &Service, new: &mut Service, op: &mut Op) -> Result<(), AllocError> {
        // Cluster IPs.
        let (old_ty, new_ty) = (service_type(old).to_string(), service_type(new).to_string());
        if !is_matching_prefer_dual_stack(new, Some(old)) {
            if old_ty == "ExternalName" && new_ty != "ExternalName" {
                self.alloc_cluster_ips(new, op)?;
            } else if !is_headless_ips(old) && old_ty != "ExternalName" && new_ty == "ExternalName" {
                for ip in cluster_ips(old) {
                    if let Some(IpAddr::V4(v4)) = parse_ip_sloppy(ip) {
                        op.deferred.ips.push(v4);
                    }
                }
            }
        }

        // Node ports.
        if wants_node_ports(old) && matches!(new_ty.as_str(), "ExternalName" | "ClusterIP") {
            op.deferred.node_ports.extend(node_ports(old));
        }
        if wants_node_ports(new) {
            self.update_node_ports(old, new, op)?;
        }

        // Health-check port.
        match (needs_health_check(old), needs_health_check(new)) {
            (false, true) => self.alloc_health_check_port(new, op)?,
            (true, false) => op.deferred.node_ports.push(health_check_node_port(old)),
            _ => {}
        }
        Ok(())
    }

    fn alloc_cluster_ips(&mut self, svc: &mut Service, op: &mut Op) -> Result<(), AllocError> {
        if service_type(svc) == "ExternalName" || cluster_ips(svc).first().is_some_and(|ip| ip == CLUSTER_IP_NONE) {
            return Ok(());
        }
        let spec = svc.spec.get_or_insert_with(Default::default);
        let families = spec.ip_families.clone().unwrap_or_default();
        let ips = spec.cluster_ips.get_or_insert_with(Vec::new);
        while ips.len() < families.len() {
            ips.push(String::new()); // a marker: allocate this one
        }
        for (i, family) in families.iter().enumerate() {
            if family != "IPv4" {
                continue; // refused earlier unless headless, which allocates nothing
            }
            let requested = ips[i].clone();
            let ip = if requested.is_empty() {
                self.ips
                    .allocate_next()
                    .map_err(|e| AllocError::Internal(format!("failed to allocate a serviceIP: {e}")))?
            } else {
                let failed = |detail: String| {
                    AllocError::Invalid(vec![FieldError::with_go_value(
                        FieldErrorKind::Invalid,
                        "spec.clusterIPs",
                        go_slice("string", Some(ips.as_slice())),
                        format!("failed to allocate IP {requested}: {detail}"),
                    )])
                };
                let Some(IpAddr::V4(v4)) = parse_ip_sloppy(&requested) else {
                    return Err(failed(format!("{requested} is not an IPv4 address")));
                };
                self.ips.allocate(v4).map_err(|e| failed(e.to_string()))?;
                v4
            };
            op.taken.ips.push(ip);
            ips[i] = ip.to_string();
            if i == 0 {
                spec.cluster_ip = Some(ip.to_string());
            }
        }
        Ok(())
    }

    fn take_port(&mut self, port: i32, op: &mut Op) -> Result<(), super::port::PortError> {
        self.ports.allocate(port)?;
        op.taken.node_ports.push(port);
        Ok(())
    }

    fn next_port(&mut self, op: &mut Op) -> Result<i32, super::port::PortError> {
        let port = self.ports.allocate_next()?;
        op.taken.node_ports.push(port);
        Ok(port)
    }

    /// `initNodePorts`: ports sharing a port number (TCP and UDP 53) share one nodePort.
    fn init_node_ports(&mut self, svc: &mut Service, op: &mut Op) -> Result<(), AllocError> {
        let allocate_new = should_allocate_node_ports(svc);
        let spec = svc.spec.get_or_insert_with(Default::default);
        let mut ports = spec.ports.clone().unwrap_or_default();
        let mut by_port: std::collections::BTreeMap<i32, i32> = Default::default();
        for i in 0..ports.len() {
            let np = ports[i].node_port.unwrap_or(0);
            if np == 0 && !allocate_new {
                continue; // no new ports, but explicit requests are honoured
            }
            let number = ports[i].port;
            match by_port.get(&number).copied() {
                None => {
                    let requested = ports
                        .iter()
                        .find(|p| p.port == number && p.node_port.unwrap_or(0) != 0)
                        .and_then(|p| p.node_port)
                        .unwrap_or(0);
                    let got = if requested != 0 {
                        self.take_port(requested, op)
                            .map_err(|e| node_port_error(i, requested, e))?;
                        requested
                    } else {
                        self.next_port(op)
                            .map_err(|e| AllocError::Internal(format!("failed to allocate a nodePort: {e}")))?
                    };
                    ports[i].node_port = Some(got);
                    by_port.insert(number, got);
                }
                Some(shared) if np != shared => {
                    if np == 0 {
                        ports[i].node_port = Some(shared);
                    } else {
                        self.take_port(np, op).map_err(|e| node_port_error(i, np, e))?;
                    }
                }
                Some(_) => {}
            }
        }
        spec.ports = Some(ports);
        Ok(())
    }

    /// `updateNodePorts`: keeps nodePorts the old object held, takes new ones, and frees
    /// (on commit) old ones no longer used.
    fn update_node_ports(&mut self, old: &Service, new: &mut Service, op: &mut Op) -> Result<(), AllocError> {
        let old_ports = node_ports(old);
        let allocate_new = should_allocate_node_ports(new);
        let spec = new.spec.get_or_insert_with(Default::default);
        let mut ports = spec.ports.clone().unwrap_or_default();
        let mut taken_here = std::collections::BTreeSet::new();
        let mut seen: Vec<(String, i32)> = Vec::new();
        for (i, port) in ports.iter_mut().enumerate() {
            let np = port.node_port.unwrap_or(0);
            if np == 0 && !allocate_new {
                continue;
            }
            let np = if np != 0 {
                if !old_ports.contains(&np) && !taken_here.contains(&np) {
                    self.take_port(np, op).map_err(|e| node_port_error(i, np, e))?;
                    taken_here.insert(np);
                }
                np
            } else {
                let got = self
                    .next_port(op)
                    .map_err(|e| AllocError::Internal(format!("failed to allocate a nodePort: {e}")))?;
                port.node_port = Some(got);
                got
            };
            let key = (port.protocol.clone().unwrap_or_default(), np);
            if seen.contains(&key) {
                return Err(AllocError::Internal(format!(
                    "duplicate nodePort: {{{} {}}}",
                    key.0, key.1
                )));
            }
            seen.push(key);
        }
        spec.ports = Some(ports);
        let new_ports = node_ports(new);
        op.deferred
            .node_ports
            .extend(old_ports.into_iter().filter(|p| !new_ports.contains(p)));
        Ok(())
    }

    fn alloc_health_check_port(&mut self, svc: &mut Service, op: &mut Op) -> Result<(), AllocError> {
        let requested = health_check_node_port(svc);
        if requested != 0 {
            self.take_port(requested, op).map_err(|e| {
                AllocError::Internal(format!(
                    "failed to allocate requested HealthCheck NodePort {requested}: {e}"
                ))
            })?;
        } else {
            let got = self
                .next_port(op)
                .map_err(|e| AllocError::Internal(format!("failed to allocate a HealthCheck NodePort 0: {e}")))?;
            svc.spec.get_or_insert_with(Default::default).health_check_node_port = Some(got);
        }
        Ok(())
    }
}

/// Headless by its first cluster IP, the test the allocator (unlike validation) uses.
fn is_headless_ips(svc: &Service) -> bool {
    cluster_ips(svc).first().is_some_and(|ip| ip == CLUSTER_IP_NONE)
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
