//! See lib.rs. Being written.
