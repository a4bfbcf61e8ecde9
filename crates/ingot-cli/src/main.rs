//! The `ingot` command-line tool (docs/cli.md).

mod infer;
mod launch;
mod lm;

use clap::{Parser, Subcommand};
use ingot::runner::spec::{exit_code, run_spec_with};
use ingot::Device;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ingot",
    version,
    about = "ingot: lazy arrays for machine learning"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run COMMAND as the N ranks of a distributed world (docs/distributed.md): each gets
    /// RANK, WORLD_SIZE, LOCAL_RANK and the store's address, its output prefixed by rank;
    /// when one fails the others are stopped.
    Launch(launch::Launch),
    /// Run or list the registered operations.
    Ops {
        #[command(subcommand)]
        cmd: OpsCmd,
    },
    /// Train a Llama-layout language model from a JSON config (docs/nn.md, configs/).
    Train {
        /// The config file, e.g. configs/shakespeare.json.
        config: PathBuf,
        /// cpu, cuda or cuda:N (default: INGOT_DEVICE, else the first GPU, else the CPU).
        #[arg(long)]
        device: Option<String>,
    },
    /// Continue a prompt with a language model, printing text as it comes.
    Generate {
        /// A Hugging Face model folder (config.json, safetensors, tokenizer.json); by
        /// default the Shakespeare model shipped in the repository (models/shakespeare).
        #[arg(long)]
        model: Option<PathBuf>,
        /// The text to continue.
        #[arg(long, default_value = "")]
        prompt: String,
        /// Send the prompt as a user message through the folder's chat template.
        #[arg(long)]
        chat: bool,
        #[command(flatten)]
        sampling: infer::SamplingArgs,
        /// cpu, cuda or cuda:N (default: INGOT_DEVICE, else the first GPU, else the CPU).
        #[arg(long)]
        device: Option<String>,
    },
    /// Talk with a chat model: one message a line on stdin, replies streamed to stdout.
    Chat {
        /// A Hugging Face model folder with a chat template.
        #[arg(long)]
        model: PathBuf,
        /// A system message to start the conversation with.
        #[arg(long)]
        system: Option<String>,
        #[command(flatten)]
        sampling: infer::SamplingArgs,
        #[arg(long)]
        device: Option<String>,
    },
    /// Sentence embeddings with a BERT-family sentence-transformers folder.
    Embed {
        /// The model folder (config.json, model.safetensors, tokenizer.json, modules.json).
        #[arg(long)]
        model: PathBuf,
        /// The texts to embed.
        #[arg(required = true)]
        texts: Vec<String>,
        /// Write the vectors to this .npy or .json file instead of printing them.
        #[arg(long)]
        out: Option<PathBuf>,
        /// f32 (default), bf16 or f16.
        #[arg(long)]
        dtype: Option<String>,
        #[arg(long)]
        device: Option<String>,
    },
    /// Prefill and decode speed and memory of a language model with random weights.
    BenchLm {
        /// A model folder (its config.json is used, not its weights).
        #[arg(long, conflicts_with = "config")]
        model: Option<PathBuf>,
        /// A config.json file (any size: the weights are random).
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, default_value_t = 128)]
        prompt_tokens: usize,
        #[arg(long, default_value_t = 256)]
        new_tokens: usize,
        /// Use only this many layers (a quick run of a big geometry).
        #[arg(long)]
        layers: Option<usize>,
        /// f32, bf16 or f16 (default: bf16 on a GPU, f32 on the CPU).
        #[arg(long)]
        dtype: Option<String>,
        /// Also write the JSON line to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Run PyTorch (transformers, eager) on the same config after ingot, with this
        /// Python (scripts/bench/torch_lm.py, from the repository root).
        #[arg(long)]
        torch: Option<String>,
        #[arg(long)]
        device: Option<String>,
        /// Keep q, k, v (and gate, up) as separate projections instead of joining them.
        #[arg(long)]
        separate_projections: bool,
    },
}

#[derive(Subcommand)]
enum OpsCmd {
    /// Run the cases of a JSON spec; inputs are .npy files relative to the spec.
    Run {
        /// The spec file.
        spec: PathBuf,
        /// Where to write <id>.out<k>.npy and <id>.error.txt (default: the spec's folder).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The device to run on: cpu, cuda or cuda:N (default: the spec's, else cpu).
        #[arg(long)]
        device: Option<String>,
    },
    /// List every op with its inputs and attributes (types and defaults).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Launch(l) => launch::run(l),
        Cmd::Ops { cmd } => match cmd {
            OpsCmd::Run { spec, out, device } => ops_run(spec, out, device),
            OpsCmd::List { json } => ops_list(json),
        },
        Cmd::Train { config, device } => {
            report(pick_device(device).and_then(|_| lm::train(&config)))
        }
        Cmd::Generate {
            model,
            prompt,
            chat,
            sampling,
            device,
        } => report(pick_device(device).and_then(|_| {
            infer::generate(
                &model.unwrap_or_else(lm::default_model),
                &prompt,
                chat,
                &sampling,
            )
        })),
        Cmd::Chat {
            model,
            system,
            sampling,
            device,
        } => report(
            pick_device(device).and_then(|_| infer::chat(&model, system.as_deref(), &sampling)),
        ),
        Cmd::Embed {
            model,
            texts,
            out,
            dtype,
            device,
        } => report(
            pick_device(device).and_then(|_| infer::embed(&model, &texts, out.as_deref(), &dtype)),
        ),
        Cmd::BenchLm {
            model,
            config,
            prompt_tokens,
            new_tokens,
            layers,
            dtype,
            json,
            torch,
            device,
            separate_projections,
        } => report(pick_device(device).and_then(|_| {
            let source = model.or(config).ok_or_else(|| {
                ingot::Error::invalid("bench-lm", "give --model DIR or --config FILE")
            })?;
            infer::bench_lm(
                &source,
                infer::BenchShape {
                    prompt_tokens,
                    new_tokens,
                    layers,
                    fuse: !separate_projections,
                },
                &dtype,
                json.as_deref(),
                torch.as_deref(),
            )
        })),
    }
}

/// Makes `--device` (or INGOT_DEVICE, or this process's GPU when there is one: the first,
/// or under `ingot launch` its local rank's) the default device, so training and
/// generation use a GPU without being told.
fn pick_device(arg: Option<String>) -> ingot::Result<()> {
    let named = arg.or_else(|| std::env::var("INGOT_DEVICE").ok());
    let d = match named {
        Some(s) => s.parse::<Device>().map_err(|e| ingot::Error::Unsupported {
            op: "--device".into(),
            msg: format!("{s:?}: {e}"),
        })?,
        None => ingot::default_gpu().unwrap_or(Device::Cpu),
    };
    ingot::set_default_device(d);
    eprintln!("device: {d}");
    Ok(())
}

/// Exit status 0, or the error on stderr and status 1.
fn report(r: ingot::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn ops_run(spec: PathBuf, out: Option<PathBuf>, device: Option<String>) -> ExitCode {
    let device = match device.map(|d| d.parse::<Device>()).transpose() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut bar: Option<indicatif::ProgressBar> = None;
    let mut progress = |done: usize, total: usize, id: &str| {
        // Short specs finish before a bar would help.
        if total < 50 {
            return;
        }
        let b = bar.get_or_insert_with(|| {
            let b = indicatif::ProgressBar::with_draw_target(
                Some(total as u64),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed} {msg}")
            {
                b.set_style(style);
            }
            b
        });
        b.set_position(done as u64);
        b.set_message(id.to_string());
    };
    let result = run_spec_with(&spec, out.as_deref(), device, &mut progress);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    match &result {
        Ok(s) => eprintln!("{}", s.line()),
        Err(e) => eprintln!("error: {e}"),
    }
    ExitCode::from(exit_code(&result) as u8)
}

fn ops_list(json: bool) -> ExitCode {
    let reg = ingot::runner::registry();
    let mut out = std::io::stdout().lock();
    if json {
        let ops: Vec<serde_json::Value> = reg
            .iter()
            .map(|d| {
                serde_json::json!({
                    "name": d.name,
                    "inputs": d.inputs,
                    "attrs": d.attrs.iter().map(|a| serde_json::json!({
                        "name": a.name, "type": a.ty, "default": a.default,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        // A closed pipe (`| head`) ends the listing quietly.
        let _ = writeln!(out, "{}", serde_json::Value::Array(ops));
        return ExitCode::SUCCESS;
    }
    for d in &reg {
        let attrs: Vec<String> = d
            .attrs
            .iter()
            .map(|a| match a.default {
                Some(v) => format!("{}: {} = {v}", a.name, a.ty),
                None => format!("{}: {} (required)", a.name, a.ty),
            })
            .collect();
        let line = if attrs.is_empty() {
            writeln!(out, "{}({})", d.name, d.inputs)
        } else {
            writeln!(out, "{}({}; {})", d.name, d.inputs, attrs.join(", "))
        };
        if line.is_err() {
            return ExitCode::SUCCESS;
        }
    }
    eprintln!("{} ops", reg.len());
    ExitCode::SUCCESS
}
