//! Work splits, token streams and batches on a temporary directory of small fake works.

use std::path::{Path, PathBuf};

use ingot::DType;
use ingot_lm::data::{
    encode_works, read_works, split_works, LmData, RandomBatches, SequentialBatches, Work,
};
use ingot_lm::tokenizer::{Tokenizer, TrainConfig, END_OF_TEXT};

/// Five short "works", each with words found in no other, so a leak would show.
const WORKS: [(&str, &str); 5] = [
    (
        "alpha",
        "ALPHA. Friends, Romans, countrymen, lend me your ears;\nI come to bury Caesar, not to praise him.\n",
    ),
    (
        "bravo",
        "BRAVO. All the world's a stage,\nAnd all the men and women merely players;\nThey have their exits and their entrances.\n",
    ),
    (
        "charlie",
        "CHARLIE. Double, double toil and trouble;\nFire burn and cauldron bubble.\nBy the pricking of my thumbs,\nSomething wicked this way comes.\n",
    ),
    (
        "delta",
        "DELTA. The quality of mercy is not strain'd,\nIt droppeth as the gentle rain from heaven\nUpon the place beneath.\n",
    ),
    (
        "echo",
        "ECHO. We are such stuff\nAs dreams are made on, and our little life\nIs rounded with a sleep.\n",
    ),
];

const HELD_OUT: [&str; 2] = ["bravo", "delta"];

/// A fresh directory for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ingot-lm-data-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the fake works, plus files that are not works, into `dir`.
fn write_works(dir: &Path) {
    for (name, text) in WORKS {
        std::fs::write(dir.join(format!("{name}.txt")), text).unwrap();
    }
    std::fs::write(dir.join("LICENSE"), "not a work").unwrap();
    std::fs::write(dir.join("METADATA"), "not a work either").unwrap();
}

fn tokenizer() -> Tokenizer {
    let texts: Vec<&str> = WORKS.iter().map(|(_, t)| *t).collect();
    Tokenizer::train_from_texts(&texts, &TrainConfig::new(300)).unwrap()
}

fn rows(a: &ingot::Array) -> Vec<Vec<i32>> {
    let seq = a.shape()[1];
    a.to_vec::<i32>()
        .unwrap()
        .chunks(seq)
        .map(|c| c.to_vec())
        .collect()
}

fn as_i32(ids: &[u32]) -> Vec<i32> {
    ids.iter().map(|&i| i as i32).collect()
}

#[test]
fn reads_txt_works_sorted_and_skips_other_files() {
    let dir = TempDir::new("read");
    write_works(&dir.0);
    let works = read_works(&dir.0).unwrap();
    let names: Vec<&str> = works.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["alpha", "bravo", "charlie", "delta", "echo"]);
    assert_eq!(works[2].text, WORKS[2].1);
}

#[test]
fn held_out_works_are_not_in_training() {
    let dir = TempDir::new("split");
    write_works(&dir.0);
    let tok = tokenizer();
    let data = LmData::load(&dir.0, &tok, &HELD_OUT).unwrap();
    assert_eq!(data.train_works(), ["alpha", "charlie", "echo"]);
    assert_eq!(data.validation_works(), ["bravo", "delta"]);

    // Each stream is its works' text joined by the end-of-text token, exactly.
    let train_text = tok.decode(data.train_ids()).unwrap();
    let expected_train = [WORKS[0].1, WORKS[2].1, WORKS[4].1].join(END_OF_TEXT);
    assert_eq!(train_text, expected_train);
    let val_text = tok.decode(data.validation_ids()).unwrap();
    assert_eq!(val_text, [WORKS[1].1, WORKS[3].1].join(END_OF_TEXT));
    for marker in ["BRAVO", "stage", "DELTA", "mercy"] {
        assert!(
            !train_text.contains(marker),
            "{marker} leaked into training"
        );
    }

    // Works are encoded one by one: the stream is the concatenation with the separator id.
    let eot = tok.end_of_text_id().unwrap();
    let mut expected = tok.encode(WORKS[1].1).unwrap();
    expected.push(eot);
    expected.extend(tok.encode(WORKS[3].1).unwrap());
    assert_eq!(data.validation_ids(), expected.as_slice());
    assert_eq!(data.train_ids().iter().filter(|&&i| i == eot).count(), 2);
}

#[test]
fn split_errors() {
    let works: Vec<Work> = WORKS
        .iter()
        .map(|(n, t)| Work {
            name: n.to_string(),
            text: t.to_string(),
        })
        .collect();
    let err = split_works(works.clone(), &["alpha", "hamlet"]).unwrap_err();
    assert!(err.to_string().contains("hamlet"), "{err}");
    assert!(split_works(works.clone(), &["alpha", "alpha"]).is_err());
    let all: Vec<&str> = WORKS.iter().map(|(n, _)| *n).collect();
    assert!(split_works(works.clone(), &all).is_err());
    let split = split_works(works, &[]).unwrap();
    assert_eq!(split.train.len(), 5);
    assert!(split.validation.is_empty());
}

#[test]
fn random_batches_have_shape_and_shifted_targets() {
    let tok = tokenizer();
    let works: Vec<Work> = WORKS
        .iter()
        .map(|(n, t)| Work {
            name: n.to_string(),
            text: t.to_string(),
        })
        .collect();
    let ids = encode_works(&tok, &works).unwrap();
    let (batch, seq) = (4, 8);
    let mut batches = RandomBatches::new(&ids, batch, seq, 7).unwrap();
    let mut seen_starts = std::collections::HashSet::new();
    for _ in 0..20 {
        let starts = batches.clone().next_starts();
        let (input, target) = batches.next_batch().unwrap();
        assert_eq!(input.shape(), [batch, seq]);
        assert_eq!(target.shape(), [batch, seq]);
        assert_eq!(input.dtype(), DType::I32);
        assert_eq!(target.dtype(), DType::I32);
        for ((s, x), y) in starts.iter().zip(rows(&input)).zip(rows(&target)) {
            assert!(s + seq < ids.len());
            assert_eq!(x, as_i32(&ids[*s..s + seq]));
            assert_eq!(y, as_i32(&ids[s + 1..s + seq + 1]));
            // The target is the input shifted left by one token.
            assert_eq!(x[1..], y[..seq - 1]);
            seen_starts.insert(*s);
        }
    }
    // Offsets spread over the stream rather than repeating.
    assert!(
        seen_starts.len() > 40,
        "{} distinct starts",
        seen_starts.len()
    );
    // The last possible window (start = len - seq - 1) is reachable in principle: a stream of
    // exactly seq + 1 tokens has one window.
    let short = &ids[..seq + 1];
    let (x, y) = RandomBatches::new(short, 2, seq, 0)
        .unwrap()
        .next_batch()
        .unwrap();
    assert_eq!(rows(&x), vec![as_i32(&short[..seq]); 2]);
    assert_eq!(rows(&y), vec![as_i32(&short[1..]); 2]);
}

#[test]
fn random_batches_are_reproducible_from_the_seed() {
    let dir = TempDir::new("seed");
    write_works(&dir.0);
    let tok = tokenizer();
    let data = LmData::load(&dir.0, &tok, &HELD_OUT).unwrap();
    let draw = |seed| -> Vec<Vec<i32>> {
        let mut b = data.train_batches(3, 6, seed).unwrap();
        (0..5)
            .flat_map(|_| {
                let (x, y) = b.next_batch().unwrap();
                [x.to_vec::<i32>().unwrap(), y.to_vec::<i32>().unwrap()]
            })
            .collect()
    };
    assert_eq!(draw(42), draw(42));
    assert_ne!(draw(42), draw(43));
    // Per-step seeds k·G (G the generator's own increment) once gave each step the last
    // step's windows shifted by one row (31 of 32 rows repeated).
    let g = 0x9E37_79B9_7F4A_7C15u64;
    let starts = |seed: u64| data.train_batches(32, 6, seed).unwrap().next_starts();
    let (a, b) = (starts(g.wrapping_mul(7)), starts(g.wrapping_mul(8)));
    assert_ne!(
        a[1..],
        b[..31],
        "step 8 repeats step 7's windows shifted by one"
    );
    let same_place = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    assert!(
        same_place <= 3,
        "{same_place} of 32 rows equal: {a:?} {b:?}"
    );
    // The iterator gives the same batches as next_batch.
    let via_iter: Vec<Vec<i32>> = data
        .train_batches(3, 6, 42)
        .unwrap()
        .take(5)
        .flat_map(|r| {
            let (x, y) = r.unwrap();
            [x.to_vec::<i32>().unwrap(), y.to_vec::<i32>().unwrap()]
        })
        .collect();
    assert_eq!(via_iter, draw(42));
}

#[test]
fn validation_batches_cover_the_stream_in_order() {
    let dir = TempDir::new("val");
    write_works(&dir.0);
    let tok = tokenizer();
    let data = LmData::load(&dir.0, &tok, &HELD_OUT).unwrap();
    let ids = data.validation_ids();
    let (batch, seq) = (3, 5);
    let it = data.validation_batches(batch, seq).unwrap();
    let windows = (ids.len() - 1) / seq;
    assert_eq!(it.num_windows(), windows);
    assert_eq!(it.num_targets(), windows * seq);
    assert_eq!(it.len(), windows.div_ceil(batch));
    let mut inputs = Vec::new();
    let mut targets = Vec::new();
    let mut row_counts = Vec::new();
    for pair in it {
        let (x, y) = pair.unwrap();
        assert_eq!(x.shape()[1], seq);
        assert_eq!(x.shape(), y.shape());
        row_counts.push(x.shape()[0]);
        inputs.extend(x.to_vec::<i32>().unwrap());
        targets.extend(y.to_vec::<i32>().unwrap());
    }
    assert!(row_counts[..row_counts.len() - 1]
        .iter()
        .all(|&r| r == batch));
    assert_eq!(row_counts.iter().sum::<usize>(), windows);
    assert_eq!(inputs, as_i32(&ids[..windows * seq]));
    assert_eq!(targets, as_i32(&ids[1..windows * seq + 1]));

    // A stream of exactly one window.
    let one = SequentialBatches::new(&ids[..seq + 1], batch, seq).unwrap();
    assert_eq!(one.count(), 1);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let dir = TempDir::new("errors");
    let tok = tokenizer();
    // A missing directory, and one without works, are named.
    let missing = dir.0.join("missing");
    let err = LmData::load(&missing, &tok, &HELD_OUT).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    std::fs::write(dir.0.join("LICENSE"), "x").unwrap();
    assert!(read_works(&dir.0).is_err());
    // A work that is not UTF-8 is named.
    std::fs::write(dir.0.join("latin1.txt"), b"caf\xe9").unwrap();
    let err = read_works(&dir.0).unwrap_err();
    assert!(err.to_string().contains("latin1.txt"), "{err}");
    std::fs::remove_file(dir.0.join("latin1.txt")).unwrap();
    // A held-out work that does not exist.
    write_works(&dir.0);
    assert!(LmData::load(&dir.0, &tok, &["zulu"]).is_err());
    // Windows longer than the stream, and empty shapes.
    let data = LmData::load(&dir.0, &tok, &HELD_OUT).unwrap();
    let n = data.validation_ids().len();
    assert!(data.validation_batches(2, n).is_err());
    assert!(data.validation_batches(2, n - 1).is_ok());
    assert!(data.train_batches(0, 4, 0).is_err());
    assert!(data.train_batches(4, 0, 0).is_err());
    assert!(RandomBatches::new(&[], 1, 1, 0).is_err());
    // A tokenizer without the end-of-text token cannot join works.
    let mut cfg = TrainConfig::new(300);
    cfg.special_tokens = vec!["<|pad|>".into()];
    let texts: Vec<&str> = WORKS.iter().map(|(_, t)| *t).collect();
    let no_eot = Tokenizer::train_from_texts(&texts, &cfg).unwrap();
    let err = LmData::load(&dir.0, &no_eot, &HELD_OUT).unwrap_err();
    assert!(err.to_string().contains(END_OF_TEXT), "{err}");
}
