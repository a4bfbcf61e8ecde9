//! A corpus of works (one UTF-8 `.txt` file each, as `scripts/data/fetch_shakespeare.sh` writes
//! to `data/shakespeare/`), split into training and validation by whole works, encoded into one
//! token stream per split, and cut into `(input, target)` windows for next-token training.
//!
//! ```no_run
//! # fn main() -> ingot::Result<()> {
//! use ingot_lm::data::{LmData, VALIDATION_WORKS};
//! use ingot_lm::tokenizer::Tokenizer;
//! let tok = Tokenizer::from_file("data/tokenizer.json")?;
//! let data = LmData::load("data/shakespeare", &tok, &VALIDATION_WORKS)?;
//! let mut batches = data.train_batches(16, 128, 0)?;
//! let (input, target) = batches.next_batch()?; // int32, shape (16, 128) each
//! for pair in data.validation_batches(16, 128)? {
//!     let (input, target) = pair?;
//! }
//! # Ok(()) }
//! ```

use std::path::Path;

use ingot::{Array, Error, Result};

use crate::tokenizer::{read_text, Tokenizer};

const OP: &str = "lm_data";

/// Where `scripts/data/fetch_shakespeare.sh` writes the works, relative to the repository root.
pub const DEFAULT_DATA_DIR: &str = "data/shakespeare";

/// The plays held out for validation (file stems in [`DEFAULT_DATA_DIR`]).
///
/// Macbeth (a tragedy, ~103 kB) and Twelfth Night (a comedy, ~115 kB), about 4% of the
/// 5.06 MB corpus. Both are standalone plays: none of their characters or plot lines continue
/// in another work, unlike the history cycles (Henry IV/V/VI, Richard II/III), whose held-out
/// parts would be partly predictable from the parts in training. One tragedy in verse and one
/// comedy with much prose cover the two registers the model must learn, both are of ordinary
/// length, and both come in the same modern Gutenberg edition as the training works.
pub const VALIDATION_WORKS: [&str; 2] = ["macbeth", "twelfth_night"];

/// One work: its name (the file stem) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    pub name: String,
    pub text: String,
}

/// Reads every `*.txt` file in `dir` as a work, sorted by name. Other files (`LICENSE`,
/// `METADATA`) are skipped.
pub fn read_works(dir: impl AsRef<Path>) -> Result<Vec<Work>> {
    let dir = dir.as_ref();
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::io(
            OP,
            format!(
                "cannot read the works directory {}: {e} (run scripts/data/fetch_shakespeare.sh)",
                dir.display()
            ),
        )
    })?;
    let mut works = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| Error::io(OP, format!("cannot list {}: {e}", dir.display())))?;
        let path = entry.path();
        if !path.is_file() || path.extension().and_then(|e| e.to_str()) != Some("txt") {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        works.push(Work {
            name: name.to_string(),
            text: read_text(OP, &path)?,
        });
    }
    ingot::ensure!(
        !works.is_empty(),
        OP,
        "no works (*.txt) in {} (run scripts/data/fetch_shakespeare.sh)",
        dir.display()
    );
    works.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(works)
}

/// Works divided into training and validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<Work>,
    pub validation: Vec<Work>,
}

/// Puts the works named in `held_out` into validation and the rest into training. Every
/// held-out name must be present, and at least one work must remain for training.
pub fn split_works(works: Vec<Work>, held_out: &[&str]) -> Result<Split> {
    for (i, name) in held_out.iter().enumerate() {
        ingot::ensure!(
            works.iter().any(|w| w.name == *name),
            OP,
            "held-out work {name:?} is not among the {} works",
            works.len()
        );
        ingot::ensure!(
            !held_out[..i].contains(name),
            OP,
            "held-out work {name:?} is named twice"
        );
    }
    let (validation, train): (Vec<Work>, Vec<Work>) = works
        .into_iter()
        .partition(|w| held_out.contains(&w.name.as_str()));
    ingot::ensure!(
        !train.is_empty(),
        OP,
        "no works are left for training after holding out {held_out:?}"
    );
    Ok(Split { train, validation })
}

/// Encodes each work on its own and joins them into one stream with the end-of-text id
/// between consecutive works (so no token spans two works).
pub fn encode_works(tokenizer: &Tokenizer, works: &[Work]) -> Result<Vec<u32>> {
    let eot = tokenizer.end_of_text_id()?;
    let mut ids = Vec::new();
    for (i, w) in works.iter().enumerate() {
        if i > 0 {
            ids.push(eot);
        }
        let enc = tokenizer
            .encode(&w.text)
            .map_err(|e| Error::invalid(OP, format!("cannot encode work {:?}: {e}", w.name)))?;
        ids.extend_from_slice(&enc);
    }
    Ok(ids)
}

/// The token streams of a training/validation split.
#[derive(Debug, Clone)]
pub struct LmData {
    train: Vec<u32>,
    validation: Vec<u32>,
    train_works: Vec<String>,
    validation_works: Vec<String>,
}

impl LmData {
    /// Reads the works in `dir`, holds out `held_out` (e.g. [`VALIDATION_WORKS`]) for
    /// validation and encodes both splits with `tokenizer`.
    pub fn load(dir: impl AsRef<Path>, tokenizer: &Tokenizer, held_out: &[&str]) -> Result<Self> {
        let split = split_works(read_works(dir)?, held_out)?;
        Self::from_split(&split, tokenizer)
    }

    /// Encodes an already made split.
    pub fn from_split(split: &Split, tokenizer: &Tokenizer) -> Result<Self> {
        ingot::ensure!(
            tokenizer.vocab_size() <= i32::MAX as usize,
            OP,
            "a vocabulary of {} tokens does not fit int32 ids",
            tokenizer.vocab_size()
        );
        Ok(LmData {
            train: encode_works(tokenizer, &split.train)?,
            validation: encode_works(tokenizer, &split.validation)?,
            train_works: split.train.iter().map(|w| w.name.clone()).collect(),
            validation_works: split.validation.iter().map(|w| w.name.clone()).collect(),
        })
    }

    /// The training token stream.
    pub fn train_ids(&self) -> &[u32] {
        &self.train
    }

    /// The validation token stream.
    pub fn validation_ids(&self) -> &[u32] {
        &self.validation
    }

    /// The names of the training works, in stream order.
    pub fn train_works(&self) -> &[String] {
        &self.train_works
    }

    /// The names of the held-out works, in stream order.
    pub fn validation_works(&self) -> &[String] {
        &self.validation_works
    }

    /// Random training batches of `batch` windows of `seq` tokens, reproducible from `seed`.
    pub fn train_batches(&self, batch: usize, seq: usize, seed: u64) -> Result<RandomBatches<'_>> {
        RandomBatches::new(&self.train, batch, seq, seed)
    }

    /// The validation stream in order, as batches of consecutive windows.
    pub fn validation_batches(&self, batch: usize, seq: usize) -> Result<SequentialBatches<'_>> {
        SequentialBatches::new(&self.validation, batch, seq)
    }
}

fn check_window(ids: &[u32], batch: usize, seq: usize) -> Result<()> {
    ingot::ensure!(
        batch > 0 && seq > 0,
        OP,
        "batch ({batch}) and context length ({seq}) must be positive"
    );
    ingot::ensure!(
        ids.len() > seq,
        OP,
        "a stream of {} tokens is too short for windows of {seq} tokens plus a target",
        ids.len()
    );
    ingot::ensure!(
        ids.iter().all(|&id| id <= i32::MAX as u32),
        OP,
        "token ids do not fit int32"
    );
    Ok(())
}

/// `(input, target)` arrays, int32 `(rows, seq)`, from the windows starting at `starts`:
/// `input[r] = ids[s..s + seq]`, `target[r] = ids[s + 1..s + seq + 1]`.
fn windows(ids: &[u32], starts: &[usize], seq: usize) -> Result<(Array, Array)> {
    let mut input = Vec::with_capacity(starts.len() * seq);
    let mut target = Vec::with_capacity(starts.len() * seq);
    for &s in starts {
        input.extend(ids[s..s + seq].iter().map(|&id| id as i32));
        target.extend(ids[s + 1..s + seq + 1].iter().map(|&id| id as i32));
    }
    let shape = [starts.len(), seq];
    Ok((
        Array::from_vec(input, &shape)?,
        Array::from_vec(target, &shape)?,
    ))
}

/// SplitMix64: a small, fast generator whose stream is fixed by its seed on every platform.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (multiply-high; the bias is below n / 2^64).
    fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// An endless stream of random training batches: each row is a window starting at an offset
/// drawn uniformly from the stream, with its target shifted by one token. The same ids,
/// shape and seed give the same batches.
#[derive(Debug, Clone)]
pub struct RandomBatches<'a> {
    ids: &'a [u32],
    batch: usize,
    seq: usize,
    rng: SplitMix64,
}

impl<'a> RandomBatches<'a> {
    /// Batches of `batch` windows of `seq` tokens from `ids` (which must hold more than `seq`).
    pub fn new(ids: &'a [u32], batch: usize, seq: usize, seed: u64) -> Result<Self> {
        check_window(ids, batch, seq)?;
        Ok(RandomBatches {
            ids,
            batch,
            seq,
            // The seed is hashed first: SplitMix64's state advances by its golden-ratio
            // increment, so raw seeds k·G and (k+1)·G (a caller's per-step seeds) would give
            // batches shifted by one window, 31 of 32 rows shared with the last step.
            rng: SplitMix64(SplitMix64(seed).next_u64()),
        })
    }

    /// The start offsets of the next batch's windows (advances the generator).
    pub fn next_starts(&mut self) -> Vec<usize> {
        let n = self.ids.len() - self.seq;
        (0..self.batch).map(|_| self.rng.below(n)).collect()
    }

    /// The next `(input, target)` pair, int32 arrays of shape `(batch, seq)`.
    pub fn next_batch(&mut self) -> Result<(Array, Array)> {
        let starts = self.next_starts();
        windows(self.ids, &starts, self.seq)
    }
}

impl Iterator for RandomBatches<'_> {
    type Item = Result<(Array, Array)>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.next_batch())
    }
}

/// The stream cut in order into non-overlapping windows of `seq` tokens (window `w` starts at
/// `w * seq`, its target one token later), grouped `batch` at a time; the last batch may have
/// fewer rows. Every token after the first is predicted once, except a tail shorter than a
/// window, which is dropped.
#[derive(Debug, Clone)]
pub struct SequentialBatches<'a> {
    ids: &'a [u32],
    batch: usize,
    seq: usize,
    next_window: usize,
}

impl<'a> SequentialBatches<'a> {
    pub fn new(ids: &'a [u32], batch: usize, seq: usize) -> Result<Self> {
        check_window(ids, batch, seq)?;
        Ok(SequentialBatches {
            ids,
            batch,
            seq,
            next_window: 0,
        })
    }

    /// The number of windows in the whole pass.
    pub fn num_windows(&self) -> usize {
        (self.ids.len() - 1) / self.seq
    }

    /// The number of target tokens in the whole pass.
    pub fn num_targets(&self) -> usize {
        self.num_windows() * self.seq
    }
}

impl Iterator for SequentialBatches<'_> {
    type Item = Result<(Array, Array)>;

    fn next(&mut self) -> Option<Self::Item> {
        let total = self.num_windows();
        if self.next_window >= total {
            return None;
        }
        let end = (self.next_window + self.batch).min(total);
        let starts: Vec<usize> = (self.next_window..end).map(|w| w * self.seq).collect();
        self.next_window = end;
        Some(windows(self.ids, &starts, self.seq))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.num_windows().saturating_sub(self.next_window);
        let n = left.div_ceil(self.batch);
        (n, Some(n))
    }
}

impl ExactSizeIterator for SequentialBatches<'_> {}
