//! The podway binary. Being written.
fn main() {}
