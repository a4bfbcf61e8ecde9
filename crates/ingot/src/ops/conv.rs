//! Public operations: conv family.
