//! CPU kernel for `RandomBits`: Threefry-2x32 (20 rounds) over counters, laid out as JAX
//! lays them out (see docs/ops/random.md). Every output word depends only on the key and
//! its position, so the work splits across threads without changing the result.

use super::strided::{contiguous_vec, out_data, PAR_MIN};
use super::Outs;
use crate::array::{Array, Data};
use crate::buffer::Buffer;
use crate::dtype::DType;
use crate::op::Op;
use crate::shape::{fmt_shape, size_of};
use crate::{Error, Result};
use rayon::prelude::*;

const ROT: [[u32; 4]; 2] = [[13, 15, 26, 6], [17, 29, 16, 24]];

/// Threefry-2x32 with 20 rounds (Salmon et al. 2011, Random123's `threefry2x32_20`).
#[inline]
pub fn threefry2x32(key: [u32; 2], ctr: [u32; 2]) -> [u32; 2] {
    let ks = [key[0], key[1], key[0] ^ key[1] ^ 0x1BD1_1BDA];
    let mut x0 = ctr[0].wrapping_add(ks[0]);
    let mut x1 = ctr[1].wrapping_add(ks[1]);
    for i in 0..5u32 {
        for &r in &ROT[(i % 2) as usize] {
            x0 = x0.wrapping_add(x1);
            x1 = x1.rotate_left(r) ^ x0;
        }
        // Key injection after every 4 rounds.
        x0 = x0.wrapping_add(ks[((i + 1) % 3) as usize]);
        x1 = x1.wrapping_add(ks[((i + 2) % 3) as usize]).wrapping_add(i + 1);
    }
    [x0, x1]
}

/// JAX's `threefry_2x32(key, iota(n))`: counters 0..n (padded with one 0 when n is odd)
/// split into halves; pair i is (i, i + half) and its two output words go to positions i
/// and i + half.
pub fn random_bits(key: [u32; 2], n: usize) -> Result<Buffer> {
    let mut buf = Buffer::zeroed(n * 4)?;
    let out = buf.as_slice_mut::<u32>();
    let half = n.div_ceil(2);
    let full_pairs = n / 2;
    let (lo, hi) = out.split_at_mut(half);
    let fill = |start: usize, a: &mut [u32], b: &mut [u32]| {
        for (j, (x, y)) in a.iter_mut().zip(b.iter_mut()).enumerate() {
            let i = (start + j) as u32;
            let [y0, y1] = threefry2x32(key, [i, i + half as u32]);
            *x = y0;
            *y = y1;
        }
    };
    let (lo_pairs, lo_rest) = lo.split_at_mut(full_pairs);
    if n < PAR_MIN {
        fill(0, lo_pairs, hi);
    } else {
        let c = (full_pairs / (rayon::current_num_threads() * 4)).max(PAR_MIN / 4);
        lo_pairs
            .par_chunks_mut(c)
            .zip(hi.par_chunks_mut(c))
            .enumerate()
            .for_each(|(k, (a, b))| fill(k * c, a, b));
    }
    if let Some(last) = lo_rest.first_mut() {
        // The odd counter pairs with the zero padding.
        *last = threefry2x32(key, [full_pairs as u32, 0])[0];
    }
    Ok(buf)
}

pub fn eval(op: &Op, inputs: &[Array], outs: Outs) -> Result<Vec<Data>> {
    match op {
        Op::RandomBits => {
            let k = &inputs[0];
            if k.dtype() != DType::U32 || k.shape() != [2] {
                return Err(Error::invalid(
                    "random_bits",
                    format!(
                        "key must be a uint32 array of shape (2,), got {} {}",
                        fmt_shape(k.shape()),
                        k.dtype()
                    ),
                ));
            }
            let kv = contiguous_vec::<u32>(k);
            let shape = &outs[0].0;
            let buf = random_bits([kv[0], kv[1]], size_of(shape))?;
            Ok(vec![out_data(buf, shape)])
        }
        _ => Err(super::not_here(op)),
    }
}
