//! Cluster IP and NodePort allocation for Services, as kube-apiserver does it.
//!
//! - [`IpAllocator`]: IPv4 addresses of the service CIDR (default `10.96.0.0/12`).
//! - [`PortAllocator`]: ports of the NodePort range (default `30000-32767`).
//! - [`ServiceAllocator`]: both, applied to Service creates, updates and deletes, with
//!   Kubernetes' error messages.
//!
//! Both pools keep a lower "static" band that random allocation uses last, so that values
//! people pick by hand rarely collide with generated ones. Everything here is pure
//! in-memory state; the API server rebuilds it with [`ServiceAllocator::restore`] from the
//! stored Services when it starts.

mod bitmap;
mod families;
mod ip;
mod port;
mod service;

pub use ip::{CidrError, IpAllocator, IpError};
pub use port::{PortAllocator, PortError, PortRangeError};
pub use service::{AllocError, Allocated, ConfigError, PendingUpdate, ServiceAllocator};

/// The service CIDR used when none is configured.
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";
/// The NodePort range used when none is configured.
pub const DEFAULT_NODE_PORT_RANGE: &str = "30000-32767";
