//! `ingot launch -n N -- COMMAND`: runs COMMAND as the N ranks of a world on this machine
//! (or as this machine's part of a world over several, with --nnodes and --node-rank), with
//! the environment `ingot::distributed` reads, each line of output prefixed by its rank.
//! When one rank fails, the others are stopped and the launcher exits with its status.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

/// NVLink multicast stays off for every program a launch starts: on the shared machines a
/// program that uses it can take the host's GPUs out of service (docs/distributed.md).
pub const NO_MULTICAST: [(&str, &str); 3] = [
    ("NCCL_NVLS_ENABLE", "0"),
    ("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1"),
    ("NVSHMEM_DISABLE_NVLS", "1"),
];

#[derive(clap::Args)]
pub struct Launch {
    /// Processes on this machine.
    #[arg(short = 'n', long = "nproc", default_value_t = 1)]
    pub procs: usize,
    /// Machines in the world (each runs `ingot launch` with its own --node-rank).
    #[arg(long, default_value_t = 1)]
    pub nnodes: usize,
    /// This machine's place among the nodes.
    #[arg(long, default_value_t = 0)]
    pub node_rank: usize,
    /// Where node 0's rank 0 serves the store (an address every node can reach).
    #[arg(long, default_value = "127.0.0.1")]
    pub master_addr: String,
    /// The store's port (default on one machine: a free one).
    #[arg(long)]
    pub master_port: Option<u16>,
    /// The program and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

fn fail(msg: String) -> ExitCode {
    eprintln!("ingot launch: {msg}");
    ExitCode::from(2)
}

pub fn run(l: Launch) -> ExitCode {
    if l.procs == 0 || l.nnodes == 0 || l.node_rank >= l.nnodes {
        return fail(format!(
            "-n {} with --nnodes {} and --node-rank {}: need at least one process and a \
             node rank below the node count",
            l.procs, l.nnodes, l.node_rank
        ));
    }
    let Some((prog, args)) = l.command.split_first() else {
        return fail("no command: ingot launch -n N -- COMMAND [ARGS]".into());
    };
    // One machine picks a free port for the store; several must agree on one in advance.
    let port = match l.master_port {
        Some(p) => p,
        None if l.nnodes == 1 => match std::net::TcpListener::bind((l.master_addr.as_str(), 0))
            .and_then(|s| s.local_addr())
        {
            Ok(a) => a.port(),
            Err(e) => return fail(format!("no free port on {}: {e}", l.master_addr)),
        },
        None => return fail("several nodes need --master-port (the same on every node)".into()),
    };
    let world = l.procs * l.nnodes;
    let mut children: Vec<(usize, Child)> = Vec::new();
    let mut pipes = Vec::new();
    for local in 0..l.procs {
        let rank = l.node_rank * l.procs + local;
        let mut c = Command::new(prog);
        c.args(args)
            .env("RANK", rank.to_string())
            .env("WORLD_SIZE", world.to_string())
            .env("LOCAL_RANK", local.to_string())
            .env("LOCAL_WORLD_SIZE", l.procs.to_string())
            .env("MASTER_ADDR", &l.master_addr)
            .env("MASTER_PORT", port.to_string())
            .env("INGOT_STORE", format!("{}:{port}", l.master_addr))
            .envs(NO_MULTICAST)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Each rank leads a process group, so stopping it stops what it started too.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        match c.spawn() {
            Ok(mut child) => {
                let out = child.stdout.take();
                let err = child.stderr.take();
                pipes.push(prefix(rank, out, false));
                pipes.push(prefix(rank, err, true));
                children.push((rank, child));
            }
            Err(e) => {
                stop(&mut children);
                return fail(format!("cannot start {prog:?} as rank {rank}: {e}"));
            }
        }
    }
    // Wait for all; the first failure stops the rest.
    let mut status = 0u8;
    let mut done = vec![false; children.len()];
    while done.contains(&false) {
        for (k, (rank, child)) in children.iter_mut().enumerate() {
            if done[k] {
                continue;
            }
            match child.try_wait() {
                Ok(Some(s)) => {
                    done[k] = true;
                    if !s.success() && status == 0 {
                        eprintln!("ingot launch: rank {rank} failed ({s}); stopping the others");
                        status = s.code().map_or(1, |c| c.clamp(1, 255) as u8);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    eprintln!("ingot launch: rank {rank}: {e}");
                    done[k] = true;
                    status = status.max(1);
                }
            }
        }
        if status != 0 {
            for (k, (_, child)) in children.iter_mut().enumerate() {
                if !done[k] {
                    kill(child);
                    done[k] = true;
                }
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in pipes {
        let _ = p.join();
    }
    ExitCode::from(status)
}

fn stop(children: &mut [(usize, Child)]) {
    for (_, c) in children {
        kill(c);
    }
}

/// Stops a rank and every process in its group.
fn kill(c: &mut Child) {
    #[cfg(unix)]
    // Safety: sends a signal to the process group the child leads; no memory is touched.
    unsafe {
        libc::kill(-(c.id() as libc::pid_t), libc::SIGKILL);
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// Copies a child's stream line by line, each line behind "[rank R] ".
fn prefix(
    rank: usize,
    stream: Option<impl std::io::Read + Send + 'static>,
    err: bool,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Some(s) = stream else { return };
        let mut r = BufReader::new(s);
        let mut line = Vec::new();
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if line.last() != Some(&b'\n') {
                        line.push(b'\n');
                    }
                    let text = [format!("[rank {rank}] ").as_bytes(), &line].concat();
                    // One write a line, so lines of different ranks do not interleave.
                    let _ = if err {
                        std::io::stderr().lock().write_all(&text)
                    } else {
                        std::io::stdout().lock().write_all(&text)
                    };
                }
            }
        }
    })
}
