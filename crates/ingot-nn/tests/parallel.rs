//! Two processes as a world (the test starts two copies of itself). Decoder::shard: each
//! loads every architecture's fixture, computes the logits whole, splits the model across
//! the world and must get the same logits (prefill and cached decoding). Data parallelism:
//! gradients averaged over the halves of a batch equal the whole batch's.

mod common;
use common::fixture;
use ingot::{Array, DType};
use ingot_nn::models::{Decoder, KvCache};
use std::process::Command;

fn f64s(a: &Array) -> Vec<f64> {
    ingot::astype(a, DType::F64)
        .unwrap()
        .to_vec::<f64>()
        .unwrap()
}

fn close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
            "{what}: logit {i}: {x} vs {y}"
        );
    }
}

fn rank_scenario() {
    let world = ingot::distributed::init().unwrap();
    assert_eq!(world.size(), 2);
    let ids = Array::from_slice(&[3i64, 17, 5, 40, 2, 9, 33], &[1, 7]).unwrap();
    let next = Array::from_slice(&[12i64], &[1, 1]).unwrap();
    for name in [
        "hf-llama",
        "hf-llama3",
        "hf-mistral",
        "hf-qwen2",
        "hf-qwen3",
        "hf-phi3",
        "hf-gemma2",
    ] {
        for fused in [false, true] {
            let mut m = Decoder::from_pretrained(fixture(name), DType::F32).unwrap();
            if fused {
                m.fuse_projections().unwrap();
            }
            let mut cache = KvCache::new();
            let whole = f64s(&m.forward_cached(&ids, Some(&mut cache)).unwrap());
            let whole_next = f64s(&m.forward_cached(&next, Some(&mut cache)).unwrap());
            m.shard(&world).unwrap();
            assert!(m.tensor_parallel().is_some());
            let mut cache = KvCache::new();
            let what = format!("{name} (joined projections: {fused}) rank {}", world.rank());
            close(
                &f64s(&m.forward_cached(&ids, Some(&mut cache)).unwrap()),
                &whole,
                &what,
            );
            close(
                &f64s(&m.forward_cached(&next, Some(&mut cache)).unwrap()),
                &whole_next,
                &format!("{what}, one cached token"),
            );
            // Each process caches its own key-value heads: half of them.
            let (k, _) = cache.buffers(0).unwrap();
            assert_eq!(k.shape()[1], m.config.num_key_value_heads / 2, "{what}");
            let e = m
                .save_pretrained(std::env::temp_dir())
                .unwrap_err()
                .to_string();
            assert!(e.contains("split"), "{e}");
        }
    }
    data_parallel(&world);
    println!("rank {}: all checks passed", world.rank());
}

/// Each rank's gradient on its half of a batch, averaged over the world, equals the
/// gradient on the whole batch (the loss is a mean over equal halves), in one bucket or in
/// several.
fn data_parallel(world: &ingot::distributed::Group) {
    use ingot_nn::data_parallel::{average_gradients, DEFAULT_BUCKET_BYTES};
    use ingot_nn::{value_and_grad, Linear};
    let (r, n) = (world.rank(), world.size());
    let w: Vec<f32> = (0..12).map(|i| (i as f32 * 0.37).sin()).collect();
    let b: Vec<f32> = vec![0.1, -0.2, 0.3];
    let x: Vec<f32> = (0..8 * 4).map(|i| (i as f32 * 0.11).cos()).collect();
    let y: Vec<f32> = (0..8 * 3).map(|i| (i as f32 * 0.23).sin()).collect();
    let mut model = Linear::from_arrays(
        Array::from_slice(&w, &[3, 4]).unwrap(),
        Some(Array::from_slice(&b, &[3]).unwrap()),
    )
    .unwrap();
    let grads_on = |model: &mut Linear, rows: std::ops::Range<usize>| {
        let xs = Array::from_slice(&x[rows.start * 4..rows.end * 4], &[rows.len(), 4]).unwrap();
        let ys = Array::from_slice(&y[rows.start * 3..rows.end * 3], &[rows.len(), 3]).unwrap();
        value_and_grad(model, |m: &Linear| {
            let d = ingot::subtract(&ingot_nn::Unary::forward(m, &xs)?, &ys)?;
            ingot::mean(&ingot::multiply(&d, &d)?, None, false)
        })
        .unwrap()
        .1
    };
    let whole = grads_on(&mut model, 0..8);
    let mine = grads_on(&mut model, r * 8 / n..(r + 1) * 8 / n);
    for bucket in [DEFAULT_BUCKET_BYTES, 40] {
        let avg = average_gradients(&mine, Some(world), bucket).unwrap();
        assert_eq!(avg.len(), whole.len());
        for (k, g) in &whole {
            close(
                &f64s(&avg[k]),
                &f64s(g),
                &format!("averaged gradient of {k}, buckets of {bucket} bytes"),
            );
        }
    }
}

#[test]
fn rank() {
    if std::env::var_os("INGOT_TEST_RANK_CHILD").is_some() {
        rank_scenario();
    }
}

#[test]
fn two_processes_split_every_architecture_and_average_gradients() {
    let exe = std::env::current_exe().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let handles: Vec<_> = (0..2)
        .map(|r| {
            let mut c = Command::new(&exe);
            c.args(["--exact", "rank", "--nocapture", "--test-threads", "1"])
                .env("INGOT_TEST_RANK_CHILD", "1")
                .env("RANK", r.to_string())
                .env("WORLD_SIZE", "2")
                .env("INGOT_STORE", format!("127.0.0.1:{port}"))
                .env("INGOT_DIST_TIMEOUT", "60")
                .env_remove("INGOT_TEST_DEVICE");
            std::thread::spawn(move || c.output().unwrap())
        })
        .collect();
    for (r, h) in handles.into_iter().enumerate() {
        let o = h.join().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.status.success() && text.contains("all checks passed"),
            "rank {r}:\n{text}"
        );
    }
}

#[test]
fn a_world_of_one_leaves_the_model_whole() {
    let world = ingot::distributed::init().unwrap();
    if world.size() != 1 {
        return;
    }
    let mut m = Decoder::from_pretrained(fixture("hf-llama"), DType::F32).unwrap();
    m.shard(&world).unwrap();
    assert!(m.tensor_parallel().is_none());
}
