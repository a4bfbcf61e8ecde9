//! Public operations: misc family.
