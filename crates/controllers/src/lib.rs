//! podway's controllers. Each is an ordinary Kubernetes API client (kube-rs watchers): it
//! watches, waits for its cache to sync, then reconciles level-triggered and idempotently.
#![warn(missing_docs)]
