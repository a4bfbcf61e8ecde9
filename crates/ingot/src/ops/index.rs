//! Public operations: index family.
