//! Tensor-parallel layers checked in one process: every rank's part is built, the parts'
//! results are joined by hand as the collectives would join them (a concatenation or a
//! sum), and the result must equal the unsplit layer's. A world of one runs the layers with
//! their collectives, which hold the whole layer there.

mod common;
use common::*;
use ingot::{Array, DType};
use ingot_nn::{Embedding, Linear, ShardedEmbedding, ShardedLinear, Unary};

fn close(a: &Array, b: &Array, what: &str) {
    assert_eq!(a.shape(), b.shape(), "{what}");
    let (x, y) = (to_f64(a), to_f64(b));
    for (i, (p, q)) in x.iter().zip(&y).enumerate() {
        assert!(
            (p - q).abs() <= 1e-5 * (1.0 + q.abs()),
            "{what}: element {i}: {p} vs {q}"
        );
    }
}

/// The sum of the parts' terms, as an all_sum would give it.
fn sum_all(terms: impl IntoIterator<Item = Array>) -> Array {
    terms
        .into_iter()
        .reduce(|s, t| ingot::add(&s, &t).unwrap())
        .expect("at least one part")
}

fn random(rng: &mut Rng, shape: &[usize]) -> Array {
    let n: usize = shape.iter().product();
    array_from_f64(&rng.normals(n, 1.0), shape, DType::F32)
}

#[test]
fn split_linear_layers_equal_the_whole_layer() {
    let mut rng = Rng::new(5);
    let (inp, out) = (8, 12);
    let full = Linear::from_arrays(
        random(&mut rng, &[out, inp]),
        Some(random(&mut rng, &[out])),
    )
    .unwrap();
    let x = random(&mut rng, &[2, 3, inp]);
    let want = full.forward(&x).unwrap();
    for n in [1, 2, 4] {
        // Column-parallel: the parts' outputs side by side.
        let parts: Vec<Array> = (0..n)
            .map(|r| {
                ShardedLinear::part(&full, true, r, n)
                    .unwrap()
                    .forward_local(&x)
                    .unwrap()
            })
            .collect();
        let joined = ingot::concatenate(&parts, Some(-1)).unwrap();
        close(&joined, &want, &format!("column-parallel in {n} parts"));
        // Row-parallel: each part takes its slice of the input features; the terms are
        // summed and the bias added once.
        let xs = ingot::split(&x, ingot::SplitSpec::Sections(n), -1).unwrap();
        let sum = sum_all(xs.iter().enumerate().map(|(r, xr)| {
            let p = ShardedLinear::part(&full, false, r, n).unwrap();
            p.forward_local(xr).unwrap()
        }));
        let got = ingot::add(sum, &full.bias.as_ref().unwrap().value).unwrap();
        close(&got, &want, &format!("row-parallel in {n} parts"));
    }
}

#[test]
fn a_split_mlp_needs_one_sum() {
    // up (column-parallel), relu, down (row-parallel): each part runs alone and one sum
    // joins them, as Megatron's MLP does.
    let mut rng = Rng::new(6);
    let (h, inter) = (6, 16);
    let up = Linear::from_arrays(
        random(&mut rng, &[inter, h]),
        Some(random(&mut rng, &[inter])),
    )
    .unwrap();
    let down =
        Linear::from_arrays(random(&mut rng, &[h, inter]), Some(random(&mut rng, &[h]))).unwrap();
    let x = random(&mut rng, &[5, h]);
    let want = down
        .forward(&ingot::maximum(up.forward(&x).unwrap(), 0.0).unwrap())
        .unwrap();
    for n in [2, 4] {
        let sum = sum_all((0..n).map(|r| {
            let u = ShardedLinear::part(&up, true, r, n).unwrap();
            let d = ShardedLinear::part(&down, false, r, n).unwrap();
            let a = ingot::maximum(u.forward_local(&x).unwrap(), 0.0).unwrap();
            d.forward_local(&a).unwrap()
        }));
        let got = ingot::add(sum, &down.bias.as_ref().unwrap().value).unwrap();
        close(&got, &want, &format!("MLP in {n} parts"));
    }
}

#[test]
fn a_split_embedding_equals_the_whole_table() {
    let mut rng = Rng::new(7);
    let full = Embedding {
        weight: ingot_nn::Param::new(random(&mut rng, &[12, 5])),
    };
    let ids = Array::from_slice(&[0i64, 11, 5, 6, 3, 9], &[2, 3]).unwrap();
    let want = full.forward(&ids).unwrap();
    for n in [1, 2, 3, 4] {
        let sum = sum_all((0..n).map(|r| {
            let p = ShardedEmbedding::part(&full, r, n).unwrap();
            p.forward_local(&ids).unwrap()
        }));
        close(&sum, &want, &format!("embedding in {n} parts"));
    }
}

#[test]
fn layers_in_a_world_of_one_hold_everything() {
    let mut rng = Rng::new(8);
    let world = ingot::distributed::init().unwrap();
    if world.size() != 1 {
        return;
    }
    let full =
        Linear::from_arrays(random(&mut rng, &[4, 6]), Some(random(&mut rng, &[4]))).unwrap();
    let x = random(&mut rng, &[3, 6]);
    let want = full.forward(&x).unwrap();
    for column in [true, false] {
        let s = ShardedLinear::new(&full, column, &world).unwrap();
        close(&s.forward(&x).unwrap(), &want, &format!("column {column}"));
    }
}

#[test]
fn uneven_splits_are_refused() {
    let mut rng = Rng::new(9);
    let full = Linear::from_arrays(random(&mut rng, &[10, 6]), None).unwrap();
    let e = ShardedLinear::part(&full, true, 0, 4)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("split evenly") && e.contains("AllToSharded"),
        "{e}"
    );
    let e = ShardedLinear::part(&full, false, 5, 4)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("part 5 of 4"), "{e}");
}
