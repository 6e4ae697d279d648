//! `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward`: find the pod's node agent
//! (see `kubelet::location`) and proxy to it (see `kubelet::proxy`).

use std::sync::Arc;

use http::Response;
use podway_api::status::ApiError;
use serde_json::Value;

use super::object::{key, not_found};
use super::{Api, Call};
use crate::kubelet::location::{self, Stream};
use crate::kubelet::proxy;
use crate::registry::Strategy;
use crate::request::ResourcePath;
use crate::response::Body;

/// A Node by name, from the watch cache.
fn node_lookup(api: &Api) -> impl Fn(&str) -> Option<Value> + '_ {
    move |name: &str| {
        let nodes = api.strategy("", "nodes")?;
        api.cache.get(&nodes.info().key("", name)).map(|n| (*n).clone())
    }
}

/// `GET pods/{name}/log`: options are decoded and validated before the pod is looked up, as
/// upstream does.
pub async fn log(api: &Arc<Api>, s: &dyn Strategy, rp: &ResourcePath, call: &Call) -> Result<Response<Body>, ApiError> {
    let options = location::parse_log_options(&call.query)?;
    location::validate_log_options(&options, &rp.name)?;
    let pod = api.cache.get(&key(s, rp)).ok_or_else(|| not_found(s, rp))?;
    let target = location::log_location(&pod, &options, node_lookup(api), api.kubelet.default_port)?;
    proxy::logs(&api.kubelet, target, &rp.name).await
}

/// `GET|POST pods/{name}/exec|attach|portforward`: an upgrade proxied to the agent.
pub async fn upgrade(
    api: &Arc<Api>,
    s: &dyn Strategy,
    rp: &ResourcePath,
    kind: Stream,
    call: Call,
) -> Result<Response<Body>, ApiError> {
    let options = location::parse_stream_options(&call.query);
    let pod = api.cache.get(&key(s, rp)).ok_or_else(|| not_found(s, rp))?;
    let target = location::stream_location(
        kind,
        &pod,
        &options,
        call.query.all("ports"),
        node_lookup(api),
        api.kubelet.default_port,
    )?;
    proxy::upgrade(&api.kubelet, target, call.method, &call.headers, call.upgrade).await
}
