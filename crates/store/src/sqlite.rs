//! SQLite backend. Being written.
