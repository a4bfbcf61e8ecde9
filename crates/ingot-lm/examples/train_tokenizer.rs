//! Trains the byte-level BPE tokenizer on the training works of data/shakespeare (the
//! validation plays are left out) and reports its size, the training time and the tokens per
//! character on the validation plays.
//!
//! ```text
//! scripts/data/fetch_shakespeare.sh
//! cargo run --release -p ingot-lm --example train_tokenizer -- \
//!     [--data data/shakespeare] [--vocab 4096] [--out data/tokenizer.json]
//! ```

use std::time::Instant;

use ingot_lm::data::{read_works, split_works, LmData, DEFAULT_DATA_DIR, VALIDATION_WORKS};
use ingot_lm::tokenizer::{Tokenizer, TrainConfig};

fn main() -> ingot::Result<()> {
    let mut data_dir = DEFAULT_DATA_DIR.to_string();
    let mut vocab = 4096usize;
    let mut out = "data/tokenizer.json".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next().ok_or_else(|| {
                ingot::Error::invalid("train_tokenizer", format!("{name} needs a value"))
            })
        };
        match a.as_str() {
            "--data" => data_dir = value("--data")?,
            "--out" => out = value("--out")?,
            "--vocab" => {
                let v = value("--vocab")?;
                vocab = v.parse().map_err(|e| {
                    ingot::Error::invalid("train_tokenizer", format!("--vocab {v}: {e}"))
                })?;
            }
            _ => ingot::bail!(
                "train_tokenizer",
                "unknown argument {a:?} (--data DIR, --vocab N, --out FILE)"
            ),
        }
    }

    let split = split_works(read_works(&data_dir)?, &VALIDATION_WORKS)?;
    let train_texts: Vec<&str> = split.train.iter().map(|w| w.text.as_str()).collect();
    let train_chars: usize = train_texts.iter().map(|t| t.chars().count()).sum();
    println!(
        "training on {} works ({train_chars} characters), holding out {:?}",
        split.train.len(),
        VALIDATION_WORKS
    );

    let t0 = Instant::now();
    let tok = Tokenizer::train_from_texts(&train_texts, &TrainConfig::new(vocab))?;
    let train_s = t0.elapsed().as_secs_f64();
    if let Some(parent) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(parent).map_err(|e| {
            ingot::Error::io("train_tokenizer", format!("{}: {e}", parent.display()))
        })?;
    }
    tok.save(&out)?;
    let bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    println!(
        "vocab {} tokens, trained in {train_s:.2} s, {out}: {bytes} bytes",
        tok.vocab_size()
    );

    let t0 = Instant::now();
    let data = LmData::from_split(&split, &tok)?;
    let encode_s = t0.elapsed().as_secs_f64();
    let val_chars: usize = split
        .validation
        .iter()
        .map(|w| w.text.chars().count())
        .sum();
    let val_bytes: usize = split.validation.iter().map(|w| w.text.len()).sum();
    let n_val = data.validation_ids().len();
    println!(
        "encoded both splits in {encode_s:.2} s: train {} tokens ({:.3} tokens/char), \
         validation {n_val} tokens",
        data.train_ids().len(),
        data.train_ids().len() as f64 / train_chars as f64
    );
    println!(
        "validation plays {:?}: {val_chars} chars, {:.3} tokens/char ({:.2} chars/token, {:.3} tokens/byte)",
        data.validation_works(),
        n_val as f64 / val_chars as f64,
        val_chars as f64 / n_val as f64,
        n_val as f64 / val_bytes as f64
    );
    let sample = "To be, or not to be, that is the question:";
    let ids = tok.encode(sample)?;
    let pieces: Vec<String> = ids
        .iter()
        .map(|&i| tok.id_to_token(i).unwrap_or_default())
        .collect();
    println!("{sample:?} -> {} tokens {pieces:?}", ids.len());
    Ok(())
}
