//! OpenAPI v3 documents. Being written.
