//! podway-dns: cluster DNS, the Kubernetes DNS schema (kubernetes/dns `specification.md`)
//! answered the way CoreDNS's kubernetes plugin answers it, with `pods insecure`, TTL 5 and
//! every other name forwarded to the host's resolvers.
//!
//! - [`Records::build`]: a pure function from Services and EndpointSlices to a snapshot of
//!   every answer, pre-encoded; [`RecordsHandle`] swaps snapshots atomically, so a new Service
//!   resolves as soon as its snapshot is stored.
//! - [`answer_into`]: one query to one response from a snapshot, no sockets, no allocation on
//!   the hot path; names outside the cluster come back as [`Outcome::Forward`].
//! - [`serve`] / [`serve_on`]: UDP and TCP sockets around it, forwarding through an
//!   [`Upstream`]; usable without a cluster.
//! - [`run`]: the whole server for a node, watching the API.
//!
//! Not implemented from CoreDNS: wildcard queries (`*`, `any`), `endpoint_pod_names`,
//! zone transfers, autopath, multicluster and zonal names.

#![warn(missing_docs)]

mod answer;
mod names;
mod records;
mod server;
mod upstream;
mod watch;
pub mod wire;

pub use answer::{answer, answer_into, finish_chase, Answer, Chase, Outcome, Transport};
pub use records::{Records, RecordsHandle, ServiceKey};
pub use server::{serve, serve_on, Listeners};
pub use upstream::{Upstream, UpstreamError};
pub use watch::{run, DnsConfig};
