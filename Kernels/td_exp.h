/* Single-precision e^x in double arithmetic, with a scalar form and an 8-lane AVX-512 form
 * that give the same bits. Attention's softmax and SwiGLU use it on every ISA path, so their
 * results do not depend on the C library's expf.
 *
 * Method: x * 32 / ln 2 = k + r with integer k and |r| <= 1/2; e^x = 2^(k/32) * 2^(r/32).
 * 2^(k/32) is a table entry for k mod 32 with k div 32 added to its exponent bits, and
 * 2^(r/32) is a cubic in r. Every step is a double operation or a fused multiply-add in a
 * fixed order, so the scalar and vector forms agree bit for bit. The table and polynomial
 * are those of glibc's expf. On the development machine (glibc 2.36, a CPU with FMA) all 2^32
 * inputs gave the same bits as the C library's expf, so switching to this function changed
 * no result there. */
#ifndef TD_EXP_H
#define TD_EXP_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* td_exp2_table[i]: the bits of 2^(i/32) rounded to double, minus i << 47, so adding
 * k << 47 for k = 32q + i gives the bits of 2^(k/32) up to rounding. */
extern const uint64_t td_exp2_table[32];

#define TD_EXP_INV_LN2_32 0x1.71547652b82fep+5   /* 32 / ln 2 */
#define TD_EXP_SHIFT 0x1.8p+52                   /* adding it rounds to an integer */
#define TD_EXP_C0 0x1.c6af84b912394p-20          /* polynomial for 2^(r/32) - 1 */
#define TD_EXP_C1 0x1.ebfce50fac4f3p-13
#define TD_EXP_C2 0x1.62e42ff0c52d6p-6

/* Results outside the table's range, where |x| >= about 88 or x is not finite. */
static inline float td_expf_special(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    if (bits == 0xff800000u) return 0.0f;                 /* -inf */
    if (((bits >> 20) & 0x7ff) > 0x7f7) return x + x;     /* NaN or +inf */
    if (x > 0x1.62e42ep6f) return INFINITY;               /* overflows */
    if (x < -0x1.9fe368p6f) return 0.0f;                  /* below half the smallest subnormal */
    if (x < -0x1.9d1d9ep6f) return 0x1p-149f;             /* rounds to the smallest subnormal */
    return NAN;                                           /* not reached: the main path applies */
}

/* Whether x takes td_expf_special rather than the table. */
static inline int td_expf_is_special(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    const uint32_t top = (bits >> 20) & 0x7ff;
    return top > 0x42a && !(top <= 0x7f7 && x <= 0x1.62e42ep6f && x >= -0x1.9d1d9ep6f);
}

/* e^x for one float. fma() is exact, so this equals the vector form without FMA hardware. */
static inline float td_expf(float x) {
    if (td_expf_is_special(x)) return td_expf_special(x);
    const double xd = (double)x;
    const double shifted = fma(TD_EXP_INV_LN2_32, xd, TD_EXP_SHIFT);
    uint64_t ki;
    memcpy(&ki, &shifted, sizeof ki);
    const double kd = shifted - TD_EXP_SHIFT;
    const double r = fma(TD_EXP_INV_LN2_32, xd, -kd);
    const uint64_t t = td_exp2_table[ki & 31] + (ki << 47);
    double s;
    memcpy(&s, &t, sizeof s);
    const double z = fma(r, TD_EXP_C0, TD_EXP_C1);
    const double r2 = r * r;
    double y = fma(r, TD_EXP_C2, 1.0);
    y = fma(z, r2, y);
    return (float)(y * s);
}

#if defined(__x86_64__)
#include <immintrin.h>

/* e^x for eight floats with AVX-512F, each lane bitwise equal to td_expf. A vector with any
 * lane outside the table's range goes through td_expf lane by lane. */
static inline __attribute__((target("avx512f,avx2,fma"))) __m256 td_expf8_avx512(__m256 x) {
    const __m256i top = _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(x), 20), _mm256_set1_epi32(0x7ff));
    if (!_mm256_testz_si256(_mm256_cmpgt_epi32(top, _mm256_set1_epi32(0x42a)), _mm256_set1_epi32(-1))) {
        float lanes[8];
        _mm256_storeu_ps(lanes, x);
        for (int i = 0; i < 8; i++) lanes[i] = td_expf(lanes[i]);
        return _mm256_loadu_ps(lanes);
    }
    const __m512d xd = _mm512_cvtps_pd(x);
    const __m512d inv_ln2 = _mm512_set1_pd(TD_EXP_INV_LN2_32), shift = _mm512_set1_pd(TD_EXP_SHIFT);
    const __m512d shifted = _mm512_fmadd_pd(inv_ln2, xd, shift);
    const __m512i ki = _mm512_castpd_si512(shifted);
    const __m512d kd = _mm512_sub_pd(shifted, shift);
    const __m512d r = _mm512_fmsub_pd(inv_ln2, xd, kd);
    /* Table lookup: entries 0-15 and 16-31 by the low four bits, chosen by bit 4. */
    const __m512i low_half = _mm512_permutex2var_epi64(_mm512_loadu_si512((const void *)td_exp2_table), ki,
                                                       _mm512_loadu_si512((const void *)(td_exp2_table + 8)));
    const __m512i high_half = _mm512_permutex2var_epi64(_mm512_loadu_si512((const void *)(td_exp2_table + 16)), ki,
                                                        _mm512_loadu_si512((const void *)(td_exp2_table + 24)));
    const __mmask8 upper = _mm512_test_epi64_mask(ki, _mm512_set1_epi64(16));
    const __m512i entry = _mm512_mask_blend_epi64(upper, low_half, high_half);
    const __m512d scale = _mm512_castsi512_pd(_mm512_add_epi64(entry, _mm512_slli_epi64(ki, 47)));
    const __m512d z = _mm512_fmadd_pd(r, _mm512_set1_pd(TD_EXP_C0), _mm512_set1_pd(TD_EXP_C1));
    const __m512d r2 = _mm512_mul_pd(r, r);
    __m512d y = _mm512_fmadd_pd(r, _mm512_set1_pd(TD_EXP_C2), _mm512_set1_pd(1.0));
    y = _mm512_fmadd_pd(z, r2, y);
    return _mm512_cvtpd_ps(_mm512_mul_pd(y, scale));
}
#endif

#endif
