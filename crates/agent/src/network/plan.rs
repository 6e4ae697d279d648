//! The node network as plain data: which nodes exist, their names, addresses and pod ranges.
//! Computed from a [`NetworkConfig`] without touching the machine, so `podway node ip NODE`
//! and the executor agree by construction.

use std::net::Ipv4Addr;

use super::cidr::Ipv4Cidr;
use super::names;

/// Length of each node's pod range, as kube-controller-manager's `--node-cidr-mask-size`
/// defaults to for IPv4: 254 pod addresses per node, far more than the 110 pods a kubelet
/// admits by default.
pub const NODE_POD_PREFIX: u8 = 24;

/// Most nodes a cluster may have. Far beyond what one machine runs; it keeps node names within
/// 63 bytes and host veth names within 15.
pub const MAX_NODES: usize = 1000;

/// What the user chooses about the node network (`podway up --name --nodes ...`). Every range
/// is configurable so two clusters can run side by side on one machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// The cluster's name: prefixes node names and namespace names, and seeds link names.
    pub cluster: String,
    /// How many nodes: the first is the control plane, the rest workers.
    pub nodes: usize,
    /// The node network: the host takes `.1`, node `i` (0-based) takes `.(i+2)`.
    pub node_cidr: Ipv4Cidr,
    /// The pod network: node `i` gets its `i`th /24.
    #[doc(alias = "cluster-cidr")]
    pub pod_cidr: Ipv4Cidr,
    /// The service network: ClusterIPs come from it; the host only blackholes it.
    #[doc(alias = "service-cluster-ip-range")]
    pub service_cidr: Ipv4Cidr,
}

impl Default for NetworkConfig {
    /// kind's defaults for the pod and service ranges (so tutorials' addresses look familiar),
    /// a single node, and a node range unlikely to collide with a home or office network.
    fn default() -> Self {
        Self {
            cluster: "podway".to_string(),
            nodes: 1,
            node_cidr: Ipv4Cidr::new(Ipv4Addr::new(172, 30, 0, 0), 24).expect("valid"),
            pod_cidr: Ipv4Cidr::new(Ipv4Addr::new(10, 244, 0, 0), 16).expect("valid"),
            service_cidr: Ipv4Cidr::new(Ipv4Addr::new(10, 96, 0, 0), 12).expect("valid"),
        }
    }
}

/// Why a [`NetworkConfig`] cannot be planned. Retrying never helps: the configuration must
/// change, and each message says how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The cluster name is not a short DNS label.
    #[error("invalid cluster name {name:?}: {reasons}")]
    InvalidClusterName {
        /// The name as given.
        name: String,
        /// What is wrong with it, Kubernetes' validation wording.
        reasons: String,
    },
    /// Fewer than one or more than [`MAX_NODES`] nodes.
    #[error("a cluster has from 1 to {MAX_NODES} nodes, not {0}")]
    NodeCount(usize),
    /// The node range cannot hold the host, the nodes, and a broadcast address.
    #[error("node CIDR {cidr} has room for {room} nodes (the host takes .1), not {nodes}; use a larger range")]
    NodeRangeTooSmall {
        /// The node range.
        cidr: Ipv4Cidr,
        /// How many nodes were asked for.
        nodes: usize,
        /// How many fit.
        room: u64,
    },
    /// The pod range cannot give every node its own /24.
    #[error("pod CIDR {cidr} holds {room} node ranges of /{NODE_POD_PREFIX}, not {nodes}; use a larger range")]
    PodRangeTooSmall {
        /// The pod range.
        cidr: Ipv4Cidr,
        /// How many nodes were asked for.
        nodes: usize,
        /// How many /24s fit.
        room: u64,
    },
    /// Two of the node, pod and service ranges share addresses.
    #[error("{first} CIDR {first_cidr} overlaps {second} CIDR {second_cidr}; choose disjoint ranges")]
    Overlap {
        /// Which range ("node", "pod" or "service").
        first: &'static str,
        /// Its value.
        first_cidr: Ipv4Cidr,
        /// Which other range.
        second: &'static str,
        /// Its value.
        second_cidr: Ipv4Cidr,
    },
}

/// One node of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    /// Position in the cluster, 0 for the control plane.
    pub index: usize,
    /// The node's name, also its Node object's name and its hostname.
    pub name: String,
    /// Its address on the node network (the Node's InternalIP).
    pub ip: Ipv4Addr,
    /// Its pod range (the Node's `spec.podCIDR`).
    #[doc(alias = "podCIDR")]
    pub pod_cidr: Ipv4Cidr,
    /// Its network namespace.
    pub netns: String,
    /// The host-side end of its veth pair, a port of the bridge.
    pub host_veth: String,
}

/// The node network of one cluster, computed from a [`NetworkConfig`]; see the module docs for
/// what the executor makes of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPlan {
    cluster: String,
    bridge: String,
    host_ip: Ipv4Addr,
    node_cidr: Ipv4Cidr,
    pod_cidr: Ipv4Cidr,
    service_cidr: Ipv4Cidr,
    blackhole_metric: u32,
    nodes: Vec<NodePlan>,
}

impl NetworkPlan {
    /// Plans `config`, or says which setting to change. Pure: nothing on the machine is read.
    pub fn new(config: &NetworkConfig) -> Result<Self, PlanError> {
        let cluster = config.cluster.as_str();
        validate_cluster_name(cluster)?;
        let nodes = config.nodes;
        if nodes == 0 || nodes > MAX_NODES {
            return Err(PlanError::NodeCount(nodes));
        }
        let ranges = [
            ("node", config.node_cidr),
            ("pod", config.pod_cidr),
            ("service", config.service_cidr),
        ];
        for (i, (first, first_cidr)) in ranges.iter().enumerate() {
            for (second, second_cidr) in &ranges[i + 1..] {
                if first_cidr.overlaps(second_cidr) {
                    return Err(PlanError::Overlap {
                        first,
                        first_cidr: *first_cidr,
                        second,
                        second_cidr: *second_cidr,
                    });
                }
            }
        }
        // Network address, host (.1) and broadcast are not node addresses.
        let node_room = config.node_cidr.size().saturating_sub(3);
        if nodes as u64 > node_room {
            return Err(PlanError::NodeRangeTooSmall {
                cidr: config.node_cidr,
                nodes,
                room: node_room,
            });
        }
        let pod_room = if config.pod_cidr.prefix() <= NODE_POD_PREFIX {
            1u64 << (NODE_POD_PREFIX - config.pod_cidr.prefix())
        } else {
            0
        };
        if nodes as u64 > pod_room {
            return Err(PlanError::PodRangeTooSmall {
                cidr: config.pod_cidr,
                nodes,
                room: pod_room,
            });
        }
        let nodes = (0..nodes)
            .map(|index| {
                let name = names::node_name(cluster, index);
                NodePlan {
                    index,
                    ip: config
                        .node_cidr
                        .nth(index as u64 + 2)
                        .expect("checked against node_room"),
                    pod_cidr: config
                        .pod_cidr
                        .subnet(NODE_POD_PREFIX, index as u64)
                        .expect("checked against pod_room"),
                    netns: names::netns_name(&name),
                    host_veth: names::host_veth_name(cluster, index),
                    name,
                }
            })
            .collect();
        Ok(Self {
            cluster: cluster.to_string(),
            bridge: names::bridge_name(cluster),
            host_ip: config.node_cidr.nth(1).expect("checked against node_room"),
            node_cidr: config.node_cidr,
            pod_cidr: config.pod_cidr,
            service_cidr: config.service_cidr,
            blackhole_metric: names::blackhole_metric(cluster),
            nodes,
        })
    }

    /// The cluster's name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The host bridge every node's veth is a port of.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The host's address on the node network (`.1`): what agents use to reach the API server,
    /// and every node's default gateway.
    pub fn host_ip(&self) -> Ipv4Addr {
        self.host_ip
    }

    /// The node network.
    pub fn node_cidr(&self) -> Ipv4Cidr {
        self.node_cidr
    }

    /// The pod network, blackholed on the host.
    pub fn pod_cidr(&self) -> Ipv4Cidr {
        self.pod_cidr
    }

    /// The service network, blackholed on the host.
    pub fn service_cidr(&self) -> Ipv4Cidr {
        self.service_cidr
    }

    /// The metric of this cluster's host blackhole routes (see [`names::blackhole_metric`]).
    pub fn blackhole_metric(&self) -> u32 {
        self.blackhole_metric
    }

    /// The ranges the host blackholes: pod, then service.
    pub fn blackholes(&self) -> [Ipv4Cidr; 2] {
        [self.pod_cidr, self.service_cidr]
    }

    /// Every node, control plane first.
    pub fn nodes(&self) -> &[NodePlan] {
        &self.nodes
    }

    /// The node called `name`, if the cluster has it.
    pub fn node(&self, name: &str) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The node network address of the node called `name` (`podway node ip NODE`).
    pub fn node_ip(&self, name: &str) -> Option<Ipv4Addr> {
        self.node(name).map(|n| n.ip)
    }

    /// Every node's name, control plane first (`podway node list`).
    pub fn node_names(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.name.as_str()).collect()
    }
}

fn validate_cluster_name(name: &str) -> Result<(), PlanError> {
    let mut reasons = podway_api::validation::is_dns1123_label(name);
    if name.len() > names::MAX_CLUSTER_NAME_LEN {
        reasons.push(format!(
            "must be no more than {} characters (node names add \"-control-plane\")",
            names::MAX_CLUSTER_NAME_LEN
        ));
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(PlanError::InvalidClusterName {
            name: name.to_string(),
            reasons: reasons.join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(nodes: usize) -> NetworkConfig {
        NetworkConfig {
            nodes,
            ..NetworkConfig::default()
        }
    }

    #[test]
    fn default_plan_matches_the_architecture_table() {
        let plan = NetworkPlan::new(&config(3)).unwrap();
        assert_eq!(plan.host_ip(), Ipv4Addr::new(172, 30, 0, 1));
        assert_eq!(
            plan.node_names(),
            ["podway-control-plane", "podway-worker", "podway-worker2"]
        );
        let ips: Vec<_> = plan.nodes().iter().map(|n| n.ip.to_string()).collect();
        assert_eq!(ips, ["172.30.0.2", "172.30.0.3", "172.30.0.4"]);
        let pods: Vec<_> = plan.nodes().iter().map(|n| n.pod_cidr.to_string()).collect();
        assert_eq!(pods, ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]);
        assert_eq!(
            plan.blackholes().map(|c| c.to_string()),
            ["10.244.0.0/16", "10.96.0.0/12"]
        );
    }

    #[test]
    fn names_come_from_the_names_module() {
        let plan = NetworkPlan::new(&config(2)).unwrap();
        let worker = plan.node("podway-worker").unwrap();
        assert_eq!(worker.netns, names::netns_name("podway-worker"));
        assert_eq!(worker.host_veth, names::host_veth_name("podway", 1));
        assert_eq!(plan.bridge(), names::bridge_name("podway"));
    }

    #[test]
    fn node_ip_answers_for_known_nodes_only() {
        let plan = NetworkPlan::new(&config(2)).unwrap();
        assert_eq!(plan.node_ip("podway-worker"), Some(Ipv4Addr::new(172, 30, 0, 3)));
        assert_eq!(plan.node_ip("podway-worker2"), None);
    }

    #[test]
    fn invalid_cluster_names_are_rejected_with_kubernetes_wording() {
        for bad in ["", "Podway", "pod_way", "-podway", "a.b"] {
            let err = NetworkPlan::new(&NetworkConfig {
                cluster: bad.into(),
                ..config(1)
            })
            .unwrap_err();
            assert!(matches!(err, PlanError::InvalidClusterName { .. }), "{bad}: {err}");
        }
        let long = "a".repeat(names::MAX_CLUSTER_NAME_LEN + 1);
        let err = NetworkPlan::new(&NetworkConfig {
            cluster: long,
            ..config(1)
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("no more than 49 characters"), "{err}");
        let longest = "a".repeat(names::MAX_CLUSTER_NAME_LEN);
        let plan = NetworkPlan::new(&NetworkConfig {
            cluster: longest,
            ..config(3)
        })
        .unwrap();
        assert!(plan
            .nodes()
            .iter()
            .all(|n| n.name.len() <= 63 && n.netns.len() <= names::MAX_NETNS_NAME_LEN));
    }

    #[test]
    fn zero_nodes_or_too_many_are_rejected() {
        assert_eq!(NetworkPlan::new(&config(0)), Err(PlanError::NodeCount(0)));
        assert_eq!(
            NetworkPlan::new(&config(MAX_NODES + 1)),
            Err(PlanError::NodeCount(MAX_NODES + 1))
        );
    }

    #[test]
    fn a_node_range_too_small_for_the_nodes_is_rejected_with_its_room() {
        let small = NetworkConfig {
            node_cidr: "172.30.0.0/29".parse().unwrap(),
            ..config(6)
        };
        let err = NetworkPlan::new(&small).unwrap_err();
        assert_eq!(
            err,
            PlanError::NodeRangeTooSmall {
                cidr: small.node_cidr,
                nodes: 6,
                room: 5
            }
        );
        let fits = NetworkConfig { nodes: 5, ..small };
        let plan = NetworkPlan::new(&fits).unwrap();
        assert_eq!(plan.nodes()[4].ip, Ipv4Addr::new(172, 30, 0, 6));
    }

    #[test]
    fn a_pod_range_too_small_for_a_slash_24_per_node_is_rejected() {
        let small = NetworkConfig {
            pod_cidr: "10.244.0.0/23".parse().unwrap(),
            ..config(3)
        };
        assert!(matches!(
            NetworkPlan::new(&small),
            Err(PlanError::PodRangeTooSmall { room: 2, .. })
        ));
        let tiny = NetworkConfig {
            pod_cidr: "10.244.0.0/25".parse().unwrap(),
            ..config(1)
        };
        assert!(matches!(
            NetworkPlan::new(&tiny),
            Err(PlanError::PodRangeTooSmall { room: 0, .. })
        ));
    }

    #[test]
    fn overlapping_ranges_are_rejected_naming_both() {
        let bad = NetworkConfig {
            service_cidr: "10.244.128.0/20".parse().unwrap(),
            ..config(1)
        };
        let err = NetworkPlan::new(&bad).unwrap_err().to_string();
        assert_eq!(
            err,
            "pod CIDR 10.244.0.0/16 overlaps service CIDR 10.244.128.0/20; choose disjoint ranges"
        );
    }
}
