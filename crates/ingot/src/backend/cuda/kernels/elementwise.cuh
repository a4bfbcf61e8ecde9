// Element functions of the unary and binary ops, one statement of each op's semantics that
// matches cpu/elementwise.rs. The Rust side (cuda/elementwise.rs) writes the expression
// that calls them for one op and dtype and wraps it in a map kernel.

// Float and double forms of the libm functions under one name each.
#define M1(name, ff, fd) \
    DEV float name(float x) { return ff(x); } \
    DEV double name(double x) { return fd(x); }
M1(m_abs, fabsf, fabs) M1(m_expm1, expm1f, expm1) M1(m_log, logf, log)
M1(m_log1p, log1pf, log1p) M1(m_log2, log2f, log2) M1(m_log10, log10f, log10)
M1(m_sqrt, sqrtf, sqrt) M1(m_sin, sinf, sin) M1(m_cos, cosf, cos) M1(m_tan, tanf, tan)
M1(m_asin, asinf, asin) M1(m_acos, acosf, acos) M1(m_atan, atanf, atan)
M1(m_sinh, sinhf, sinh) M1(m_cosh, coshf, cosh) M1(m_floor, floorf, floor)
M1(m_ceil, ceilf, ceil)
DEV float m_pow(float x, float y) { return powf(x, y); }
DEV double m_pow(double x, double y) { return pow(x, y); }
DEV float m_atan2(float x, float y) { return atan2f(x, y); }
DEV double m_atan2(double x, double y) { return atan2(x, y); }
DEV float m_fmod(float x, float y) { return fmodf(x, y); }
DEV double m_fmod(double x, double y) { return fmod(x, y); }
DEV bool m_isnan(float x) { return x != x; }
DEV bool m_isnan(double x) { return x != x; }
DEV bool m_isinf(float x) { return fabsf(x) == __int_as_float(0x7f800000); }
DEV bool m_isinf(double x) { return fabs(x) == __longlong_as_double(0x7ff0000000000000ll); }
DEV bool m_signbit(float x) { return (__float_as_uint(x) >> 31) != 0; }
DEV bool m_signbit(double x) { return (__double_as_longlong(x) >> 63) != 0; }

// e^x in f32 as the CPU computes it (cpu::elementwise::exp_f32), operation for operation
// with explicit roundings so that the compiler fuses nothing: the same bits on both.
DEV float m_exp(float x) {
    const float LOG2E = 1.44269504088896340736f, LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    const float ROUND = 12582912.0f;
    float xc = x < -104.f ? -104.f : (x > 89.f ? 89.f : x);
    float t = __fadd_rn(__fmul_rn(xc, LOG2E), ROUND);
    float n = __fsub_rn(t, ROUND);
    float r = __fsub_rn(__fsub_rn(xc, __fmul_rn(n, LN2_HI)), __fmul_rn(n, LN2_LO));
    float z = __fmul_rn(r, r);
    float p = __fadd_rn(__fmul_rn(1.9875691e-4f, r), 1.3981999e-3f);
    p = __fadd_rn(__fmul_rn(p, r), 8.333452e-3f);
    p = __fadd_rn(__fmul_rn(p, r), 4.1665796e-2f);
    p = __fadd_rn(__fmul_rn(p, r), 1.6666665e-1f);
    p = __fadd_rn(__fmul_rn(p, r), 5.0000001e-1f);
    p = __fadd_rn(__fadd_rn(__fmul_rn(p, z), r), 1.0f);
    int k = (int)__float_as_uint(t) - (int)__float_as_uint(ROUND);
    int k1 = k >> 1, k2 = k - k1;
    float s1 = __uint_as_float((unsigned)(k1 + 127) << 23);
    float s2 = __uint_as_float((unsigned)(k2 + 127) << 23);
    return __fmul_rn(__fmul_rn(p, s1), s2);
}
DEV double m_exp(double x) { return exp(x); }

// tanh in f32 as the CPU computes it (cpu::elementwise::tanh_f32), with its roundings
// spelled out: an odd polynomial below |x| = 0.625, 1 - 2 / (e^2|x| + 1) above, both in f32.
DEV float m_tanh(float x) {
    float ax = fabsf(x), z = __fmul_rn(ax, ax);
    float p = __fmaf_rn(__fmaf_rn(__fmaf_rn(__fmaf_rn(-5.7049887e-3f, z, 2.0639088e-2f),
        z, -5.3739715e-2f), z, 1.3331442e-1f), z, -3.333328e-1f);
    float small = __fmaf_rn(__fmul_rn(ax, z), p, ax);
    float e = m_exp(__fmul_rn(2.f, ax));
    float big = __fsub_rn(1.f, __fdiv_rn(2.f, __fadd_rn(e, 1.f)));
    return copysignf(ax < 0.625f ? small : big, x);
}
DEV double m_tanh(double x) { return tanh(x); }

template <class T> DEV T m_sign(T v) {
    if (v > (T)0) return (T)1;
    if (v < (T)0) return (T)-1;
    if (v != v) return v;
    return (T)0;
}
template <class T> DEV T m_sigmoid(T v) {
    T e = m_exp(-m_abs(v));
    T r = (T)1 / ((T)1 + e);
    return v >= (T)0 ? r : e * r;
}
// GELU: exact in double as the CPU (cpu::elementwise::gelu_f64); the tanh form in f32 with
// the CPU's roundings (FastMath::gelu_tanh for f32), in double for f64.
DEV double m_gelu(double x) { return 0.5 * x * (1.0 + erf(x * 0.70710678118654752440)); }
DEV float m_gelu_tanh(float x) {
    float x3 = __fmul_rn(__fmul_rn(x, x), x);
    float inner = __fmul_rn(__fadd_rn(x, __fmul_rn(0.044715f, x3)), 0.7978845608028654f);
    return __fmul_rn(__fmul_rn(0.5f, x), __fadd_rn(1.f, m_tanh(inner)));
}
DEV double m_gelu_tanh(double x) {
    double inner = (x + 0.044715 * (x * x * x)) * 0.7978845608028654;
    return 0.5 * x * (1.0 + tanh(inner));
}
// GELU's gradients times g: the CPU's gelu_grad_f64 and FastMath::gelu_tanh_grad (f32
// steps with the CPU's roundings, so both give the same bits; double for f64).
DEV double m_gelu_grad(double x, double g) {
    double cdf = 0.5 * (1.0 + erf(x * 0.70710678118654752440));
    double pdf = exp(-0.5 * x * x) * 0.3989422804014327;
    return g * (cdf + x * pdf);
}
DEV float m_gelu_tanh_grad(float x, float g) {
    float x2 = __fmul_rn(x, x);
    float inner = __fmul_rn(__fadd_rn(x, __fmul_rn(0.044715f, __fmul_rn(x2, x))), 0.7978845608028654f);
    float t = m_tanh(inner);
    float du = __fmul_rn(__fadd_rn(1.f, __fmul_rn(0.134145f, x2)), 0.39894228f);
    float right = __fmul_rn(__fmul_rn(x, __fsub_rn(1.f, __fmul_rn(t, t))), du);
    return __fmul_rn(g, __fadd_rn(__fmul_rn(0.5f, __fadd_rn(1.f, t)), right));
}
DEV double m_gelu_tanh_grad(double x, double g) {
    double t = tanh((x + 0.044715 * (x * x * x)) * 0.7978845608028654);
    double du = (1.0 + 3.0 * 0.044715 * (x * x)) * (0.5 * 0.7978845608028654);
    return g * (0.5 * (1.0 + t) + x * (1.0 - t * t) * du);
}
template <class T> DEV T m_angle(T v) {
    if (v != v) return v;
    return m_signbit(v) ? (T)3.14159265358979323846 : (T)0;
}
DEV double round_dec(double v, int d) {
    if (d == 0) return rint(v);
    double s = 1.0;
    for (int i = 0; i < (d < 0 ? -d : d); ++i) s *= 10.0;
    if (d < 0) s = 1.0 / s;
    return rint(v * s) / s;
}
template <class T> DEV T nan_max(T x, T y) { return (x != x || y != y) ? (x != x ? x : y) : (x >= y ? x : y); }
template <class T> DEV T nan_min(T x, T y) { return (x != x || y != y) ? (x != x ? x : y) : (x <= y ? x : y); }
template <class T> DEV T py_mod(T x, T y) {
    T r = m_fmod(x, y);
    if (r != (T)0 && ((r < (T)0) != (y < (T)0))) return r + y;
    if (r == (T)0) return y < (T)0 ? -(T)0 : (T)0;
    return r;
}
template <class T> DEV T py_floor_div(T x, T y) {
    if (y == (T)0) return x / y;
    T m = py_mod(x, y);
    T d = (x - m) / y;
    T f = m_floor(d);
    T q = (d - f > (T)0.5) ? f + (T)1 : f;
    if (q == (T)0) { T s = x / y; return (s > (T)0 ? (T)1 : (s < (T)0 ? (T)-1 : s)) * (T)0; }
    return q;
}
template <class T> DEV T logaddexp(T x, T y) {
    if (x == y) return x + (T)0.69314718055994530942;
    T m = nan_max(x, y);
    if (m != m) return m;
    T d = m_abs(x - y);
    return m + m_log1p(exp(-d));
}

// ---- integers: wrapping arithmetic through the unsigned type, NumPy's division rules -------

template <class T> struct Uns { typedef T type; };
template <> struct Uns<i8> { typedef u8 type; };
template <> struct Uns<i16> { typedef u16 type; };
template <> struct Uns<i32> { typedef u32 type; };
template <> struct Uns<i64> { typedef u64 type; };
template <class T> DEV T w_add(T x, T y) { typedef typename Uns<T>::type U; return (T)(U)((U)x + (U)y); }
template <class T> DEV T w_sub(T x, T y) { typedef typename Uns<T>::type U; return (T)(U)((U)x - (U)y); }
template <class T> DEV T w_mul(T x, T y) { typedef typename Uns<T>::type U; return (T)(U)((U)x * (U)y); }
template <class T> DEV T w_neg(T x) { return w_sub((T)0, x); }
template <class T> DEV T i_abs(T x) { return x < (T)0 ? w_neg(x) : x; }
template <class T> DEV T i_sign(T x) { return x > (T)0 ? (T)1 : (x == (T)0 ? (T)0 : w_neg((T)1)); }
// Truncating division and remainder that wrap for MIN / -1 instead of trapping.
template <class T> DEV T w_div(T x, T y) { return ((T)-1 < (T)0 && y == (T)-1) ? w_neg(x) : (T)(x / y); }
template <class T> DEV T w_rem(T x, T y) { return ((T)-1 < (T)0 && y == (T)-1) ? (T)0 : (T)(x % y); }
template <class T> DEV T i_floor_div(T x, T y) {
    if (y == (T)0) return (T)0;
    T q = w_div(x, y);
    if (w_rem(x, y) != (T)0 && ((x < (T)0) != (y < (T)0))) return w_sub(q, (T)1);
    return q;
}
template <class T> DEV T i_mod(T x, T y) {
    if (y == (T)0) return (T)0;
    T r = w_rem(x, y);
    if (r != (T)0 && ((r < (T)0) != (y < (T)0))) return w_add(r, y);
    return r;
}
template <class T> DEV T i_pow(T x, T y) {
    if (y < (T)0) {
        if (x == (T)1) return (T)1;
        if (x == w_neg((T)1)) return (w_rem(y, (T)2) == (T)0) ? (T)1 : x;
        return (T)0;
    }
    T base = x, acc = (T)1;
    typedef typename Uns<T>::type U;
    U e = (U)y;
    while (e > 0) {
        if (e & 1) acc = w_mul(acc, base);
        base = w_mul(base, base);
        e >>= 1;
    }
    return acc;
}
template <class T> DEV T i_shl(T x, T y) {
    const long long bits = sizeof(T) * 8;
    if (y < (T)0 || (unsigned long long)y >= (unsigned long long)bits) return (T)0;
    typedef typename Uns<T>::type U;
    return (T)(U)((U)x << (int)y);
}
template <class T> DEV T i_shr(T x, T y) {
    const long long bits = sizeof(T) * 8;
    if (y < (T)0 || (unsigned long long)y >= (unsigned long long)bits) return x < (T)0 ? w_neg((T)1) : (T)0;
    return (T)(x >> (int)y);
}

// complex64, as the CPU computes it (num_complex's formulas, operation for operation; with
// contraction off the arithmetic gives the CPU's bits, the transcendental parts agree to
// within an ulp or two of f32).
DEV c64 cx(float re, float im) { c64 r; r.re = re; r.im = im; return r; }
DEV c64 c_add(c64 a, c64 b) { return cx(a.re + b.re, a.im + b.im); }
DEV c64 c_sub(c64 a, c64 b) { return cx(a.re - b.re, a.im - b.im); }
DEV c64 c_mul(c64 a, c64 b) { return cx(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re); }
DEV c64 c_div(c64 a, c64 b) {
    float ns = b.re * b.re + b.im * b.im;
    return cx((a.re * b.re + a.im * b.im) / ns, (a.im * b.re - a.re * b.im) / ns);
}
DEV c64 c_inv(c64 a) {
    float ns = a.re * a.re + a.im * a.im;
    return cx(a.re / ns, -a.im / ns);
}
DEV float c_abs(c64 a) { return hypotf(a.re, a.im); }
DEV c64 c_sign(c64 a) {
    float n = c_abs(a);
    return n == 0.f ? cx(0.f, 0.f) : cx(a.re / n, a.im / n);
}
// e^(re + i im) = e^re (cos im + i sin im), with num_complex's infinite and NaN cases.
DEV c64 c_exp(c64 a) {
    float re = a.re, im = a.im;
    if (m_isinf(re)) {
        if (re < 0.f) {
            if (!isfinite(im)) return cx(0.f, 0.f);
        } else if (im == 0.f || !isfinite(im)) {
            if (m_isinf(im)) im = __int_as_float(0x7fc00000);
            return cx(re, im);
        }
    } else if (re != re && im == 0.f) {
        return a;
    }
    float r = expf(re);
    return cx(r * cosf(im), r * sinf(im));
}
DEV bool c_eq(c64 a, c64 b) { return a.re == b.re && a.im == b.im; }
DEV bool c_nz(c64 a) { return a.re != 0.f || a.im != 0.f; }
// Lexicographic (re, im) order as Rust's tuples compare: a NaN in the real parts is
// unordered (false); equal real parts defer to the imaginary ones.
DEV bool c_lt(c64 a, c64 b) { return a.re == b.re ? a.im < b.im : a.re < b.re; }
DEV bool c_le(c64 a, c64 b) { return a.re == b.re ? a.im <= b.im : a.re < b.re; }
DEV bool c_gt(c64 a, c64 b) { return a.re == b.re ? a.im > b.im : a.re > b.re; }
DEV bool c_ge(c64 a, c64 b) { return a.re == b.re ? a.im >= b.im : a.re > b.re; }
