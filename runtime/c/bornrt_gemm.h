/* bornrt_gemm.h: the GEMM and int8 micro-kernels of the bornc C runtime (static inline; AVX2/FMA, AVX-VNNI,
 * AArch64 NEON and dot-product, 32-bit Arm DSP (SMLAD), Helium (MVE) and scalar-FPU versions through the
 * compiler's intrinsics headers, a portable loop elsewhere).
 * Generated model code includes it only when one of its kernels calls these functions: the intrinsics headers
 * alone cost a C compiler about 0.3 s per translation unit. */
#ifndef BORNRT_GEMM_H
#define BORNRT_GEMM_H

#include "bornrt.h"

#include <string.h>

#if defined(__ARM_FEATURE_SIMD32) && !defined(__aarch64__) && !defined(__ARM_NEON) && !defined(__ARM_BIG_ENDIAN)
/* 32-bit little-endian Arm with the DSP (SIMD32) instructions and no NEON: Cortex-M4/M7/M33/M55 and ARMv6 (Pi
 * Zero). With NEON (ARMv7-A) the portable loops stay, for the compiler to vectorize. */
#define BORNC_ARM_SIMD32 1
#include <arm_acle.h>
#define BORNC_ROR8(x) (((x) >> 8) | ((x) << 24))
static inline uint32_t bornc_load_u32(const void *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
#endif
#if defined(__ARM_FEATURE_MVE) && !defined(__aarch64__) && !defined(__ARM_BIG_ENDIAN)
/* Armv8.1-M with Helium (the M-profile Vector Extension): Cortex-M55/M85. Its int8 kernels come first where both
 * apply (these cores have the DSP instructions too). */
#define BORNC_ARM_MVE 1
#include <arm_mve.h>
#endif

/* ---- single-precision GEMM micro-kernel ----
 * C[6 x 16] = init + A[6 x K] * B[K x 16]: A(r, k) at A[r * lda + k * ak], B rows at stride ldb, C rows at
 * stride ldc.
 * init: the 6 row biases when `bias` is not NULL, else zero. Register blocking as in Goto & van de Geijn,
 * "Anatomy of high-performance matrix multiplication" (ACM TOMS 34(3), 2008): the 6 x 16 block of C stays in
 * registers (12 AVX2 or 24 NEON vectors) while K streams. AVX2+FMA and AArch64 NEON versions use the compiler's
 * intrinsics headers; every other target gets the portable loop. */
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
static inline void bornc_sgemm_6x16(int K, const float *A, size_t lda, size_t ak, const float *B, size_t ldb,
                                    float *C, size_t ldc, const float *bias) {
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    int k;
    c00 = c01 = _mm256_set1_ps(bias ? bias[0] : 0.0f);
    c10 = c11 = _mm256_set1_ps(bias ? bias[1] : 0.0f);
    c20 = c21 = _mm256_set1_ps(bias ? bias[2] : 0.0f);
    c30 = c31 = _mm256_set1_ps(bias ? bias[3] : 0.0f);
    c40 = c41 = _mm256_set1_ps(bias ? bias[4] : 0.0f);
    c50 = c51 = _mm256_set1_ps(bias ? bias[5] : 0.0f);
    for (k = 0; k < K; ++k) {
        const float *b = B + (size_t)k * ldb;
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        const float *ar = A + (size_t)k * ak;
        __m256 a = _mm256_broadcast_ss(ar);
        c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(ar + lda);
        c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(ar + 2 * lda);
        c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(ar + 3 * lda);
        c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31);
        a = _mm256_broadcast_ss(ar + 4 * lda);
        c40 = _mm256_fmadd_ps(a, b0, c40); c41 = _mm256_fmadd_ps(a, b1, c41);
        a = _mm256_broadcast_ss(ar + 5 * lda);
        c50 = _mm256_fmadd_ps(a, b0, c50); c51 = _mm256_fmadd_ps(a, b1, c51);
    }
    _mm256_storeu_ps(C, c00); _mm256_storeu_ps(C + 8, c01);
    _mm256_storeu_ps(C + ldc, c10); _mm256_storeu_ps(C + ldc + 8, c11);
    _mm256_storeu_ps(C + 2 * ldc, c20); _mm256_storeu_ps(C + 2 * ldc + 8, c21);
    _mm256_storeu_ps(C + 3 * ldc, c30); _mm256_storeu_ps(C + 3 * ldc + 8, c31);
    _mm256_storeu_ps(C + 4 * ldc, c40); _mm256_storeu_ps(C + 4 * ldc + 8, c41);
    _mm256_storeu_ps(C + 5 * ldc, c50); _mm256_storeu_ps(C + 5 * ldc + 8, c51);
}
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
static inline void bornc_sgemm_6x16(int K, const float *A, size_t lda, size_t ak, const float *B, size_t ldb,
                                    float *C, size_t ldc, const float *bias) {
    float32x4_t c[6][4];
    int r, q, k;
    for (r = 0; r < 6; ++r)
        for (q = 0; q < 4; ++q) c[r][q] = vdupq_n_f32(bias ? bias[r] : 0.0f);
    for (k = 0; k < K; ++k) {
        const float *b = B + (size_t)k * ldb;
        const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8), b3 = vld1q_f32(b + 12);
        for (r = 0; r < 6; ++r) {
            const float a = A[(size_t)r * lda + (size_t)k * ak];
            c[r][0] = vfmaq_n_f32(c[r][0], b0, a); c[r][1] = vfmaq_n_f32(c[r][1], b1, a);
            c[r][2] = vfmaq_n_f32(c[r][2], b2, a); c[r][3] = vfmaq_n_f32(c[r][3], b3, a);
        }
    }
    for (r = 0; r < 6; ++r)
        for (q = 0; q < 4; ++q) vst1q_f32(C + (size_t)r * ldc + 4 * q, c[r][q]);
}
#else
static inline void bornc_sgemm_6x16(int K, const float *A, size_t lda, size_t ak, const float *B, size_t ldb,
                                    float *C, size_t ldc, const float *bias) {
    float acc[6][16];
    int r, t, k;
    for (r = 0; r < 6; ++r)
        for (t = 0; t < 16; ++t) acc[r][t] = bias ? bias[r] : 0.0f;
    for (k = 0; k < K; ++k) {
        const float *b = B + (size_t)k * ldb;
        for (r = 0; r < 6; ++r) {
            const float a = A[(size_t)r * lda + (size_t)k * ak];
            for (t = 0; t < 16; ++t) acc[r][t] += a * b[t];
        }
    }
    for (r = 0; r < 6; ++r)
        for (t = 0; t < 16; ++t) C[(size_t)r * ldc + (size_t)t] = acc[r][t];
}
#endif

/* ---- single-precision GEMM on weights packed at compile time ----
 * The compiler stores a weight matrix A (M x K) as panels of 6 rows, k-major inside a panel:
 * ap[(i * K + k) * 6 + r] = A[6 i + r][k], rows past M zero (bornc.backends.c.lower_nn.pack_a6). The
 * micro-kernel then reads A as one contiguous stream.
 *
 * bornc_sgemm_6x16g: C[6 x 16] = (first ? bias (or 0) : C) + a[kc x 6-panel] * B, where row k of B is the 16 floats
 * at b + 16 k (packed 16-column panels, offs NULL) or at b + offs[k] (B read where it lies: the taps of a
 * stride-1 convolution over a padded copy of its input); when `clamp` is not NULL the sums are then clamped to
 * [clamp[0], clamp[1]] (a fused Relu or Clip; NaN stays NaN, as in the reference). bias: 6 row values, or NULL
 * for zero. The test on offs does not change inside the loop (gcc unswitches it at -O3, or folds it where the
 * call is inlined). */
#if defined(__AVX2__) && defined(__FMA__)
static inline void bornc_sgemm_6x16g(int kc, const float *a, const float *b, const int *offs, float *C, size_t ldc,
                                     int first, const float *bias, const float *clamp) {
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    int k;
    if (first) {
        c00 = c01 = _mm256_set1_ps(bias ? bias[0] : 0.0f);
        c10 = c11 = _mm256_set1_ps(bias ? bias[1] : 0.0f);
        c20 = c21 = _mm256_set1_ps(bias ? bias[2] : 0.0f);
        c30 = c31 = _mm256_set1_ps(bias ? bias[3] : 0.0f);
        c40 = c41 = _mm256_set1_ps(bias ? bias[4] : 0.0f);
        c50 = c51 = _mm256_set1_ps(bias ? bias[5] : 0.0f);
    } else {
        c00 = _mm256_loadu_ps(C); c01 = _mm256_loadu_ps(C + 8);
        c10 = _mm256_loadu_ps(C + ldc); c11 = _mm256_loadu_ps(C + ldc + 8);
        c20 = _mm256_loadu_ps(C + 2 * ldc); c21 = _mm256_loadu_ps(C + 2 * ldc + 8);
        c30 = _mm256_loadu_ps(C + 3 * ldc); c31 = _mm256_loadu_ps(C + 3 * ldc + 8);
        c40 = _mm256_loadu_ps(C + 4 * ldc); c41 = _mm256_loadu_ps(C + 4 * ldc + 8);
        c50 = _mm256_loadu_ps(C + 5 * ldc); c51 = _mm256_loadu_ps(C + 5 * ldc + 8);
    }
    for (k = 0; k < kc; ++k) {
        const float *bk = offs ? b + offs[k] : b + 16 * k;
        const __m256 b0 = _mm256_loadu_ps(bk), b1 = _mm256_loadu_ps(bk + 8);
        const float *ar = a + 6 * k;
        __m256 x = _mm256_broadcast_ss(ar);
        c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(ar + 1);
        c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(ar + 2);
        c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(ar + 3);
        c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(ar + 4);
        c40 = _mm256_fmadd_ps(x, b0, c40); c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(ar + 5);
        c50 = _mm256_fmadd_ps(x, b0, c50); c51 = _mm256_fmadd_ps(x, b1, c51);
    }
    if (clamp) {     /* max(lo, c) then min(hi, c): the second operand is returned for NaN, so NaN passes */
        const __m256 lo = _mm256_set1_ps(clamp[0]), hi = _mm256_set1_ps(clamp[1]);
#define BORNC_CL(v) v = _mm256_min_ps(hi, _mm256_max_ps(lo, v))
        BORNC_CL(c00); BORNC_CL(c01); BORNC_CL(c10); BORNC_CL(c11); BORNC_CL(c20); BORNC_CL(c21);
        BORNC_CL(c30); BORNC_CL(c31); BORNC_CL(c40); BORNC_CL(c41); BORNC_CL(c50); BORNC_CL(c51);
#undef BORNC_CL
    }
    _mm256_storeu_ps(C, c00); _mm256_storeu_ps(C + 8, c01);
    _mm256_storeu_ps(C + ldc, c10); _mm256_storeu_ps(C + ldc + 8, c11);
    _mm256_storeu_ps(C + 2 * ldc, c20); _mm256_storeu_ps(C + 2 * ldc + 8, c21);
    _mm256_storeu_ps(C + 3 * ldc, c30); _mm256_storeu_ps(C + 3 * ldc + 8, c31);
    _mm256_storeu_ps(C + 4 * ldc, c40); _mm256_storeu_ps(C + 4 * ldc + 8, c41);
    _mm256_storeu_ps(C + 5 * ldc, c50); _mm256_storeu_ps(C + 5 * ldc + 8, c51);
}
#elif defined(__aarch64__) && defined(__ARM_NEON)
static inline void bornc_sgemm_6x16g(int kc, const float *a, const float *b, const int *offs, float *C, size_t ldc,
                                     int first, const float *bias, const float *clamp) {
    float32x4_t c[6][4];
    int r, q, k;
    for (r = 0; r < 6; ++r)
        for (q = 0; q < 4; ++q)
            c[r][q] = first ? vdupq_n_f32(bias ? bias[r] : 0.0f) : vld1q_f32(C + (size_t)r * ldc + 4 * q);
    for (k = 0; k < kc; ++k) {
        const float *bk = offs ? b + offs[k] : b + 16 * k;
        const float32x4_t b0 = vld1q_f32(bk), b1 = vld1q_f32(bk + 4), b2 = vld1q_f32(bk + 8), b3 = vld1q_f32(bk + 12);
        const float32x4_t a03 = vld1q_f32(a + 6 * k);
        const float32x2_t a45 = vld1_f32(a + 6 * k + 4);
#define BORNC_ROW(r, av, lane) \
        c[r][0] = vfmaq_laneq_f32(c[r][0], b0, av, lane); c[r][1] = vfmaq_laneq_f32(c[r][1], b1, av, lane); \
        c[r][2] = vfmaq_laneq_f32(c[r][2], b2, av, lane); c[r][3] = vfmaq_laneq_f32(c[r][3], b3, av, lane)
        BORNC_ROW(0, a03, 0); BORNC_ROW(1, a03, 1); BORNC_ROW(2, a03, 2); BORNC_ROW(3, a03, 3);
#undef BORNC_ROW
        c[4][0] = vfmaq_lane_f32(c[4][0], b0, a45, 0); c[4][1] = vfmaq_lane_f32(c[4][1], b1, a45, 0);
        c[4][2] = vfmaq_lane_f32(c[4][2], b2, a45, 0); c[4][3] = vfmaq_lane_f32(c[4][3], b3, a45, 0);
        c[5][0] = vfmaq_lane_f32(c[5][0], b0, a45, 1); c[5][1] = vfmaq_lane_f32(c[5][1], b1, a45, 1);
        c[5][2] = vfmaq_lane_f32(c[5][2], b2, a45, 1); c[5][3] = vfmaq_lane_f32(c[5][3], b3, a45, 1);
    }
    for (r = 0; r < 6; ++r)
        for (q = 0; q < 4; ++q) {
            float32x4_t v = c[r][q];
            if (clamp) {     /* compare-and-select keeps NaN, as the reference's clip does */
                v = vbslq_f32(vcltq_f32(v, vdupq_n_f32(clamp[0])), vdupq_n_f32(clamp[0]), v);
                v = vbslq_f32(vcgtq_f32(v, vdupq_n_f32(clamp[1])), vdupq_n_f32(clamp[1]), v);
            }
            vst1q_f32(C + (size_t)r * ldc + 4 * q, v);
        }
}
#elif defined(__ARM_FP) && (__ARM_FP & 4) && !defined(__aarch64__) && !defined(__ARM_NEON) && !defined(__ARM_FEATURE_MVE)
/* 32-bit Arm with a scalar FPU and no vectors (Cortex-M4F and M7, the Pi Zero's VFP): 3 x 4 sub-tiles, whose 12
 * sums and 7 operands stay in the FPU's 32 single-precision registers (the whole 6 x 16 tile would live in
 * memory: a load and a store per multiply-add). Each sum adds its products in the order of the portable loop. */
static inline float bornc_clampf(float v, const float *clamp) {
    if (clamp) {
        if (v < clamp[0]) v = clamp[0];
        if (v > clamp[1]) v = clamp[1];
    }
    return v;
}
static inline void bornc_sgemm_6x16g(int kc, const float *a, const float *b, const int *offs, float *C, size_t ldc,
                                     int first, const float *bias, const float *clamp) {
    int r, t, k;
    for (r = 0; r < 6; r += 3)
        for (t = 0; t < 16; t += 4) {
            float *c0 = C + (size_t)r * ldc + (size_t)t, *c1 = c0 + ldc, *c2 = c1 + ldc;
            const float i0 = bias ? bias[r] : 0.0f, i1 = bias ? bias[r + 1] : 0.0f, i2 = bias ? bias[r + 2] : 0.0f;
            float s00 = first ? i0 : c0[0], s01 = first ? i0 : c0[1], s02 = first ? i0 : c0[2], s03 = first ? i0 : c0[3];
            float s10 = first ? i1 : c1[0], s11 = first ? i1 : c1[1], s12 = first ? i1 : c1[2], s13 = first ? i1 : c1[3];
            float s20 = first ? i2 : c2[0], s21 = first ? i2 : c2[1], s22 = first ? i2 : c2[2], s23 = first ? i2 : c2[3];
            for (k = 0; k < kc; ++k) {
                const float *bk = (offs ? b + offs[k] : b + 16 * k) + t, *ak = a + 6 * k + r;
                const float a0 = ak[0], a1 = ak[1], a2 = ak[2], b0 = bk[0], b1 = bk[1], b2 = bk[2], b3 = bk[3];
                s00 += a0 * b0; s01 += a0 * b1; s02 += a0 * b2; s03 += a0 * b3;
                s10 += a1 * b0; s11 += a1 * b1; s12 += a1 * b2; s13 += a1 * b3;
                s20 += a2 * b0; s21 += a2 * b1; s22 += a2 * b2; s23 += a2 * b3;
            }
            c0[0] = bornc_clampf(s00, clamp); c0[1] = bornc_clampf(s01, clamp); c0[2] = bornc_clampf(s02, clamp); c0[3] = bornc_clampf(s03, clamp);
            c1[0] = bornc_clampf(s10, clamp); c1[1] = bornc_clampf(s11, clamp); c1[2] = bornc_clampf(s12, clamp); c1[3] = bornc_clampf(s13, clamp);
            c2[0] = bornc_clampf(s20, clamp); c2[1] = bornc_clampf(s21, clamp); c2[2] = bornc_clampf(s22, clamp); c2[3] = bornc_clampf(s23, clamp);
        }
}
#else
static inline void bornc_sgemm_6x16g(int kc, const float *a, const float *b, const int *offs, float *C, size_t ldc,
                                     int first, const float *bias, const float *clamp) {
    float acc[6][16];
    int r, t, k;
    for (r = 0; r < 6; ++r)
        for (t = 0; t < 16; ++t) acc[r][t] = first ? (bias ? bias[r] : 0.0f) : C[(size_t)r * ldc + (size_t)t];
    for (k = 0; k < kc; ++k) {
        const float *bk = offs ? b + offs[k] : b + 16 * k;
        for (r = 0; r < 6; ++r) {
            const float av = a[6 * k + r];
            for (t = 0; t < 16; ++t) acc[r][t] += av * bk[t];
        }
    }
    for (r = 0; r < 6; ++r)
        for (t = 0; t < 16; ++t) {
            float v = acc[r][t];
            if (clamp) {
                if (v < clamp[0]) v = clamp[0];
                if (v > clamp[1]) v = clamp[1];
            }
            C[(size_t)r * ldc + (size_t)t] = v;
        }
}
#endif

/* C[6 x 32] as two 6 x 16 tiles side by side. AVX-512: in 12 zmm accumulators (the 6 x 16 tile would keep
 * only 6 sums in flight, fewer than two FMA pipes of latency 4 need). Row k of the first half is at b + 16 k or
 * b + offs[k], of the second at b2 + 16 k or b2 + offs[k]; C gets the halves at C and C + 16. Each element is the
 * same chain of FMAs in the same order as in bornc_sgemm_6x16g, so results do not depend on which kernel ran. */
#if defined(__AVX512F__)
static inline void bornc_sgemm_6x32g(int kc, const float *a, const float *b, const float *b2, const int *offs,
                                     float *C, size_t ldc, int first, const float *bias, const float *clamp) {
    __m512 c[6][2];
    int r, k;
    for (r = 0; r < 6; ++r) {
        if (first) c[r][0] = c[r][1] = _mm512_set1_ps(bias ? bias[r] : 0.0f);
        else { c[r][0] = _mm512_loadu_ps(C + (size_t)r * ldc); c[r][1] = _mm512_loadu_ps(C + (size_t)r * ldc + 16); }
    }
    for (k = 0; k < kc; ++k) {
        const size_t o = offs ? (size_t)offs[k] : 16u * (size_t)k;
        const __m512 b0 = _mm512_loadu_ps(b + o), b1 = _mm512_loadu_ps(b2 + o);
        const float *ar = a + 6 * k;
        for (r = 0; r < 6; ++r) {
            const __m512 x = _mm512_set1_ps(ar[r]);
            c[r][0] = _mm512_fmadd_ps(x, b0, c[r][0]); c[r][1] = _mm512_fmadd_ps(x, b1, c[r][1]);
        }
    }
    for (r = 0; r < 6; ++r) {
        if (clamp) {     /* as in bornc_sgemm_6x16g: max then min, NaN passes */
            const __m512 lo = _mm512_set1_ps(clamp[0]), hi = _mm512_set1_ps(clamp[1]);
            c[r][0] = _mm512_min_ps(hi, _mm512_max_ps(lo, c[r][0]));
            c[r][1] = _mm512_min_ps(hi, _mm512_max_ps(lo, c[r][1]));
        }
        _mm512_storeu_ps(C + (size_t)r * ldc, c[r][0]); _mm512_storeu_ps(C + (size_t)r * ldc + 16, c[r][1]);
    }
}
#else
static inline void bornc_sgemm_6x32g(int kc, const float *a, const float *b, const float *b2, const int *offs,
                                     float *C, size_t ldc, int first, const float *bias, const float *clamp) {
    bornc_sgemm_6x16g(kc, a, b, offs, C, ldc, first, bias, clamp);
    bornc_sgemm_6x16g(kc, a, b2, offs, C + 16, ldc, first, bias, clamp);
}
#endif

/* C[12 x 32] as two 6 x 32 tiles one above the other, rows 6..11 from the A panel a2 (bias + 6, C + 6 ldc).
 * AVX-512: 24 zmm sums, so each B row loaded meets 12 rows of A (half the B traffic of the 6 x 32 tile). Kept
 * apart from the 6 x 32 kernel: one loop over 6 h rows choosing the A panel per row ran 2x slower inside models
 * (gcc did not unroll it). */
#if defined(__AVX512F__)
static inline void bornc_sgemm_12x32g(int kc, const float *a, const float *a2, const float *b, const float *b2,
                                      const int *offs, float *C, size_t ldc, int first, const float *bias,
                                      const float *clamp) {
    __m512 c[12][2];
    int r, k;
    for (r = 0; r < 12; ++r) {
        if (first) c[r][0] = c[r][1] = _mm512_set1_ps(bias ? bias[r] : 0.0f);
        else { c[r][0] = _mm512_loadu_ps(C + (size_t)r * ldc); c[r][1] = _mm512_loadu_ps(C + (size_t)r * ldc + 16); }
    }
    for (k = 0; k < kc; ++k) {
        const size_t o = offs ? (size_t)offs[k] : 16u * (size_t)k;
        const __m512 b0 = _mm512_loadu_ps(b + o), b1 = _mm512_loadu_ps(b2 + o);
        for (r = 0; r < 6; ++r) {
            const __m512 x = _mm512_set1_ps(a[6 * k + r]), y = _mm512_set1_ps(a2[6 * k + r]);
            c[r][0] = _mm512_fmadd_ps(x, b0, c[r][0]); c[r][1] = _mm512_fmadd_ps(x, b1, c[r][1]);
            c[r + 6][0] = _mm512_fmadd_ps(y, b0, c[r + 6][0]); c[r + 6][1] = _mm512_fmadd_ps(y, b1, c[r + 6][1]);
        }
    }
    for (r = 0; r < 12; ++r) {
        if (clamp) {
            const __m512 lo = _mm512_set1_ps(clamp[0]), hi = _mm512_set1_ps(clamp[1]);
            c[r][0] = _mm512_min_ps(hi, _mm512_max_ps(lo, c[r][0]));
            c[r][1] = _mm512_min_ps(hi, _mm512_max_ps(lo, c[r][1]));
        }
        _mm512_storeu_ps(C + (size_t)r * ldc, c[r][0]); _mm512_storeu_ps(C + (size_t)r * ldc + 16, c[r][1]);
    }
}
#else
static inline void bornc_sgemm_12x32g(int kc, const float *a, const float *a2, const float *b, const float *b2,
                                      const int *offs, float *C, size_t ldc, int first, const float *bias,
                                      const float *clamp) {
    bornc_sgemm_6x32g(kc, a, b, b2, offs, C, ldc, first, bias, clamp);
    bornc_sgemm_6x32g(kc, a2, b, b2, offs, C + 6 * ldc, ldc, first, bias ? bias + 6 : NULL, clamp);
}
#endif

/* One tile of h 6-row panels (h = 1 or 2, the second at a2) by w = 16 or 32 columns (the second 16 at b2), by
 * the widest micro-kernel that covers it. */
static inline void bornc_sgemm_hw(int h, int w, int kc, const float *a, const float *a2, const float *b,
                                  const float *b2, const int *offs, float *C, size_t ldc, int first,
                                  const float *bias, const float *clamp) {
    if (h == 2 && w == 32) bornc_sgemm_12x32g(kc, a, a2, b, b2, offs, C, ldc, first, bias, clamp);
    else if (w == 32) bornc_sgemm_6x32g(kc, a, b, b2, offs, C, ldc, first, bias, clamp);
    else {
        bornc_sgemm_6x16g(kc, a, b, offs, C, ldc, first, bias, clamp);
        if (h == 2) bornc_sgemm_6x16g(kc, a2, b, offs, C + 6 * ldc, ldc, first, bias ? bias + 6 : NULL, clamp);
    }
}

/* Packed B (rows at b + 16 k). */
static inline void bornc_sgemm_6x16p(int kc, const float *a, const float *b, float *C, size_t ldc, int first,
                                     const float *bias, const float *clamp) {
    bornc_sgemm_6x16g(kc, a, b, NULL, C, ldc, first, bias, clamp);
}

/* Rows [6 p0, min(6 p1, M)) of C = bias + A * B for A packed as above (K columns) and B read in place (row k of
 * B at b + offs[k], columns [0, nb)), as a stride-1 convolution over a padded copy of its input does: column j
 * of C is stored at c[dst[j]] + row * ldc, or dropped where dst[j] < 0 (the padding columns). B must be
 * readable up to column ceil(nb / 16) * 16 - 1 of every row (the caller's slack). tile: 384 floats. Every
 * element is the same sum in the same order however rows are split over threads. */
static inline void bornc_sgemm_po(int M, int nb, int K, const float *ap, const float *b, const int *offs,
                                  const int *dst, float *c, size_t ldc, const float *bias, const float *clamp, int p0,
                                  int p1, float *tile) {
    const int np = (nb + 15) / 16;
    int i, j, r, t, w = 16, h = 1;
    for (i = p0; i < p1; i += h) {
        const float *a = ap + (size_t)i * (size_t)K * 6u;
        const float *bi = bias ? bias + 6 * i : NULL;
        int rows;
        float *ci = c + (size_t)(6 * i) * ldc;
        h = i + 1 < p1 ? 2 : 1;
        rows = M - 6 * i < 6 * h ? M - 6 * i : 6 * h;
        for (j = 0; j < np; j += w / 16) {
            int n, d0;
            w = j + 1 < np ? 32 : 16;
            n = nb - 16 * j < w ? nb - 16 * j : w;
            d0 = dst[16 * j];
            if (rows == 6 * h && n == w && d0 >= 0 && dst[16 * j + w - 1] == d0 + w - 1) {
                /* the columns are one run of an output row (dst rises by 1 inside a row and by less across) */
                bornc_sgemm_hw(h, w, K, a, a + 6u * (size_t)K, b + 16 * j, b + 16 * j + 16, offs, ci + d0, ldc, 1, bi,
                               clamp);
                continue;
            }
            bornc_sgemm_hw(h, w, K, a, a + 6u * (size_t)K, b + 16 * j, b + 16 * j + 16, offs, tile, 32u, 1, bi, clamp);
            for (r = 0; r < rows; ++r)
                for (t = 0; t < n; ++t) {
                    const int d = dst[16 * j + t];
                    if (d >= 0) ci[(size_t)r * ldc + (size_t)d] = tile[32 * r + t];
                }
        }
    }
}

/* Y[m][n] = bias[n] + sum_k X[m][k] W[k][n] for rows m in [0, nb) of X (at stride ldx) and the output features
 * of weight panels p0 <= i < p1, W^T packed as A above (N rows, K columns); Y rows at stride ldy. Each step
 * transposes 16 rows of X into one 16-column panel (zero past nb), then each 6 x 16 tile (features x rows) is
 * summed over all of K in registers and stored transposed. ws: 96 + 16 K floats. */
static inline void bornc_sgemm_xw(int N, int nb, int K, const float *wp, const float *x, size_t ldx, float *y,
                                  size_t ldy, const float *bias, const float *clamp, int p0, int p1, float *ws) {
    float *tile = ws, *panel = ws + 96;
    const int np = (nb + 15) / 16;
    int i, j, k, r, t;
    for (j = 0; j < np; ++j) {
        const int n = nb - 16 * j < 16 ? nb - 16 * j : 16;
        for (t = 0; t < 16; ++t) {
            const float *xr = x + (size_t)(16 * j + t) * ldx;
            if (t < n) for (k = 0; k < K; ++k) panel[16 * k + t] = xr[k];
            else for (k = 0; k < K; ++k) panel[16 * k + t] = 0.0f;
        }
        for (i = p0; i < p1; ++i) {
            const int rows = N - 6 * i < 6 ? N - 6 * i : 6;
            bornc_sgemm_6x16p(K, wp + (size_t)i * (size_t)K * 6u, panel, tile, 16u, 1, bias ? bias + 6 * i : NULL, clamp);
            for (t = 0; t < n; ++t)
                for (r = 0; r < rows; ++r) y[(size_t)(16 * j + t) * ldy + (size_t)(6 * i + r)] = tile[16 * r + t];
        }
    }
}

/* Depth of one block of K: the 6 x 256 slice of an A panel (6 KB) stays in L1 while it meets every B panel of
 * the column block (Goto & van de Geijn 2008, section 6). */
#define BORNC_SGEMM_KC 256
/* Weight panels per block of A (16 panels x 6 rows x KC floats = 96 KB): the block stays in L2 while every B
 * panel pair of the column block meets it (the MC loop of Goto & van de Geijn 2008). Even, so tiles pair up. */
#define BORNC_SGEMM_MC 16

/* B in 16-column panels: element (k, j) of a K x nb block at bp[(j / 16) * K * 16 + k * 16 + j % 16]. */
#define BORNC_B16(bp, K, k, j) ((bp)[(size_t)((j) >> 4) * (size_t)(K) * 16u + (size_t)(k) * 16u + (size_t)((j) & 15)])

/* Pack columns [0, nb) of B (rows b[k * ldb + j], k < K) into 16-column panels; columns past nb up to the next
 * multiple of 16 are zero. bp: K * ceil(nb / 16) * 16 floats. */
static inline void bornc_pack_b16(const float *b, size_t ldb, int K, int nb, float *bp) {
    const int np = (nb + 15) / 16;
    int j, k, t;
    for (j = 0; j < np; ++j) {
        float *dst = bp + (size_t)j * (size_t)K * 16u;
        const int n = nb - 16 * j < 16 ? nb - 16 * j : 16;
        for (k = 0; k < K; ++k) {
            const float *src = b + (size_t)k * ldb + (size_t)(16 * j);
            if (n == 16) memcpy(dst + 16 * k, src, 16 * sizeof(float));
            else for (t = 0; t < 16; ++t) dst[16 * k + t] = t < n ? src[t] : 0.0f;
        }
    }
}

/* Zero columns [q0, q1) of row k of a 16-column panel block (BORNC_B16). */
static inline void bornc_b16_zero(float *bp, int K, int k, int q0, int q1) {
    int q;
    for (q = q0; q < q1; ++q) BORNC_B16(bp, K, k, q) = 0.0f;
}

/* Copy src[0 .. q1 - q0) into columns [q0, q1) of row k of a panel block: whole 16-column pieces as fixed-size
 * copies, the ragged ends element by element. */
static inline void bornc_b16_copy(float *bp, int K, int k, int q0, int q1, const float *src) {
    int q = q0;
    for (; q < q1 && (q & 15); ++q) BORNC_B16(bp, K, k, q) = src[q - q0];
    for (; q + 16 <= q1; q += 16) memcpy(&BORNC_B16(bp, K, k, q), src + (q - q0), 16 * sizeof(float));
    for (; q < q1; ++q) BORNC_B16(bp, K, k, q) = src[q - q0];
}

/* im2col of one image and group of a 2-D NCHW convolution, output columns [p0, p0 + nb) (p = oh * OW + ow),
 * straight into 16-column panels (BORNC_B16, K = CG * KH * KW rows, k = (ic * KH + kh) * KW + kw); x points at
 * the group's CG input channels of H x W; columns past nb up to a whole panel are zero.
 * Where the output row has the input's width (OW == W, SH = SW = DW = 1), column p of tap (kh, kw) reads x at
 * p + (kh DH - PT) W + kw - PL: one contiguous run per tap, clipped to the plane, after which the columns whose
 * input row or column is in the padding are zeroed (whole rows at the top and bottom, |kw - PL| columns per
 * row). Other geometries go row by row, each row split into the padding and the in-range span. */
static inline void bornc_im2col_b16(const float *x, int CG, int H, int W, int KH, int KW, int SH, int SW, int DH,
                                    int DW, int PT, int PL, int OW, int p0, int nb, float *bp) {
    const int K = CG * KH * KW, npad = (nb + 15) / 16 * 16, oh0 = p0 / OW, oh1 = (p0 + nb - 1) / OW;
    const long plane = (long)H * W;
    int ic, kh, kw, oh;
    for (ic = 0; ic < CG; ++ic)
        for (kh = 0; kh < KH; ++kh)
            for (kw = 0; kw < KW; ++kw) {
                const int k = (ic * KH + kh) * KW + kw;
                const float *xc = x + (size_t)ic * (size_t)plane;
                bornc_b16_zero(bp, K, k, nb, npad);
                if (OW == W && SH == 1 && SW == 1 && DW == 1) {
                    const int dr = kh * DH - PT, dc = kw - PL;
                    const long off = (long)p0 + (long)dr * W + dc;    /* x index of column 0 */
                    const int lo = off < 0 ? (int)(-off) : 0;
                    const int hi = off + nb > plane ? (int)(plane - off) : nb;
                    const int top = -dr * OW - p0, bottom = (H - dr) * OW - p0;
                    if (hi > lo) bornc_b16_copy(bp, K, k, lo, hi, xc + off + lo);
                    bornc_b16_zero(bp, K, k, 0, top < nb ? (top > 0 ? top : 0) : nb);
                    bornc_b16_zero(bp, K, k, bottom > 0 ? (bottom < nb ? bottom : nb) : 0, nb);
                    bornc_b16_zero(bp, K, k, 0, lo);
                    bornc_b16_zero(bp, K, k, hi > lo ? hi : lo, nb);
                    if (dc != 0)
                        for (oh = oh0; oh <= oh1; ++oh) {
                            const int base = oh * OW - p0;
                            int c0 = dc < 0 ? 0 : OW - dc, c1 = dc < 0 ? -dc : OW;
                            if (c0 < 0) c0 = 0;
                            if (c1 > OW) c1 = OW;
                            if (base + c0 < 0) c0 = -base;
                            if (base + c1 > nb) c1 = nb - base;
                            if (c1 > c0) bornc_b16_zero(bp, K, k, base + c0, base + c1);
                        }
                } else {
                    /* ow in [wlo, whi) reads inside the row: ow * SW + kw * DW - PL in [0, W) */
                    const int t = kw * DW - PL;
                    int wlo = t >= 0 ? 0 : (-t + SW - 1) / SW, whi = W - t <= 0 ? 0 : (W - t + SW - 1) / SW;
                    if (whi > OW) whi = OW;
                    if (wlo > whi) wlo = whi;
                    for (oh = oh0; oh <= oh1; ++oh) {
                        const int base = oh * OW - p0, ih = oh * SH + kh * DH - PT;
                        const int s0 = base < 0 ? -base : 0, s1 = base + OW > nb ? nb - base : OW;
                        int a = wlo > s0 ? wlo : s0, b = whi < s1 ? whi : s1, ow;
                        if (ih < 0 || ih >= H) { bornc_b16_zero(bp, K, k, base + s0, base + s1); continue; }
                        if (b < a) b = a;
                        bornc_b16_zero(bp, K, k, base + s0, base + (a > s1 ? s1 : a));
                        bornc_b16_zero(bp, K, k, base + (b > s0 ? b : s0), base + s1);
                        {
                            const float *xr = xc + (size_t)ih * (size_t)W;
                            for (ow = a; ow < b; ++ow) BORNC_B16(bp, K, k, base + ow) = xr[ow * SW + t];
                        }
                    }
                }
            }
}

/* One tile of bornc_sgemm_pp: h 6-row panels (the second at a + astep) by w columns (the second 16 at b + bstep);
 * rows and n are the rows and columns of it that exist. A partial tile goes through `tile` (12 x 32 floats). */
static inline void bornc_sgemm_pp_tile(int h, int w, int kc, const float *a, size_t astep, const float *b,
                                       size_t bstep, int rows, int n, float *ci, size_t ldc, int first,
                                       const float *bi, const float *cl, float *tile) {
    float *dst = ci;
    size_t ld = ldc;
    int r, t;
    if (rows < 6 * h || n < w) {
        for (r = 0; r < 6 * h; ++r)
            for (t = 0; t < w; ++t) tile[w * r + t] = !first && r < rows && t < n ? ci[(size_t)r * ldc + (size_t)t] : 0.0f;
        dst = tile;
        ld = (size_t)w;
    }
    bornc_sgemm_hw(h, w, kc, a, a + astep, b, b + bstep, NULL, dst, ld, first, bi, cl);
    if (dst == tile)
        for (r = 0; r < rows; ++r)
            for (t = 0; t < n; ++t) ci[(size_t)r * ldc + (size_t)t] = tile[w * r + t];
}

/* C[6 p0 .. min(6 p1, M)) x [0, nb) = bias + A * B, then clamped (see bornc_sgemm_6x16p), for the row panels
 * p0 <= i < p1 of A packed as above (K columns) and B packed in 16-column panels (BORNC_B16); C rows at stride
 * ldc. bias: the row biases padded to whole panels, or NULL. tile: 384 floats for the edge tiles. Loop order
 * as in BLIS (Van Zee & van de Geijn, "BLIS: A framework for rapidly instantiating BLAS functionality", ACM TOMS
 * 41(3), 2015): K in blocks of BORNC_SGEMM_KC, weight panels in blocks of BORNC_SGEMM_MC, then pairs of B panels, whose
 * KC x 32 slice stays in L1 while the block's A panels stream past it. Each C element is the same sum in the same order whatever the panel range, so
 * splitting rows or columns over threads changes no bit. */
static inline void bornc_sgemm_pp(int M, int nb, int K, const float *ap, const float *bp, float *c, size_t ldc,
                                  const float *bias, const float *clamp, int p0, int p1, float *tile) {
    const int np = (nb + 15) / 16;
    int pc, ib, i, j, w, h;
    for (pc = 0; pc < K; pc += BORNC_SGEMM_KC) {
        const int kc = K - pc < BORNC_SGEMM_KC ? K - pc : BORNC_SGEMM_KC, first = pc == 0;
        const float *cl = pc + kc >= K ? clamp : NULL;
        for (ib = p0; ib < p1; ib += BORNC_SGEMM_MC) {
            const int ie = p1 - ib < BORNC_SGEMM_MC ? p1 : ib + BORNC_SGEMM_MC;
            for (j = 0; j < np; j += w / 16) {
                const float *b = bp + ((size_t)j * (size_t)K + (size_t)pc) * 16u;
                const int left = nb - 16 * j;
                w = left > 16 ? 32 : 16;
                for (i = ib; i < ie; i += h) {
                    h = i + 1 < ie ? 2 : 1;
                    bornc_sgemm_pp_tile(h, w, kc, ap + ((size_t)i * (size_t)K + (size_t)pc) * 6u, 6u * (size_t)K, b,
                                        16u * (size_t)K, M - 6 * i < 6 * h ? M - 6 * i : 6 * h, left < w ? left : w,
                                        c + (size_t)(6 * i) * ldc + 16 * j, ldc, first, bias ? bias + 6 * i : NULL, cl,
                                        tile);
                }
            }
        }
    }
}

/* ---- Winograd F(4x4, 3x3) transforms (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
 * CVPR 2016; points 0, +-1, +-2, +-1/2, infinity), 16 tiles at a time in fixed-size local arrays so that every
 * loop runs over the 16 tiles with unit stride and vectorizes (bornc.backends.c.lower_winograd).
 * B^T rows: (4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0), (0, -2, -1, 2, 1, 0),
 * (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1); A^T rows: (1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0),
 * (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1). */
#define BORNC_WT 16

/* the 6-point B^T d over 16 tiles: d[k] (k-th input, one float per tile) to o[k]; rows passed one by one, so a row
 * split into column phases, a local array or the caller's V can be read or written where it lies */
static inline void bornc_wino_bt(const float *d0, const float *d1, const float *d2, const float *d3, const float *d4,
                                 const float *d5, float *o0, float *o1, float *o2, float *o3, float *o4, float *o5) {
    int t;
    for (t = 0; t < BORNC_WT; ++t) {
        const float a0 = d0[t], a1 = d1[t], a2 = d2[t], a3 = d3[t], a4 = d4[t], a5 = d5[t];
        o0[t] = 4.0f * a0 - 5.0f * a2 + a4;
        o1[t] = -4.0f * (a1 + a2) + a3 + a4;
        o2[t] = 4.0f * (a1 - a2) - a3 + a4;
        o3[t] = 2.0f * (a3 - a1) - a2 + a4;
        o4[t] = 2.0f * (a1 - a3) - a2 + a4;
        o5[t] = 4.0f * a1 - 5.0f * a3 + a5;
    }
}

/* B^T d B of the 16 tiles whose 6 x 6 patches start at row ih0 and columns iw0 + 4 t of an H x W plane x (zero
 * outside it); V value xi = 6 i + j of tile t goes to v[xi * vstride + t] for all 16 t (the caller's rows have
 * that slack; lanes past its last tile are overwritten or zeroed after). Inside the plane the rows are read in
 * place; at its edges through a zero-padded copy. */
static inline void bornc_wino_in16(const float *x, int H, int W, int ih0, int iw0, float *v, size_t vstride) {
    float row[4 * BORNC_WT + 4], ph[4][BORNC_WT + 1], z[6][6][BORNC_WT];
    int i, j, t;
    for (i = 0; i < 6; ++i) {                          /* each patch row: B^T along the row's 6 columns, per tile */
        const int ih = ih0 + i, lo = iw0 < 0 ? -iw0 : 0;
        const int hi = W - iw0 < 4 * BORNC_WT + 4 ? W - iw0 : 4 * BORNC_WT + 4;
        const float *src = row;
        if (ih >= 0 && ih < H && lo == 0 && hi == 4 * BORNC_WT + 4) src = x + (size_t)ih * (size_t)W + (size_t)iw0;
        else {
            memset(row, 0, sizeof row);
            if (ih >= 0 && ih < H && hi > lo) memcpy(row + lo, x + (size_t)ih * (size_t)W + (size_t)(iw0 + lo), (size_t)(hi - lo) * sizeof(float));
        }
        for (t = 0; t < BORNC_WT + 1; ++t) {           /* column phases: patch column j of tile t is phase j % 4 of t + j / 4 */
            ph[0][t] = src[4 * t]; ph[1][t] = src[4 * t + 1]; ph[2][t] = src[4 * t + 2]; ph[3][t] = src[4 * t + 3];
        }
        bornc_wino_bt(ph[0], ph[1], ph[2], ph[3], ph[0] + 1, ph[1] + 1, z[0][i], z[1][i], z[2][i], z[3][i], z[4][i], z[5][i]);
    }
    for (j = 0; j < 6; ++j)                            /* then B^T down the rows, column transform j of each */
        bornc_wino_bt(z[j][0], z[j][1], z[j][2], z[j][3], z[j][4], z[j][5], v + (size_t)j * vstride,
                      v + (size_t)(6 + j) * vstride, v + (size_t)(12 + j) * vstride, v + (size_t)(18 + j) * vstride,
                      v + (size_t)(24 + j) * vstride, v + (size_t)(30 + j) * vstride);
}

/* the 6-point A^T m over 16 tiles: m[k] to o[k], k < 4 */
static inline void bornc_wino_at(const float *m0, const float *m1, const float *m2, const float *m3, const float *m4,
                                 const float *m5, float *o0, float *o1, float *o2, float *o3) {
    int t;
    for (t = 0; t < BORNC_WT; ++t) {
        const float s12 = m1[t] + m2[t], d12 = m1[t] - m2[t], s34 = m3[t] + m4[t], d34 = m3[t] - m4[t];
        o0[t] = m0[t] + s12 + s34;
        o1[t] = d12 + 2.0f * d34;
        o2[t] = s12 + 4.0f * s34;
        o3[t] = d12 + 8.0f * d34 + m5[t];
    }
}

/* A^T M A + bias, then clamped to [clamp[0], clamp[1]] (NaN kept) when clamp is not NULL, of 16 tiles of one
 * output channel: product xi of tile t at mo[xi * mstride + t] (16 readable floats; lanes past the caller's
 * tiles are computed and dropped); output (a, c) of tile t to y[a * OW + 4 t + c] for rows a < rows and
 * columns 4 t + c < cols. */
static inline void bornc_wino_out16(const float *mo, size_t mstride, float bias, const float *clamp, float *y, int OW,
                                    int rows, int cols) {
    float q[4][6][BORNC_WT], o[4][BORNC_WT], out[4 * BORNC_WT];
    int a, b, t;
    for (b = 0; b < 6; ++b)                            /* A^T down each column b of the 6 x 6 products */
        bornc_wino_at(mo + (size_t)b * mstride, mo + (size_t)(6 + b) * mstride, mo + (size_t)(12 + b) * mstride,
                      mo + (size_t)(18 + b) * mstride, mo + (size_t)(24 + b) * mstride, mo + (size_t)(30 + b) * mstride,
                      q[0][b], q[1][b], q[2][b], q[3][b]);
    for (a = 0; a < 4 && a < rows; ++a) {              /* then across each output row a */
        float *dst = cols >= 4 * BORNC_WT ? y + (size_t)a * (size_t)OW : out;
        bornc_wino_at(q[a][0], q[a][1], q[a][2], q[a][3], q[a][4], q[a][5], o[0], o[1], o[2], o[3]);
        for (b = 0; b < 4; ++b)
            for (t = 0; t < BORNC_WT; ++t) o[b][t] = clamp ? bornc_minf(bornc_maxf(o[b][t] + bias, clamp[0]), clamp[1]) : o[b][t] + bias;
        for (t = 0; t < BORNC_WT; ++t) {               /* interleave: output column 4 t + b */
            dst[4 * t] = o[0][t]; dst[4 * t + 1] = o[1][t]; dst[4 * t + 2] = o[2][t]; dst[4 * t + 3] = o[3][t];
        }
        if (dst == out) memcpy(y + (size_t)a * (size_t)OW, out, (size_t)cols * sizeof(float));
    }
}

#if defined(__AVX2__)
#include <immintrin.h>
#endif

/* ---- int8 quantized GEMM (bornc QConv / QMatMul) ----
 * Fixed-point requantization: acc * M with M = multiplier * 2^(shift - 31), multiplier in [2^30, 2^31): gemmlowp's
 * SaturatingRoundingDoublingHighMul then RoundingDivideByPOT (gemmlowp fixedpoint/fixedpoint.h), as TensorFlow
 * Lite's MultiplyByQuantizedMultiplier (tensorflow/lite/kernels/internal/common.h); a positive shift multiplies
 * first, saturating to int32. Bit-exact with bornrt.py's requantize. */
static inline int32_t bornc_requant(int32_t acc, int32_t multiplier, int shift) {
    int64_t x = (int64_t)acc, p;
    if (shift > 0) {
        x *= (int64_t)1 << shift;
        x = x > INT32_MAX ? INT32_MAX : (x < INT32_MIN ? INT32_MIN : x);
    }
    /* the reference nudges by +2^30 (or 1 - 2^30 below zero) and truncates the quotient by 2^31; with
     * p + 2^30 = q 2^31 + r (0 <= r < 2^31) both are q, so it is one floor (an arithmetic shift: SMULL, ADDS/ADC
     * and two shifts on 32-bit Arm, where the 64-bit division was a library call's worth) */
    p = x * (int64_t)multiplier;
    if (shift >= 0)
        return (int32_t)((p + ((int64_t)1 << 30)) >> 31);
    {
        /* then the division by 2^rs that rounds half away from zero: with h = floor((p + 2^30) / 2^31),
         * floor((h + 2^(rs-1) - [h < 0]) / 2^rs), which equals gemmlowp's remainder-and-threshold form
         * (RoundingDivideByPOT); as floor((floor(a / m) + c) / n) = floor((a + c m) / (m n)), one 64-bit sum
         * whose top word is shifted by rs - 1 */
        const int rs = -shift;
        const int64_t up = ((int64_t)1 << 30) + ((int64_t)1 << (30 + rs));
        return (int32_t)((p + (p < -((int64_t)1 << 30) ? up - ((int64_t)1 << 31) : up)) >> 32) >> (rs - 1);
    }
}

#if defined(BORNC_ARM_MVE)
/* bornc_requant on four lanes, then + zero_point and the clamp: VQSHL for a positive shift, VQRDMULH (which is
 * SaturatingRoundingDoublingHighMul, lane by lane), then the scalar form's rounding division, half away from zero. */
static inline int32x4_t bornc_requant4(int32x4_t x, int32_t multiplier, int shift, int32_t zero_point, int32_t qmin,
                                       int32_t qmax) {
    const int rs = shift < 0 ? -shift : 0;
    const int32x4_t high = vqrdmulhq_n_s32(vqshlq_s32(x, vdupq_n_s32(shift > 0 ? shift : 0)), multiplier);
    const int32x4_t threshold = vsubq_s32(vdupq_n_s32((int32_t)(((1u << rs) - 1u) >> 1)), vshrq_n_s32(high, 31));
    const mve_pred16_t up = vcmpgtq_s32(vandq_s32(high, vdupq_n_s32((int32_t)((1u << rs) - 1u))), threshold);
    const int32x4_t r = vshlq_s32(high, vdupq_n_s32(-rs));                 /* arithmetic shift right */
    return vminq_s32(vmaxq_s32(vaddq_n_s32(vaddq_m_n_s32(r, r, 1, up), zero_point), vdupq_n_s32(qmin)), vdupq_n_s32(qmax));
}
#endif

/* dst[t] = clamp(zero_point + bornc_requant(acc[t] + bias, multiplier, shift), qmin, qmax) for t0 <= t < n. */
static inline void bornc_requant_loop(const int32_t *acc, int t0, int n, int32_t bias, int32_t multiplier, int shift,
                                      int32_t zero_point, int32_t qmin, int32_t qmax, uint8_t *dst) {
    int t;
    for (t = t0; t < n; ++t) {
        const int32_t v = bornc_requant(acc[t] + bias, multiplier, shift) + zero_point;
        dst[t] = (uint8_t)(v < qmin ? qmin : (v > qmax ? qmax : v));
    }
}

/* n (<= 16) accumulators of one output channel (+ bias) requantized and stored as uint8:
 * dst[t] = clamp(zero_point + bornc_requant(acc[t] + bias, multiplier, shift), qmin, qmax), then table[dst[t]] when a
 * lookup table (a fused activation) is given. Helium: four lanes per step (bornc_requant4). The AVX2 version does
 * 8 lanes at once for shift <= 0: SaturatingRoundingDoublingHighMul is floor((x * M + 2^30) / 2^31) (the nudge and
 * truncation of the scalar form round half up for both signs; M > 0 rules out its one overflow case), taken from
 * the 64-bit products of vpmuldq on even and odd lanes. */
static inline void bornc_requant_store(const int32_t *acc, int n, int32_t bias, int32_t multiplier, int shift,
                                       int32_t zero_point, int32_t qmin, int32_t qmax, uint8_t *dst,
                                       const uint8_t *table) {
    int t = 0;
#if defined(__AVX2__)
    if (shift <= 0 && n == 16) {
        const __m256i m = _mm256_set1_epi32(multiplier), b = _mm256_set1_epi32(bias);
        const __m256i nudge = _mm256_set1_epi64x((int64_t)1 << 30);
        const int rs = -shift;
        const __m256i mask = _mm256_set1_epi32((int32_t)((1u << rs) - 1u)), half = _mm256_set1_epi32((int32_t)(((1u << rs) - 1u) >> 1));
        const __m256i zp = _mm256_set1_epi32(zero_point), lo = _mm256_set1_epi32(qmin), hi = _mm256_set1_epi32(qmax);
        __m256i v[2];
        int h;
        for (h = 0; h < 2; ++h) {
            const __m256i x = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + 8 * h)), b);
            const __m256i even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, m), nudge), 31);
            const __m256i odd = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), m), nudge), 31);
            const __m256i high = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
            const __m256i rem = _mm256_and_si256(high, mask);
            const __m256i threshold = _mm256_sub_epi32(half, _mm256_srai_epi32(high, 31));   /* + 1 where high < 0 */
            __m256i r = _mm256_add_epi32(_mm256_sra_epi32(high, _mm_cvtsi32_si128(rs)),
                                         _mm256_srli_epi32(_mm256_cmpgt_epi32(rem, threshold), 31));
            r = _mm256_add_epi32(r, zp);
            v[h] = _mm256_min_epi32(_mm256_max_epi32(r, lo), hi);
        }
        {
            const __m256i p16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(v[0], v[1]), 0xD8);
            _mm_storeu_si128((__m128i *)dst, _mm_packus_epi16(_mm256_castsi256_si128(p16), _mm256_extracti128_si256(p16, 1)));
        }
        t = 16;
    }
#elif defined(BORNC_ARM_MVE)
    for (; t + 4 <= n; t += 4)
        vstrbq_u32(dst + t, vreinterpretq_u32_s32(bornc_requant4(vaddq_n_s32(vld1q_s32(acc + t), bias), multiplier, shift,
                                                                 zero_point, qmin, qmax)));
    if (t < n) {
        const mve_pred16_t p = vctp32q((uint32_t)(n - t));
        vstrbq_p_u32(dst + t, vreinterpretq_u32_s32(bornc_requant4(vaddq_n_s32(vldrwq_z_s32(acc + t, p), bias), multiplier,
                                                                   shift, zero_point, qmin, qmax)), p);
        t = n;
    }
#endif
    /* the rest one by one, in a loop per sign of the shift: inlined there, bornc_requant loses its other branches */
    if (shift < 0)
        bornc_requant_loop(acc, t, n, bias, multiplier, shift, zero_point, qmin, qmax, dst);
    else
        bornc_requant_loop(acc, t, n, bias, multiplier, shift, zero_point, qmin, qmax, dst);
    if (table)
        for (t = 0; t < n; ++t) dst[t] = table[dst[t]];
}

/* out[0..7] = sum over the KH x KW taps of w[kh * KW + kw] * src[kh * row_stride + tap[kw] + t] (int16 operands,
 * int32 sums): eight adjacent outputs of a depthwise int8 convolution, the accumulators kept in one register. */
static inline void bornc_qdw8(const int16_t *src, size_t row_stride, const int8_t *w, int KH, int KW,
                              const int *tap, int32_t *out) {
#if defined(__AVX2__)
    __m256i acc = _mm256_setzero_si256();
    int kh, kw;
    for (kh = 0; kh < KH; ++kh) {
        const int16_t *row = src + (size_t)kh * row_stride;
        for (kw = 0; kw < KW; ++kw) {
            const __m256i v = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(row + tap[kw])));
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(_mm256_set1_epi32(w[kh * KW + kw]), v));
        }
    }
    _mm256_storeu_si256((__m256i *)out, acc);
#elif defined(BORNC_ARM_MVE)
    /* widening loads (VLDRH.S32) and vector-by-scalar multiply-accumulates: four outputs per instruction */
    int32x4_t lo = vdupq_n_s32(0), hi = vdupq_n_s32(0);
    int kh, kw;
    for (kh = 0; kh < KH; ++kh) {
        const int16_t *row = src + (size_t)kh * row_stride;
        for (kw = 0; kw < KW; ++kw) {
            const int16_t *s = row + tap[kw];
            const int32_t wv = w[kh * KW + kw];
            lo = vmlaq_n_s32(lo, vldrhq_s32(s), wv);
            hi = vmlaq_n_s32(hi, vldrhq_s32(s + 4), wv);
        }
    }
    vst1q_s32(out, lo);
    vst1q_s32(out + 4, hi);
#elif defined(BORNC_ARM_SIMD32)
    /* two taps at a time where they are adjacent (stride 1): SMLAD of the weight pair and the two int16 values
     * in one (unaligned) word */
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;   /* in registers: spelled out */
    int kh, kw;
    for (kh = 0; kh < KH; ++kh) {
        const int16_t *row = src + (size_t)kh * row_stride;
        const int8_t *wr = w + kh * KW;
        for (kw = 0; kw + 1 < KW && tap[kw + 1] == tap[kw] + 1; kw += 2) {
            const int16x2_t wp = (int16x2_t)(((uint32_t)(uint16_t)(int16_t)wr[kw + 1] << 16) | (uint32_t)(uint16_t)(int16_t)wr[kw]);
            const int16_t *s = row + tap[kw];
            a0 = __smlad(wp, (int16x2_t)bornc_load_u32(s), a0);
            a1 = __smlad(wp, (int16x2_t)bornc_load_u32(s + 1), a1);
            a2 = __smlad(wp, (int16x2_t)bornc_load_u32(s + 2), a2);
            a3 = __smlad(wp, (int16x2_t)bornc_load_u32(s + 3), a3);
            a4 = __smlad(wp, (int16x2_t)bornc_load_u32(s + 4), a4);
            a5 = __smlad(wp, (int16x2_t)bornc_load_u32(s + 5), a5);
            a6 = __smlad(wp, (int16x2_t)bornc_load_u32(s + 6), a6);
            a7 = __smlad(wp, (int16x2_t)bornc_load_u32(s + 7), a7);
        }
        for (; kw < KW; ++kw) {
            const int16_t *s = row + tap[kw];
            const int32_t wv = wr[kw];
            a0 += wv * s[0]; a1 += wv * s[1]; a2 += wv * s[2]; a3 += wv * s[3];
            a4 += wv * s[4]; a5 += wv * s[5]; a6 += wv * s[6]; a7 += wv * s[7];
        }
    }
    out[0] = a0; out[1] = a1; out[2] = a2; out[3] = a3; out[4] = a4; out[5] = a5; out[6] = a6; out[7] = a7;
#else
    int32_t a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int kh, kw, t;
    for (kh = 0; kh < KH; ++kh)
        for (kw = 0; kw < KW; ++kw) {
            const int16_t *s = src + (size_t)kh * row_stride + tap[kw];
            const int32_t wv = w[kh * KW + kw];
            for (t = 0; t < 8; ++t) a[t] += wv * (int32_t)s[t];
        }
    for (t = 0; t < 8; ++t) out[t] = a[t];
#endif
}

/* acc[f] = bias + sum over the taps t of w[t] * plane[f + off[t]] for f < n (a multiple of 8): uint8 plane, int8
 * weights, int32 sums. A depthwise convolution of stride 1 is this 1-D correlation over a channel's padded plane
 * (rows of pitch PW, off[t] = kh * DH * PW + kw * DW; outputs at f = oh * PW + ow, the columns ow >= OW computed and
 * dropped), so one loop covers every row however narrow. Helium: widening byte loads (VLDRB.U32) and
 * vector-by-scalar multiply-accumulates, eight outputs per pass; 32-bit Arm DSP: SMLAD on rows of three taps. */
static inline void bornc_qdw_flat(const uint8_t *plane, int n, const int8_t *w, const int *off, int taps, int32_t bias,
                                  int32_t *acc) {
    int f, t;
#if defined(BORNC_ARM_MVE)
    for (f = 0; f < n; f += 8) {
        const uint8_t *p = plane + f;
        int32x4_t lo = vdupq_n_s32(bias), hi = vdupq_n_s32(bias);
        for (t = 0; t < taps; ++t) {
            lo = vmlaq_n_s32(lo, vreinterpretq_s32_u32(vldrbq_u32(p + off[t])), w[t]);
            hi = vmlaq_n_s32(hi, vreinterpretq_s32_u32(vldrbq_u32(p + off[t] + 4)), w[t]);
        }
        vst1q_s32(acc + f, lo);
        vst1q_s32(acc + f + 4, hi);
    }
#else
#if defined(BORNC_ARM_SIMD32)
    /* rows of three adjacent taps (3-wide kernels, up to 8 rows): one word x0..x3 per row serves two outputs.
     * UXTB16 of the word and of the word rotated by 8 give the pairs (x0, x2) and (x1, x3); SMLAD with the
     * weights (w0, w2) sums the outer taps of output f and of output f + 1, SMLABB / SMLATB add the middle tap
     * (x1 * w1 and x2 * w1): six multiply-adds in four instructions. The word is the union of the two outputs'
     * windows: nothing is read past the last output's. */
    int row3 = taps % 3 == 0 && taps <= 24;
    for (t = 0; row3 && t < taps; t += 3) row3 = off[t + 1] == off[t] + 1 && off[t + 2] == off[t] + 2;
    if (row3) {
        int16x2_t outer[8], mid[8];
        const int rows = taps / 3;
        for (t = 0; t < rows; ++t) {
            outer[t] = (int16x2_t)(((uint32_t)(uint16_t)(int16_t)w[3 * t + 2] << 16) | (uint32_t)(uint16_t)(int16_t)w[3 * t]);
            mid[t] = (int16x2_t)(uint32_t)(uint16_t)(int16_t)w[3 * t + 1];
        }
        for (f = 0; f < n; f += 2) {
            int32_t a0 = bias, a1 = bias;
#pragma GCC unroll 8
            for (t = 0; t < rows; ++t) {
                const uint32_t word = bornc_load_u32(plane + f + off[3 * t]);
                const int16x2_t e = (int16x2_t)__uxtb16(word), o = (int16x2_t)__uxtb16(BORNC_ROR8(word));
                a0 = __smlabb(o, mid[t], __smlad(outer[t], e, a0));
                a1 = __smlatb(e, mid[t], __smlad(outer[t], o, a1));
            }
            acc[f] = a0;
            acc[f + 1] = a1;
        }
        return;
    }
#endif
    for (f = 0; f < n; ++f) {
        int32_t a = bias;
        for (t = 0; t < taps; ++t) a += (int32_t)w[t] * (int32_t)plane[f + off[t]];
        acc[f] = a;
    }
#endif
}

/* C[6 x 16] (int32) = A[6 x 2*KP2] * B[2*KP2 x 16]: A[r * KP2 + kk] holds row r's (k = 2kk, 2kk + 1) values as two
 * int16 in one int32 (low half first); B rows (int16, 16 columns each) at stride ldb, an even number of them. The
 * AVX2 version interleaves rows 2kk and 2kk + 1 in registers so that one vpmaddwd (AVX-VNNI / AVX512-VNNI: vpdpwssd,
 * multiply and accumulate in one instruction) sums both products per column; operands are 8-bit values widened to
 * 16 bits, so nothing saturates. Register blocking as bornc_sgemm_6x16 (12 accumulators). */
#if defined(__AVX2__)
#include <immintrin.h>
#if defined(__AVXVNNI__)
#define BORNC_DPWSSD(c, a, b) _mm256_dpwssd_avx_epi32(c, a, b)
#elif defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define BORNC_DPWSSD(c, a, b) _mm256_dpwssd_epi32(c, a, b)
#else
#define BORNC_DPWSSD(c, a, b) _mm256_add_epi32(c, _mm256_madd_epi16(a, b))
#endif
static inline void bornc_qgemm_6x16(int KP2, const int32_t *A, const int16_t *B, size_t ldb, int32_t *C) {
    __m256i c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    int kk;
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_si256();
    for (kk = 0; kk < KP2; ++kk) {
        const __m256i e = _mm256_loadu_si256((const __m256i *)(B + (size_t)(2 * kk) * ldb));
        const __m256i o = _mm256_loadu_si256((const __m256i *)(B + (size_t)(2 * kk + 1) * ldb));
        const __m256i b0 = _mm256_unpacklo_epi16(e, o);    /* columns 0-3 | 8-11 as (even, odd) pairs */
        const __m256i b1 = _mm256_unpackhi_epi16(e, o);    /* columns 4-7 | 12-15 */
        const int32_t *a = A + kk;
        __m256i av = _mm256_set1_epi32(a[0]);
        c00 = BORNC_DPWSSD(c00, av, b0); c01 = BORNC_DPWSSD(c01, av, b1);
        av = _mm256_set1_epi32(a[KP2]);
        c10 = BORNC_DPWSSD(c10, av, b0); c11 = BORNC_DPWSSD(c11, av, b1);
        av = _mm256_set1_epi32(a[2 * KP2]);
        c20 = BORNC_DPWSSD(c20, av, b0); c21 = BORNC_DPWSSD(c21, av, b1);
        av = _mm256_set1_epi32(a[3 * KP2]);
        c30 = BORNC_DPWSSD(c30, av, b0); c31 = BORNC_DPWSSD(c31, av, b1);
        av = _mm256_set1_epi32(a[4 * KP2]);
        c40 = BORNC_DPWSSD(c40, av, b0); c41 = BORNC_DPWSSD(c41, av, b1);
        av = _mm256_set1_epi32(a[5 * KP2]);
        c50 = BORNC_DPWSSD(c50, av, b0); c51 = BORNC_DPWSSD(c51, av, b1);
    }
#define BORNC_QSTORE(r, x0, x1) \
    _mm256_storeu_si256((__m256i *)(C + (r) * 16), _mm256_permute2x128_si256(x0, x1, 0x20)); \
    _mm256_storeu_si256((__m256i *)(C + (r) * 16 + 8), _mm256_permute2x128_si256(x0, x1, 0x31))
    BORNC_QSTORE(0, c00, c01); BORNC_QSTORE(1, c10, c11); BORNC_QSTORE(2, c20, c21);
    BORNC_QSTORE(3, c30, c31); BORNC_QSTORE(4, c40, c41); BORNC_QSTORE(5, c50, c51);
#undef BORNC_QSTORE
}
#else
static inline void bornc_qgemm_6x16(int KP2, const int32_t *A, const int16_t *B, size_t ldb, int32_t *C) {
    int32_t acc[6][16];
    int r, t, kk;
    for (r = 0; r < 6; ++r)
        for (t = 0; t < 16; ++t) acc[r][t] = 0;
    for (kk = 0; kk < KP2; ++kk) {
        const int16_t *e = B + (size_t)(2 * kk) * ldb, *o = e + ldb;
        for (r = 0; r < 6; ++r) {
            const int32_t pair = A[(size_t)r * (size_t)KP2 + (size_t)kk];
            const int32_t lo = (int16_t)(pair & 0xffff), hi = (int16_t)((uint32_t)pair >> 16);
            for (t = 0; t < 16; ++t) acc[r][t] += lo * e[t] + hi * o[t];
        }
    }
    for (r = 0; r < 6; ++r)
        for (t = 0; t < 16; ++t) C[r * 16 + t] = acc[r][t];
}
#endif

/* C[6 x 16] (int32) = A[6 x 4*KQ] * B[4*KQ x 16] on uint8 x int8 quads: A[r * KQ + kq] holds row r's weights for
 * k = 4kq .. 4kq+3 (int8, low byte first), B + kq * 64 the 16 columns' four uint8 values each (column t at bytes
 * 4t .. 4t+3). Only rows r < mr and columns t < nc of C are wanted: the 32-bit Arm kernels (SMLAD, Helium),
 * which step by 2 x 2 outputs, skip the rest; the vector ones compute the whole tile. AVX-VNNI / AVX512-VNNI: one
 * vpdpbusd per 8 columns and row. AVX2: vpmaddubsw then vpmaddwd by
 * ones; vpmaddubsw saturates a pair sum to int16, which weights in [-63, 63] rule out (255 * 63 * 2 < 2^15), so
 * the lowering takes this kernel only for such weights. */
#if defined(__AVX2__)
#if defined(__AVXVNNI__)
#define BORNC_DPBUSD(c, b, a) _mm256_dpbusd_avx_epi32(c, b, a)
#define BORNC_QGEMM8_EXACT 1
#elif defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define BORNC_DPBUSD(c, b, a) _mm256_dpbusd_epi32(c, b, a)
#define BORNC_QGEMM8_EXACT 1
#else
#define BORNC_DPBUSD(c, b, a) _mm256_add_epi32(c, _mm256_madd_epi16(_mm256_maddubs_epi16(b, a), _mm256_set1_epi16(1)))
#define BORNC_QGEMM8_EXACT 0     /* vpmaddubsw saturates: weights must lie in [-63, 63] */
#endif
static inline void bornc_qgemm8_6x16(int KQ, const int32_t *A, const uint8_t *B, int mr, int nc, int32_t *C) {
    __m256i c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    int kq;
    (void)mr; (void)nc;              /* the whole tile: its vectors cover it */
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_si256();
    for (kq = 0; kq < KQ; ++kq) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(B + (size_t)kq * 64u));
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(B + (size_t)kq * 64u + 32u));
        const int32_t *a = A + kq;
        __m256i av = _mm256_set1_epi32(a[0]);
        c00 = BORNC_DPBUSD(c00, b0, av); c01 = BORNC_DPBUSD(c01, b1, av);
        av = _mm256_set1_epi32(a[KQ]);
        c10 = BORNC_DPBUSD(c10, b0, av); c11 = BORNC_DPBUSD(c11, b1, av);
        av = _mm256_set1_epi32(a[2 * KQ]);
        c20 = BORNC_DPBUSD(c20, b0, av); c21 = BORNC_DPBUSD(c21, b1, av);
        av = _mm256_set1_epi32(a[3 * KQ]);
        c30 = BORNC_DPBUSD(c30, b0, av); c31 = BORNC_DPBUSD(c31, b1, av);
        av = _mm256_set1_epi32(a[4 * KQ]);
        c40 = BORNC_DPBUSD(c40, b0, av); c41 = BORNC_DPBUSD(c41, b1, av);
        av = _mm256_set1_epi32(a[5 * KQ]);
        c50 = BORNC_DPBUSD(c50, b0, av); c51 = BORNC_DPBUSD(c51, b1, av);
    }
    _mm256_storeu_si256((__m256i *)C, c00); _mm256_storeu_si256((__m256i *)(C + 8), c01);
    _mm256_storeu_si256((__m256i *)(C + 16), c10); _mm256_storeu_si256((__m256i *)(C + 24), c11);
    _mm256_storeu_si256((__m256i *)(C + 32), c20); _mm256_storeu_si256((__m256i *)(C + 40), c21);
    _mm256_storeu_si256((__m256i *)(C + 48), c30); _mm256_storeu_si256((__m256i *)(C + 56), c31);
    _mm256_storeu_si256((__m256i *)(C + 64), c40); _mm256_storeu_si256((__m256i *)(C + 72), c41);
    _mm256_storeu_si256((__m256i *)(C + 80), c50); _mm256_storeu_si256((__m256i *)(C + 88), c51);
}
#elif defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
/* AArch64 with the dot product extension (Raspberry Pi 5): SDOT is int8 x int8, so the packers store the
 * activations as x - 128 (x ^ 0x80) and the lowering's bias adds 128 * (row sum of W) back (qbias_s). */
#include <arm_neon.h>
#define BORNC_QGEMM8_SIGNED_B 1
static inline void bornc_qgemm8_6x16(int KQ, const int32_t *A, const uint8_t *B, int mr, int nc, int32_t *C) {
    int32x4_t c[6][4];
    int r, q, kq;
    (void)mr; (void)nc;              /* the whole tile: its vectors cover it */
    for (r = 0; r < 6; ++r)
        for (q = 0; q < 4; ++q) c[r][q] = vdupq_n_s32(0);
    for (kq = 0; kq < KQ; ++kq) {
        const int8_t *b = (const int8_t *)B + (size_t)kq * 64u;
        const int8x16_t b0 = vld1q_s8(b), b1 = vld1q_s8(b + 16), b2 = vld1q_s8(b + 32), b3 = vld1q_s8(b + 48);
        for (r = 0; r < 6; ++r) {
            const int8x16_t a = vreinterpretq_s8_s32(vdupq_n_s32(A[(size_t)r * (size_t)KQ + (size_t)kq]));
            c[r][0] = vdotq_s32(c[r][0], b0, a); c[r][1] = vdotq_s32(c[r][1], b1, a);
            c[r][2] = vdotq_s32(c[r][2], b2, a); c[r][3] = vdotq_s32(c[r][3], b3, a);
        }
    }
    for (r = 0; r < 6; ++r)
        for (q = 0; q < 4; ++q) vst1q_s32(C + r * 16 + 4 * q, c[r][q]);
}
#elif defined(BORNC_ARM_MVE)
/* Helium has no per-lane dot product, but VMLADAVA (Armv8.1-M ARM, VMLADAV) sums sixteen int8 x int8 products into
 * one 32-bit register. So the packers store B k-major (BORNC_QGEMM8_KMAJOR: column t's 4*KQ values at bytes
 * t*4KQ ..) as x - 128 (BORNC_QGEMM8_SIGNED_B: the lowering's bias adds 128 * row sum back, as for SDOT), and each
 * output is a dot product of a weight row and a column: 2 x 2 outputs per 16 k, the tail through zeroing
 * (predicated) loads, which read nothing past the rows. */
#define BORNC_QGEMM8_SIGNED_B 1
#define BORNC_QGEMM8_KMAJOR 1
static inline void bornc_qgemm8_6x16(int KQ, const int32_t *A, const uint8_t *B, int mr, int nc, int32_t *C) {
    const int KP = 4 * KQ;
    int r, t, k;
    for (r = 0; r < mr; r += 2)
        for (t = 0; t < nc; t += 2) {
            const int8_t *a0 = (const int8_t *)(A + (size_t)r * (size_t)KQ), *a1 = a0 + KP;
            const int8_t *b0 = (const int8_t *)B + (size_t)t * (size_t)KP, *b1 = b0 + KP;
            int32_t c00 = 0, c01 = 0, c10 = 0, c11 = 0;
            for (k = 0; k + 16 <= KP; k += 16) {
                const int8x16_t w0 = vld1q_s8(a0 + k), w1 = vld1q_s8(a1 + k), x0 = vld1q_s8(b0 + k), x1 = vld1q_s8(b1 + k);
                c00 = vmladavaq_s8(c00, w0, x0); c01 = vmladavaq_s8(c01, w0, x1);
                c10 = vmladavaq_s8(c10, w1, x0); c11 = vmladavaq_s8(c11, w1, x1);
            }
            if (k < KP) {
                const mve_pred16_t p = vctp8q((uint32_t)(KP - k));
                const int8x16_t w0 = vldrbq_z_s8(a0 + k, p), w1 = vldrbq_z_s8(a1 + k, p);
                const int8x16_t x0 = vldrbq_z_s8(b0 + k, p), x1 = vldrbq_z_s8(b1 + k, p);
                c00 = vmladavaq_s8(c00, w0, x0); c01 = vmladavaq_s8(c01, w0, x1);
                c10 = vmladavaq_s8(c10, w1, x0); c11 = vmladavaq_s8(c11, w1, x1);
            }
            C[r * 16 + t] = c00; C[r * 16 + t + 1] = c01;
            C[(r + 1) * 16 + t] = c10; C[(r + 1) * 16 + t + 1] = c11;
        }
}
#elif defined(BORNC_ARM_SIMD32)
/* 32-bit Arm with the DSP (SIMD32) instructions. A quad widens to two
 * int16 pairs (SXTB16 / UXTB16 of the word and of the word rotated by 8: bytes 0, 2 and 1, 3) and each pair
 * product accumulates with SMLAD (two 16 x 16 multiply-adds into 32 bits; ARMv7-M ARM A7.7.122), exact for
 * int8 x uint8. Tiles of 2 rows x 2 columns keep four accumulators and eight operands in registers: the cores
 * have 13 to 14 free, and no vector registers. */
static inline void bornc_qgemm8_6x16(int KQ, const int32_t *A, const uint8_t *B, int mr, int nc, int32_t *C) {
    int r, t, kq;
    for (r = 0; r < mr; r += 2)
        for (t = 0; t < nc; t += 2) {
            const int32_t *a0 = A + (size_t)r * (size_t)KQ, *a1 = a0 + KQ;
            const uint8_t *b = B + 4 * t;
            int32_t c00 = 0, c01 = 0, c10 = 0, c11 = 0;
            for (kq = 0; kq < KQ; ++kq, b += 64) {
                const uint32_t w0 = (uint32_t)a0[kq], w1 = (uint32_t)a1[kq];
                const uint32_t x0 = bornc_load_u32(b), x1 = bornc_load_u32(b + 4);
                const int16x2_t w0e = __sxtb16(w0), w0o = __sxtb16(BORNC_ROR8(w0));
                const int16x2_t w1e = __sxtb16(w1), w1o = __sxtb16(BORNC_ROR8(w1));
                const int16x2_t x0e = (int16x2_t)__uxtb16(x0), x0o = (int16x2_t)__uxtb16(BORNC_ROR8(x0));
                const int16x2_t x1e = (int16x2_t)__uxtb16(x1), x1o = (int16x2_t)__uxtb16(BORNC_ROR8(x1));
                c00 = __smlad(w0o, x0o, __smlad(w0e, x0e, c00));
                c01 = __smlad(w0o, x1o, __smlad(w0e, x1e, c01));
                c10 = __smlad(w1o, x0o, __smlad(w1e, x0e, c10));
                c11 = __smlad(w1o, x1o, __smlad(w1e, x1e, c11));
            }
            C[r * 16 + t] = c00; C[r * 16 + t + 1] = c01;
            C[(r + 1) * 16 + t] = c10; C[(r + 1) * 16 + t + 1] = c11;
        }
}
#else
static inline void bornc_qgemm8_6x16(int KQ, const int32_t *A, const uint8_t *B, int mr, int nc, int32_t *C) {
    int32_t acc[6][16];
    int r, t, kq, j;
    (void)mr; (void)nc;
    for (r = 0; r < 6; ++r)
        for (t = 0; t < 16; ++t) acc[r][t] = 0;
    for (kq = 0; kq < KQ; ++kq) {
        const uint8_t *b = B + (size_t)kq * 64u;
        for (r = 0; r < 6; ++r) {
            const uint32_t quad = (uint32_t)A[(size_t)r * (size_t)KQ + (size_t)kq];
            for (t = 0; t < 16; ++t)
                for (j = 0; j < 4; ++j) acc[r][t] += (int32_t)(int8_t)(uint8_t)(quad >> (8 * j)) * (int32_t)b[4 * t + j];
        }
    }
    for (r = 0; r < 6; ++r)
        for (t = 0; t < 16; ++t) C[r * 16 + t] = acc[r][t];
}
#endif

#ifndef BORNC_QGEMM8_EXACT
#define BORNC_QGEMM8_EXACT 1     /* SDOT, SMLAD, Helium and the portable kernel take any int8 weights */
#endif

/* The widest int8 tile of this target: BORNC_QTILE_ROWS x BORNC_QTILE_COLS int32 sums at C (row stride
 * BORNC_QTILE_COLS) from the consecutive 6-row weight panels at A (6 KQ int32 each) and 16-column activation
 * panels at B (64 KQ bytes each) that the tile covers: mr <= ROWS rows and nc <= COLS columns exist, and no panel
 * past them is read. AVX-512 VNNI: 12 x 32 in 24 zmm sums (two weight panels by two activation panels), so each
 * 64-byte activation load meets 12 weight rows (VPDPBUSD has a latency of several cycles at 2 per cycle: 6 sums
 * would leave the pipes idle). Elsewhere: bornc_qgemm8_6x16. Integer sums are exact in any order. */
#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && !defined(BORNC_QGEMM8_SIGNED_B)
#define BORNC_QTILE_ROWS 12
#define BORNC_QTILE_COLS 32
static inline void bornc_qgemm8_avx512(int KQ, const int32_t *A, const uint8_t *B, int32_t *C, const int h, const int w) {
    __m512i c[12][2];
    int r, q, kq;
    for (r = 0; r < 6 * h; ++r)
        for (q = 0; q < w; ++q) c[r][q] = _mm512_setzero_si512();
    for (kq = 0; kq < KQ; ++kq) {
        __m512i b[2];
        for (q = 0; q < w; ++q) b[q] = _mm512_loadu_si512((const void *)(B + (size_t)q * (size_t)KQ * 64u + (size_t)kq * 64u));
        for (r = 0; r < 6 * h; ++r) {
            const __m512i av = _mm512_set1_epi32(A[(size_t)(r / 6) * 6u * (size_t)KQ + (size_t)(r % 6) * (size_t)KQ + (size_t)kq]);
            for (q = 0; q < w; ++q) c[r][q] = _mm512_dpbusd_epi32(c[r][q], b[q], av);
        }
    }
    for (r = 0; r < 6 * h; ++r)
        for (q = 0; q < w; ++q) _mm512_storeu_si512((void *)(C + 32 * r + 16 * q), c[r][q]);
}
static inline void bornc_qgemm8_tile(int KQ, const int32_t *A, const uint8_t *B, int mr, int nc, int32_t *C) {
    if (mr > 6 && nc > 16) bornc_qgemm8_avx512(KQ, A, B, C, 2, 2);
    else if (mr > 6) bornc_qgemm8_avx512(KQ, A, B, C, 2, 1);
    else if (nc > 16) bornc_qgemm8_avx512(KQ, A, B, C, 1, 2);
    else bornc_qgemm8_avx512(KQ, A, B, C, 1, 1);
}
#else
#define BORNC_QTILE_ROWS 6
#define BORNC_QTILE_COLS 16
static inline void bornc_qgemm8_tile(int KQ, const int32_t *A, const uint8_t *B, int mr, int nc, int32_t *C) {
    bornc_qgemm8_6x16(KQ, A, B, mr, nc, C);
}
#endif

/* sum_k w[k] * x[k] over K int8 weights and uint8 activations (a matrix-vector row: one activation row, where a
 * 16-column tile would waste 15 of its columns). Helium: VMLADAVA; SIMD32 Arm: SMLAD on the widened pairs of four
 * bytes at a time. */
static inline int32_t bornc_qdot8(int K, const int8_t *w, const uint8_t *x) {
    int32_t acc = 0;
    int k = 0;
#if defined(BORNC_ARM_MVE)
    /* sixteen at a time with VMLADAVA on w and x - 128, plus 128 * sum(w) (VADDVA); the tail predicated */
    const uint8x16_t flip = vdupq_n_u8(0x80);
    int32_t wsum = 0;
    for (; k + 16 <= K; k += 16) {
        const int8x16_t wv = vld1q_s8(w + k);
        acc = vmladavaq_s8(acc, wv, vreinterpretq_s8_u8(veorq_u8(vld1q_u8(x + k), flip)));
        wsum = vaddvaq_s8(wsum, wv);
    }
    if (k < K) {
        const mve_pred16_t p = vctp8q((uint32_t)(K - k));
        const int8x16_t wv = vldrbq_z_s8(w + k, p);
        acc = vmladavaq_s8(acc, wv, vreinterpretq_s8_u8(veorq_u8(vldrbq_z_u8(x + k, p), flip)));
        wsum = vaddvaq_s8(wsum, wv);
    }
    return acc + 128 * wsum;
#elif defined(BORNC_ARM_SIMD32)
    for (; k + 4 <= K; k += 4) {
        const uint32_t wq = bornc_load_u32(w + k), xq = bornc_load_u32(x + k);
        acc = __smlad(__sxtb16(BORNC_ROR8(wq)), (int16x2_t)__uxtb16(BORNC_ROR8(xq)),
                      __smlad(__sxtb16(wq), (int16x2_t)__uxtb16(xq), acc));
    }
#endif
    for (; k < K; ++k) acc += (int32_t)w[k] * (int32_t)x[k];
    return acc;
}

/* Rows of int8 weights W (rows of K) as the quads bornc_qgemm8_6x16 reads; rows past `rows` and k past K are zero.
 * A quad is four consecutive weights of a row, low byte first, so each row is a byte copy (little-endian hosts;
 * the quads are assembled byte by byte on big-endian ones). */
static inline void bornc_qpack_a8(const int8_t *W, int K, int rows, int32_t *A) {
    const int KQ = (K + 3) / 4;
    int r;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (r = 0; r < 6; ++r) {
        unsigned char *dst = (unsigned char *)(A + (size_t)r * (size_t)KQ);
        if (r < rows) {
            memcpy(dst, W + (size_t)r * (size_t)K, (size_t)K);
            memset(dst + K, 0, (size_t)(4 * KQ - K));
        } else {
            memset(dst, 0, (size_t)(4 * KQ));
        }
    }
#else
    int kq, j;
    for (r = 0; r < 6; ++r)
        for (kq = 0; kq < KQ; ++kq) {
            uint32_t quad = 0;
            for (j = 0; j < 4; ++j) {
                const int k = 4 * kq + j;
                const uint8_t v = r < rows && k < K ? (uint8_t)W[(size_t)r * (size_t)K + (size_t)k] : 0u;
                quad |= (uint32_t)v << (8 * j);
            }
            A[(size_t)r * (size_t)KQ + (size_t)kq] = (int32_t)quad;
        }
#endif
}

/* The byte a packer stores for activation x: x, or x - 128 as int8 for the signed kernels (SDOT, Helium). */
#if defined(BORNC_QGEMM8_SIGNED_B)
#define BORNC_QB(x) ((uint8_t)((x) ^ 0x80u))
#else
#define BORNC_QB(x) ((uint8_t)(x))
#endif

/* The byte offset of (k, t) in a 16-column panel as bornc_qgemm8_6x16 reads it: quads (out + kq * 64 holds column
 * t's rows 4kq .. 4kq+3 at bytes 4t .. 4t+3), or k-major (BORNC_QGEMM8_KMAJOR: column t's 4*KQ rows at t * 4KQ). */
static inline size_t bornc_qpanel_at(int KQ, int k, int t) {
#if defined(BORNC_QGEMM8_KMAJOR)
    return (size_t)t * (size_t)(4 * KQ) + (size_t)k;
#else
    (void)KQ;
    return (size_t)(k / 4) * 64u + (size_t)(4 * t + k % 4);
#endif
}

/* Rows k0 .. 4*KQ-1 of a 16-column panel from a uint8 matrix whose (k, t) lies at src[k * sk + t * st]: K rows and
 * nc <= 16 columns, the rest stored as zero (BORNC_QB(0)). */
static inline void bornc_qpack_panel8(const uint8_t *src, size_t sk, size_t st, int K, int KQ, int nc, int k0,
                                      uint8_t *out) {
    int k, t;
    for (k = k0; k < 4 * KQ; ++k)
        for (t = 0; t < 16; ++t)
            out[bornc_qpanel_at(KQ, k, t)] = BORNC_QB(k < K && t < nc ? src[(size_t)k * sk + (size_t)t * st] : 0u);
}

/* One 16-column panel of a uint8 matrix (rows of stride ldb from column 0 of `col`; K rows, padded with zero rows
 * to 4*KQ; nc <= 16 valid columns, the rest zero), in the layout of bornc_qpanel_at. The vector forms cover whole
 * rows (AVX2: four rows of quads; Helium: scattered k-major columns), bornc_qpack_panel8 the rest. */
static inline void bornc_qpack_b8(const uint8_t *col, size_t ldb, int K, int KQ, int nc, uint8_t *out) {
    int k = 0;
#if defined(BORNC_ARM_MVE)
    {                            /* a row's nc values, four widening loads, each scattered to four columns */
        const uint32_t kp = (uint32_t)(4 * KQ);
        const uint32x4_t offs = vmulq_n_u32(vidupq_n_u32(0u, 1), kp), flip = vdupq_n_u32(0x80u);
        const mve_pred16_t p0 = vctp32q((uint32_t)nc), p1 = vctp32q((uint32_t)(nc > 4 ? nc - 4 : 0));
        const mve_pred16_t p2 = vctp32q((uint32_t)(nc > 8 ? nc - 8 : 0)), p3 = vctp32q((uint32_t)(nc > 12 ? nc - 12 : 0));
        for (; k < K; ++k) {      /* columns past nc: the zeroing loads give 0, stored as 0x80 (BORNC_QB(0)) */
            const uint8_t *src = col + (size_t)k * ldb;
            uint8_t *o = out + (size_t)k;
            vstrbq_scatter_offset_u32(o, offs, veorq_u32(vldrbq_z_u32(src, p0), flip));
            vstrbq_scatter_offset_u32(o + 4 * kp, offs, veorq_u32(vldrbq_z_u32(src + 4, p1), flip));
            vstrbq_scatter_offset_u32(o + 8 * kp, offs, veorq_u32(vldrbq_z_u32(src + 8, p2), flip));
            vstrbq_scatter_offset_u32(o + 12 * kp, offs, veorq_u32(vldrbq_z_u32(src + 12, p3), flip));
        }
    }
#elif defined(__AVX2__)
    if (nc == 16)
        for (; k + 3 < K; k += 4) {               /* byte, then 16-bit interleave of 4 rows: 4 columns per 16 bytes */
            const uint8_t *src = col + (size_t)k * ldb;
            const __m128i r0 = _mm_loadu_si128((const __m128i *)src), r1 = _mm_loadu_si128((const __m128i *)(src + ldb));
            const __m128i r2 = _mm_loadu_si128((const __m128i *)(src + 2 * ldb));
            const __m128i r3 = _mm_loadu_si128((const __m128i *)(src + 3 * ldb));
            const __m128i a = _mm_unpacklo_epi8(r0, r1), b = _mm_unpackhi_epi8(r0, r1);
            const __m128i c = _mm_unpacklo_epi8(r2, r3), d = _mm_unpackhi_epi8(r2, r3);
            uint8_t *o = out + (size_t)(k / 4) * 64u;
            _mm_storeu_si128((__m128i *)o, _mm_unpacklo_epi16(a, c));
            _mm_storeu_si128((__m128i *)(o + 16), _mm_unpackhi_epi16(a, c));
            _mm_storeu_si128((__m128i *)(o + 32), _mm_unpacklo_epi16(b, d));
            _mm_storeu_si128((__m128i *)(o + 48), _mm_unpackhi_epi16(b, d));
        }
#endif
    bornc_qpack_panel8(col, ldb, 1u, K, KQ, nc, k, out);
}

/* nr <= 16 rows of a uint8 matrix (K values each, rows at stride ldx) as one 16-column panel, row t as column t. */
static inline void bornc_qpack_rows8(const uint8_t *x, size_t ldx, int K, int KQ, int nr, uint8_t *out) {
    bornc_qpack_panel8(x, 1u, ldx, K, KQ, nr, 0, out);
}

/* Rows m0 .. m0+5 of int8 weights W (rows of K) as the int16 pairs bornc_qgemm_6x16 reads; rows past `rows` and
 * the odd K's partner are zero. */
static inline void bornc_qpack_a(const int8_t *W, int K, int rows, int32_t *A) {
    const int KP2 = (K + 1) / 2;
    int r, kk;
    for (r = 0; r < 6; ++r)
        for (kk = 0; kk < KP2; ++kk) {
            const int32_t lo = r < rows ? W[(size_t)r * (size_t)K + (size_t)(2 * kk)] : 0;
            const int32_t hi = r < rows && 2 * kk + 1 < K ? W[(size_t)r * (size_t)K + (size_t)(2 * kk + 1)] : 0;
            A[(size_t)r * (size_t)KP2 + (size_t)kk] = (int32_t)(((uint32_t)(uint16_t)(int16_t)hi << 16) | (uint32_t)(uint16_t)(int16_t)lo);
        }
}

#endif /* BORNRT_GEMM_H */
