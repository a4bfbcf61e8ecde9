//! Byte-level BPE tokenizers, GPT-2 style, trained and run with Hugging Face's `tokenizers`.
//!
//! The pipeline is GPT-2's: no normalizer, the byte-level pre-tokenizer (GPT-2's splitting
//! regex, no prefix space) mapping every byte to one of 256 printable characters, a BPE model
//! whose base alphabet is those 256 characters, and the byte-level decoder. So every string,
//! whatever its bytes, encodes without unknown tokens and decodes back to itself exactly.
//! Special tokens such as [`END_OF_TEXT`] are single ids, also when they appear in the text.
//!
//! [`Tokenizer::save`] writes the Hugging Face `tokenizer.json` format, which
//! `tokenizers.Tokenizer.from_file` in Python and [`Tokenizer::from_file`] read back.

use std::path::Path;

use ingot::{Error, Result};
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::AddedToken;

/// The end-of-text token that separates documents (GPT-2's spelling).
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// The number of byte tokens every byte-level vocabulary starts with.
pub const BYTE_ALPHABET: usize = 256;

const OP: &str = "tokenizer";

/// What [`Tokenizer::train_from_files`] and [`Tokenizer::train_from_texts`] learn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainConfig {
    /// The size of the vocabulary to learn, counting the 256 byte tokens and the special
    /// tokens. A corpus too small to supply that many merges gives a smaller vocabulary.
    pub vocab_size: usize,
    /// Special tokens, given the first ids in this order (`END_OF_TEXT` gets id 0 by default).
    pub special_tokens: Vec<String>,
    /// A pair is merged only if it occurs at least this often.
    pub min_frequency: u64,
}

impl TrainConfig {
    /// `vocab_size` tokens with [`END_OF_TEXT`] as the one special token.
    pub fn new(vocab_size: usize) -> Self {
        TrainConfig {
            vocab_size,
            special_tokens: vec![END_OF_TEXT.to_string()],
            min_frequency: 2,
        }
    }

    fn check(&self) -> Result<()> {
        let floor = BYTE_ALPHABET + self.special_tokens.len();
        ingot::ensure!(
            self.vocab_size >= floor,
            OP,
            "vocab_size {} is below the {BYTE_ALPHABET} byte tokens plus {} special tokens",
            self.vocab_size,
            self.special_tokens.len()
        );
        ingot::ensure!(
            self.vocab_size <= i32::MAX as usize,
            OP,
            "vocab_size {} does not fit int32 token ids",
            self.vocab_size
        );
        for (i, t) in self.special_tokens.iter().enumerate() {
            ingot::ensure!(!t.is_empty(), OP, "special token {i} is empty");
            ingot::ensure!(
                !self.special_tokens[..i].contains(t),
                OP,
                "special token {t:?} is given twice"
            );
        }
        Ok(())
    }
}

/// A trained byte-level BPE tokenizer.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .finish()
    }
}

fn tk_err(context: impl std::fmt::Display, e: tokenizers::Error) -> Error {
    Error::invalid(OP, format!("{context}: {e}"))
}

/// An untrained tokenizer with GPT-2's byte-level pipeline around a BPE model.
fn byte_level_pipeline() -> tokenizers::Tokenizer {
    // No prefix space (so decoding gives the text back exactly), GPT-2's regex split, and
    // offsets left untrimmed (only offsets depend on trimming, never ids or decoded text).
    let byte_level = ByteLevel::new(false, false, true);
    let mut tk = tokenizers::Tokenizer::new(BPE::default());
    tk.with_pre_tokenizer(Some(PreTokenizerWrapper::ByteLevel(byte_level)));
    tk.with_post_processor(Some(PostProcessorWrapper::ByteLevel(byte_level)));
    tk.with_decoder(Some(DecoderWrapper::ByteLevel(byte_level)));
    tk
}

impl Tokenizer {
    /// Learns a vocabulary from the UTF-8 text files `files` (read whole, each one document).
    pub fn train_from_files<P: AsRef<Path>>(files: &[P], config: &TrainConfig) -> Result<Self> {
        ingot::ensure!(!files.is_empty(), OP, "no training files given");
        let mut texts = Vec::with_capacity(files.len());
        for f in files {
            texts.push(read_text(OP, f.as_ref())?);
        }
        Self::train_from_texts(&texts, config)
    }

    /// Learns a vocabulary from in-memory documents.
    pub fn train_from_texts<S: AsRef<str> + Sync>(
        texts: &[S],
        config: &TrainConfig,
    ) -> Result<Self> {
        config.check()?;
        ingot::ensure!(
            texts.iter().any(|t| !t.as_ref().is_empty()),
            OP,
            "the training texts are empty"
        );
        let specials: Vec<AddedToken> = config
            .special_tokens
            .iter()
            .map(|t| AddedToken::from(t.clone(), true))
            .collect();
        let trainer = BpeTrainerBuilder::new()
            .vocab_size(config.vocab_size)
            .min_frequency(config.min_frequency)
            .special_tokens(specials)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .show_progress(false)
            .build();
        let mut trainer = TrainerWrapper::BpeTrainer(trainer);
        let mut inner = byte_level_pipeline();
        inner
            .train(&mut trainer, texts.iter().map(|t| t.as_ref()))
            .map_err(|e| tk_err("training failed", e))?;
        Ok(Tokenizer { inner })
    }

    /// Loads a `tokenizer.json` (Hugging Face format).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path)
            .map_err(|e| Error::io(OP, format!("cannot read {}: {e}", path.display())))?;
        Self::from_json(&json).map_err(|e| match e {
            Error::Invalid { msg, .. } => Error::invalid(OP, format!("{}: {msg}", path.display())),
            e => e,
        })
    }

    /// Parses the contents of a `tokenizer.json`.
    pub fn from_json(json: &str) -> Result<Self> {
        let inner: tokenizers::Tokenizer = json
            .parse()
            .map_err(|e| tk_err("not a valid tokenizer.json", e))?;
        Ok(Tokenizer { inner })
    }

    /// Writes the tokenizer as a `tokenizer.json` (Hugging Face format) to `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let json = self.to_json()?;
        std::fs::write(path, json)
            .map_err(|e| Error::io(OP, format!("cannot write {}: {e}", path.display())))
    }

    /// The `tokenizer.json` text.
    pub fn to_json(&self) -> Result<String> {
        self.inner
            .to_string(false)
            .map_err(|e| tk_err("cannot serialize", e))
    }

    /// The token ids of `text`. Special tokens in the text become their single ids; nothing
    /// is added around the text.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| tk_err("cannot encode", e))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The token ids of `text` with the tokenizer's own special tokens added around it (a
    /// Llama tokenizer's BOS, BERT's [CLS] and [SEP]), as transformers encodes by default.
    pub fn encode_special(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode_fast(text, true)
            .map_err(|e| tk_err("cannot encode", e))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The text of `ids`, special tokens included. Ids outside the vocabulary are an error.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let n = self.vocab_size();
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= n) {
            ingot::bail!(OP, "cannot decode id {bad}: the vocabulary has {n} tokens");
        }
        self.inner
            .decode(ids, false)
            .map_err(|e| tk_err("cannot decode", e))
    }

    /// The number of tokens, special tokens included (ids are `0..vocab_size`).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id of a token (in its byte-level spelling, or a special token), if present.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The byte-level spelling of the token `id`, if present.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The id of [`END_OF_TEXT`], or an error if this tokenizer has none.
    pub fn end_of_text_id(&self) -> Result<u32> {
        self.token_to_id(END_OF_TEXT)
            .ok_or_else(|| Error::invalid(OP, format!("the tokenizer has no {END_OF_TEXT} token")))
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

impl From<tokenizers::Tokenizer> for Tokenizer {
    fn from(inner: tokenizers::Tokenizer) -> Self {
        Tokenizer { inner }
    }
}

/// Reads a UTF-8 text file; errors name the file.
pub(crate) fn read_text(op: &str, path: &Path) -> Result<String> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::io(op, format!("cannot read {}: {e}", path.display())))?;
    String::from_utf8(bytes)
        .map_err(|e| Error::invalid(op, format!("{} is not UTF-8: {e}", path.display())))
}
