//! What a data plane implements, and the nftables one.
//!
//! The runner owns watching, change tracking, coalescing and retries; a [`Backend`] only
//! realises a [`ServiceTable`]. The userspace backend implements the same trait.

use async_trait::async_trait;

use crate::conntrack::{stale_udp_flows, Conntrack, ConntrackCommand};
use crate::model::tracker::ServiceChange;
use crate::model::ServiceTable;
use crate::nftables::{script, Nft, NftCommand, RenderConfig};

/// A failed sync: the runner retries with a full sync after a backoff.
pub type SyncError = Box<dyn std::error::Error + Send + Sync>;

/// A data plane that realises the service table on this node.
#[async_trait]
pub trait Backend: Send {
    /// Realises all of `table`, replacing whatever an earlier instance left behind. The runner
    /// calls this first, and again after any failed sync.
    async fn sync_full(&mut self, table: &ServiceTable) -> Result<(), SyncError>;

    /// Realises `changes` (never empty) on top of what the last successful sync realised;
    /// `table` is the whole table after them.
    async fn sync_changes(&mut self, table: &ServiceTable, changes: &[ServiceChange]) -> Result<(), SyncError>;

    /// Removes everything this backend installed (on shutdown).
    async fn cleanup(&mut self) -> Result<(), SyncError>;
}

/// The nftables backend: one atomic `nft -f` transaction per sync.
pub struct NftablesBackend {
    nft: Box<dyn Nft>,
    conntrack: Box<dyn Conntrack>,
    config: RenderConfig,
}

impl NftablesBackend {
    /// A backend that runs the real `nft` and `conntrack` in the current network namespace.
    pub fn new(config: RenderConfig) -> Self {
        NftablesBackend::with_tools(config, Box::new(NftCommand::new()), Box::new(ConntrackCommand))
    }

    /// A backend with the given tools (tests pass fakes; other namespaces pass wrappers).
    pub fn with_tools(config: RenderConfig, nft: Box<dyn Nft>, conntrack: Box<dyn Conntrack>) -> Self {
        NftablesBackend { nft, conntrack, config }
    }
}

#[async_trait]
impl Backend for NftablesBackend {
    async fn sync_full(&mut self, table: &ServiceTable) -> Result<(), SyncError> {
        self.nft.apply(&script::full(table, &self.config)).await?;
        Ok(())
    }

    async fn sync_changes(&mut self, _table: &ServiceTable, changes: &[ServiceChange]) -> Result<(), SyncError> {
        let s = script::incremental(changes, &self.config);
        if !s.is_empty() {
            self.nft.apply(&s).await?;
        }
        // Only after the rules stopped sending new packets to the old endpoints; a failure here
        // leaves flows to time out on their own, so it is logged rather than retried.
        for flow in stale_udp_flows(changes) {
            if let Err(e) = self.conntrack.delete(&flow).await {
                tracing::warn!(error = %e, "cannot clear stale UDP conntrack entries");
            }
        }
        Ok(())
    }

    async fn cleanup(&mut self) -> Result<(), SyncError> {
        self.nft.apply(&script::removal()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::FlowFilter;
    use crate::model::fixtures::{node, ready, service, slice};
    use crate::model::tracker::ChangeTracker;
    use crate::nftables::apply::fake::FakeNft;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    #[derive(Default, Clone)]
    struct FakeConntrack(Arc<Mutex<Vec<FlowFilter>>>);

    #[async_trait]
    impl Conntrack for FakeConntrack {
        async fn delete(&self, filter: &FlowFilter) -> Result<(), String> {
            self.0.lock().unwrap().push(filter.clone());
            Ok(())
        }
    }

    struct SharedNft(Arc<FakeNft>);

    #[async_trait]
    impl Nft for SharedNft {
        async fn apply(&self, script: &str) -> Result<(), crate::nftables::NftError> {
            self.0.apply(script).await
        }
    }

    #[tokio::test]
    async fn a_udp_endpoint_leaving_updates_rules_then_clears_its_conntrack_entries() {
        let nft = Arc::new(FakeNft::default());
        let ct = FakeConntrack::default();
        let config = RenderConfig {
            pod_cidr: "10.244.0.0/16".parse().unwrap(),
        };
        let mut backend = NftablesBackend::with_tools(config, Box::new(SharedNft(nft.clone())), Box::new(ct.clone()));
        let svc = Arc::new(service(
            "dns",
            json!({"ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}),
        ));
        let two = Arc::new(slice(
            "dns",
            "a",
            json!([{"name": "dns", "port": 53, "protocol": "UDP"}]),
            json!([ready("10.244.0.5", "node-a"), ready("10.244.0.6", "node-a")]),
        ));
        let one = Arc::new(slice(
            "dns",
            "a",
            json!([{"name": "dns", "port": 53, "protocol": "UDP"}]),
            json!([ready("10.244.0.6", "node-a")]),
        ));
        let mut tracker = ChangeTracker::new(node());
        tracker.observe(std::slice::from_ref(&svc), &[two]);
        backend.sync_full(tracker.table()).await.unwrap();
        let changes = tracker.observe(&[svc], &[one]);
        backend.sync_changes(tracker.table(), &changes).await.unwrap();

        let scripts = nft.scripts.lock().unwrap();
        assert_eq!(scripts.len(), 2);
        assert!(scripts[1].contains("delete chain ip podway endpoint-default/dns/udp/dns__10.244.0.5/53"));
        let cleared = ct.0.lock().unwrap();
        assert_eq!(cleared.len(), 1);
        assert_eq!(cleared[0].dst_nat, Some("10.244.0.5".parse().unwrap()));
    }

    #[tokio::test]
    async fn cleanup_removes_the_table() {
        let nft = Arc::new(FakeNft::default());
        let config = RenderConfig {
            pod_cidr: "10.244.0.0/16".parse().unwrap(),
        };
        let mut backend = NftablesBackend::with_tools(
            config,
            Box::new(SharedNft(nft.clone())),
            Box::new(FakeConntrack::default()),
        );
        backend.cleanup().await.unwrap();
        assert_eq!(nft.scripts.lock().unwrap()[0], script::removal());
    }
}
