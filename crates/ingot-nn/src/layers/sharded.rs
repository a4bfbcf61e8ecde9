//! Tensor-parallel layers (Megatron's split): each process of a group holds a part of a
//! layer's weight and the group's collectives join the parts.
//! - [`ShardedLinear::AllToSharded`] (column-parallel): the output features are split; each
//!   process gets the whole input and computes its part of the output.
//! - [`ShardedLinear::ShardedToAll`] (row-parallel): the input features are split; each
//!   process multiplies its part of the input and an `all_sum` gives every process the
//!   whole output (the bias is added once, after the sum).
//! - [`ShardedEmbedding`]: the vocabulary is split; each process looks up the ids it holds
//!   (zeros for the others) and an `all_sum` joins them.
//!
//! A column-parallel layer followed by a row-parallel one (attention's projections, an MLP)
//! needs one collective between them. Parts are contiguous: process r of n holds rows (or
//! columns) `[r k / n, (r + 1) k / n)`; `k` must divide evenly. A group of one holds the
//! whole layer and runs no collective.

use crate::layers::{Embedding, Linear};
use crate::module::{Module, Param, Unary};
use ingot::distributed::{self, Group};
use ingot::{Array, Error, Result};

/// The slice of `x` along `axis` that part `rank` of `size` holds.
pub fn shard_of(x: &Array, axis: usize, rank: usize, size: usize, what: &str) -> Result<Array> {
    let k = x.shape()[axis];
    if size == 0 || rank >= size || k % size != 0 {
        return Err(Error::invalid(
            what,
            format!(
                "cannot take part {rank} of {size} of axis {axis} of shape {:?} ({k} does not \
                 split evenly)",
                x.shape()
            ),
        ));
    }
    let parts = ingot::split(x, ingot::SplitSpec::Sections(size), axis as isize)?;
    // A copy, so the part does not keep the whole weight alive.
    let c = ingot::copy(&parts[rank])?;
    c.eval()?;
    Ok(c)
}

/// A linear layer split across a group's processes.
#[derive(Clone)]
pub enum ShardedLinear {
    /// Output features split: weight rows `(out / n, in)`, bias `(out / n,)`.
    AllToSharded { local: Linear, group: Option<Group> },
    /// Input features split: weight columns `(out, in / n)`; the whole bias, added once.
    ShardedToAll {
        local: Linear,
        bias: Option<Param>,
        group: Option<Group>,
    },
}

impl ShardedLinear {
    /// Process `rank`'s part of `full` for a group of `size`, without a group to join the
    /// parts (for splitting a model ahead of time, or checking the split in one process).
    pub fn part(full: &Linear, column: bool, rank: usize, size: usize) -> Result<ShardedLinear> {
        let w = &full.weight.value;
        if column {
            let wp = shard_of(w, 0, rank, size, "ShardedLinear::AllToSharded")?;
            let bp = match &full.bias {
                Some(b) => Some(shard_of(&b.value, 0, rank, size, "ShardedLinear")?),
                None => None,
            };
            Ok(ShardedLinear::AllToSharded {
                local: Linear::from_arrays(wp, bp)?,
                group: None,
            })
        } else {
            let wp = shard_of(w, 1, rank, size, "ShardedLinear::ShardedToAll")?;
            Ok(ShardedLinear::ShardedToAll {
                local: Linear::from_arrays(wp, None)?,
                bias: full.bias.clone(),
                group: None,
            })
        }
    }

    /// This process's part of `full` in `group`: output features split (`column`), or
    /// input features split.
    pub fn new(full: &Linear, column: bool, group: &Group) -> Result<ShardedLinear> {
        let mut s = Self::part(full, column, group.rank(), group.size())?;
        match &mut s {
            ShardedLinear::AllToSharded { group: g, .. }
            | ShardedLinear::ShardedToAll { group: g, .. } => *g = Some(group.clone()),
        }
        Ok(s)
    }

    /// This process's partial result, before any collective: its output features
    /// (column-parallel), or its term of the sum without the bias (row-parallel).
    pub fn forward_local(&self, x: &Array) -> Result<Array> {
        self.local().forward(x)
    }

    /// The local weight part.
    pub fn local(&self) -> &Linear {
        match self {
            ShardedLinear::AllToSharded { local, .. }
            | ShardedLinear::ShardedToAll { local, .. } => local,
        }
    }
}

impl Module for ShardedLinear {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        match self {
            ShardedLinear::AllToSharded { local, .. } => local.visit(f),
            ShardedLinear::ShardedToAll { local, bias, .. } => {
                local.visit(f);
                if let Some(b) = bias {
                    f("bias", b);
                }
            }
        }
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        match self {
            ShardedLinear::AllToSharded { local, .. } => local.visit_mut(f),
            ShardedLinear::ShardedToAll { local, bias, .. } => {
                local.visit_mut(f);
                if let Some(b) = bias {
                    f("bias", b);
                }
            }
        }
    }
}

impl Unary for ShardedLinear {
    /// Column-parallel: this process's output features. Row-parallel: the whole output,
    /// from this process's input features (an `all_sum` over the group).
    fn forward(&self, x: &Array) -> Result<Array> {
        match self {
            ShardedLinear::AllToSharded { local, .. } => local.forward(x),
            ShardedLinear::ShardedToAll { local, bias, group } => {
                let y = local.forward(x)?;
                let y = match group {
                    Some(g) => distributed::all_sum(&y, Some(g))?,
                    None => y,
                };
                match bias {
                    Some(b) => ingot::add(&y, &b.value),
                    None => Ok(y),
                }
            }
        }
    }
}

/// An embedding table split by vocabulary rows across a group.
#[derive(Clone)]
pub struct ShardedEmbedding {
    pub local: Embedding,
    /// The first id this process holds.
    pub start: usize,
    pub group: Option<Group>,
}

impl ShardedEmbedding {
    /// Process `rank`'s rows of `full` for a group of `size` (no group attached).
    pub fn part(full: &Embedding, rank: usize, size: usize) -> Result<ShardedEmbedding> {
        let w = shard_of(&full.weight.value, 0, rank, size, "ShardedEmbedding")?;
        let start = rank * w.shape()[0];
        Ok(ShardedEmbedding {
            local: Embedding {
                weight: Param::new(w),
            },
            start,
            group: None,
        })
    }

    pub fn new(full: &Embedding, group: &Group) -> Result<ShardedEmbedding> {
        let mut s = Self::part(full, group.rank(), group.size())?;
        s.group = Some(group.clone());
        Ok(s)
    }

    /// The rows of the ids this process holds, zeros for the others.
    pub fn forward_local(&self, ids: &Array) -> Result<Array> {
        let rows = self.local.weight.value.shape()[0];
        // In int64 throughout: a float scalar would round ids past 2^24.
        let ids = ingot::astype(ids, ingot::DType::I64)?;
        let shifted = ingot::subtract(&ids, self.start as i64)?;
        let inside = ingot::logical_and(
            &ingot::greater_equal(&shifted, 0i64)?,
            &ingot::less(&shifted, rows as i64)?,
        )?;
        let safe = ingot::where_(&inside, &shifted, &ingot::zeros_like(&shifted)?)?;
        let y = self.local.forward(&safe)?;
        let keep = ingot::expand_dims(&inside, &[-1])?;
        ingot::where_(&keep, &y, &ingot::zeros_like(&y)?)
    }
}

impl Module for ShardedEmbedding {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        self.local.visit(f)
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        self.local.visit_mut(f)
    }
}

impl Unary for ShardedEmbedding {
    fn forward(&self, ids: &Array) -> Result<Array> {
        let y = self.forward_local(ids)?;
        match &self.group {
            Some(g) => distributed::all_sum(&y, Some(g)),
            None => Ok(y),
        }
    }
}
