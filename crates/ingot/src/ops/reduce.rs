//! Public operations: reduce family.
