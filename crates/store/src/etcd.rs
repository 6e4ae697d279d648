//! etcd backend. Being written.
