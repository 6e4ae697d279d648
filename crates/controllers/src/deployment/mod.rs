//! The Deployment controller.

pub mod hash;
pub mod rollout;
pub mod status;
