//! `metav1.Status`: the one shape every API error takes.
//!
//! kubectl builds its error text from `reason`, `details.kind`, `details.name` and
//! `details.causes`, so these are filled exactly the way the real API server fills them
//! (see `kubectl-wire.md` §9).

use serde_json::{json, Value};

use crate::validation::FieldError;

/// An error that reaches an API client as a `Status` object with the HTTP code `code`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status code, also `Status.code`.
    pub code: u16,
    /// `Status.reason`, e.g. `NotFound`, `Invalid`; empty for none.
    pub reason: String,
    /// `Status.message`.
    pub message: String,
    /// `Status.details`, if any.
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: None,
        }
    }

    /// 404 for an object: `deployments.apps "web" not found`. `resource` is the plural
    /// resource, `group` its API group ("" for core).
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        let qualified = qualified_resource(group, resource);
        let mut e = Self::new(404, "NotFound", format!("{qualified} \"{name}\" not found"));
        e.details = Some(json!({"name": name, "group": group, "kind": resource}));
        e
    }

    /// 404 for a path or kind the server does not serve.
    pub fn path_not_found() -> Self {
        Self::new(404, "NotFound", "the server could not find the requested resource")
    }

    /// 409 AlreadyExists.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        let qualified = qualified_resource(group, resource);
        let mut e = Self::new(409, "AlreadyExists", format!("{qualified} \"{name}\" already exists"));
        e.details = Some(json!({"name": name, "group": group, "kind": resource}));
        e
    }

    /// 409 Conflict from a stale resourceVersion.
    pub fn conflict(group: &str, resource: &str, name: &str) -> Self {
        let qualified = qualified_resource(group, resource);
        let mut e = Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {qualified} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
        );
        e.details = Some(json!({"name": name, "group": group, "kind": resource}));
        e
    }

    /// 409 Conflict with a free-form message (e.g. a namespace that is terminating).
    pub fn conflict_message(group: &str, resource: &str, name: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(409, "Conflict", message);
        e.details = Some(json!({"name": name, "group": group, "kind": resource}));
        e
    }

    /// 403 Forbidden with a message.
    pub fn forbidden(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let qualified = qualified_resource(group, resource);
        let mut e = Self::new(403, "Forbidden", format!("{qualified} \"{name}\" is forbidden: {why}"));
        e.details = Some(json!({"name": name, "group": group, "kind": resource}));
        e
    }

    /// 422 Invalid: `Service "x" is invalid: spec.ports[0].nodePort: Invalid value: ...`.
    /// `kind` is the Kind (not the resource), as the real server sends it.
    pub fn invalid(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Self {
        let summary = summarize(errors);
        let qualified_kind = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let mut e = Self::new(
            422,
            "Invalid",
            format!("{qualified_kind} \"{name}\" is invalid: {summary}"),
        );
        let causes: Vec<Value> = errors
            .iter()
            .map(|f| json!({"reason": f.kind.reason(), "message": f.message(), "field": f.field}))
            .collect();
        let mut details = json!({"name": name, "kind": kind, "causes": causes});
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        e.details = Some(details);
        e
    }

    /// 422 Invalid for a patch that cannot be applied, with the `patch` cause kubectl prints
    /// as `The request is invalid: patch: Invalid value: ...`.
    pub fn invalid_patch(detail: &str) -> Self {
        let message = format!("Invalid value: {detail}");
        let mut e = Self::new(422, "Invalid", format!("patch: {message}"));
        e.details = Some(json!({"causes": [{"reason": "FieldValueInvalid", "message": message, "field": "patch"}]}));
        e
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(verb: &str, resource: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({verb} {resource})"),
        )
    }

    /// 406 NotAcceptable.
    pub fn not_acceptable(accepted: &str) -> Self {
        Self::new(
            406,
            "NotAcceptable",
            format!("only the following media types are accepted: {accepted}"),
        )
    }

    /// 413 RequestEntityTooLarge.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(content_type: &str, accepted: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format ({content_type}) - accepted media types include: {accepted}"),
        )
    }

    /// 410 Expired: a watch or list from a resourceVersion older than the history kept.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::new(500, "InternalError", format!("Internal error occurred: {message}"));
        e.details = Some(json!({"causes": [{"message": message}]}));
        e
    }

    /// 503 ServiceUnavailable, e.g. a subresource served by a component that is not running.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// The `Status` object sent as the response body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        });
        if !self.reason.is_empty() {
            status["reason"] = json!(self.reason);
        }
        if let Some(d) = &self.details {
            status["details"] = d.clone();
        }
        status
    }
}

/// A `Status` of success, as DELETE of a collection returns it.
pub fn success_status(details: Option<Value>) -> Value {
    let mut s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"});
    if let Some(d) = details {
        s["details"] = d;
    }
    s
}

/// `deployments.apps`, or `services` for the core group.
pub fn qualified_resource(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// The real server's message summary: one error as `field: message`, several as
/// `[field: message, field: message]`.
fn summarize(errors: &[FieldError]) -> String {
    let parts: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    match parts.len() {
        1 => parts[0].clone(),
        _ => format!("[{}]", parts.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_the_qualified_resource() {
        let e = ApiError::not_found("apps", "deployments", "web");
        assert_eq!(e.message, "deployments.apps \"web\" not found");
        assert_eq!(e.to_status()["details"]["kind"], "deployments");
        assert_eq!(e.to_status()["code"], 404);
    }

    #[test]
    fn invalid_carries_kind_name_and_causes() {
        let errs = vec![FieldError::invalid(
            "spec.ports[0].nodePort",
            serde_json::json!(80),
            "provided port is not in the valid range. The range of valid ports is 30000-32767",
        )];
        let e = ApiError::invalid("", "Service", "badnp", &errs);
        assert_eq!(
            e.message,
            "Service \"badnp\" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"
        );
        let s = e.to_status();
        assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueInvalid");
        assert_eq!(s["details"]["causes"][0]["field"], "spec.ports[0].nodePort");
    }
}
