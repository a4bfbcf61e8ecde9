//! Any bytes through the .npy reader: Ok or Err, never a panic, abort or huge allocation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = ingot::io::load_npy_bytes(data) {
        // Reading the elements back must work for whatever the reader accepted.
        let _ = a.to_bytes().expect("an accepted array is readable");
    }
});
