//! Any bytes through the safetensors reader: Ok or Err, never a panic, abort or huge
//! allocation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((tensors, _meta)) = ingot::io::load_safetensors_bytes(data) {
        for a in tensors.values() {
            let _ = a.to_bytes().expect("an accepted array is readable");
        }
    }
});
