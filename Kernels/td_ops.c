/* Row-wise operations: RMSNorm, RoPE, bias addition, SwiGLU and half-precision rounding. All
 * loops that reduce run in a fixed element order, so results are independent of batching and
 * threads. */
#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <stdlib.h>
#include "td_exp.h"
#include "td_internal.h"

int td_rmsnorm(const float *x, const float *w, float *y, int64_t m, int64_t n, float eps) {
    if (x == NULL || w == NULL || y == NULL || m < 0 || n <= 0) return TD_EINVAL;
    for (int64_t i = 0; i < m; i++) {
        const float *row = x + i * n;
        double sum = 0.0;
        for (int64_t j = 0; j < n; j++) sum += (double)(row[j] * row[j]);
        const float scale = 1.0f / sqrtf((float)(sum / (double)n) + eps);
        float *out = y + i * n;
        for (int64_t j = 0; j < n; j++) out[j] = row[j] * scale * w[j];
    }
    return TD_OK;
}

/* Whether RoPE arguments are valid. */
static int rope_arguments_valid(const float *x, int64_t m, int64_t stride, int n_heads, int head_dim,
                                const int32_t *positions, float base) {
    return x != NULL && positions != NULL && m >= 0 && n_heads > 0 && head_dim > 0 && head_dim % 2 == 0 &&
           stride >= (int64_t)n_heads * head_dim && base > 0.0f;
}

/* Rotates pair p of each head, elements (2p, 2p + 1) or (p, p + head_dim / 2) when `halves`
 * is set, by pos * base^(-2p / head_dim). Both layouts share this loop, so a position gives
 * the same angles in either. */
static inline __attribute__((always_inline)) void rope_rows(float *x, int64_t m, int64_t stride, int n_heads,
                                                            int head_dim, const int32_t *positions, float base,
                                                            const int halves) {
    const float theta_scale = powf(base, -2.0f / (float)head_dim);
    const int half_dim = head_dim / 2;
    for (int64_t i = 0; i < m; i++) {
        /* The angle of pair p is pos * theta_scale^p, built by repeated float multiplication
         * as llama.cpp does. It depends on the position alone, not on the batch. */
        float theta = (float)positions[i];
        for (int p = 0; p < half_dim; p++) {
            const float c = cosf(theta), s = sinf(theta);
            const int first = halves ? p : 2 * p;
            const int second = halves ? p + half_dim : 2 * p + 1;
            for (int h = 0; h < n_heads; h++) {
                float *head = x + i * stride + (int64_t)h * head_dim;
                const float x0 = head[first], x1 = head[second];
                head[first] = x0 * c - x1 * s;
                head[second] = x0 * s + x1 * c;
            }
            theta *= theta_scale;
        }
    }
}

int td_rope_pairs(float *x, int64_t m, int64_t stride, int n_heads, int head_dim,
                  const int32_t *positions, float base) {
    if (!rope_arguments_valid(x, m, stride, n_heads, head_dim, positions, base)) return TD_EINVAL;
    rope_rows(x, m, stride, n_heads, head_dim, positions, base, 0);
    return TD_OK;
}

int td_rope_halves(float *x, int64_t m, int64_t stride, int n_heads, int head_dim,
                   const int32_t *positions, float base) {
    if (!rope_arguments_valid(x, m, stride, n_heads, head_dim, positions, base)) return TD_EINVAL;
    rope_rows(x, m, stride, n_heads, head_dim, positions, base, 1);
    return TD_OK;
}

int td_add_bias(float *x, int64_t m, int64_t stride, const float *bias, int64_t n) {
    if (x == NULL || bias == NULL || m < 0 || n < 0 || stride < n) return TD_EINVAL;
    for (int64_t i = 0; i < m; i++) {
        float *row = x + i * stride;
        for (int64_t j = 0; j < n; j++) row[j] += bias[j];
    }
    return TD_OK;
}

int td_round_to_half(const float *x, float *y, int64_t n) {
    if (x == NULL || y == NULL || n < 0) return TD_EINVAL;
    for (int64_t i = 0; i < n; i++) y[i] = td_round_half_finite(x[i]);
    return TD_OK;
}

#if defined(__x86_64__)
/* Converts eight elements at a time with F16C while all eight are at most 65504 in
 * magnitude (NaN fails the comparison). There the hardware's round-to-nearest-even equals
 * td_fp32_to_fp16, subnormal halves included, so the bits are the scalar loop's. Returns
 * the index of the first element left to the caller. */
static __attribute__((target("avx2,f16c"))) int64_t convert_to_half_f16c(const float *x, td_fp16 *y, int64_t n) {
    const __m256 limit = _mm256_set1_ps(65504.0f);
    const __m256 magnitude_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 in_range = _mm256_cmp_ps(_mm256_and_ps(v, magnitude_mask), limit, _CMP_LE_OQ);
        if (_mm256_movemask_ps(in_range) != 0xff) break;
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    return i;
}
#endif

int td_convert_to_half(const float *x, td_fp16 *y, int64_t n) {
    if (x == NULL || y == NULL || n < 0) return TD_EINVAL;
    int64_t start = 0;
#if defined(__x86_64__)
    if (td_isa_active() != TD_ISA_SCALAR) start = convert_to_half_f16c(x, y, n);
#endif
    for (int64_t i = start; i < n; i++) {
        const td_fp16 h = td_fp32_to_fp16(x[i]);
        /* A finite input that rounds past 65504 comes out as infinity (all exponent bits set,
         * zero mantissa). It saturates to the largest finite half of its sign instead. */
        const int overflowed = (h & 0x7fff) == 0x7c00 && !isinf(x[i]);
        y[i] = overflowed ? (td_fp16)((h & 0x8000) | 0x7bff) : h;
    }
    return TD_OK;
}

#if defined(__x86_64__)
/* Eight elements at a time with the same operations per element as the loop in td_swiglu. */
static __attribute__((target("avx512f,avx2,fma"))) int64_t swiglu_avx512(const float *gate, const float *up, float *out, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 e = td_expf8_avx512(_mm256_xor_ps(g, _mm256_set1_ps(-0.0f)));
        const __m256 silu = _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
    }
    return i;
}
#endif

#if defined(__x86_64__)
static __attribute__((target("avx512f,avx2,fma"))) int64_t exp_row_avx512(const float *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, td_expf8_avx512(_mm256_loadu_ps(x + i)));
    return i;
}
#endif

int td_exp_row(const float *x, float *y, int64_t n) {
    if (x == NULL || y == NULL || n < 0) return TD_EINVAL;
    int64_t i = 0;
#if defined(__x86_64__)
    if (td_isa_active() == TD_ISA_AVX512) i = exp_row_avx512(x, y, n);
#endif
    for (; i < n; i++) y[i] = td_expf(x[i]);
    return TD_OK;
}

int td_swiglu(const float *gate, const float *up, float *out, int64_t n) {
    if (gate == NULL || up == NULL || out == NULL || n < 0) return TD_EINVAL;
    int64_t i = 0;
#if defined(__x86_64__)
    if (td_isa_active() == TD_ISA_AVX512) i = swiglu_avx512(gate, up, out, n);
#endif
    for (; i < n; i++) {
        const float g = gate[i];
        out[i] = g / (1.0f + td_expf(-g)) * up[i];
    }
    return TD_OK;
}

#if defined(__x86_64__)
/* The largest non-NaN value of x[0..n), or -infinity. max_ps(v, m) keeps m where v is NaN. */
static __attribute__((target("avx512f"))) float max_avx512(const float *x, int64_t n) {
    __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        m0 = _mm512_max_ps(_mm512_loadu_ps(x + i), m0);
        m1 = _mm512_max_ps(_mm512_loadu_ps(x + i + 16), m1);
    }
    float m = _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
    for (; i < n; i++) {
        if (x[i] > m) m = x[i];
    }
    return m;
}

/* The first index i with x[i] == value, or -1. */
static __attribute__((target("avx512f"))) int64_t find_avx512(const float *x, int64_t n, float value) {
    const __m512 target = _mm512_set1_ps(value);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __mmask16 hits = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), target, _CMP_EQ_OQ);
        if (hits != 0) return i + __builtin_ctz(hits);
    }
    for (; i < n; i++) {
        if (x[i] == value) return i;
    }
    return -1;
}
#endif

int64_t td_argmax(const float *x, int64_t n) {
    if (x == NULL || n <= 0) return 0;
    float m = -INFINITY;
    int64_t found = -1;
#if defined(__x86_64__)
    if (td_isa_active() == TD_ISA_AVX512) {
        m = max_avx512(x, n);
        found = find_avx512(x, n, m);
        return found < 0 ? 0 : found;
    }
#endif
    for (int64_t i = 0; i < n; i++) {
        if (x[i] > m) m = x[i];
    }
    for (int64_t i = 0; i < n && found < 0; i++) {
        if (x[i] == m) found = i;
    }
    return found < 0 ? 0 : found;
}
