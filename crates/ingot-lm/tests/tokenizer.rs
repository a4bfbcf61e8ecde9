//! Byte-level BPE training, encoding, decoding and tokenizer.json round trips on a small corpus.

use std::path::PathBuf;

use ingot_lm::tokenizer::{Tokenizer, TrainConfig, BYTE_ALPHABET, END_OF_TEXT};

const CORPUS: [&str; 4] = [
    "Now is the winter of our discontent\nMade glorious summer by this sun of York;\n\
     And all the clouds that lour'd upon our house\nIn the deep bosom of the ocean buried.\n",
    "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n\
     The slings and arrows of outrageous fortune,\nOr to take arms against a sea of troubles\n\
     And by opposing end them. To die, to sleep;\nNo more; and by a sleep to say we end\n",
    "Shall I compare thee to a summer's day?\nThou art more lovely and more temperate:\n\
     Rough winds do shake the darling buds of May,\nAnd summer's lease hath all too short a date;\n",
    "If music be the food of love, play on;\nGive me excess of it, that, surfeiting,\n\
     The appetite may sicken, and so die.\nThat strain again! it had a dying fall:\n\
     O, it came o'er my ear like the sweet sound\nThat breathes upon a bank of violets.\n",
];

/// Texts with what byte-level BPE must carry through untouched: unicode outside the corpus,
/// runs of spaces, tabs, blank lines, CRLF, leading and trailing whitespace.
const ODD_TEXTS: [&str; 7] = [
    "",
    "  leading and trailing spaces  ",
    "tabs\tand\t\tdouble  spaces\n\n\nand blank lines\r\nand CRLF\r\n",
    "Ünïcödé: naïve café, Ærø, 日本語のテキスト, Ελληνικά, עברית, emoji 🎭👑🗡️ and 𝔉𝔯𝔞𝔨𝔱𝔲𝔯",
    "\u{0}\u{7f} control \u{1b}[0m bytes and a zero-width\u{200b}joiner",
    "To be, or not to be:\n  that is the question.\n",
    "\n",
];

fn config(vocab: usize) -> TrainConfig {
    TrainConfig::new(vocab)
}

fn trained(vocab: usize) -> Tokenizer {
    Tokenizer::train_from_texts(&CORPUS, &config(vocab)).unwrap()
}

/// A fresh directory for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ingot-lm-tok-{}-{name}", std::process::id()));
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

#[test]
fn vocab_size_is_respected() {
    let tok = trained(300);
    assert_eq!(tok.vocab_size(), 300);
    // Every id in 0..vocab_size names a token, and nothing beyond.
    for id in 0..300 {
        assert!(tok.id_to_token(id).is_some(), "id {id} has no token");
    }
    assert!(tok.id_to_token(300).is_none());
    // A corpus too small for the request gives fewer tokens, never more.
    let big = trained(50_000);
    assert!(
        big.vocab_size() > 300 && big.vocab_size() < 50_000,
        "{}",
        big.vocab_size()
    );
    // The 256 byte tokens and the special token come first.
    assert_eq!(tok.token_to_id(END_OF_TEXT), Some(0));
    assert_eq!(tok.end_of_text_id().unwrap(), 0);
}

#[test]
fn merges_are_learned() {
    let tok = trained(400);
    let text = CORPUS.concat();
    let ids = tok.encode(&text).unwrap();
    // Byte-level alone would need one id a byte; learned merges must compress the corpus.
    assert!(
        (ids.len() as f64) < 0.6 * text.len() as f64,
        "{} ids for {} bytes",
        ids.len(),
        text.len()
    );
    // Id 0 is the special token and 1..=256 the bytes, so a larger id is a learned merge.
    assert!(ids.iter().any(|&id| id as usize > BYTE_ALPHABET));
}

#[test]
fn encode_decode_round_trips_exactly() {
    let tok = trained(320);
    for text in CORPUS.iter().chain(ODD_TEXTS.iter()) {
        let ids = tok.encode(text).unwrap();
        assert!(ids.iter().all(|&id| (id as usize) < tok.vocab_size()));
        assert_eq!(tok.decode(&ids).unwrap(), *text, "ids {ids:?}");
    }
    // Unknown characters fall back to their UTF-8 bytes: one id per byte at most.
    let cjk = "日本語";
    assert!(tok.encode(cjk).unwrap().len() <= cjk.len());
}

#[test]
fn special_token_is_one_id() {
    let tok = trained(300);
    let eot = tok.end_of_text_id().unwrap();
    assert_eq!(tok.encode(END_OF_TEXT).unwrap(), vec![eot]);
    let text = format!("The end.{END_OF_TEXT}\nA new beginning {END_OF_TEXT}{END_OF_TEXT}");
    let ids = tok.encode(&text).unwrap();
    assert_eq!(ids.iter().filter(|&&id| id == eot).count(), 3);
    assert_eq!(tok.decode(&ids).unwrap(), text);
    // Plain text never produces the special id, even text close to it.
    let near = "<|endoftext| <|endof text|> endoftext";
    assert!(!tok.encode(near).unwrap().contains(&eot));
}

#[test]
fn several_special_tokens_keep_their_order() {
    let mut cfg = config(300);
    cfg.special_tokens = vec![END_OF_TEXT.into(), "<|pad|>".into(), "<|sep|>".into()];
    let tok = Tokenizer::train_from_texts(&CORPUS, &cfg).unwrap();
    assert_eq!(tok.vocab_size(), 300);
    for (i, t) in cfg.special_tokens.iter().enumerate() {
        assert_eq!(tok.token_to_id(t), Some(i as u32));
        assert_eq!(tok.encode(t).unwrap(), vec![i as u32]);
    }
}

#[test]
fn save_load_round_trip_gives_same_ids() {
    let dir = TempDir::new("save");
    let tok = trained(330);
    let path = dir.0.join("tokenizer.json");
    tok.save(&path).unwrap();
    let loaded = Tokenizer::from_file(&path).unwrap();
    assert_eq!(loaded.vocab_size(), tok.vocab_size());
    for text in CORPUS.iter().chain(ODD_TEXTS.iter()) {
        let ids = tok.encode(text).unwrap();
        assert_eq!(loaded.encode(text).unwrap(), ids);
        assert_eq!(loaded.decode(&ids).unwrap(), *text);
    }
    let with_eot = format!("a{END_OF_TEXT}b");
    assert_eq!(
        loaded.encode(&with_eot).unwrap(),
        tok.encode(&with_eot).unwrap()
    );
    // Hugging Face's format, GPT-2's byte-level pipeline.
    let json = std::fs::read_to_string(&path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["model"]["type"], "BPE");
    assert_eq!(v["pre_tokenizer"]["type"], "ByteLevel");
    assert_eq!(v["pre_tokenizer"]["add_prefix_space"], false);
    assert_eq!(v["decoder"]["type"], "ByteLevel");
    assert_eq!(v["added_tokens"][0]["content"], END_OF_TEXT);
    assert_eq!(v["added_tokens"][0]["special"], true);
    // Saving the loaded tokenizer again gives the same file.
    assert_eq!(loaded.to_json().unwrap(), tok.to_json().unwrap());
}

#[test]
fn training_is_deterministic() {
    assert_eq!(
        trained(350).to_json().unwrap(),
        trained(350).to_json().unwrap()
    );
}

#[test]
fn training_from_files_matches_training_from_texts() {
    let dir = TempDir::new("files");
    let files: Vec<PathBuf> = CORPUS
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let p = dir.0.join(format!("work{i}.txt"));
            std::fs::write(&p, t).unwrap();
            p
        })
        .collect();
    let from_files = Tokenizer::train_from_files(&files, &config(310)).unwrap();
    assert_eq!(
        from_files.to_json().unwrap(),
        trained(310).to_json().unwrap()
    );
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let dir = TempDir::new("errors");
    // Too small a vocabulary for the byte alphabet and the special token.
    let err = Tokenizer::train_from_texts(&CORPUS, &config(BYTE_ALPHABET)).unwrap_err();
    assert!(err.to_string().contains("vocab_size"), "{err}");
    // No text.
    assert!(Tokenizer::train_from_texts(&[""], &config(300)).is_err());
    let none: [&str; 0] = [];
    assert!(Tokenizer::train_from_texts(&none, &config(300)).is_err());
    // A duplicated special token.
    let mut cfg = config(300);
    cfg.special_tokens = vec![END_OF_TEXT.into(), END_OF_TEXT.into()];
    assert!(Tokenizer::train_from_texts(&CORPUS, &cfg).is_err());
    // Missing training files and tokenizer files are named in the error.
    let missing = dir.0.join("missing.txt");
    let err = Tokenizer::train_from_files(&[&missing], &config(300)).unwrap_err();
    assert!(err.to_string().contains("missing.txt"), "{err}");
    let err = Tokenizer::from_file(dir.0.join("nope.json")).unwrap_err();
    assert!(err.to_string().contains("nope.json"), "{err}");
    // A file that is not a tokenizer.
    let bad = dir.0.join("bad.json");
    std::fs::write(&bad, "{\"model\": 3}").unwrap();
    let err = Tokenizer::from_file(&bad).unwrap_err();
    assert!(err.to_string().contains("bad.json"), "{err}");
    // A training file that is not UTF-8.
    let latin1 = dir.0.join("latin1.txt");
    std::fs::write(&latin1, b"caf\xe9").unwrap();
    let err = Tokenizer::train_from_files(&[&latin1], &config(300)).unwrap_err();
    assert!(err.to_string().contains("latin1.txt"), "{err}");
    // Ids outside the vocabulary.
    let tok = trained(300);
    let err = tok.decode(&[1, 2, 300]).unwrap_err();
    assert!(err.to_string().contains("300"), "{err}");
    assert!(tok.decode(&[u32::MAX]).is_err());
    // Saving where no file can be written.
    assert!(tok.save(dir.0.join("no/such/dir/tokenizer.json")).is_err());
}
