//! CPU kernels, one file per op family. Each family's `eval` takes the evaluated inputs and
//! the output shapes/dtypes and returns one `Data` per output.

pub mod conv;
pub mod elementwise;
pub mod fft;
pub mod fused;
pub mod index;
pub mod linalg;
pub mod misc;
pub mod norm_rope;
pub mod random;
pub mod reduce;
pub mod shape;
pub mod sort;
pub mod strided;
pub mod views;

use crate::array::{Array, Data};
use crate::dtype::DType;
use crate::op::Op;
use crate::Result;

/// Output shapes and dtypes of the node(s) being computed.
pub type Outs<'a> = &'a [(Vec<usize>, DType)];

pub fn eval(op: &Op, inputs: &[Array], outs: Outs) -> Result<Vec<Data>> {
    match op {
        Op::Arange { .. } | Op::Unary(_) | Op::Binary(_) | Op::Select | Op::AsType(_) => {
            elementwise::eval(op, inputs, outs)
        }
        Op::Reshape
        | Op::Transpose { .. }
        | Op::Slice { .. }
        | Op::Broadcast
        | Op::Diagonal { .. }
        | Op::ViewDtype(_)
        | Op::Copy => views::eval(op, inputs, outs),
        Op::Reduce { .. } | Op::ArgReduce { .. } | Op::Scan { .. } => {
            reduce::eval(op, inputs, outs)
        }
        Op::Concatenate { .. } | Op::Pad { .. } => shape::eval(op, inputs, outs),
        Op::Take { .. }
        | Op::TakeAlongAxis { .. }
        | Op::PutAlongAxis { .. }
        | Op::Gather { .. }
        | Op::Scatter { .. }
        | Op::SliceUpdate { .. } => index::eval(op, inputs, outs),
        Op::Sort { .. }
        | Op::ArgSort { .. }
        | Op::Partition { .. }
        | Op::ArgPartition { .. }
        | Op::SearchSorted { .. } => sort::eval(op, inputs, outs),
        Op::Matmul
        | Op::Linear { .. }
        | Op::Cholesky { .. }
        | Op::Inv
        | Op::LuFactor
        | Op::Qr
        | Op::Svd { .. }
        | Op::Eigh { .. }
        | Op::SolveTriangular { .. }
        | Op::Solve => linalg::eval(op, inputs, outs),
        Op::Conv { .. } | Op::Pool { .. } => conv::eval(op, inputs, outs),
        Op::Fft { .. } => fft::eval(op, inputs, outs),
        Op::Softmax { .. }
        | Op::GridSample { .. }
        | Op::Hadamard { .. }
        | Op::CrossEntropy
        | Op::CrossEntropyGrad => misc::eval(op, inputs, outs),
        Op::Attention { .. } => misc::attention_eval(op, inputs, outs),
        Op::AttentionGrad { .. } => misc::attention_grad_eval(op, inputs, outs),
        Op::Collective { .. } => crate::distributed::eval(op, inputs, outs),
        Op::RmsNorm { .. } | Op::LayerNorm { .. } | Op::Rope { .. } => {
            norm_rope::eval(op, inputs, outs)
        }
        Op::RandomBits => random::eval(op, inputs, outs),
        Op::Fused { program } => fused::eval(program, inputs, outs),
        Op::Kernel { name, params } => crate::custom::eval_cpu(name, params, inputs, outs),
        // The outputs were computed by ordinary ops; the node only carries the rule.
        Op::Custom { n_in, .. } => Ok(inputs[*n_in..].iter().map(|a| a.ready_data()).collect()),
    }
}

/// The error a family's `eval` returns for an op it was handed but does not handle (a bug
/// in dispatch, never reachable from user input).
pub(crate) fn not_here(op: &Op) -> crate::Error {
    crate::Error::unsupported(op.name(), "no CPU kernel for this op")
}
