//! IP and port allocators for Services. Being written.
