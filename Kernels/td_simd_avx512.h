/* Static inline helpers shared by the AVX-512 VNNI kernel files. */
#ifndef TD_SIMD_AVX512_H
#define TD_SIMD_AVX512_H

#include <immintrin.h>
#include "td_internal.h"

#define TD_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")))

/* Weights stream from DRAM once per token. Prefetching this far ahead keeps enough cache
 * misses in flight across 4 KiB page boundaries, where the hardware prefetcher restarts. */
#define TD_PREFETCH_BYTES 1024

/* Converts fp16 to fp32 through a zero-extending 32-bit move (see td_simd_avx2.h). */
static inline TD_AVX512 float half_to_float(td_fp16 h) {
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

/* Sums the 16 lanes: lanes j and j + 8 first, then as ((0+4)+(2+6)) + ((1+5)+(3+7)). */
static inline TD_AVX512 float hsum16(__m512 v) {
    const __m256 lo = _mm512_castps512_ps256(v);
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    __m256 s8 = _mm256_add_ps(lo, hi);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Loads the int8 values of activation blocks x[0] and x[1] into one register. */
static inline TD_AVX512 __m512i load_act2(const td_block_q8_act *x) {
    const __m256i a = _mm256_loadu_si256((const __m256i *)x[0].qs);
    const __m256i b = _mm256_loadu_si256((const __m256i *)x[1].qs);
    return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

/* Returns scale a in lanes 0..7 and scale b in lanes 8..15. */
static inline TD_AVX512 __m512 scales2(float a, float b) {
    return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1);
}

/* Sums signed bytes a[i] * b[i] as 16 int32 lanes, using |a| * (b with a's sign). */
static inline TD_AVX512 __m512i dot_i8x64(__m512i a, __m512i b) {
    const __mmask64 negative = _mm512_movepi8_mask(a);
    const __m512i signed_b = _mm512_mask_sub_epi8(b, negative, _mm512_setzero_si512(), b);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(a), signed_b);
}

#endif
