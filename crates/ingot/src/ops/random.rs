//! Public operations: random family.
