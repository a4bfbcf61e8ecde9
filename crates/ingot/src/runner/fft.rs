//! Runner entries: fft family (NumPy's names: `n`, `axis`, `s`, `axes`, `norm`, `d`).

use super::{attr, want_inputs, Attrs, OpDef};
use crate::array::Array;
use crate::ops::FftNorm;
use crate::Result;

fn norm(at: &Attrs) -> Result<FftNorm> {
    FftNorm::parse(&at.op, &at.str_or("norm", "backward")?)
}

fn n_opt(at: &Attrs) -> Result<Option<usize>> {
    if at.has("n") {
        Ok(Some(at.usize_req("n")?))
    } else {
        Ok(None)
    }
}

type OneD = fn(&Array, Option<usize>, isize, FftNorm) -> Result<Array>;
type NDim = fn(&Array, Option<&[usize]>, Option<&[isize]>, FftNorm) -> Result<Array>;

const ONE_ATTRS: &[super::AttrDef] = &[
    attr("n", "int", Some("null")),
    attr("axis", "int", Some("-1")),
    attr("norm", "str", Some("backward")),
];
const ND_ATTRS: &[super::AttrDef] = &[
    attr("s", "ints", Some("null")),
    attr("axes", "ints", Some("null")),
    attr("norm", "str", Some("backward")),
];
const TWO_ATTRS: &[super::AttrDef] = &[
    attr("s", "ints", Some("null")),
    attr("axes", "ints", Some("[-2, -1]")),
    attr("norm", "str", Some("backward")),
];

macro_rules! one_d {
    ($r:expr, $($name:ident),*) => {$(
        $r.push(OpDef {
            name: stringify!($name),
            inputs: "a",
            attrs: ONE_ATTRS,
            run: |x: &[Array], at: &Attrs| {
                want_inputs(stringify!($name), x, 1)?;
                let f: OneD = crate::ops::$name;
                Ok(vec![f(&x[0], n_opt(at)?, at.axis_or("axis", -1)?, norm(at)?)?])
            },
        });
    )*};
}
macro_rules! n_d {
    ($r:expr, $attrs:expr, $($name:ident),*) => {$(
        $r.push(OpDef {
            name: stringify!($name),
            inputs: "a",
            attrs: $attrs,
            run: |x: &[Array], at: &Attrs| {
                want_inputs(stringify!($name), x, 1)?;
                let f: NDim = crate::ops::$name;
                let s = at.shape_opt("s")?;
                let axes = at.axes_opt("axes")?;
                Ok(vec![f(&x[0], s.as_deref(), axes.as_deref(), norm(at)?)?])
            },
        });
    )*};
}

pub fn register(r: &mut Vec<OpDef>) {
    one_d!(r, fft, ifft, rfft, irfft);
    n_d!(r, TWO_ATTRS, fft2, ifft2, rfft2, irfft2);
    n_d!(r, ND_ATTRS, fftn, ifftn, rfftn, irfftn);
    r.push(OpDef {
        name: "fftshift",
        inputs: "a",
        attrs: const { &[attr("axes", "ints", Some("null"))] },
        run: |x, at| {
            want_inputs("fftshift", x, 1)?;
            let axes = at.axes_opt("axes")?;
            Ok(vec![crate::ops::fftshift(&x[0], axes.as_deref())?])
        },
    });
    r.push(OpDef {
        name: "ifftshift",
        inputs: "a",
        attrs: const { &[attr("axes", "ints", Some("null"))] },
        run: |x, at| {
            want_inputs("ifftshift", x, 1)?;
            let axes = at.axes_opt("axes")?;
            Ok(vec![crate::ops::ifftshift(&x[0], axes.as_deref())?])
        },
    });
    r.push(OpDef {
        name: "fftfreq",
        inputs: "",
        attrs: const { &[attr("n", "int", None), attr("d", "float", Some("1.0"))] },
        run: |x, at| {
            want_inputs("fftfreq", x, 0)?;
            Ok(vec![crate::ops::fftfreq(
                at.usize_req("n")?,
                at.f64_or("d", 1.0)?,
            )?])
        },
    });
    r.push(OpDef {
        name: "rfftfreq",
        inputs: "",
        attrs: const { &[attr("n", "int", None), attr("d", "float", Some("1.0"))] },
        run: |x, at| {
            want_inputs("rfftfreq", x, 0)?;
            Ok(vec![crate::ops::rfftfreq(
                at.usize_req("n")?,
                at.f64_or("d", 1.0)?,
            )?])
        },
    });
}
