// Shared by every ingot kernel: element types, conversions that match the CPU backend's
// (crate::dtype::Element and cpu::elementwise::cast_elem), and strided indexing.
// NVRTC builds these without any header, so half and bfloat16 are plain 16-bit structs
// converted with PTX instructions.

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char i8;
typedef short i16;
typedef int i32;
typedef long long i64;
typedef float f32;
typedef double f64;
struct __align__(2) f16 { unsigned short b; };
struct __align__(2) bf16 { unsigned short b; };
struct __align__(1) boolean { unsigned char b; };
struct __align__(8) c64 { float re, im; };

#define DEV __device__ __forceinline__

// Four consecutive elements moved as one access (at most 16 bytes are one instruction).
template <class T> struct alignas(sizeof(T) * 4 > 16 ? 16 : sizeof(T) * 4) V4 { T v[4]; };

// ---- 16-bit floats ---------------------------------------------------------------------

DEV float h2f(f16 h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h.b)); return f; }
DEV f16 f2h(float f) { f16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h.b) : "f"(f)); return h; }
DEV f16 d2h(double d) { f16 h; asm("cvt.rn.f16.f64 %0, %1;" : "=h"(h.b) : "d"(d)); return h; }
DEV float b2f(bf16 h) { return __uint_as_float(((unsigned)h.b) << 16); }
DEV bf16 f2b(float f) {
    unsigned u = __float_as_uint(f);
    bf16 r;
    if ((u & 0x7fffffffu) > 0x7f800000u) { r.b = (unsigned short)((u >> 16) | 0x40u); return r; }
    u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
    r.b = (unsigned short)(u >> 16);
    return r;
}

// ---- compute types: what arithmetic runs in (f16/bf16 in f32, bool as bool) ---------------

template <class T> struct Ct { typedef T type; };
template <> struct Ct<f16> { typedef float type; };
template <> struct Ct<bf16> { typedef float type; };
template <> struct Ct<boolean> { typedef bool type; };

template <class T> DEV typename Ct<T>::type ld(T x) { return x; }
template <> DEV float ld<f16>(f16 x) { return h2f(x); }
template <> DEV float ld<bf16>(bf16 x) { return b2f(x); }
template <> DEV bool ld<boolean>(boolean x) { return x.b != 0; }

template <class T> DEV T st(typename Ct<T>::type v) { return v; }
template <> DEV f16 st<f16>(float v) { return f2h(v); }
template <> DEV bf16 st<bf16>(float v) { return f2b(v); }
template <> DEV boolean st<boolean>(bool v) { boolean r; r.b = v ? 1 : 0; return r; }

// ---- to and from f64, as Element::to_f64 / from_f64 (saturating for integers, NaN -> 0) ----

template <class T> DEV double to_f64(T x) { return (double)x; }
template <> DEV double to_f64<f16>(f16 x) { return (double)h2f(x); }
template <> DEV double to_f64<bf16>(bf16 x) { return (double)b2f(x); }
template <> DEV double to_f64<boolean>(boolean x) { return x.b ? 1.0 : 0.0; }

template <class T> DEV T sat_int(double v, double lo, double hi) {
    if (v != v) return (T)0;
    if (v <= lo) return (T)lo;
    if (v >= hi) return (T)hi;
    return (T)v;
}
template <class T> DEV T from_f64(double v);
template <> DEV u8 from_f64<u8>(double v) { return sat_int<u8>(v, 0.0, 255.0); }
template <> DEV u16 from_f64<u16>(double v) { return sat_int<u16>(v, 0.0, 65535.0); }
template <> DEV u32 from_f64<u32>(double v) { return sat_int<u32>(v, 0.0, 4294967295.0); }
template <> DEV i8 from_f64<i8>(double v) { return sat_int<i8>(v, -128.0, 127.0); }
template <> DEV i16 from_f64<i16>(double v) { return sat_int<i16>(v, -32768.0, 32767.0); }
template <> DEV i32 from_f64<i32>(double v) { return sat_int<i32>(v, -2147483648.0, 2147483647.0); }
// The 64-bit bounds are not doubles; the conversion instructions saturate to them.
template <> DEV u64 from_f64<u64>(double v) {
    u64 r; asm("cvt.rzi.u64.f64 %0, %1;" : "=l"(r) : "d"(v)); return v != v ? 0ull : r;
}
template <> DEV i64 from_f64<i64>(double v) {
    i64 r; asm("cvt.rzi.s64.f64 %0, %1;" : "=l"(r) : "d"(v)); return v != v ? 0ll : r;
}
template <> DEV f16 from_f64<f16>(double v) { return d2h(v); }
// Through f32 rounded to odd, so the value is rounded once (dtype.rs's f32_round_to_odd).
DEV bf16 d2b(double v) {
    float f = __double2float_rz(v);
    if (!isnan(v) && (double)f != v) f = __uint_as_float(__float_as_uint(f) | 1u);
    return f2b(f);
}
template <> DEV bf16 from_f64<bf16>(double v) { return d2b(v); }
template <> DEV f32 from_f64<f32>(double v) { return (float)v; }
template <> DEV f64 from_f64<f64>(double v) { return v; }
template <> DEV boolean from_f64<boolean>(double v) { boolean r; r.b = v != 0.0; return r; }
template <> DEV c64 from_f64<c64>(double v) { c64 r; r.re = (float)v; r.im = 0.f; return r; }

// Integer-like values as the low 64 bits of their two's complement (casts between integer
// types wrap, as NumPy's do).
template <class T> DEV u64 int_bits(T x) { return (u64)(i64)x; }
template <> DEV u64 int_bits<u64>(u64 x) { return x; }
template <> DEV u64 int_bits<boolean>(boolean x) { return x.b ? 1ull : 0ull; }
template <class T> DEV T from_bits(u64 b) { return (T)b; }
template <> DEV boolean from_bits<boolean>(u64 b) { boolean r; r.b = b != 0; return r; }

// ---- strided indexing --------------------------------------------------------------------

#define MAX_DIMS 6
// Operands' layouts over the output's (collapsed) shape, in elements.
struct Shape { int nd; long long dim[MAX_DIMS]; };
// `mode` says how a map kernel reads the operand (run-time, the same for every thread, so
// one compiled kernel serves every layout): 0 contiguous, 1 one broadcast element, 2 strided,
// 3 the element's bits passed in place of the pointer.
struct Strides { long long off; long long st[MAX_DIMS]; long long mode; };

// Unrolled over MAX_DIMS so every index into the shape and strides is a constant: they are
// read from the kernel's parameters, not copied to local memory by every thread first.
template <class I> DEV long long offset_of(I i, const Shape& s, const Strides& t) {
    long long o = t.off;
    #pragma unroll
    for (int d = MAX_DIMS - 1; d > 0; --d) {
        if (d < s.nd) {
            I n = (I)s.dim[d];
            I q = i / n;
            o += (long long)(i - q * n) * t.st[d];
            i = q;
        }
    }
    return o + (long long)i * t.st[0];
}

// A host scalar's bits, passed in place of a pointer (no address taken, so no local copy).
template <class T> DEV T bits_to(u64 p) { return (T)p; }
template <> DEV f32 bits_to<f32>(u64 p) { return __uint_as_float((unsigned)p); }
template <> DEV f64 bits_to<f64>(u64 p) { return __longlong_as_double((long long)p); }
template <> DEV f16 bits_to<f16>(u64 p) { f16 r; r.b = (unsigned short)p; return r; }
template <> DEV bf16 bits_to<bf16>(u64 p) { bf16 r; r.b = (unsigned short)p; return r; }
template <> DEV boolean bits_to<boolean>(u64 p) { boolean r; r.b = (unsigned char)p; return r; }
template <> DEV c64 bits_to<c64>(u64 p) {
    c64 r; r.re = __uint_as_float((unsigned)p); r.im = __uint_as_float((unsigned)(p >> 32)); return r;
}

// Element i of a map kernel's operand held at (or, in mode 3, as) `p`.
template <class T, class I> DEV T operand(u64 p, const Strides& s, long long i, const Shape& sh) {
    const T* __restrict__ q = (const T*)p;
    switch (s.mode) {
    case 0: return q[s.off + i];
    case 1: return q[s.off];
    case 2: return q[offset_of<I>((I)i, sh, s)];
    default: return bits_to<T>(p);
    }
}
