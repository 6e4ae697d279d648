//! The endpoints controllers: Services → Endpoints and EndpointSlices.
//!
//! - [`compute`]: which pods, ports and conditions (pure).
//! - [`slices`]: slice create/update/delete plans (pure).
//! - [`controller`]: watches and API writes.

pub mod compute;
pub mod controller;
pub mod slices;

pub use controller::run;
