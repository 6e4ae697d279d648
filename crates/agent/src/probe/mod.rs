//! Readiness, liveness and startup probes (being written).
