//! Public operations: shape family.
