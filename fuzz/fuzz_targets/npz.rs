//! Any bytes through the .npz reader: Ok or Err, never a panic, abort or huge allocation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = ingot::io::load_npz_bytes(data) {
        for (_, a) in list {
            let _ = a.to_bytes().expect("an accepted array is readable");
        }
    }
});
