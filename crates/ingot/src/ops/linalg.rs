//! Public operations: linalg family.
