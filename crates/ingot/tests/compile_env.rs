//! `INGOT_DISABLE_COMPILE=1`: in its own test binary, because it sets a process-wide
//! environment variable that would change the other compile tests.

use ingot::Array;

#[test]
fn disabling_by_environment_calls_the_function() {
    let c = ingot::compile(|a: &[Array]| Ok(vec![ingot::add(&a[0], 1.0)?]));
    let x = Array::from_slice(&[1.0f32], &[1]).unwrap();
    std::env::set_var(ingot::transforms::DISABLE_ENV, "1");
    let y = c.call(std::slice::from_ref(&x)).unwrap();
    let g = c.graph(std::slice::from_ref(&x)).unwrap();
    std::env::remove_var(ingot::transforms::DISABLE_ENV);
    assert_eq!(y[0].to_vec::<f32>().unwrap(), [2.0]);
    assert_eq!(g.num_ops(), 1);
    assert_eq!(
        c.stats(),
        ingot::transforms::CompileStats { traces: 1, hits: 0 }
    );
}
