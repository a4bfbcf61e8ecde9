//! `ingot launch`: the environment each rank gets, output prefixed by rank, a failing rank
//! stopping the others, and tensor-parallel generation across two processes giving the
//! one-process text.

mod common;
use common::{exe, repo_root};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn ingot(args: &[&str]) -> std::process::Output {
    Command::new(exe())
        .args(args)
        .current_dir(repo_root())
        .env("INGOT_DEVICE", "cpu")
        .env_remove("RANK")
        .env_remove("WORLD_SIZE")
        .output()
        .unwrap()
}

#[test]
fn each_rank_gets_its_environment_and_prefix() {
    let o = ingot(&[
        "launch",
        "-n",
        "3",
        "--",
        "sh",
        "-c",
        "echo $RANK/$WORLD_SIZE/$LOCAL_RANK $INGOT_STORE $NCCL_NVLS_ENABLE$TORCH_SYMM_MEM_DISABLE_MULTICAST$NVSHMEM_DISABLE_NVLS",
    ]);
    assert!(o.status.success(), "{o:?}");
    let out = String::from_utf8_lossy(&o.stdout);
    for r in 0..3 {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("[rank {r}] {r}/3/{r} 127.0.0.1:")))
            .unwrap_or_else(|| panic!("no line of rank {r} in {out}"));
        assert!(line.ends_with(" 011"), "multicast variables in {line:?}");
    }
}

#[test]
fn a_failing_rank_stops_the_others() {
    let t = Instant::now();
    let o = ingot(&[
        "launch",
        "-n",
        "3",
        "--",
        "sh",
        "-c",
        "if [ $RANK = 1 ]; then echo broken >&2; exit 5; fi; sleep 60; echo finished",
    ]);
    assert_eq!(o.status.code(), Some(5), "{o:?}");
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t.elapsed()
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("[rank 1] broken") && err.contains("rank 1 failed"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("finished"));
}

#[test]
fn bad_launches_are_refused() {
    let o = ingot(&["launch", "-n", "0", "--", "true"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("at least one process"));
    let o = ingot(&["launch", "-n", "2", "--", "/no/such/program"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot start"));
    let o = ingot(&["generate", "--tp", "2", "--max-tokens", "2"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("ingot launch -n 2"));
}

#[test]
fn tensor_parallel_generation_gives_the_same_text() {
    let args = [
        "generate",
        "--prompt",
        "KING HENRY:",
        "--max-tokens",
        "32",
        "--temperature",
        "0",
    ];
    let one = ingot(&args);
    assert!(one.status.success(), "{one:?}");
    let mut launch = vec!["launch", "-n", "2", "--"];
    let exe = exe();
    launch.push(exe.to_str().unwrap());
    launch.extend(args);
    launch.extend(["--tp", "2"]);
    let two = ingot(&launch);
    assert!(two.status.success(), "{two:?}");
    let text: String = String::from_utf8_lossy(&two.stdout)
        .lines()
        .map(|l| {
            let l = l.strip_prefix("[rank 0] ").expect("only rank 0 prints");
            format!("{l}\n")
        })
        .collect();
    assert_eq!(text, String::from_utf8_lossy(&one.stdout));
    assert!(String::from_utf8_lossy(&two.stderr).contains("[rank 1] LlamaForCausalLM"));
}

/// A made-up corpus of works (two of them the held-out plays' names), for training runs
/// that need no download.
fn corpus(dir: &Path) {
    let words = [
        "the", "king", "shall", "come", "to", "night", "and", "my", "lord", "is", "gone", "what",
        "say", "you", "good", "sir", "a", "crown", "of", "gold", "love", "doth",
    ];
    std::fs::create_dir_all(dir).unwrap();
    let mut s = 12345u64;
    for name in [
        "macbeth",
        "twelfth_night",
        "hamlet",
        "othello",
        "tempest",
        "lear",
    ] {
        let mut text = String::new();
        for i in 0..3000 {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            text.push_str(words[(s >> 33) as usize % words.len()]);
            text.push(if i % 11 == 10 { '\n' } else { ' ' });
        }
        std::fs::write(dir.join(format!("{name}.txt")), text).unwrap();
    }
}

fn train_config(dir: &Path, data: &Path, out: &Path) -> PathBuf {
    let cfg = serde_json::json!({
        "data": data, "out": out, "vocab_size": 300,
        "model": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                  "num_attention_heads": 2, "num_key_value_heads": 1, "context": 16},
        "train": {"steps": 6, "batch": 4, "lr": 3e-3, "warmup": 2, "eval_every": 3,
                  "eval_batches": 2, "checkpoint_every": 100, "seed": 1}
    });
    let p = dir.join(format!(
        "{}.json",
        out.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&p, cfg.to_string()).unwrap();
    p
}

#[test]
fn data_parallel_training_follows_one_process() {
    let dir = std::env::temp_dir().join(format!("ingot-dp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("works");
    corpus(&data);
    let (one, two) = (dir.join("one"), dir.join("two"));
    let o = ingot(&["train", train_config(&dir, &data, &one).to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    let exe = exe();
    let cfg2 = train_config(&dir, &data, &two);
    let o = ingot(&[
        "launch",
        "-n",
        "2",
        "--",
        exe.to_str().unwrap(),
        "train",
        cfg2.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{o:?}");
    let read = |d: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("training.json")).unwrap()).unwrap()
    };
    let (a, b) = (read(&one), read(&two));
    assert_eq!(b["processes"], 2);
    let (la, lb) = (a["log"].as_array().unwrap(), b["log"].as_array().unwrap());
    assert_eq!(la.len(), lb.len());
    // The same steps on the same batches: the losses agree up to the order of the sums.
    for (x, y) in la.iter().zip(lb) {
        for k in ["train_loss", "val_loss"] {
            let (p, q) = (x[k].as_f64().unwrap(), y[k].as_f64().unwrap());
            assert!((p - q).abs() <= 1e-4 * p.abs(), "{k}: {p} vs {q}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
