//! The README's main command: `ingot generate` with the shipped Shakespeare model, from the
//! repository root, on the CPU. Sampling with seed 1 must continue the prompt with the text
//! the README shows (made on the GPU after training), and bad arguments must fail cleanly.

use std::path::Path;
use std::process::Command;

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .parent()
        .unwrap()
}

fn ingot(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ingot"))
        .args(args)
        .current_dir(repo_root())
        .env("INGOT_DEVICE", "cpu")
        .output()
        .unwrap()
}

#[test]
fn generates_with_the_shipped_model_by_default() {
    // The README's sample: 200 tokens (the draws depend on the length asked for).
    let out = ingot(&[
        "generate",
        "--prompt",
        "ROMEO:",
        "--max-tokens",
        "200",
        "--seed",
        "1",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        text.starts_with("ROMEO: a young man too, a poor tied clock,\nIn a word, a man"),
        "{text:?}"
    );
    assert!(err.contains("tokens/s"), "{err}");
}

#[test]
fn a_missing_model_folder_is_a_clear_error() {
    let out = ingot(&["generate", "--model", "no/such/folder", "--max-tokens", "3"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no/such/folder"), "{err}");
    let out = ingot(&["generate", "--device", "tpu:0", "--max-tokens", "3"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tpu:0"));
}
