//! Which kinds the server serves, for the controllers that act on every kind (garbage
//! collector, namespace deletion).

use kube::discovery::{verbs, ApiCapabilities, ApiResource, Discovery, Scope};
use kube::Client;

/// A served kind the generic controllers can act on.
#[derive(Debug, Clone)]
pub struct Served {
    /// Group, version, kind and plural (preferred version of the group).
    pub resource: ApiResource,
    /// Namespaced (true) or cluster-scoped.
    pub namespaced: bool,
}

/// Kinds the garbage collector and namespace controller leave alone: Events are
/// numerous, never own anything and expire on their own (upstream ignores them too).
fn ignored(r: &ApiResource) -> bool {
    r.plural == "events" && (r.group.is_empty() || r.group == "events.k8s.io")
}

/// Every kind (preferred version per group) that supports list, watch and delete.
pub async fn deletable(client: &Client) -> Result<Vec<Served>, kube::Error> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut out = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if ignored(&ar) || !supports(&caps) {
                continue;
            }
            out.push(Served {
                namespaced: caps.scope == Scope::Namespaced,
                resource: ar,
            });
        }
    }
    Ok(out)
}

fn supports(caps: &ApiCapabilities) -> bool {
    [verbs::LIST, verbs::WATCH, verbs::DELETE]
        .iter()
        .all(|v| caps.supports_operation(v))
}
