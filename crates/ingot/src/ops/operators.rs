//! Rust operators on arrays: `&a + &b`, `&a * 2.0`, `2.0 - &a`, `-&a`. They return
//! `Result<Array>` like the functions they call, so a bad call is an error, not a panic.

use crate::array::{Array, IntoArray};
use crate::Result;
use std::ops::{Add, BitAnd, BitOr, BitXor, Div, Mul, Neg, Not, Rem, Sub};

macro_rules! array_op {
    ($tr:ident, $m:ident, $f:path) => {
        impl<B: IntoArray> $tr<B> for &Array {
            type Output = Result<Array>;
            fn $m(self, rhs: B) -> Result<Array> {
                $f(self, rhs)
            }
        }
        impl<B: IntoArray> $tr<B> for Array {
            type Output = Result<Array>;
            fn $m(self, rhs: B) -> Result<Array> {
                $f(self, rhs)
            }
        }
    };
}
array_op!(Add, add, crate::ops::add);
array_op!(Sub, sub, crate::ops::subtract);
array_op!(Mul, mul, crate::ops::multiply);
array_op!(Div, div, crate::ops::divide);
array_op!(Rem, rem, crate::ops::remainder);
array_op!(BitAnd, bitand, crate::ops::bitwise_and);
array_op!(BitOr, bitor, crate::ops::bitwise_or);
array_op!(BitXor, bitxor, crate::ops::bitwise_xor);

macro_rules! scalar_lhs {
    ($($t:ty),*) => {$(
        impl Add<&Array> for $t { type Output = Result<Array>; fn add(self, r: &Array) -> Result<Array> { crate::ops::add(self, r) } }
        impl Sub<&Array> for $t { type Output = Result<Array>; fn sub(self, r: &Array) -> Result<Array> { crate::ops::subtract(self, r) } }
        impl Mul<&Array> for $t { type Output = Result<Array>; fn mul(self, r: &Array) -> Result<Array> { crate::ops::multiply(self, r) } }
        impl Div<&Array> for $t { type Output = Result<Array>; fn div(self, r: &Array) -> Result<Array> { crate::ops::divide(self, r) } }
    )*};
}
scalar_lhs!(f32, f64, i32, i64);

impl Neg for &Array {
    type Output = Result<Array>;
    fn neg(self) -> Result<Array> {
        crate::ops::negative(self)
    }
}
impl Neg for Array {
    type Output = Result<Array>;
    fn neg(self) -> Result<Array> {
        crate::ops::negative(&self)
    }
}
impl Not for &Array {
    type Output = Result<Array>;
    /// Logical NOT for bool arrays, bitwise NOT for integers.
    fn not(self) -> Result<Array> {
        crate::ops::bitwise_invert(self)
    }
}
