//! Public operations: fft family.
