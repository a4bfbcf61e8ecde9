//! Data parallelism: each process of a group computes gradients on its own share of the
//! batch, and [`average_gradients`] replaces them with the group's mean, so every process
//! takes the same optimizer step. The gradients travel in buckets (parameters of one dtype
//! flattened and joined until a bucket holds `bucket_bytes`), one `all_sum` a bucket rather
//! than one a parameter. The sums are queued at once, the last bucket first: on GPUs each
//! one's NCCL all-reduce runs on its own stream as soon as the backward pass has queued
//! that bucket's gradients, overlapping the rest of the backward pass (the buckets hold
//! parameters in name order, so the last ones are, roughly, the layers the backward pass
//! reaches first).

use ingot::distributed::{self, Group};
use ingot::{Array, Result};
use std::collections::BTreeMap;

/// PyTorch DistributedDataParallel's default bucket: 25 MiB.
pub const DEFAULT_BUCKET_BYTES: usize = 25 << 20;

/// The mean of `grads` over the group (every process passes the same names, shapes and
/// dtypes). A group of one returns them unchanged.
pub fn average_gradients(
    grads: &BTreeMap<String, Array>,
    group: Option<&Group>,
    bucket_bytes: usize,
) -> Result<BTreeMap<String, Array>> {
    let g = match group {
        Some(g) => g.clone(),
        None => distributed::world()?,
    };
    let n = g.size();
    if n == 1 {
        return Ok(grads.clone());
    }
    // Buckets of same-dtype gradients in name order: the same on every process.
    let mut buckets: Vec<Vec<&String>> = Vec::new();
    let mut fill = 0usize;
    for (name, a) in grads {
        let bytes = a.size() * a.dtype().size();
        let fits = buckets.last().is_some_and(|b| {
            grads[b[0]].dtype() == a.dtype() && fill + bytes <= bucket_bytes.max(1)
        });
        if fits {
            buckets.last_mut().expect("checked").push(name);
            fill += bytes;
        } else {
            buckets.push(vec![name]);
            fill = bytes;
        }
    }
    let mut out = BTreeMap::new();
    let mut sums = Vec::new();
    for b in buckets {
        let flat: Vec<Array> = b
            .iter()
            .map(|k| ingot::reshape_to(&grads[*k], &[grads[*k].size()]))
            .collect::<Result<_>>()?;
        let joined = if flat.len() == 1 {
            flat[0].clone()
        } else {
            ingot::concatenate(&flat, Some(0))?
        };
        let summed = distributed::all_sum(&joined, Some(&g))?;
        sums.push(summed.clone());
        let mean = ingot::divide(&summed, n as f64)?;
        let mut at = Vec::new();
        let mut pos = 0usize;
        for k in &b[..b.len() - 1] {
            pos += grads[*k].size();
            at.push(pos as isize);
        }
        let parts = if at.is_empty() {
            vec![mean]
        } else {
            ingot::split(&mean, ingot::SplitSpec::Indices(at), 0)?
        };
        for (k, p) in b.into_iter().zip(parts) {
            out.insert(k.clone(), ingot::reshape_to(&p, grads[k].shape())?);
        }
    }
    // Queue the sums, last bucket first (in the same order on every process: the order
    // collectives run in). On a GPU this returns at once; on the host the sums happen here.
    sums.reverse();
    ingot::async_eval(&sums)?;
    Ok(out)
}
