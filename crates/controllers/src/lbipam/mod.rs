//! LoadBalancer IP allocation, what MetalLB's controller does, built in: every Service of type
//! LoadBalancer without a `loadBalancerClass` (or with [`LOAD_BALANCER_CLASS`]) gets an address
//! from a pool in `status.loadBalancer.ingress` as soon as it exists, or stays pending with a
//! Warning Event saying why. Answering for the address on the node network is the node
//! agents' job (`podway-proxy`'s announcer), not this controller's.
//!
//! - [`pool`]: pools from `--lb-pool` and the `podway-lb-pools` ConfigMap (pure).
//! - [`claim`]: which Services are ours and what they ask for (pure).
//! - [`allocate`]: who gets which address (pure).
//! - [`controller`]: watches, status writes and Events.
//!
//! User documentation: `docs/load-balancer.md`.

pub mod allocate;
pub mod claim;
pub mod controller;
pub mod pool;

pub use claim::LOAD_BALANCER_CLASS;
pub use controller::{run, POOLS_CONFIG_MAP, POOLS_NAMESPACE};
pub use pool::{default_pool, parse_ranges, IpRange, PoolError};
