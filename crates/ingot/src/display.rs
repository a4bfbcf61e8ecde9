//! NumPy-like printing: `array([[1, 2.5], [3, 4]], dtype=float32)`, summarized with `...`
//! beyond 1000 elements (3 items at each edge), as NumPy does.

use crate::array::Array;
use crate::dtype::{DType, Element};
use std::fmt;

const THRESHOLD: usize = 1000;
const EDGE: usize = 3;

fn fmt_elem(v: f64, dtype: DType, im: f32) -> String {
    match dtype.kind() {
        crate::Kind::Bool => if v != 0.0 { "True" } else { "False" }.to_string(),
        crate::Kind::Int | crate::Kind::UInt => format!("{}", v as i128),
        crate::Kind::Float => fmt_float(v),
        crate::Kind::Complex => {
            let sign = if im.is_sign_negative() { "-" } else { "+" };
            format!("{}{}{}j", fmt_float(v), sign, fmt_float(im.abs() as f64))
        }
    }
}

fn fmt_float(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let s = format!("{}", (v as f32));
    if s.len() > 10 {
        let e = format!("{:.4e}", v);
        if e.len() < s.len() {
            e
        } else {
            format!("{v:.6}")
        }
    } else {
        s
    }
}

impl fmt::Display for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (vals, ims): (Vec<f64>, Vec<f32>) = match self.dtype() {
            DType::C64 => match self.to_vec::<num_complex::Complex32>() {
                Ok(v) => (
                    v.iter().map(|z| z.re as f64).collect(),
                    v.iter().map(|z| z.im).collect(),
                ),
                Err(e) => return write!(f, "<error: {e}>"),
            },
            dt => {
                match crate::dispatch_dtype!(dt, T => self.to_vec::<T>().map(|v| v.into_iter().map(|x| x.to_f64()).collect::<Vec<f64>>()))
                {
                    Ok(v) => (v, Vec::new()),
                    Err(e) => return write!(f, "<error: {e}>"),
                }
            }
        };
        let dtype = self.dtype();
        let shape = self.shape().to_vec();
        let summarize = vals.len() > THRESHOLD;
        let cells: Vec<String> = vals
            .iter()
            .enumerate()
            .map(|(i, &v)| fmt_elem(v, dtype, ims.get(i).copied().unwrap_or(0.0)))
            .collect();
        let width = cells.iter().map(|c| c.len()).max().unwrap_or(0);
        let mut out = String::from("array(");
        if shape.is_empty() {
            out.push_str(&cells[0]);
        } else {
            let strides = crate::shape::contiguous_strides(&shape);
            write_dim(
                &mut out, &cells, &shape, &strides, 0, 0, width, summarize, 6,
            );
        }
        let show_dtype = !matches!(dtype, DType::F32 | DType::I32 | DType::Bool);
        if show_dtype || self.size() == 0 {
            out.push_str(&format!(", dtype={dtype}"));
        }
        out.push(')');
        f.write_str(&out)
    }
}

fn write_dim(
    out: &mut String,
    cells: &[String],
    shape: &[usize],
    strides: &[isize],
    dim: usize,
    base: usize,
    width: usize,
    summarize: bool,
    indent: usize,
) {
    out.push('[');
    let n = shape[dim];
    let idx: Vec<Option<usize>> = if summarize && n > 2 * EDGE {
        (0..EDGE)
            .map(Some)
            .chain(std::iter::once(None))
            .chain((n - EDGE..n).map(Some))
            .collect()
    } else {
        (0..n).map(Some).collect()
    };
    let last = dim + 1 == shape.len();
    for (k, i) in idx.iter().enumerate() {
        if k > 0 {
            if last {
                out.push_str(", ");
            } else {
                out.push(',');
                out.push_str(&"\n".repeat(shape.len() - dim - 1));
                out.push_str(&" ".repeat(indent + dim + 1));
            }
        }
        match i {
            None => out.push_str("..."),
            Some(i) => {
                let b = base + i * strides[dim] as usize;
                if last {
                    out.push_str(&format!("{:>width$}", cells[b]));
                } else {
                    write_dim(
                        out,
                        cells,
                        shape,
                        strides,
                        dim + 1,
                        b,
                        width,
                        summarize,
                        indent,
                    );
                }
            }
        }
    }
    out.push(']');
}
