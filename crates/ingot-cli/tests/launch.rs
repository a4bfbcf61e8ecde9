//! `ingot launch`: the environment each rank gets, output prefixed by rank, a failing rank
//! stopping the others, and tensor-parallel generation across two processes giving the
//! one-process text.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn repo_root() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if built.exists() {
        built
    } else {
        std::env::current_dir().unwrap()
    }
}

fn exe() -> PathBuf {
    let built = PathBuf::from(env!("CARGO_BIN_EXE_ingot"));
    if built.exists() {
        built
    } else {
        repo_root().join(".device/bin/ingot")
    }
}

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
