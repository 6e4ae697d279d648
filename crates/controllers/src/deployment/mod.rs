//! The Deployment controller: Deployments → ReplicaSets named `<deployment>-<hash>`, rolled
//! over with RollingUpdate (maxSurge/maxUnavailable) or Recreate, with revisions, history
//! cleanup and the status `kubectl rollout status` waits on.
//!
//! - [`hash`]: the `pod-template-hash`.
//! - [`rollout`]: surge/unavailable arithmetic and resize plans (pure).
//! - [`status`]: status and conditions (pure).
//! - [`controller`]: watches and API writes.

pub mod controller;
pub mod hash;
pub mod rollout;
pub mod status;

pub use controller::run;
