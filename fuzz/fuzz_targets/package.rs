//! Any bytes through the package reader: Ok or Err, never a panic, abort or huge
//! allocation; an accepted package runs on zero inputs of each traced signature.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(pkg) = ingot::import_bytes(data) else {
        return;
    };
    for name in pkg.functions() {
        for sig in pkg.signature(name).unwrap_or_default() {
            // Zeros of each input's shape; skip inputs too large to make quickly.
            let xs: Result<Vec<ingot::Array>, _> = sig
                .inputs
                .iter()
                .map(|t| {
                    if t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_none_or(|n| n > 1 << 20) {
                        Err(())
                    } else {
                        ingot::zeros(&t.shape, t.dtype).map_err(|_| ())
                    }
                })
                .collect();
            if let Ok(xs) = xs {
                if let Ok(ys) = pkg.call(name, &xs) {
                    let _ = ingot::eval(&ys);
                }
            }
        }
    }
});
