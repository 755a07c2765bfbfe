/* AVX-512 path of the drafter's products: the 16 lanes of the scalar reference in one
 * register, combined in the reference's order, so results equal it bitwise. Multiplies and
 * adds stay separate (no FMA) for the same reason. */
#if defined(__x86_64__)
#include <immintrin.h>
#include "td_drafter_internal.h"

#define TD_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))

/* Lanes j and j + 8, then j and j + 4, j and j + 2, j and j + 1, as combine_lanes does. */
static inline TD_AVX512 float combine16(__m512 v) {
    const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

TD_AVX512 float td_drafter_dot_avx512(const float *w, const float *x, int64_t n) {
    __m512 acc = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= n; k += 16) acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_loadu_ps(w + k), _mm512_loadu_ps(x + k)));
    float sum = combine16(acc);
    for (; k < n; k++) sum = sum + w[k] * x[k];
    return sum;
}

/* Four independent accumulators hide the add latency of one dot product. */
TD_AVX512 void td_drafter_dot4_avx512(const float *w, int64_t w_stride, const float *x, int64_t n, float *out) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    const float *w0 = w, *w1 = w + w_stride, *w2 = w + 2 * w_stride, *w3 = w + 3 * w_stride;
    int64_t k = 0;
    for (; k + 16 <= n; k += 16) {
        const __m512 xv = _mm512_loadu_ps(x + k);
        a0 = _mm512_add_ps(a0, _mm512_mul_ps(_mm512_loadu_ps(w0 + k), xv));
        a1 = _mm512_add_ps(a1, _mm512_mul_ps(_mm512_loadu_ps(w1 + k), xv));
        a2 = _mm512_add_ps(a2, _mm512_mul_ps(_mm512_loadu_ps(w2 + k), xv));
        a3 = _mm512_add_ps(a3, _mm512_mul_ps(_mm512_loadu_ps(w3 + k), xv));
    }
    float s0 = combine16(a0), s1 = combine16(a1), s2 = combine16(a2), s3 = combine16(a3);
    for (; k < n; k++) {
        s0 = s0 + w0[k] * x[k];
        s1 = s1 + w1[k] * x[k];
        s2 = s2 + w2[k] * x[k];
        s3 = s3 + w3[k] * x[k];
    }
    out[0] = s0;
    out[1] = s1;
    out[2] = s2;
    out[3] = s3;
}

TD_AVX512 void td_drafter_axpy_avx512(float a, const float *x, float *y, int64_t n) {
    const __m512 av = _mm512_set1_ps(a);
    int64_t c = 0;
    for (; c + 16 <= n; c += 16) {
        _mm512_storeu_ps(y + c, _mm512_add_ps(_mm512_loadu_ps(y + c), _mm512_mul_ps(av, _mm512_loadu_ps(x + c))));
    }
    for (; c < n; c++) y[c] = y[c] + a * x[c];
}
#endif
