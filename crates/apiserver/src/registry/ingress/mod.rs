//! Ingress, served in three versions over one storage: `networking.k8s.io/v1` (stored as is)
//! and the removed betas old manifests still name, `networking.k8s.io/v1beta1` and
//! `extensions/v1beta1`, converted on every read and write (`podway_api::conversion::ingress`)
//! and answered with kube-apiserver's deprecation `Warning`.
//!
//! - [`beta`]: the betas' typed shape (strict decoding, OpenAPI).
//! - [`admission`]: the DefaultIngressClass admission plugin.

pub mod admission;
pub mod beta;

use std::sync::Arc;

use k8s_openapi::api::networking::v1 as networking;
use podway_api::conversion::ingress::{self as convert, EXTENSIONS_V1BETA1, NETWORKING_V1BETA1};
use podway_api::conversion::lifecycle::{Lifecycle, Release};
use serde_json::Value;

use super::core::info;
use super::{check_typed, FieldCheck, ResourceInfo, Strategy, Subresource};
use crate::cache::WatchCache;

/// Where IngressClasses are stored (read by the default-class admission).
const INGRESS_CLASSES: &str = "/registry/networking.k8s.io/ingressclasses/";

/// `networking.k8s.io/v1beta1 Ingress`'s lifecycle markers.
pub const NETWORKING_V1BETA1_LIFECYCLE: Lifecycle = Lifecycle {
    api_version: NETWORKING_V1BETA1,
    kind: "Ingress",
    deprecated: Release::v1(19),
    removed: Some(Release::v1(22)),
    replacement: Some((convert::V1, "Ingress")),
};

/// `extensions/v1beta1 Ingress`'s lifecycle markers.
pub const EXTENSIONS_V1BETA1_LIFECYCLE: Lifecycle = Lifecycle {
    api_version: EXTENSIONS_V1BETA1,
    kind: "Ingress",
    deprecated: Release::v1(14),
    removed: Some(Release::v1(22)),
    replacement: Some((convert::V1, "Ingress")),
};

/// What every Ingress version shares.
const fn ingress_info(group: &'static str, version: &'static str, storage_group: &'static str) -> ResourceInfo {
    ResourceInfo {
        version,
        short_names: &["ing"],
        subresources: &[Subresource::Status],
        uses_generation: true,
        storage_group,
        ..info(group, "Ingress", "ingresses", "ingress")
    }
}

/// One served version of Ingress.
pub(super) struct IngressStrategy {
    info: ResourceInfo,
    /// `None` for v1, the storage version; the betas' lifecycle otherwise.
    beta: Option<Lifecycle>,
}

/// `networking.k8s.io/v1`, the storage version.
pub(super) fn v1() -> Arc<dyn Strategy> {
    Arc::new(IngressStrategy {
        info: ingress_info("networking.k8s.io", "v1", ""),
        beta: None,
    })
}

/// The betas, listed after every other kind so that their groups come last in discovery:
/// kubectl then resolves `ingress` to `networking.k8s.io/v1` (upstream, while it still served
/// `extensions`, ranked it first and `kubectl get ingress` warned).
pub(super) fn betas() -> Vec<Arc<dyn Strategy>> {
    vec![
        Arc::new(IngressStrategy {
            info: ingress_info("networking.k8s.io", "v1beta1", "networking.k8s.io"),
            beta: Some(NETWORKING_V1BETA1_LIFECYCLE),
        }),
        Arc::new(IngressStrategy {
            // No short name: kubectl would warn on every `get ing` that `ing` could also mean
            // ingresses.extensions.
            info: ResourceInfo {
                short_names: &[],
                ..ingress_info("extensions", "v1beta1", "networking.k8s.io")
            },
            beta: Some(EXTENSIONS_V1BETA1_LIFECYCLE),
        }),
    ]
}

impl Strategy for IngressStrategy {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    fn check_fields(&self, obj: &Value) -> FieldCheck {
        match self.beta {
            None => check_typed::<networking::Ingress>(obj),
            Some(_) => check_typed::<beta::BetaIngress>(obj),
        }
    }

    fn view_to_storage(&self, obj: Value) -> Value {
        match self.beta {
            None => obj,
            Some(_) => convert::to_v1(&obj),
        }
    }

    fn storage_to_view(&self, obj: Value) -> Value {
        match &self.beta {
            None => obj,
            Some(l) => convert::from_v1(&obj, l.api_version),
        }
    }

    fn default(&self, obj: &mut Value) {
        convert::default_path_types(obj);
    }

    fn admit_create(&self, obj: &mut Value, cache: &WatchCache) {
        let (classes, _) = cache.list(INGRESS_CLASSES);
        admission::admit(obj, &classes);
    }

    fn deprecation_warning(&self) -> Option<String> {
        self.beta.map(|l| l.warning())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn beta_strategies_store_v1_and_show_their_own_version() {
        for s in betas() {
            let beta = json!({"apiVersion": s.info().api_version(), "kind": "Ingress", "metadata": {"name": "x"},
                              "spec": {"backend": {"serviceName": "a", "servicePort": 80}}});
            let stored = s.view_to_storage(beta.clone());
            assert_eq!(stored["apiVersion"], "networking.k8s.io/v1");
            assert_eq!(stored["spec"]["defaultBackend"]["service"]["port"]["number"], 80);
            assert_eq!(s.storage_to_view(stored), beta);
            assert_eq!(s.info().key("ns", "x"), v1().info().key("ns", "x"));
        }
    }

    #[test]
    fn only_the_betas_warn_and_each_names_its_own_version() {
        assert_eq!(v1().deprecation_warning(), None);
        let warnings: Vec<String> = betas().iter().filter_map(|s| s.deprecation_warning()).collect();
        assert_eq!(
            warnings,
            [
                "networking.k8s.io/v1beta1 Ingress is deprecated in v1.19+, unavailable in v1.22+; use networking.k8s.io/v1 Ingress",
                "extensions/v1beta1 Ingress is deprecated in v1.14+, unavailable in v1.22+; use networking.k8s.io/v1 Ingress",
            ]
        );
    }

    #[test]
    fn beta_strict_decoding_knows_service_name_and_rejects_v1_fields() {
        let s = &betas()[0];
        let ok = json!({"apiVersion": "networking.k8s.io/v1beta1", "kind": "Ingress", "metadata": {"name": "x"},
            "spec": {"rules": [{"http": {"paths": [{"path": null, "backend": {"serviceName": "a", "servicePort": 80}}]}}]}});
        assert_eq!(s.check_fields(&ok), FieldCheck::default());
        let v1_shaped = json!({"metadata": {"name": "x"}, "spec": {"defaultBackend": {"service": {"name": "a"}}}});
        assert_eq!(
            s.check_fields(&v1_shaped).unknown,
            vec!["spec.defaultBackend".to_string()]
        );
    }
}
