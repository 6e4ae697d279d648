//! The typed shape of the beta Ingresses (`networking.k8s.io/v1beta1`, `extensions/v1beta1`),
//! which k8s-openapi no longer carries: strict decoding finds unknown fields with it, and the
//! OpenAPI documents describe the kind from it (kubectl reads them before `apply`).
//!
//! Both betas have this one shape. Parts identical to v1 (TLS, status) reuse v1's types.
//! Optional fields are described as their inner type (`schemars(with)`): kube-openapi writes no
//! `anyOf [T, null]`, and `kubectl explain` would not follow one.

use k8s_openapi::api::core::v1::TypedLocalObjectReference;
use k8s_openapi::api::networking::v1::{IngressStatus, IngressTLS};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Ingress is a collection of rules that allow inbound connections to reach the endpoints
/// defined by a backend. Deprecated: use networking.k8s.io/v1 Ingress.
#[derive(Debug, Default, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BetaIngress {
    /// APIVersion defines the versioned schema of this representation of an object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub api_version: Option<String>,
    /// Kind is a string value representing the REST resource this object represents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub kind: Option<String>,
    /// Standard object's metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Spec is the desired state of the Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "BetaIngressSpec")]
    pub spec: Option<BetaIngressSpec>,
    /// Status is the current state of the Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "IngressStatus")]
    pub status: Option<IngressStatus>,
}

/// IngressSpec describes the Ingress the user wishes to exist.
#[derive(Debug, Default, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "io.k8s.api.networking.v1beta1.IngressSpec")]
pub struct BetaIngressSpec {
    /// A default backend capable of servicing requests that don't match any rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "BetaIngressBackend")]
    pub backend: Option<BetaIngressBackend>,
    /// The name of the IngressClass cluster resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub ingress_class_name: Option<String>,
    /// A list of host rules used to configure the Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<BetaIngressRule>")]
    pub rules: Option<Vec<BetaIngressRule>>,
    /// TLS configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<IngressTLS>")]
    pub tls: Option<Vec<IngressTLS>>,
}

/// IngressRule represents the rules mapping the paths under a specified host to the related
/// backend services.
#[derive(Debug, Default, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "io.k8s.api.networking.v1beta1.IngressRule")]
pub struct BetaIngressRule {
    /// Host is the fully qualified domain name of a network host, as defined by RFC 3986.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub host: Option<String>,
    /// HTTP rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "BetaHttpIngressRuleValue")]
    pub http: Option<BetaHttpIngressRuleValue>,
}

/// HTTPIngressRuleValue is a list of http selectors pointing to backends.
#[derive(Debug, Default, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "io.k8s.api.networking.v1beta1.HTTPIngressRuleValue")]
pub struct BetaHttpIngressRuleValue {
    /// A collection of paths that map requests to backends.
    #[serde(default)]
    pub paths: Vec<BetaHttpIngressPath>,
}

/// HTTPIngressPath associates a path with a backend.
#[derive(Debug, Default, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "io.k8s.api.networking.v1beta1.HTTPIngressPath")]
pub struct BetaHttpIngressPath {
    /// Path is matched against the path of an incoming request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub path: Option<String>,
    /// PathType determines the interpretation of the Path matching: Exact, Prefix or
    /// ImplementationSpecific (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub path_type: Option<String>,
    /// Backend defines the referenced service endpoint to which the traffic will be forwarded.
    #[serde(default)]
    pub backend: BetaIngressBackend,
}

/// IngressBackend describes all endpoints for a given service and port.
#[derive(Debug, Default, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "io.k8s.api.networking.v1beta1.IngressBackend")]
pub struct BetaIngressBackend {
    /// Specifies the name of the referenced service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub service_name: Option<String>,
    /// Specifies the port of the referenced service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "IntOrString")]
    pub service_port: Option<IntOrString>,
    /// Resource is an ObjectRef to another resource in the Ingress's namespace (not with a service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "TypedLocalObjectReference")]
    pub resource: Option<TypedLocalObjectReference>,
}
