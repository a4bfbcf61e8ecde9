//! The README's main command: `ingot generate` with the shipped Shakespeare model, from the
//! repository root, on the CPU. Sampling with seed 1 must continue the prompt with the text
//! the README shows, and bad arguments must fail cleanly.

mod common;
use common::{exe, repo_root};
use std::process::Command;

fn ingot(args: &[&str]) -> std::process::Output {
    Command::new(exe())
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
        text.starts_with(
            "ROMEO: he was himself, as his friends.\n\nANTONY.\nIt is a little rioted man"
        ),
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

#[test]
fn greedy_with_a_stop_string_and_the_speed_benchmark() {
    let out = ingot(&[
        "generate",
        "--prompt",
        "ROMEO:",
        "--temperature",
        "0",
        "--max-tokens",
        "40",
        "--stop",
        ",",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!text.trim_end().ends_with(','), "{text:?}");
    assert!(err.contains("(stop string)"), "{err}");
    let out = ingot(&[
        "bench-lm",
        "--model",
        "models/shakespeare",
        "--prompt-tokens",
        "16",
        "--new-tokens",
        "8",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert!(json["decode_tokens_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(json["new_tokens"], 8);
    // A flat cache: no memory grows between the first decode step and the last.
    assert_eq!(
        json["active_bytes_after_first_decode"],
        json["active_bytes_at_end"]
    );
    let out = ingot(&["bench-lm", "--prompt-tokens", "4"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--model DIR or --config FILE"));
}

#[test]
fn a_chat_keeps_the_conversation() {
    // The shipped model with a chat template that writes turns as play dialogue.
    let dir = std::env::temp_dir().join(format!("ingot-cli-chat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(repo_root().join("models/shakespeare").join(f), dir.join(f)).unwrap();
    }
    let template = "{% for m in messages %}{{ 'ROMEO' if m.role == 'user' else 'JULIET' }}.\n{{ m.content }}\n\n{% endfor %}{% if add_generation_prompt %}JULIET.\n{% endif %}";
    std::fs::write(
        dir.join("tokenizer_config.json"),
        serde_json::json!({ "chat_template": template }).to_string(),
    )
    .unwrap();
    let mut child = Command::new(exe())
        .args([
            "chat",
            "--model",
            dir.to_str().unwrap(),
            "--max-tokens",
            "12",
            "--temperature",
            "0",
        ])
        .env("INGOT_DEVICE", "cpu")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"What light through yonder window breaks?\nSpeak again.\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // Two replies, each reported.
    assert_eq!(err.matches("tokens/s after it").count(), 2, "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).trim().is_empty());
    // A folder without a template says so.
    let out = ingot(&["chat", "--model", "models/shakespeare"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no chat template"));
    std::fs::remove_dir_all(&dir).ok();
}
