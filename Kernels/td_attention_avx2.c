/* Attention for one (query row, head) with AVX: the same arithmetic as td_attend_scalar,
 * eight lanes at a time. Score lanes accumulate elements j, j + 8, ... with separate
 * multiplies and adds and are combined in the scalar kernel's tree, and value accumulation
 * is element-wise, so results equal the scalar kernel's bitwise on every path. Needs
 * head_dim to be a multiple of 8 and at most TD_MAX_HEAD_DIM; td_attention falls back to the
 * scalar kernel otherwise. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include "td_internal.h"

#define TD_ATTN __attribute__((target("avx2,fma,f16c")))
#define LANES 8

/* ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), the scalar kernel's order. */
static inline TD_ATTN float combine_lanes(__m256 v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 pairs = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(pairs, _mm_movehdup_ps(pairs)));
}

TD_ATTN void td_attend_avx2(const float *q, const float *k_base, const float *v_base, int64_t kv_stride,
                            int kv_offset, int head_dim, const int32_t *slots, int n_slots,
                            float *scores, float *out) {
    const int chunks = head_dim / LANES;
    const float scale = 1.0f / sqrtf((float)head_dim);
    __m256 query[TD_MAX_HEAD_DIM / LANES];
    for (int c = 0; c < chunks; c++) query[c] = _mm256_loadu_ps(q + c * LANES);

    float max_score = -INFINITY;
    for (int s = 0; s < n_slots; s++) {
        const float *k = k_base + (int64_t)slots[s] * kv_stride + kv_offset;
        __m256 lanes = _mm256_setzero_ps();
        for (int c = 0; c < chunks; c++) lanes = _mm256_add_ps(lanes, _mm256_mul_ps(query[c], _mm256_loadu_ps(k + c * LANES)));
        scores[s] = combine_lanes(lanes) * scale;
        if (scores[s] > max_score) max_score = scores[s];
    }

    float total = 0.0f;
    for (int s = 0; s < n_slots; s++) {
        scores[s] = expf(scores[s] - max_score);
        total += scores[s];
    }
    __m256 acc[TD_MAX_HEAD_DIM / LANES];
    for (int c = 0; c < chunks; c++) acc[c] = _mm256_setzero_ps();
    for (int s = 0; s < n_slots; s++) {
        const float *v = v_base + (int64_t)slots[s] * kv_stride + kv_offset;
        const __m256 p = _mm256_set1_ps(scores[s]);
        for (int c = 0; c < chunks; c++) acc[c] = _mm256_add_ps(acc[c], _mm256_mul_ps(p, _mm256_loadu_ps(v + c * LANES)));
    }
    const __m256 inverse = _mm256_set1_ps(total > 0.0f ? 1.0f / total : 0.0f);
    for (int c = 0; c < chunks; c++) _mm256_storeu_ps(out + c * LANES, _mm256_mul_ps(acc[c], inverse));
}
#endif
