//! The ownership graph and the garbage collector's decisions, as pure data and functions
//! (upstream `graph.go` and `attemptToDeleteItem`/`processDeletingDependentsItem`).

use std::collections::{HashMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// Finalizer: delete dependents first, then the owner (`propagationPolicy: Foreground`).
pub const FOREGROUND: &str = "foregroundDeletion";
/// Finalizer: strip dependents' references to the owner, then delete it (`Orphan`).
pub const ORPHAN: &str = "orphan";

/// One object as the collector sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// `metadata.uid`.
    pub uid: String,
    /// Index of its resource in the collector's resource table.
    pub resource: usize,
    /// Namespace, "" for cluster-scoped.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `metadata.ownerReferences`.
    pub owners: Vec<OwnerReference>,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// `metadata.finalizers`.
    pub finalizers: Vec<String>,
}

/// Objects by uid, plus the reverse edges owner → dependents.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    /// Adds or replaces a node; returns the uids to look at again: the node itself and its
    /// owners old and new (a waiting owner may now be free).
    pub fn upsert(&mut self, node: Node) -> Vec<String> {
        let mut touched = vec![node.uid.clone()];
        if let Some(old) = self.nodes.remove(&node.uid) {
            for o in &old.owners {
                if let Some(d) = self.dependents.get_mut(&o.uid) {
                    d.remove(&old.uid);
                }
                touched.push(o.uid.clone());
            }
        }
        for o in &node.owners {
            self.dependents
                .entry(o.uid.clone())
                .or_default()
                .insert(node.uid.clone());
            touched.push(o.uid.clone());
        }
        self.nodes.insert(node.uid.clone(), node);
        touched
    }

    /// Removes a node; returns its dependents (their owner is gone) and owners (they may
    /// have been waiting for it).
    pub fn remove(&mut self, uid: &str) -> Vec<String> {
        let Some(old) = self.nodes.remove(uid) else {
            return Vec::new();
        };
        let mut touched: Vec<String> = self
            .dependents
            .get(uid)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default();
        for o in &old.owners {
            if let Some(d) = self.dependents.get_mut(&o.uid) {
                d.remove(uid);
                if d.is_empty() {
                    self.dependents.remove(&o.uid);
                }
            }
            touched.push(o.uid.clone());
        }
        touched
    }

    /// The node with this uid.
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    /// Nodes that list `uid` as an owner.
    pub fn dependents_of(&self, uid: &str) -> Vec<&Node> {
        self.dependents
            .get(uid)
            .map(|d| d.iter().filter_map(|u| self.nodes.get(u)).collect())
            .unwrap_or_default()
    }

    /// Uids of the nodes of one resource.
    pub fn uids_of_resource(&self, resource: usize) -> Vec<String> {
        self.nodes
            .values()
            .filter(|n| n.resource == resource)
            .map(|n| n.uid.clone())
            .collect()
    }
}

/// What is known of an owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// Exists and is not waiting on its dependents.
    Solid,
    /// Exists, is being deleted in the foreground: its dependents must go first.
    Waiting,
    /// Gone (404, or a different object with the same name).
    Dangling,
}

/// `DeleteOptions.propagationPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Delete now, collect dependents afterwards.
    Background,
    /// Delete dependents first.
    Foreground,
    /// Keep dependents, strip their references.
    Orphan,
}

/// What to do with a dependent whose owners are in the given states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing: all owners are solid.
    Keep,
    /// Some owners remain: drop the references to these owner uids.
    RemoveOwners(Vec<String>),
    /// No owner remains: delete the object with this policy.
    Delete(Policy),
}

/// `attemptToDeleteItem`'s choice for a live object with owners.
pub fn decide(node: &Node, owners: &[(String, OwnerState)], has_dependents: bool) -> Decision {
    let of = |s: OwnerState| owners.iter().filter(move |(_, st)| *st == s).map(|(u, _)| u.clone());
    let solid = of(OwnerState::Solid).count();
    let dangling: Vec<String> = of(OwnerState::Dangling).collect();
    let waiting: Vec<String> = of(OwnerState::Waiting).collect();
    if dangling.is_empty() && waiting.is_empty() {
        return Decision::Keep;
    }
    if solid > 0 {
        return Decision::RemoveOwners(dangling.into_iter().chain(waiting).collect());
    }
    if !waiting.is_empty() && has_dependents {
        return Decision::Delete(Policy::Foreground);
    }
    let policy = if node.finalizers.iter().any(|f| f == ORPHAN) {
        Policy::Orphan
    } else if node.finalizers.iter().any(|f| f == FOREGROUND) {
        Policy::Foreground
    } else {
        Policy::Background
    };
    Decision::Delete(policy)
}

/// The state of an owner found in the graph.
pub fn state_in_graph(owner: &Node) -> OwnerState {
    if owner.deleting && owner.finalizers.iter().any(|f| f == FOREGROUND) {
        OwnerState::Waiting
    } else {
        OwnerState::Solid
    }
}

/// Whether the dependent's reference to `owner_uid` blocks the owner's foreground deletion.
pub fn blocks(dependent: &Node, owner_uid: &str) -> bool {
    dependent
        .owners
        .iter()
        .any(|o| o.uid == owner_uid && o.block_owner_deletion == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner_ref(uid: &str, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: format!("n-{uid}"),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(block),
        }
    }

    fn node(uid: &str, owners: Vec<OwnerReference>) -> Node {
        Node {
            uid: uid.into(),
            resource: 0,
            namespace: "default".into(),
            name: uid.into(),
            owners,
            deleting: false,
            finalizers: vec![],
        }
    }

    #[test]
    fn removing_an_owner_hands_back_its_dependents() {
        let mut g = Graph::default();
        g.upsert(node("rs", vec![]));
        g.upsert(node("p1", vec![owner_ref("rs", true)]));
        g.upsert(node("p2", vec![owner_ref("rs", true)]));
        let mut touched = g.remove("rs");
        touched.sort();
        assert_eq!(touched, vec!["p1", "p2"]);
        assert_eq!(g.dependents_of("rs").len(), 2);
    }

    #[test]
    fn changing_owners_moves_the_reverse_edge() {
        let mut g = Graph::default();
        g.upsert(node("p", vec![owner_ref("a", true)]));
        g.upsert(node("p", vec![owner_ref("b", true)]));
        assert!(g.dependents_of("a").is_empty());
        assert_eq!(g.dependents_of("b").len(), 1);
    }

    #[test]
    fn an_object_whose_only_owner_is_gone_is_deleted_in_the_background() {
        let n = node("p", vec![owner_ref("rs", true)]);
        assert_eq!(
            decide(&n, &[("rs".into(), OwnerState::Dangling)], false),
            Decision::Delete(Policy::Background)
        );
        assert_eq!(decide(&n, &[("rs".into(), OwnerState::Solid)], false), Decision::Keep);
    }

    #[test]
    fn an_object_with_a_remaining_owner_only_loses_the_dangling_reference() {
        let n = node("p", vec![owner_ref("a", true), owner_ref("b", false)]);
        let d = decide(
            &n,
            &[("a".into(), OwnerState::Dangling), ("b".into(), OwnerState::Solid)],
            false,
        );
        assert_eq!(d, Decision::RemoveOwners(vec!["a".into()]));
    }

    #[test]
    fn dependents_of_a_foreground_deletion_with_their_own_dependents_go_in_the_foreground() {
        let n = node("rs", vec![owner_ref("deploy", true)]);
        assert_eq!(
            decide(&n, &[("deploy".into(), OwnerState::Waiting)], true),
            Decision::Delete(Policy::Foreground)
        );
        assert_eq!(
            decide(&n, &[("deploy".into(), OwnerState::Waiting)], false),
            Decision::Delete(Policy::Background)
        );
    }

    #[test]
    fn only_foreground_deleting_owners_are_waiting() {
        let mut o = node("d", vec![]);
        assert_eq!(state_in_graph(&o), OwnerState::Solid);
        o.deleting = true;
        assert_eq!(state_in_graph(&o), OwnerState::Solid);
        o.finalizers = vec![FOREGROUND.into()];
        assert_eq!(state_in_graph(&o), OwnerState::Waiting);
    }
}
