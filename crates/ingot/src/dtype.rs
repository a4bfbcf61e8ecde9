//! Element types, their Rust counterparts, and type promotion (see docs/dtypes.md).

use half::{bf16, f16};
use num_complex::Complex32;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The element type of an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DType {
    Bool,
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    F16,
    BF16,
    F32,
    F64,
    C64,
}

/// The broad family of a dtype, used by promotion and by ops that accept only some.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Bool,
    UInt,
    Int,
    Float,
    Complex,
}

impl DType {
    pub const ALL: [DType; 14] = [
        DType::Bool,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
        DType::C64,
    ];

    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 | DType::C64 => 8,
        }
    }

    pub const fn kind(self) -> Kind {
        match self {
            DType::Bool => Kind::Bool,
            DType::U8 | DType::U16 | DType::U32 | DType::U64 => Kind::UInt,
            DType::I8 | DType::I16 | DType::I32 | DType::I64 => Kind::Int,
            DType::F16 | DType::BF16 | DType::F32 | DType::F64 => Kind::Float,
            DType::C64 => Kind::Complex,
        }
    }

    pub const fn is_float(self) -> bool {
        matches!(self.kind(), Kind::Float)
    }
    /// Float or complex: the types in which transcendental functions are computed.
    pub const fn is_inexact(self) -> bool {
        matches!(self.kind(), Kind::Float | Kind::Complex)
    }
    pub const fn is_complex(self) -> bool {
        matches!(self.kind(), Kind::Complex)
    }
    /// Signed or unsigned integer (not bool).
    pub const fn is_integer(self) -> bool {
        matches!(self.kind(), Kind::Int | Kind::UInt)
    }
    pub const fn is_signed(self) -> bool {
        matches!(self.kind(), Kind::Int | Kind::Float | Kind::Complex)
    }
    pub const fn is_bool(self) -> bool {
        matches!(self, DType::Bool)
    }

    /// NumPy-style name: `float32`, `bfloat16`, `complex64`, ...
    pub const fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::C64 => "complex64",
        }
    }

    /// Parses NumPy names (`float32`) and short names (`f32`, `bf16`, `c64`).
    pub fn from_name(s: &str) -> Option<DType> {
        let d = match s {
            "bool" => DType::Bool,
            "uint8" | "u8" => DType::U8,
            "uint16" | "u16" => DType::U16,
            "uint32" | "u32" => DType::U32,
            "uint64" | "u64" => DType::U64,
            "int8" | "i8" => DType::I8,
            "int16" | "i16" => DType::I16,
            "int32" | "i32" => DType::I32,
            "int64" | "i64" => DType::I64,
            "float16" | "f16" | "half" => DType::F16,
            "bfloat16" | "bf16" => DType::BF16,
            "float32" | "f32" | "float" => DType::F32,
            "float64" | "f64" | "double" => DType::F64,
            "complex64" | "c64" => DType::C64,
            _ => return None,
        };
        Some(d)
    }

    /// The float type that computing with this dtype produces (ints and bool give f32).
    pub const fn to_inexact(self) -> DType {
        match self.kind() {
            Kind::Float | Kind::Complex => self,
            _ => DType::F32,
        }
    }

    /// The real counterpart of a complex dtype (c64 -> f32); other dtypes are unchanged.
    pub const fn real_part(self) -> DType {
        match self {
            DType::C64 => DType::F32,
            d => d,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Promotion of two dtypes, as NumPy does it for arrays (the table is in docs/dtypes.md).
/// Where NumPy would widen an int-float pair to float64 we follow MLX and keep the float
/// (int64 + float16 -> float16), which is what ML code wants.
pub fn promote_types(a: DType, b: DType) -> DType {
    use DType::*;
    if a == b {
        return a;
    }
    let (ka, kb) = (a.kind(), b.kind());
    match (ka, kb) {
        (Kind::Bool, _) => b,
        (_, Kind::Bool) => a,
        (Kind::Complex, _) | (_, Kind::Complex) => C64,
        (Kind::Float, Kind::Float) => match (a, b) {
            (F16, BF16) | (BF16, F16) => F32,
            _ => {
                if a.size() >= b.size() {
                    a
                } else {
                    b
                }
            }
        },
        (Kind::Float, _) => a,
        (_, Kind::Float) => b,
        (Kind::Int, Kind::Int) | (Kind::UInt, Kind::UInt) => {
            if a.size() >= b.size() {
                a
            } else {
                b
            }
        }
        _ => {
            let (u, s) = if ka == Kind::UInt { (a, b) } else { (b, a) };
            if s.size() > u.size() {
                s
            } else {
                match u {
                    U8 => I16,
                    U16 => I32,
                    U32 => I64,
                    _ => F64,
                }
            }
        }
    }
}

/// Promotion of an array's dtype with a Python-style weak scalar of kind `weak`: the scalar
/// takes the array's type when the array's kind can hold it (f32 array + 2.0 stays f32;
/// i8 array + 3 stays i8), otherwise the default type of the scalar's kind.
pub fn promote_weak(strong: DType, weak: Kind) -> DType {
    match weak {
        Kind::Bool => strong,
        Kind::Int | Kind::UInt => {
            if strong == DType::Bool {
                DType::I32
            } else {
                strong
            }
        }
        Kind::Float => {
            if strong.is_inexact() {
                strong
            } else {
                DType::F32
            }
        }
        Kind::Complex => DType::C64,
    }
}

/// A dtype with its weak flag: what promotion needs to know of one operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeInfo {
    pub dtype: DType,
    pub weak: bool,
}

/// Result dtype of several operands, strong ones first, then weak scalars applied.
pub fn result_type(items: &[TypeInfo]) -> DType {
    result_type_of(items.iter().copied())
}

/// [`result_type`] over any operands, in one pass (no list of them is collected).
pub fn result_type_of(items: impl IntoIterator<Item = TypeInfo>) -> DType {
    let (mut strong, mut weak) = (None, None);
    for t in items {
        let acc = if t.weak { &mut weak } else { &mut strong };
        *acc = Some(acc.map_or(t.dtype, |a| promote_types(a, t.dtype)));
    }
    match (strong, weak) {
        (Some(s), Some(w)) => promote_weak(s, w.kind()),
        (Some(s), None) => s,
        // Only weak scalars: the default dtype of their kind (int32, float32, ...).
        (None, Some(w)) => match w.kind() {
            Kind::Bool => DType::Bool,
            Kind::Int | Kind::UInt => DType::I32,
            Kind::Float => DType::F32,
            Kind::Complex => DType::C64,
        },
        (None, None) => DType::F32,
    }
}

/// A Rust type that is the element of some dtype. `bool` is stored as one byte, 0 or 1:
/// every path that brings bytes in (files, dtype views) normalizes them.
pub trait Element: Copy + Send + Sync + Default + PartialEq + fmt::Debug + 'static {
    const DTYPE: DType;
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
    /// Complex value (real types have a zero imaginary part).
    fn to_c64(self) -> Complex32 {
        Complex32::new(self.to_f64() as f32, 0.0)
    }
    fn from_c64(v: Complex32) -> Self {
        Self::from_f64(v.re as f64)
    }
    fn to_scalar(self) -> Scalar;
}

macro_rules! int_element {
    ($t:ty, $d:ident, $s:ident, $w:ty) => {
        impl Element for $t {
            const DTYPE: DType = DType::$d;
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn from_f64(v: f64) -> Self {
                // Saturating like Rust's `as`; NaN becomes 0.
                v as $t
            }
            fn to_scalar(self) -> Scalar {
                Scalar::$s(self as $w)
            }
        }
    };
}
int_element!(u8, U8, UInt, u64);
int_element!(u16, U16, UInt, u64);
int_element!(u32, U32, UInt, u64);
int_element!(u64, U64, UInt, u64);
int_element!(i8, I8, Int, i64);
int_element!(i16, I16, Int, i64);
int_element!(i32, I32, Int, i64);
int_element!(i64, I64, Int, i64);

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    #[inline]
    fn to_f64(self) -> f64 {
        self as u8 as f64
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    fn from_c64(v: Complex32) -> Self {
        v.re != 0.0 || v.im != 0.0
    }
    fn to_scalar(self) -> Scalar {
        Scalar::Bool(self)
    }
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_scalar(self) -> Scalar {
        Scalar::Float(self as f64)
    }
}
impl Element for f64 {
    const DTYPE: DType = DType::F64;
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_scalar(self) -> Scalar {
        Scalar::Float(self)
    }
}
/// `v` as f32 rounded to odd: truncated, with the last bit set when anything was cut off.
/// Rounding that to f16 or bf16 (to nearest, ties to even) rounds `v` once, correctly: the
/// 13 or more bits f32 keeps beyond them hold the sticky information a plain f64 -> f32 ->
/// half rounding loses (it turned 0x3ff0_1000_0000_0001 into a tie and rounded it down),
/// and `half`'s own f64 conversions misround values just above a tie too (bf16 of f32 bits
/// 0xbfe2_8004 came out 0xbfe2, not 0xbfe3).
#[inline]
pub(crate) fn f32_round_to_odd(v: f64) -> f32 {
    let f = v as f32;
    if !f.is_finite() && v.is_finite() {
        // Past f32's range: the largest f32 of the sign (odd), which rounds on to infinity.
        return f32::MAX.copysign(f);
    }
    if v.is_nan() || f as f64 == v {
        return f;
    }
    // Inexact: step toward zero if rounding went away from it, then mark the bit.
    let mut bits = f.to_bits();
    if (f as f64).abs() > v.abs() {
        bits -= 1;
    }
    f32::from_bits(bits | 1)
}

impl Element for f16 {
    const DTYPE: DType = DType::F16;
    #[inline]
    fn to_f64(self) -> f64 {
        self.to_f64()
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        f16::from_f32(f32_round_to_odd(v))
    }
    fn to_scalar(self) -> Scalar {
        Scalar::Float(self.to_f64())
    }
}
impl Element for bf16 {
    const DTYPE: DType = DType::BF16;
    #[inline]
    fn to_f64(self) -> f64 {
        self.to_f64()
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        bf16::from_f32(f32_round_to_odd(v))
    }
    fn to_scalar(self) -> Scalar {
        Scalar::Float(self.to_f64())
    }
}
impl Element for Complex32 {
    const DTYPE: DType = DType::C64;
    /// The real part, as NumPy's cast of complex to real does.
    #[inline]
    fn to_f64(self) -> f64 {
        self.re as f64
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        Complex32::new(v as f32, 0.0)
    }
    fn to_c64(self) -> Complex32 {
        self
    }
    fn from_c64(v: Complex32) -> Self {
        v
    }
    fn to_scalar(self) -> Scalar {
        Scalar::Complex(self.re, self.im)
    }
}

/// A single value of any dtype, hashable (floats by their bits) so that ops holding one
/// can be compared and cached.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Complex(f32, f32),
}

impl Scalar {
    pub fn kind(self) -> Kind {
        match self {
            Scalar::Bool(_) => Kind::Bool,
            Scalar::Int(_) => Kind::Int,
            Scalar::UInt(_) => Kind::UInt,
            Scalar::Float(_) => Kind::Float,
            Scalar::Complex(..) => Kind::Complex,
        }
    }
    /// The dtype a scalar of this kind gets on its own: bool, int32, float32, complex64.
    pub fn default_dtype(self) -> DType {
        match self {
            Scalar::Bool(_) => DType::Bool,
            Scalar::Int(_) | Scalar::UInt(_) => DType::I32,
            Scalar::Float(_) => DType::F32,
            Scalar::Complex(..) => DType::C64,
        }
    }
    pub fn to_f64(self) -> f64 {
        match self {
            Scalar::Bool(b) => b as u8 as f64,
            Scalar::Int(v) => v as f64,
            Scalar::UInt(v) => v as f64,
            Scalar::Float(v) => v,
            Scalar::Complex(re, _) => re as f64,
        }
    }
    /// Why this value cannot be stored in `dtype` without wrapping or losing its meaning
    /// (an integer out of range, a non-finite float into an integer dtype), if it can't.
    pub fn check_fits(self, dtype: DType) -> std::result::Result<(), String> {
        if !dtype.is_integer() {
            return Ok(());
        }
        let bits = 8 * dtype.size() as u32;
        let (lo, hi): (i128, i128) = if dtype.is_signed() {
            (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        } else {
            (0, (1i128 << bits) - 1)
        };
        let v: i128 = match self {
            Scalar::Bool(_) => return Ok(()),
            Scalar::Int(v) => v as i128,
            Scalar::UInt(v) => v as i128,
            Scalar::Float(f) if !f.is_finite() => {
                return Err(format!("{f} can't be stored in {dtype}"))
            }
            Scalar::Float(f) => f.trunc().clamp(-1e39, 1e39) as i128,
            Scalar::Complex(..) => {
                return Err(format!("a complex value can't be stored in {dtype}"))
            }
        };
        if v < lo || v > hi {
            return Err(format!(
                "{} is out of range for {dtype} [{lo}, {hi}]",
                self.to_f64()
            ));
        }
        Ok(())
    }

    pub fn to_c64(self) -> Complex32 {
        match self {
            Scalar::Complex(re, im) => Complex32::new(re, im),
            s => Complex32::new(s.to_f64() as f32, 0.0),
        }
    }
    /// Converts to an element, exactly for integers (no detour through f64).
    pub fn to_elem<T: Element>(self) -> T {
        match (self, T::DTYPE.kind()) {
            (Scalar::Complex(..), _) | (_, Kind::Complex) => T::from_c64(self.to_c64()),
            (Scalar::Int(v), Kind::Int | Kind::UInt) => int_to_elem::<T>(v as i128),
            (Scalar::UInt(v), Kind::Int | Kind::UInt) => int_to_elem::<T>(v as i128),
            _ => T::from_f64(self.to_f64()),
        }
    }
    fn key(self) -> (u8, u64, u64) {
        match self {
            Scalar::Bool(b) => (0, b as u64, 0),
            Scalar::Int(v) => (1, v as u64, 0),
            Scalar::UInt(v) => (2, v, 0),
            Scalar::Float(v) => (3, v.to_bits(), 0),
            Scalar::Complex(re, im) => (4, re.to_bits() as u64, im.to_bits() as u64),
        }
    }
}

/// Wrapping conversion of an integer to an integer element, as NumPy's casts do.
fn int_to_elem<T: Element>(v: i128) -> T {
    // Safety of the transmute-free path: go through the widest type of the same kind.
    let bytes = (v as u128).to_le_bytes();
    let n = T::DTYPE.size();
    let mut out = T::default();
    // Element integer types are plain little-endian bytes of size n.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), &mut out as *mut T as *mut u8, n);
    }
    out
}

impl PartialEq for Scalar {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Scalar {}
impl std::hash::Hash for Scalar {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}

macro_rules! scalar_from {
    ($($t:ty => $v:ident as $w:ty),*) => {$(
        impl From<$t> for Scalar {
            fn from(x: $t) -> Self { Scalar::$v(x as $w) }
        }
    )*};
}
scalar_from!(i8 => Int as i64, i16 => Int as i64, i32 => Int as i64, i64 => Int as i64,
    isize => Int as i64, u8 => UInt as u64, u16 => UInt as u64, u32 => UInt as u64,
    u64 => UInt as u64, usize => UInt as u64, f32 => Float as f64, f64 => Float as f64);
impl From<bool> for Scalar {
    fn from(x: bool) -> Self {
        Scalar::Bool(x)
    }
}
impl From<Complex32> for Scalar {
    fn from(x: Complex32) -> Self {
        Scalar::Complex(x.re, x.im)
    }
}

/// Calls `$body` with `$T` bound to the Rust element type of `$dtype`.
#[macro_export]
macro_rules! dispatch_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {{
        use $crate::dtype::DType as __D;
        match $dtype {
            __D::Bool => {
                type $T = bool;
                $body
            }
            __D::U8 => {
                type $T = u8;
                $body
            }
            __D::U16 => {
                type $T = u16;
                $body
            }
            __D::U32 => {
                type $T = u32;
                $body
            }
            __D::U64 => {
                type $T = u64;
                $body
            }
            __D::I8 => {
                type $T = i8;
                $body
            }
            __D::I16 => {
                type $T = i16;
                $body
            }
            __D::I32 => {
                type $T = i32;
                $body
            }
            __D::I64 => {
                type $T = i64;
                $body
            }
            __D::F16 => {
                type $T = $crate::f16;
                $body
            }
            __D::BF16 => {
                type $T = $crate::bf16;
                $body
            }
            __D::F32 => {
                type $T = f32;
                $body
            }
            __D::F64 => {
                type $T = f64;
                $body
            }
            __D::C64 => {
                type $T = $crate::c64;
                $body
            }
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn promotion_is_symmetric() {
        for a in DType::ALL {
            for b in DType::ALL {
                assert_eq!(promote_types(a, b), promote_types(b, a), "{a} {b}");
            }
        }
    }
    #[test]
    fn int_scalar_wraps() {
        assert_eq!(Scalar::Int(-1).to_elem::<u8>(), 255u8);
        assert_eq!(Scalar::Int(300).to_elem::<i8>(), 44i8);
        assert_eq!(Scalar::UInt(u64::MAX).to_elem::<u64>(), u64::MAX);
    }
}
