//! Public operations: sort family.
