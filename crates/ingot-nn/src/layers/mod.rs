//! Layers. Each owns its parameters under PyTorch's names; inputs are channels-last where
//! there are channels (`(N, *spatial, C)`, as MLX and ingot's convolutions).

mod attention;
mod container;
mod conv;
mod dropout;
mod linear;
mod norm;
mod params;
mod pool;
mod positional;
mod recurrent;
mod sharded;
mod transformer;
mod upsample;

#[allow(unused_imports)]
pub use attention::*;
pub use container::Sequential;
#[allow(unused_imports)]
pub use conv::*;
#[allow(unused_imports)]
pub use dropout::*;
pub use linear::{Bilinear, Embedding, Linear};
#[allow(unused_imports)]
pub use norm::*;
#[allow(unused_imports)]
pub use pool::*;
#[allow(unused_imports)]
pub use positional::*;
#[allow(unused_imports)]
pub use recurrent::*;
pub use sharded::{shard_of, ShardedEmbedding, ShardedLinear};
#[allow(unused_imports)]
pub use transformer::*;
#[allow(unused_imports)]
pub use upsample::*;
