//! Trains an MLP and a small CNN on scikit-learn's digits (1797 8x8 grayscale images, pixel
//! values 0..16, 10 classes) on the CPU, and reports test accuracy and training time.
//!
//! ```text
//! scripts/data/fetch_digits.sh
//! cargo run --release -p ingot-nn --example digits -- [--data data/digits/digits.csv.gz]
//!     [--model mlp|cnn|both] [--epochs N] [--seed S] [--batch-size B] [--lr LR]
//! ```
//!
//! The train/test split (1437/360) is a fixed permutation, the same for every `--seed`;
//! the seed sets the initial weights and the order of the minibatches.

use flate2::read::GzDecoder;
use ingot::{Array, DType};
use ingot_nn::activations::Activation;
use ingot_nn::losses::{cross_entropy, CrossEntropy};
use ingot_nn::optim::AdamW;
use ingot_nn::{
    rng, value_and_grad, Conv2d, ConvOptions, Linear, MaxPool2d, Module, ModuleExt, Optimizer,
    Param, Sequential, Unary,
};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const DEFAULT_DATA: &str = "data/digits/digits.csv.gz";
const PIXELS: usize = 64;
const CLASSES: usize = 10;
const TEST: usize = 360;
/// The split's permutation seed: fixed, so every run tests on the same 360 images.
const SPLIT_SEED: u64 = 0;

type Res<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("digits: error: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---- command line ---------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Mlp,
    Cnn,
    Both,
}

struct Args {
    data: PathBuf,
    which: Which,
    epochs: Option<usize>,
    seed: u64,
    batch: usize,
    lr: f64,
}

const USAGE: &str = "usage: digits [--data PATH] [--model mlp|cnn|both] [--epochs N] [--seed S] \
[--batch-size B] [--lr LR]
  --data        the gzip CSV from scripts/data/fetch_digits.sh (default data/digits/digits.csv.gz)
  --model       which model to train (default both)
  --epochs      passes over the training set (default 30 for the MLP, 20 for the CNN)
  --seed        initial weights and batch order (default 0)
  --batch-size  minibatch size (default 64)
  --lr          AdamW learning rate (default 0.003)";

fn parse_args() -> Res<Option<Args>> {
    let mut a = Args {
        data: PathBuf::from(DEFAULT_DATA),
        which: Which::Both,
        epochs: None,
        seed: 0,
        batch: 64,
        lr: 3e-3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            return Ok(None);
        }
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--data" => a.data = PathBuf::from(value()?),
            "--model" => {
                a.which = match value()?.as_str() {
                    "mlp" => Which::Mlp,
                    "cnn" => Which::Cnn,
                    "both" => Which::Both,
                    other => {
                        return Err(format!("--model must be mlp, cnn or both, got {other:?}"))
                    }
                }
            }
            "--epochs" => a.epochs = Some(parse_num(&flag, &value()?, 1)?),
            "--seed" => a.seed = parse_num(&flag, &value()?, 0)?,
            "--batch-size" => a.batch = parse_num(&flag, &value()?, 1)?,
            "--lr" => {
                let v = value()?;
                a.lr = match v.parse::<f64>() {
                    Ok(lr) if lr.is_finite() && lr > 0.0 => lr,
                    _ => return Err(format!("--lr must be a positive number, got {v:?}")),
                }
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(Some(a))
}

fn parse_num<T: std::str::FromStr + PartialOrd + From<u8>>(flag: &str, v: &str, min: u8) -> Res<T> {
    match v.parse::<T>() {
        Ok(n) if n >= T::from(min) => Ok(n),
        _ => Err(format!("{flag} must be an integer >= {min}, got {v:?}")),
    }
}

// ---- data -----------------------------------------------------------------------------

/// Images as rows of 64 pixels scaled to [0, 1], and their labels.
struct Digits {
    pixels: Vec<f32>,
    labels: Vec<i64>,
}

impl Digits {
    fn len(&self) -> usize {
        self.labels.len()
    }

    /// The images at `idx` as `(n, 64)` or, `as_images`, `(n, 8, 8, 1)`, and their labels.
    fn batch(&self, idx: &[usize], as_images: bool) -> Res<(Array, Array)> {
        let mut x = Vec::with_capacity(idx.len() * PIXELS);
        for &i in idx {
            x.extend_from_slice(&self.pixels[i * PIXELS..(i + 1) * PIXELS]);
        }
        let y: Vec<i64> = idx.iter().map(|&i| self.labels[i]).collect();
        let shape: &[usize] = if as_images {
            &[idx.len(), 8, 8, 1]
        } else {
            &[idx.len(), PIXELS]
        };
        Ok((
            Array::from_slice(&x, shape).map_err(err)?,
            Array::from_slice(&y, &[idx.len()]).map_err(err)?,
        ))
    }
}

/// Reads scikit-learn's digits.csv.gz: one image a line, 64 pixel values in 0..16 and the
/// label in 0..9, comma-separated.
fn load(path: &Path) -> Res<Digits> {
    if !path.exists() {
        return Err(format!(
            "{} does not exist: run scripts/data/fetch_digits.sh first (or pass --data PATH)",
            path.display()
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = String::new();
    GzDecoder::new(file)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: not a readable gzip text file: {e}", path.display()))?;
    let mut d = Digits {
        pixels: Vec::new(),
        labels: Vec::new(),
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: String| format!("{} line {}: {why}", path.display(), n + 1);
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != PIXELS + 1 {
            return Err(bad(format!(
                "expected {} comma-separated values (64 pixels and a label), found {}",
                PIXELS + 1,
                fields.len()
            )));
        }
        for (j, f) in fields.iter().enumerate() {
            let v: f64 = f
                .trim()
                .parse()
                .map_err(|_| bad(format!("value {} is not a number: {f:?}", j + 1)))?;
            if j < PIXELS {
                if !(0.0..=16.0).contains(&v) {
                    return Err(bad(format!("pixel {} is {v}, outside 0..16", j + 1)));
                }
                d.pixels.push((v / 16.0) as f32);
            } else {
                if v.fract() != 0.0 || !(0.0..CLASSES as f64).contains(&v) {
                    return Err(bad(format!("label {v} is not an integer in 0..9")));
                }
                d.labels.push(v as i64);
            }
        }
    }
    if d.len() <= TEST {
        return Err(format!(
            "{}: {} images, need more than {TEST} (the test split)",
            path.display(),
            d.len()
        ));
    }
    Ok(d)
}

/// SplitMix64: a seeded permutation without another dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn shuffle(&mut self, v: &mut [usize]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

// ---- models ---------------------------------------------------------------------------

/// `(N, ...)` to `(N, prod(...))`, between the convolutions and the classifier.
#[derive(Clone)]
struct Flatten;

impl Module for Flatten {
    fn visit(&self, _f: &mut dyn FnMut(&str, &Param)) {}
    fn visit_mut(&mut self, _f: &mut dyn FnMut(&str, &mut Param)) {}
}

impl Unary for Flatten {
    fn forward(&self, x: &Array) -> ingot::Result<Array> {
        ingot::flatten(x, 1, -1)
    }
}

fn mlp() -> ingot::Result<Sequential> {
    Ok(Sequential::new()
        .push(Linear::new(PIXELS, 128, true)?)
        .push(Activation::Relu)
        .push(Linear::new(128, CLASSES, true)?))
}

fn cnn() -> ingot::Result<Sequential> {
    let pad1 = ConvOptions::default().padding(1);
    Ok(Sequential::new()
        .push(Conv2d::with_options(1, 16, 3, &pad1)?) // (N, 8, 8, 16)
        .push(Activation::Relu)
        .push(MaxPool2d::new(2)?) // (N, 4, 4, 16)
        .push(Conv2d::with_options(16, 32, 3, &pad1)?) // (N, 4, 4, 32)
        .push(Activation::Relu)
        .push(MaxPool2d::new(2)?) // (N, 2, 2, 32)
        .push(Flatten) // (N, 128)
        .push(Linear::new(2 * 2 * 32, CLASSES, true)?))
}

// ---- training -------------------------------------------------------------------------

fn err(e: ingot::Error) -> String {
    e.to_string()
}

struct Outcome {
    name: &'static str,
    params: usize,
    epochs: usize,
    train: Duration,
    test_acc: f64,
}

/// Fraction of `idx` that `model` classifies correctly (one batch; 360 images are small).
fn accuracy(model: &Sequential, data: &Digits, idx: &[usize], as_images: bool) -> Res<f64> {
    let (x, _) = data.batch(idx, as_images)?;
    let pred = ingot::argmax(&model.forward(&x).map_err(err)?, Some(-1), false).map_err(err)?;
    let pred = pred.to_vec::<i64>().map_err(err)?;
    let right = pred
        .iter()
        .zip(idx)
        .filter(|(p, &i)| **p == data.labels[i])
        .count();
    Ok(right as f64 / idx.len() as f64)
}

fn train(
    name: &'static str,
    mut model: Sequential,
    as_images: bool,
    data: &Digits,
    train_idx: &[usize],
    test_idx: &[usize],
    epochs: usize,
    args: &Args,
) -> Res<Outcome> {
    let params = model.num_parameters();
    println!(
        "\n{name}: {params} parameters, {epochs} epochs, batch {}, AdamW lr {}",
        args.batch, args.lr
    );
    let mut opt = AdamW::new(args.lr);
    let ce = CrossEntropy::default();
    let mut order = train_idx.to_vec();
    let mut shuffler = SplitMix(args.seed ^ 0x5EED);
    let mut train_time = Duration::ZERO;
    let mut test_acc = 0.0;
    for epoch in 1..=epochs {
        shuffler.shuffle(&mut order);
        model.train();
        let start = Instant::now();
        let mut loss_sum = 0.0;
        for chunk in order.chunks(args.batch) {
            let (x, y) = data.batch(chunk, as_images)?;
            let (loss, grads) = value_and_grad(&mut model, |m: &Sequential| {
                cross_entropy(&m.forward(&x)?, &y, &ce)
            })
            .map_err(err)?;
            // The loss and the gradients in one evaluation, then the step.
            let mut outs = vec![loss.clone()];
            outs.extend(grads.values().cloned());
            ingot::eval(&outs).map_err(err)?;
            opt.update(&mut model, &grads).map_err(err)?;
            let l = ingot::astype(&loss, DType::F64)
                .and_then(|l| l.item::<f64>())
                .map_err(err)?;
            loss_sum += l * chunk.len() as f64;
        }
        train_time += start.elapsed();
        model.eval_mode();
        test_acc = accuracy(&model, data, test_idx, as_images)?;
        println!(
            "{name} epoch {epoch:>3}: loss {:.4}  test accuracy {:.2}%  ({:.2} s)",
            loss_sum / order.len() as f64,
            100.0 * test_acc,
            train_time.as_secs_f64()
        );
    }
    Ok(Outcome {
        name,
        params,
        epochs,
        train: train_time,
        test_acc,
    })
}

fn run() -> Res<()> {
    let Some(mut args) = parse_args()? else {
        return Ok(());
    };
    // The default path is the workspace's data/ when run from another directory.
    if args.data == Path::new(DEFAULT_DATA) && !args.data.exists() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(DEFAULT_DATA);
        if root.exists() {
            args.data = root.canonicalize().unwrap_or(root);
        }
    }
    let data = load(&args.data)?;
    let mut perm: Vec<usize> = (0..data.len()).collect();
    SplitMix(SPLIT_SEED).shuffle(&mut perm);
    let (test_idx, train_idx) = perm.split_at(TEST);
    println!(
        "digits: {} images from {} ({} train, {} test), seed {}",
        data.len(),
        args.data.display(),
        train_idx.len(),
        test_idx.len(),
        args.seed
    );

    let mut results = Vec::new();
    if args.which != Which::Cnn {
        rng::seed(args.seed);
        let model = mlp().map_err(err)?;
        let epochs = args.epochs.unwrap_or(30);
        results.push(train(
            "mlp", model, false, &data, train_idx, test_idx, epochs, &args,
        )?);
    }
    if args.which != Which::Mlp {
        rng::seed(args.seed);
        let model = cnn().map_err(err)?;
        let epochs = args.epochs.unwrap_or(20);
        results.push(train(
            "cnn", model, true, &data, train_idx, test_idx, epochs, &args,
        )?);
    }

    println!("\n| model | parameters | epochs | train seconds | test accuracy |");
    println!("|-------|-----------:|-------:|--------------:|--------------:|");
    for r in &results {
        println!(
            "| {} | {} | {} | {:.2} | {:.2}% ({}/{}) |",
            r.name,
            r.params,
            r.epochs,
            r.train.as_secs_f64(),
            100.0 * r.test_acc,
            (r.test_acc * test_idx.len() as f64).round() as usize,
            test_idx.len()
        );
    }
    Ok(())
}
