/* bornrt.h: the tiny runtime shared by every bornc-generated C model.
 *
 * Status codes, tensor descriptors, the weights-file header check (magic, format version, byte size,
 * SHA-256) and, for the command-line runner only, .npy reading and writing. C99, libc and libm only.
 * The compiler/runtime boundary is versioned: BORNC_ABI_VERSION changes whenever generated code and this
 * runtime stop fitting together; manifest.json records it. */
#ifndef BORNRT_H
#define BORNRT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define BORNC_ABI_VERSION 2

/* A kernel's error return is rare: marking it so keeps the compiler from judging the code after a long chain of
 * checked calls cold (GCC's static branch prediction otherwise stops vectorizing and unswitching there). */
#if defined(__GNUC__)
#define BORNC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define BORNC_UNLIKELY(x) (x)
#endif

/* Every call returns one of these; none aborts. */
typedef enum {
    BORNC_OK = 0,
    BORNC_ERR_ARGUMENT = 1,      /* a NULL pointer or a size that does not fit */
    BORNC_ERR_ARENA = 2,         /* arena missing, too small or misaligned */
    BORNC_ERR_WEIGHTS = 3,       /* weights missing, wrong size, bad header or checksum */
    BORNC_ERR_INDEX = 4,         /* a runtime index (Gather) out of range */
    BORNC_ERR_IO = 5,            /* file I/O in the command-line runner */
    BORNC_ERR_FORMAT = 6         /* a malformed .npy file or a shape/dtype mismatch */
} bornc_status_t;

/* Element types, numbered as ONNX TensorProto.DataType. */
typedef enum {
    BORNC_FLOAT32 = 1, BORNC_UINT8 = 2, BORNC_INT8 = 3, BORNC_UINT16 = 4, BORNC_INT16 = 5, BORNC_INT32 = 6,
    BORNC_INT64 = 7, BORNC_BOOL = 9, BORNC_FLOAT16 = 10, BORNC_FLOAT64 = 11, BORNC_UINT32 = 12, BORNC_UINT64 = 13,
    BORNC_BFLOAT16 = 16, BORNC_FLOAT8E4M3FN = 17, BORNC_FLOAT8E4M3FNUZ = 18, BORNC_FLOAT8E5M2 = 19,
    BORNC_FLOAT8E5M2FNUZ = 20, BORNC_UINT4 = 21, BORNC_INT4 = 22, BORNC_FLOAT4E2M1 = 23, BORNC_UINT2 = 25,
    BORNC_INT2 = 26, BORNC_FLOAT8E8M0 = 24
} bornc_dtype_t;

/* 8-bit and 4-bit floats and 4/2-bit integers are held one element per uint8_t, laid out as ONNX's reference
 * (ml_dtypes) does: the format's bit pattern in the low bits. They are only stored and converted (Cast),
 * never computed on. bornc_sext: the value of a two's-complement field of `bits` bits. */
static inline int bornc_sext(uint8_t b, int bits) {
    const int mask = (1 << bits) - 1, half = 1 << (bits - 1);
    return ((int)(b & mask) ^ half) - half;
}

/* Encode x in a small float format given `tab`, the values of codes 0..maxcode (positive, increasing), the
 * sign bit, and the codes of NaN, of positive and negative overflow (when not saturating) and of -0.
 * Rounds to nearest, ties to the even code (round-half-even on the mantissa); with `saturate`, values beyond
 * the largest finite value become it (ONNX Cast, "saturate"). */
static inline uint8_t bornc_encode_small_float(float x, const float *tab, unsigned maxcode, unsigned signbit,
                                               uint8_t nan_code, uint8_t pos_over, uint8_t neg_over,
                                               uint8_t neg_zero, int saturate) {
    const int neg = x < 0.0f || (x == 0.0f && 1.0f / x < 0.0f);
    const float a = neg ? -x : x, top = tab[maxcode], half_step = (tab[maxcode] - tab[maxcode - 1]) * 0.5f;
    unsigned lo = 0, hi = maxcode, k;
    if (x != x) return nan_code;
    if (a > top) {
        if (!saturate && (a > top + half_step || (a == top + half_step && ((maxcode + 1u) & 1u) == 0u)))
            return neg ? neg_over : pos_over;
        return (uint8_t)(neg ? (signbit | maxcode) : maxcode);
    }
    while (lo < hi) {
        const unsigned mid = (lo + hi + 1u) / 2u;
        if (tab[mid] <= a) lo = mid; else hi = mid - 1u;
    }
    k = lo;
    if (k < maxcode) {
        const float d0 = a - tab[k], d1 = tab[k + 1u] - a;
        if (d1 < d0 || (d1 == d0 && (k & 1u))) ++k;
    }
    if (k == 0u && neg) return neg_zero;
    return (uint8_t)(neg ? (signbit | k) : k);
}

/* float8_e8m0fnu: an 8-bit power-of-two exponent, 2^(code - 127), code 255 NaN. Encoding takes the float32
 * exponent field, raised by one for a nonzero fraction (round_mode 1, "up") or a fraction >= 1/2 (2,
 * "nearest"; 0 is "down"), not past 254 when saturating; Inf and NaN give 255 (ONNX Cast-24, round_mode). */
static inline float bornc_e8m0_to_f(uint8_t c) {
    /* code 0 is 2^-127, a float32 subnormal; code 255 a quiet NaN */
    const uint32_t bits = c == 255u ? 0x7fc00000u : c == 0u ? 0x00400000u : (uint32_t)c << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint8_t bornc_f_to_e8m0(float x, int round_mode, int saturate) {
    uint32_t bits, e, frac;
    int bump;
    memcpy(&bits, &x, sizeof bits);
    e = (bits >> 23) & 0xffu;
    frac = bits & 0x7fffffu;
    if (e == 0xffu) return 0xffu;
    bump = round_mode == 1 ? frac > 0u : round_mode == 2 ? frac >= 0x400000u : 0;
    if (saturate && e == 0xfeu) bump = 0;
    e += (uint32_t)bump;
    return (uint8_t)(e > 0xffu ? 0xffu : e);
}

/* float16 (IEEE binary16) and bfloat16 are stored as uint16_t and computed in float; conversions round to
 * nearest even (IEEE 754-2008 section 4.3.1). */
static inline float bornc_h2f(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    uint32_t bits;
    float f;
    if (exp == 0x1fu) bits = sign | 0x7f800000u | (man << 13);
    else if (exp) bits = sign | ((exp + 112u) << 23) | (man << 13);
    else if (!man) bits = sign;
    else {
        int e = -1;
        uint32_t m = man;
        do { ++e; m <<= 1; } while (!(m & 0x400u));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((m & 0x3ffu) << 13);
    }
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t bornc_f2h(float f) {
    uint32_t x, sign, mag;
    memcpy(&x, &f, 4);
    sign = (x >> 16) & 0x8000u;
    mag = x & 0x7fffffffu;
    if (mag > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);                 /* NaN */
    if (mag >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);                /* overflow to Inf */
    if (mag < 0x38800000u) {                                                    /* subnormal or zero */
        uint32_t m = (mag & 0x7fffffu) | 0x800000u, shift = 126u - (mag >> 23), r;
        if (mag < 0x33000000u) return (uint16_t)sign;
        r = m >> shift;
        if ((m & ((1u << shift) - 1u)) > (1u << (shift - 1u)) || ((m & ((1u << shift) - 1u)) == (1u << (shift - 1u)) && (r & 1u))) ++r;
        return (uint16_t)(sign | r);
    }
    mag += 0xc8000fffu + ((mag >> 13) & 1u);                                    /* rebias and round to nearest even */
    return (uint16_t)(sign | (mag >> 13));
}

static inline float bornc_b2f(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t bornc_f2b(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

/* Scalar math the kernels call in their inner loops: always inlined (gcc stops inlining plain `static inline`
   functions into large kernels, and a call in a loop keeps it from vectorizing). */
#if defined(__GNUC__) || defined(__clang__)
#define BORNC_MATH static inline __attribute__((always_inline))
#else
#define BORNC_MATH static inline
#endif

/* ---- exp, expm1 and tanh for float kernels, branch-free so that gcc vectorizes the loops that call them (libm's
 * are scalar calls; a float compare feeding ?: stays a branch under the default -ftrapping-math, so selects
 * are done on the bits, bornc_self). exp(x) = 2^n * exp(r), n = the integer nearest x / ln 2, r = x - n ln 2
 * with ln 2 split in two constants so that n * 0.693145751953125 is exact (Cody and Waite, "Software Manual for
 * the Elementary Functions", 1980); exp(r) - 1 is its Taylor series to r^8 (|r| <= ln 2 / 2: truncation below
 * 2^-31 relative). expm1(x) for |x| < ln 2 / 2 is that series itself (no cancellation); tanh(x) = sign(x) e /
 * (e + 2), e = expm1(2|x|). Within 4 ulp of glibc's (tests/backends/test_c_kernels.py); exp below 2^-126
 * (x < -87.34) flushes to 0, above 88.72 is +inf; NaN propagates. */
BORNC_MATH float bornc_self(int c, float a, float b) {     /* c ? a : b, on the bits */
    uint32_t ua, ub;
    const uint32_t m = 0u - (uint32_t)(c != 0);
    float r;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    ua = (ua & m) | (ub & ~m);
    memcpy(&r, &ua, sizeof r);
    return r;
}

/* max and min that return a NaN operand a (ONNX Max/Min, Clip and Relu propagate NaN), branch-free */
BORNC_MATH float bornc_maxf(float a, float b) { return bornc_self((a > b) | (a != a), a, b); }
BORNC_MATH float bornc_minf(float a, float b) { return bornc_self((a < b) | (a != a), a, b); }

BORNC_MATH float bornc_expm1_series(float r) {
    return r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 +
           r * (1.0f / 5040 + r * (1.0f / 40320))))))));
}

/* 2^k as a float for an integer k in [-126, 127] (exponent bits; no libm) */
BORNC_MATH float bornc_pow2i(int32_t k) {
    const int32_t bits = (k + 127) * (1 << 23);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Cody-Waite range reduction: x clamped to [-87.34, 88.72] = n ln2 + r, |r| <= ln2 / 2, n in [-126, 128]. 2^n is
   applied as 2^h * 2^(n-h) with h = n / 2, since 2^128 is not a float (x in (88.38, 88.72] has n = 128). */
BORNC_MATH float bornc_exp_reduce(float x, int32_t *n) {
    const float lo = -87.33654f, hi = 88.72283f;
    const float xc = bornc_self(x < lo, lo, bornc_self(x > hi, hi, x));
    const float t = xc * 1.44269504f;
    const float nf = (float)(int32_t)(t + copysignf(0.5f, t));   /* nearest integer; truncation vectorizes */
    *n = (int32_t)nf;
    return (xc - nf * 0.693145751953125f) - nf * 1.428606765330187e-06f;
}

BORNC_MATH float bornc_expf(float x) {
    int32_t n;
    const float p = bornc_expm1_series(bornc_exp_reduce(x, &n)), s1 = bornc_pow2i(n / 2), s2 = bornc_pow2i(n - n / 2);
    const float y = (s1 + s1 * p) * s2;
    return bornc_self(x != x, x, bornc_self(x > 88.72283f, (float)HUGE_VAL, bornc_self(x < -87.33654f, 0.0f, y)));
}

/* expm1 = 2^n (1 + p) - 1 = 2^(n-h) ((2^h - 2^-(n-h)) + 2^h p): the inner difference is exact for small n */
BORNC_MATH float bornc_expm1f(float x) {
    int32_t n;
    const float p = bornc_expm1_series(bornc_exp_reduce(x, &n));
    const float s1 = bornc_pow2i(n / 2), s2 = bornc_pow2i(n - n / 2), s2inv = bornc_pow2i(n / 2 - n);
    const float big = s2 * ((s1 - s2inv) + s1 * p), small = bornc_expm1_series(x);
    const float y = bornc_self(fabsf(x) < 0.34657359f, small, big);
    return bornc_self(x != x, x, bornc_self(x > 88.72283f, (float)HUGE_VAL, bornc_self(x < -87.33654f, -1.0f, y)));
}

BORNC_MATH float bornc_tanhf(float x) {
    const float a = fabsf(x), e = bornc_expm1f(2.0f * bornc_self(a > 9.0f, 9.0f, a));
    const float t = bornc_self(a > 9.0f, 1.0f, e / (e + 2.0f));
    return bornc_self(x != x, x, copysignf(t, x));
}

/* Name, element type, rank, shape and byte size of one model input or output. */
typedef struct {
    const char *name;
    bornc_dtype_t dtype;
    int rank;
    const int64_t *shape;
    size_t nbytes;
} bornc_tensor_info_t;

/* Short English text for a status code. */
const char *bornc_status_string(bornc_status_t status);

/* Bytes of one element of dtype, 0 if unknown. */
size_t bornc_dtype_size(bornc_dtype_t dtype);

/* SHA-256 (FIPS 180-4) of n bytes into out[32]. */
void bornc_sha256(const void *data, size_t n, uint8_t out[32]);

/* Streaming SHA-256: init, update with any number of pieces, final. */
typedef struct {
    uint32_t h[8];
    uint8_t buf[64];
    size_t buf_len;
    uint64_t total;
} bornc_sha256_t;
void bornc_sha256_init(bornc_sha256_t *s);
void bornc_sha256_update(bornc_sha256_t *s, const void *data, size_t n);
void bornc_sha256_final(bornc_sha256_t *s, uint8_t out[32]);

/* Weights file: 64-byte header then the payload.
 * Header: magic "BORNCWT1" (8 bytes), format version (u32 LE), header bytes (u32 LE, = 64),
 * payload bytes (u64 LE), SHA-256 of the payload (32 bytes), 8 zero bytes. */
#define BORNC_WEIGHTS_MAGIC "BORNCWT1"
#define BORNC_WEIGHTS_VERSION 1u
#define BORNC_WEIGHTS_HEADER_BYTES 64u

/* Check a weights file image (header + payload) against the expected payload size and SHA-256; on success
 * *payload points at the payload inside the image. */
bornc_status_t bornc_weights_check(const void *image, size_t image_bytes, size_t expected_payload_bytes,
                                   const uint8_t expected_sha256[32], const void **payload);

/* ---- thread pool ----
 * One process-wide pool of worker threads (pthreads), started by the first job that wants them and reused by every
 * model; they live for the process. The caller of bornc_parallel is worker 0; workers spin briefly for the next
 * job, then sleep on a condition variable. Nothing is allocated once they run, and no call aborts. Built with -DBORNC_NO_THREADS (bare metal)
 * the pool is compiled out: bornc_parallel runs every task on the caller, and bornc_pool_start returns 1.
 * Generated kernels split their work into tasks whose results do not depend on which worker runs them, so
 * outputs are bitwise identical for every thread count. */
#define BORNC_MAX_THREADS 64

/* One task: fn(arg, task, worker), worker in [0, threads) names the caller's scratch slice. */
typedef void (*bornc_task_fn)(void *arg, int task, int worker);

/* Start workers so that `threads` (capped at BORNC_MAX_THREADS) can run at once; returns min(threads, how many
 * can), fewer when the system refuses a thread, at least 1. Safe to call again (from any thread): it only adds
 * workers. */
int bornc_pool_start(int threads);

/* Run fn(arg, t, w) for every t in [0, ntasks) on the caller (w = 0) and up to threads - 1 workers, starting
 * workers first if fewer run (the system may refuse some: then fewer work). Tasks are claimed one at a time from
 * a shared counter; a worker still asleep when the caller has claimed the last task is not waited for. Returns
 * when all tasks are done. While another call is using the pool (a second model running at the same time),
 * this one runs all its tasks on the caller. */
void bornc_parallel(bornc_task_fn fn, void *arg, int ntasks, int threads);

/* Profiling hook of bare-metal artifacts: when set, run() calls it after each kernel with the kernel's index (the
 * N of the generated k<N>_* functions). NULL by default: one load and compare per kernel. */
extern void (*bornc_kernel_hook)(int kernel);

/* --- command-line runner helpers (not used by the model code) --- */

/* Read a little-endian, C-order .npy file whose dtype and shape must equal info's; data must hold
 * info->nbytes bytes. */
bornc_status_t bornc_npy_read(const char *path, const bornc_tensor_info_t *info, void *data);

/* Write data (info->nbytes bytes) as a .npy file with info's dtype and shape. */
bornc_status_t bornc_npy_write(const char *path, const bornc_tensor_info_t *info, const void *data);

#endif /* BORNRT_H */
