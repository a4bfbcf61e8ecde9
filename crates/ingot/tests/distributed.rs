//! Collectives across processes: the test starts copies of itself as the ranks of a world
//! (over a TCP store and over a shared directory), each rank runs `rank_scenario` and checks
//! every collective against the values it computes itself from the other ranks' inputs
//! (which are functions of the rank). A world of one process needs none of this.

use ingot::distributed::{self as dist, Group};
use ingot::{Array, DType};
use std::process::Command;
use std::time::{Duration, Instant};

/// Rank r's input: `(rows, cols)` values that differ by rank and position.
fn input(r: usize, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    (0..n)
        .map(|i| ((i * 7 + r * 13) % 23) as f32 - 11.0 + 0.25 * r as f32)
        .collect()
}

fn arr(v: &[f32], shape: &[usize]) -> Array {
    Array::from_slice(v, shape).unwrap()
}

fn vals(a: &Array) -> Vec<f32> {
    a.to_vec::<f32>().unwrap()
}

/// What every rank of a world of `n` checks.
fn rank_scenario() {
    let world = dist::init().unwrap();
    let (r, n) = (world.rank(), world.size());
    assert!(n >= 2, "run with WORLD_SIZE of at least 2");
    let shape = [3, 4];
    let x = arr(&input(r, &shape), &shape);
    let all: Vec<Vec<f32>> = (0..n).map(|k| input(k, &shape)).collect();

    // Sums, max and min, in f32 and in int32 and f16 (small integers and quarters: exact).
    let sum: Vec<f32> = (0..12).map(|i| all.iter().map(|v| v[i]).sum()).collect();
    assert_eq!(vals(&dist::all_sum(&x, None).unwrap()), sum, "all_sum");
    let max: Vec<f32> = (0..12)
        .map(|i| all.iter().map(|v| v[i]).fold(f32::MIN, f32::max))
        .collect();
    assert_eq!(vals(&dist::all_max(&x, None).unwrap()), max, "all_max");
    let min: Vec<f32> = (0..12)
        .map(|i| all.iter().map(|v| v[i]).fold(f32::MAX, f32::min))
        .collect();
    assert_eq!(vals(&dist::all_min(&x, None).unwrap()), min, "all_min");
    let xi = ingot::astype(&x, DType::I32).unwrap();
    let si = dist::all_sum(&xi, None).unwrap();
    assert_eq!(si.dtype(), DType::I32);
    let want_i: Vec<i32> = (0..12)
        .map(|i| all.iter().map(|v| v[i] as i32).sum())
        .collect();
    assert_eq!(si.to_vec::<i32>().unwrap(), want_i, "all_sum int32");
    let xh = ingot::astype(&x, DType::F16).unwrap();
    let sh = ingot::astype(&dist::all_sum(&xh, None).unwrap(), DType::F32).unwrap();
    assert_eq!(vals(&sh), sum, "all_sum f16");
    // NaN on one rank wins the max everywhere (on the host transport; NCCL's max has its
    // own rule for NaN, docs/distributed.md).
    let on_gpu = matches!(ingot::default_device(), ingot::Device::Cuda(_));
    let mut withnan = input(r, &shape);
    if r == n - 1 {
        withnan[5] = f32::NAN;
    }
    let m = vals(&dist::all_max(&arr(&withnan, &shape), None).unwrap());
    assert!(m[5].is_nan() || on_gpu, "NaN in all_max");
    assert!(!m[4].is_nan(), "NaN in all_max");

    // Gathers along either axis, of a transposed (non-contiguous) input too.
    let g0 = dist::all_gather(&x, 0, None).unwrap();
    assert_eq!(g0.shape(), &[3 * n, 4]);
    assert_eq!(vals(&g0), all.concat(), "all_gather axis 0");
    let g1 = dist::all_gather(&x, -1, None).unwrap();
    assert_eq!(g1.shape(), &[3, 4 * n]);
    let want1: Vec<f32> = (0..3)
        .flat_map(|row| {
            all.iter()
                .flat_map(move |v| v[row * 4..row * 4 + 4].to_vec())
        })
        .collect();
    assert_eq!(vals(&g1), want1, "all_gather axis 1");
    let xt = ingot::transpose(&x, None).unwrap();
    let gt = dist::all_gather(&xt, 0, None).unwrap();
    let want_t: Vec<f32> = all
        .iter()
        .flat_map(|v| (0..4).flat_map(move |c| (0..3).map(move |row| v[row * 4 + c])))
        .collect();
    assert_eq!(vals(&gt), want_t, "all_gather of a transposed input");

    // reduce_scatter: rank r keeps part r of the sum along axis 0.
    let rows = 2 * n;
    let big: Vec<Vec<f32>> = (0..n).map(|k| input(k, &[rows, 3])).collect();
    let rs = dist::reduce_scatter(&arr(&big[r], &[rows, 3]), 0, None).unwrap();
    assert_eq!(rs.shape(), &[2, 3]);
    let want_rs: Vec<f32> = (r * 6..r * 6 + 6)
        .map(|i| big.iter().map(|v| v[i]).sum())
        .collect();
    assert_eq!(vals(&rs), want_rs, "reduce_scatter");

    // broadcast from the last rank.
    let b = dist::broadcast(&x, n - 1, None).unwrap();
    assert_eq!(vals(&b), all[n - 1], "broadcast");

    // A ring of sends: each rank sends to the next and receives from the one before.
    let sent = dist::send(&x, (r + 1) % n, None).unwrap();
    sent.eval().unwrap();
    let got = dist::recv(&shape, DType::F32, (r + n - 1) % n, None).unwrap();
    assert_eq!(vals(&got), all[(r + n - 1) % n], "send / recv");

    // Sub-groups: even and odd ranks, each summing its own members.
    let part = world.split((r % 2) as u64, 0).unwrap();
    let members: Vec<usize> = (0..n).filter(|k| k % 2 == r % 2).collect();
    assert_eq!(part.size(), members.len());
    assert_eq!(part.world_ranks(), members.as_slice());
    let ps = vals(&dist::all_sum(&x, Some(&part)).unwrap());
    let want_ps: Vec<f32> = (0..12)
        .map(|i| members.iter().map(|&k| all[k][i]).sum())
        .collect();
    assert_eq!(ps, want_ps, "all_sum in a sub-group");

    // Gradients. loss_r = sum(c_r * all_sum(x_r)): d/dx_r = sum over ranks of c_k.
    let c = |k: usize| (k + 1) as f32;
    let f = move |a: &[Array]| -> ingot::Result<Array> {
        let s = dist::all_sum(&a[0], None)?;
        ingot::sum(&ingot::multiply(&s, c(r))?, None, false)
    };
    let gx = vals(&ingot::grad(f, &[0])(std::slice::from_ref(&x)).unwrap()[0]);
    let want_g: f32 = (0..n).map(c).sum();
    assert!(gx.iter().all(|&v| v == want_g), "grad of all_sum: {gx:?}");
    // loss_r = sum(w_r * all_gather(x_r)) with w_r[i] = (r + 1) * i: d/dx_r is the sum over
    // ranks k of w_k's part r (a reduce_scatter).
    let w = |k: usize| -> Vec<f32> { (0..12 * n).map(|i| ((k + 1) * i) as f32).collect() };
    let wr = arr(&w(r), &[3 * n, 4]);
    let f = move |a: &[Array]| -> ingot::Result<Array> {
        let g = dist::all_gather(&a[0], 0, None)?;
        ingot::sum(&ingot::multiply(&g, &wr)?, None, false)
    };
    let gx = vals(&ingot::grad(f, &[0])(std::slice::from_ref(&x)).unwrap()[0]);
    let want: Vec<f32> = (0..12)
        .map(|i| (0..n).map(|k| w(k)[r * 12 + i]).sum())
        .collect();
    assert_eq!(gx, want, "grad of all_gather");
    // broadcast: the root's gradient is every rank's cotangent summed; the others get 0.
    let f = move |a: &[Array]| -> ingot::Result<Array> {
        let b = dist::broadcast(&a[0], 0, None)?;
        ingot::sum(&ingot::multiply(&b, c(r))?, None, false)
    };
    let gx = vals(&ingot::grad(f, &[0])(std::slice::from_ref(&x)).unwrap()[0]);
    let want_b = if r == 0 { want_g } else { 0.0 };
    assert!(gx.iter().all(|&v| v == want_b), "grad of broadcast: {gx:?}");
    // all_max: the cotangent sum goes to the rank(s) holding the maximum.
    let f = move |a: &[Array]| -> ingot::Result<Array> {
        ingot::sum(&dist::all_max(&a[0], None)?, None, false)
    };
    let gx = vals(&ingot::grad(f, &[0])(std::slice::from_ref(&x)).unwrap()[0]);
    for i in 0..12 {
        let ties = all.iter().filter(|v| v[i] == max[i]).count() as f32;
        let want = if all[r][i] == max[i] {
            n as f32 / ties
        } else {
            0.0
        };
        assert_eq!(gx[i], want, "grad of all_max at {i}");
    }

    // vmap over a leading axis: the gather moves past the batch axis.
    let xb = arr(&input(r, &[2, 3, 4]), &[2, 3, 4]);
    let vg = ingot::vmap(
        |a: &[Array]| Ok(vec![dist::all_gather(&a[0], 0, None)?]),
        &[Some(0)],
        &[Some(0)],
    )(std::slice::from_ref(&xb))
    .unwrap();
    let direct = dist::all_gather(&xb, 1, None).unwrap();
    assert_eq!(vals(&vg[0]), vals(&direct), "vmap of all_gather");

    // A rank whose array differs gets a clear error, and so do the others (on the host
    // transport; NCCL does not check, so GPU ranks skip this).
    if on_gpu {
        println!("rank {r} of {n}: all checks passed");
        return;
    }
    let odd = if r == 0 { vec![1.0; 5] } else { vec![1.0; 4] };
    let len = odd.len();
    let e = dist::all_sum(&arr(&odd, &[len]), None)
        .unwrap()
        .eval()
        .unwrap_err()
        .to_string();
    assert!(e.contains("differ"), "error for mismatched arrays: {e}");
    // ... and the connections stay usable.
    assert_eq!(
        vals(&dist::all_sum(&x, None).unwrap()),
        sum,
        "all_sum after an error"
    );
    // The NCCL handshake of a group's first GPU collective: every rank gets rank 0's id, or
    // all get none where rank 0 cannot load NCCL (INGOT_NCCL_LIB can name one here).
    match dist::nccl_handshake(&world).unwrap() {
        Some(id) => {
            let mine: Vec<f32> = id.iter().map(|&b| b as f32).collect();
            let every = vals(&dist::all_gather(&arr(&mine, &[1, 128]), 0, None).unwrap());
            for k in 0..n {
                assert_eq!(
                    every[k * 128..(k + 1) * 128],
                    mine[..],
                    "rank {k}'s NCCL id"
                );
            }
        }
        None => assert!(dist::nccl_version().is_err() || std::env::var("INGOT_NCCL").is_ok()),
    }
    println!("rank {r} of {n}: all checks passed");
}

#[test]
fn rank() {
    if std::env::var_os("INGOT_TEST_RANK_CHILD").is_some() {
        rank_scenario();
    }
}

/// Runs `n` copies of this test executable as a world meeting at `store`.
fn run_world(n: usize, store: &str) {
    let exe = std::env::current_exe().unwrap();
    // With INGOT_TEST_DEVICE=cuda and a GPU for every rank, the ranks run on GPUs (each its
    // LOCAL_RANK's) and the collectives over NCCL; otherwise on the host.
    let gpus = std::env::var("INGOT_TEST_DEVICE").is_ok_and(|d| d.starts_with("cuda"))
        && ingot::cuda::device_count() >= n;
    let children: Vec<_> = (0..n)
        .map(|r| {
            let mut c = Command::new(&exe);
            if !gpus {
                c.env_remove("INGOT_TEST_DEVICE");
            }
            c.args(["--exact", "rank", "--nocapture", "--test-threads", "1"])
                .env("INGOT_TEST_RANK_CHILD", "1")
                .env("RANK", r.to_string())
                .env("WORLD_SIZE", n.to_string())
                .env("INGOT_STORE", store)
                .env("INGOT_DIST_TIMEOUT", "60")
                .env("LOCAL_RANK", r.to_string())
                .output_async()
        })
        .collect();
    let mut failed = Vec::new();
    for (r, c) in children.into_iter().enumerate() {
        let out = c.wait_output();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() || !text.contains("all checks passed") {
            failed.push(format!("rank {r} ({}):\n{text}", out.status));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// `Command::output` on a thread, so all ranks run at once.
trait Async {
    fn output_async(&mut self) -> Pending;
}
struct Pending(std::thread::JoinHandle<std::process::Output>);
impl Pending {
    fn wait_output(self) -> std::process::Output {
        self.0.join().unwrap()
    }
}
impl Async for Command {
    fn output_async(&mut self) -> Pending {
        let mut c = std::mem::replace(self, Command::new("true"));
        Pending(std::thread::spawn(move || c.output().unwrap()))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn three_processes_over_a_tcp_store() {
    let t = Instant::now();
    run_world(3, &format!("127.0.0.1:{}", free_port()));
    assert!(t.elapsed() < Duration::from_secs(120));
}

#[test]
fn two_processes_over_a_store_directory() {
    let dir = std::env::temp_dir().join(format!("ingot-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    run_world(2, &format!("file:{}", dir.display()));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A world of one: every collective is its input, and the group needs no store.
#[test]
fn a_world_of_one_process_needs_no_setup() {
    if std::env::var_os("WORLD_SIZE").is_some() || std::env::var_os("INGOT_WORLD_SIZE").is_some() {
        return;
    }
    let g: Group = dist::init().unwrap();
    assert_eq!((g.rank(), g.size()), (0, 1));
    let x = arr(&input(0, &[2, 3]), &[2, 3]);
    for y in [
        dist::all_sum(&x, None).unwrap(),
        dist::all_max(&x, Some(&g)).unwrap(),
        dist::all_min(&x, None).unwrap(),
        dist::all_gather(&x, 1, None).unwrap(),
        dist::reduce_scatter(&x, 0, None).unwrap(),
        dist::broadcast(&x, 0, None).unwrap(),
    ] {
        assert_eq!(vals(&y), vals(&x));
    }
    assert_eq!(g.split(3, 0).unwrap().size(), 1);
    // Bad arguments are errors that name the op.
    let e = dist::send(&x, 0, None).unwrap_err().to_string();
    assert!(e.contains("send"), "{e}");
    let e = dist::broadcast(&x, 1, None).unwrap_err().to_string();
    assert!(e.contains("root 1"), "{e}");
    let e = dist::all_sum(&ingot::astype(&x, DType::Bool).unwrap(), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("all_sum") && e.contains("bool"), "{e}");
    let e = dist::all_gather(&x, 2, None).unwrap_err().to_string();
    assert!(e.contains("all_gather"), "{e}");
}

/// NCCL on one GPU: a world of one runs every collective through NCCL (the public
/// functions skip groups of one, so the test builds the nodes itself). Each must return its
/// input bit for bit, for every dtype NCCL moves or reduces, from contiguous and transposed
/// inputs, without falling back to the host. The multi-GPU checks need several GPUs
/// (docs/distributed.md).
#[test]
fn nccl_collectives_in_a_world_of_one_gpu() {
    if !ingot::cuda::is_available()
        || std::env::var_os("WORLD_SIZE").is_some()
        || std::env::var_os("INGOT_WORLD_SIZE").is_some()
    {
        eprintln!("skipped: needs a CUDA GPU and a world of one");
        return;
    }
    let v = dist::nccl_version().expect("NCCL should load on a GPU machine");
    eprintln!("NCCL {}.{}.{}", v.0, v.1, v.2);
    let dev = ingot::Device::Cuda(0);
    let before = ingot::cuda::fallbacks();
    let shape = [4usize, 6, 5];
    let n: usize = shape.iter().product();
    let base: Vec<f32> = (0..n)
        .map(|i| ((i * 37) % 101) as f32 * 0.37 - 17.0)
        .collect();
    for dtype in [
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::F64,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::I8,
        DType::C64,
    ] {
        ingot::with_device(dev, || {
            let x = ingot::astype(&arr(&base, &shape), dtype).unwrap();
            // A transposed view makes the collective copy it to row-major order first.
            let xt = ingot::transpose(&x, Some(&[2, 0, 1])).unwrap();
            let f64s = |a: &Array| {
                let a = if dtype == DType::C64 {
                    ingot::real(a).unwrap()
                } else {
                    a.clone()
                };
                ingot::astype(&a, DType::F64)
                    .unwrap()
                    .to_vec::<f64>()
                    .unwrap()
            };
            for x in [&x, &xt] {
                let want = f64s(x);
                for what in [
                    "all_sum",
                    "all_max",
                    "all_min",
                    "broadcast",
                    "all_gather:0",
                    "all_gather:1",
                    "all_gather:2",
                    "reduce_scatter:0",
                    "reduce_scatter:1",
                ] {
                    if dtype == DType::C64 && (what == "all_max" || what == "all_min") {
                        continue;
                    }
                    let y = dist::collective_of_one(x, what).unwrap();
                    assert_eq!(f64s(&y), want, "{what} of {dtype} {:?}", x.shape());
                }
            }
        });
    }
    // The collectives run on their own stream: outputs read by the next kernels (the compute
    // stream waits for them), inputs dropped while the collective may still read them, and
    // a gather along an inner axis reordered after the gather.
    ingot::with_device(dev, || {
        let x = ingot::astype(&arr(&base, &shape), DType::I32).unwrap();
        let mut acc = x.clone();
        for _ in 0..8 {
            let y = dist::collective_of_one(&acc, "all_sum").unwrap();
            let y = dist::collective_of_one(&y, "all_gather:2").unwrap();
            acc = ingot::add(&y, &x).unwrap();
        }
        let want: Vec<i32> = x.to_vec::<i32>().unwrap().iter().map(|v| 9 * v).collect();
        assert_eq!(acc.to_vec::<i32>().unwrap(), want, "chained collectives");
    });
    let after = ingot::cuda::fallbacks();
    for name in [
        "all_sum",
        "all_max",
        "all_min",
        "broadcast",
        "all_gather",
        "reduce_scatter",
    ] {
        let count = |f: &[(&str, usize)]| f.iter().find(|(n, _)| *n == name).map_or(0, |p| p.1);
        assert_eq!(
            count(&after),
            count(&before),
            "{name} fell back to the host"
        );
    }
}
