//! Decoder::shard across two processes: the test starts two copies of itself as a world;
//! each loads every architecture's fixture, computes the logits whole, splits the model
//! across the world and must get the same logits (prefill and cached decoding).

use ingot::{Array, DType};
use ingot_nn::models::{Decoder, KvCache};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let root = if built.exists() {
        built
    } else {
        PathBuf::from("crates/ingot-nn/tests/fixtures")
    };
    root.join(name)
}

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
    println!("rank {}: all checks passed", world.rank());
}

#[test]
fn rank() {
    if std::env::var_os("INGOT_TEST_RANK_CHILD").is_some() {
        rank_scenario();
    }
}

#[test]
fn every_architecture_splits_across_two_processes() {
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
