//! Host memory accounting and the cache of freed large buffers. One test function, so no
//! other test of this binary allocates while it counts.

use ingot::{memory, Array};

#[test]
fn freed_large_buffers_are_cached_reused_and_released() {
    // Host buffers are what this counts, also when the suites run with a GPU default.
    ingot::set_default_device(ingot::Device::Cpu);
    let n = 3 << 20; // 12 MiB of f32: a large (cached) buffer
    let bytes = n * 4;
    let x = Array::from_vec((0..n).map(|i| (i % 977) as f32 - 488.0).collect(), &[n]).unwrap();
    memory::clear_cache();
    assert_eq!(memory::cache_memory(), 0);
    let base = memory::active_memory();
    memory::reset_peak_memory();

    // A kernel output: counted while alive, cached (a whole size class) when freed.
    let y = ingot::multiply(&x, 3.0).unwrap();
    y.eval().unwrap();
    assert_eq!(memory::active_memory(), base + bytes);
    assert!(memory::peak_memory() >= base + bytes);
    drop(y);
    assert_eq!(memory::active_memory(), base);
    let cached = memory::cache_memory();
    assert!(
        cached >= bytes,
        "cache holds {cached} bytes after freeing {bytes}"
    );

    // The next output of that size class takes it from the cache, and every element is
    // the new result, not the old one.
    let z = ingot::add(&x, 1.0).unwrap();
    z.eval().unwrap();
    assert_eq!(memory::cache_memory(), 0);
    let zv = z.to_vec::<f32>().unwrap();
    let xv = x.to_vec::<f32>().unwrap();
    assert!(zv.iter().zip(&xv).all(|(&a, &b)| a == b + 1.0));
    // A fused compiled kernel writes every element of a reused buffer too.
    drop(z);
    let f = ingot::compile(|a: &[Array]| {
        let t = ingot::tanh(&ingot::multiply(&a[0], 0.01)?)?;
        Ok(vec![ingot::add(&ingot::multiply(&t, &a[0])?, 2.0)?])
    });
    let w = f.call(std::slice::from_ref(&x)).unwrap().remove(0);
    let want: Vec<f32> = xv
        .iter()
        .map(|&v| ((v * 0.01) as f64).tanh() as f32 * v + 2.0)
        .collect();
    let got = w.to_vec::<f32>().unwrap();
    for (i, (&g, &e)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - e).abs() <= 1e-5 * e.abs().max(1.0),
            "fused [{i}] {g} vs {e}"
        );
    }
    drop(w);

    // A limit below one buffer keeps nothing; clear_cache empties it.
    assert!(memory::cache_memory() > 0);
    let old = memory::set_cache_limit(0);
    assert_eq!(memory::cache_memory(), 0);
    let y = ingot::multiply(&x, 3.0).unwrap();
    y.eval().unwrap();
    drop(y);
    assert_eq!(memory::cache_memory(), 0);
    memory::set_cache_limit(old);
    let y = ingot::multiply(&x, 3.0).unwrap();
    y.eval().unwrap();
    drop(y);
    assert!(memory::cache_memory() > 0);
    memory::clear_cache();
    assert_eq!(memory::cache_memory(), 0);

    // Small buffers are never cached.
    let s = ingot::multiply(Array::from_vec(vec![1.0f32; 1000], &[1000]).unwrap(), 2.0).unwrap();
    s.eval().unwrap();
    drop(s);
    assert_eq!(memory::cache_memory(), 0);
}
