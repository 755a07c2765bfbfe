/* AVX2 path of the drafter's products: the scalar reference's 16 lanes as two 8-lane
 * registers (lanes 0-7 and 8-15), combined in the reference's order, so results equal it
 * bitwise. Multiplies and adds stay separate (no FMA) for the same reason. */
#if defined(__x86_64__)
#include <immintrin.h>
#include "td_drafter_internal.h"

#define TD_AVX2 __attribute__((target("avx2,fma")))

/* Lanes j and j + 8 (the two registers), then j and j + 4, j and j + 2, j and j + 1. */
static inline TD_AVX2 float combine16(__m256 lo, __m256 hi) {
    const __m256 s8 = _mm256_add_ps(lo, hi);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline TD_AVX2 __m256 multiply_add(__m256 acc, const float *w, const float *x) {
    return _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(w), _mm256_loadu_ps(x)));
}

TD_AVX2 float td_drafter_dot_avx2(const float *w, const float *x, int64_t n) {
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= n; k += 16) {
        lo = multiply_add(lo, w + k, x + k);
        hi = multiply_add(hi, w + k + 8, x + k + 8);
    }
    float sum = combine16(lo, hi);
    for (; k < n; k++) sum = sum + w[k] * x[k];
    return sum;
}

TD_AVX2 void td_drafter_dot4_avx2(const float *w, int64_t w_stride, const float *x, int64_t n, float *out) {
    __m256 lo[4], hi[4];
    for (int r = 0; r < 4; r++) lo[r] = hi[r] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= n; k += 16) {
        const __m256 xl = _mm256_loadu_ps(x + k), xh = _mm256_loadu_ps(x + k + 8);
        for (int r = 0; r < 4; r++) {
            const float *wr = w + r * w_stride + k;
            lo[r] = _mm256_add_ps(lo[r], _mm256_mul_ps(_mm256_loadu_ps(wr), xl));
            hi[r] = _mm256_add_ps(hi[r], _mm256_mul_ps(_mm256_loadu_ps(wr + 8), xh));
        }
    }
    for (int r = 0; r < 4; r++) {
        const float *wr = w + r * w_stride;
        float sum = combine16(lo[r], hi[r]);
        for (int64_t t = k; t < n; t++) sum = sum + wr[t] * x[t];
        out[r] = sum;
    }
}

TD_AVX2 void td_drafter_axpy_avx2(float a, const float *x, float *y, int64_t n) {
    const __m256 av = _mm256_set1_ps(a);
    int64_t c = 0;
    for (; c + 8 <= n; c += 8) {
        _mm256_storeu_ps(y + c, _mm256_add_ps(_mm256_loadu_ps(y + c), _mm256_mul_ps(av, _mm256_loadu_ps(x + c))));
    }
    for (; c < n; c++) y[c] = y[c] + a * x[c];
}
#endif
