/* Static inline helpers shared by the AVX2 kernel files. Include only from sources that
 * compile these functions for AVX2 + FMA + F16C through TD_AVX2. */
#ifndef TD_SIMD_AVX2_H
#define TD_SIMD_AVX2_H

#include <immintrin.h>
#include "td_internal.h"

#define TD_AVX2 __attribute__((target("avx2,fma,f16c")))

/* Converts fp16 to fp32 through a zero-extending 32-bit move. _cvtsh_ss compiles to a
 * vpinsrw that merges into whatever register it picks, which can chain every block's scale
 * load behind the previous block's arithmetic. */
static inline TD_AVX2 float half_to_float(td_fp16 h) {
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

/* Sums the 8 lanes as ((0+4)+(2+6)) + ((1+5)+(3+7)). */
static inline TD_AVX2 float hsum8(__m256 v) {
    const __m128 lo = _mm256_castps256_ps128(v);
    const __m128 hi = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(lo, hi);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Sums u[i] * s[i] with u unsigned (at most 31) and s signed bytes, as 8 int32 lanes of
 * 4 products each. */
static inline TD_AVX2 __m256i dot_u8_i8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

#endif
