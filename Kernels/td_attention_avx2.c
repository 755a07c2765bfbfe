/* Attention for one (query row, head) with AVX: the same arithmetic as td_attend_scalar,
 * eight lanes at a time. Score lanes accumulate elements j, j + 8, ... with separate
 * multiplies and adds and are combined in the scalar kernel's tree, and value accumulation
 * is element-wise, so results equal the scalar kernel's bitwise on every path. F16 keys and
 * values are widened with F16C's exact conversion, so they too give the scalar kernel's bits.
 * Needs head_dim to be a multiple of 8 and at most TD_MAX_HEAD_DIM; td_attention falls back
 * to the scalar kernel otherwise. */
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

/* Elements 8c .. 8c + 7 of a key or value row stored as kv_type, as floats. */
static inline TD_ATTN __attribute__((always_inline)) __m256 load_lanes(const void *row, int c, const int kv_type) {
    if (kv_type == TD_TYPE_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const td_fp16 *)row + c * LANES)));
    return _mm256_loadu_ps((const float *)row + c * LANES);
}

/* The kernel for one element type; kv_type is a constant after inlining. */
static inline TD_ATTN __attribute__((always_inline)) void attend(const float *q, const void *k_base, const void *v_base,
                                                                 int64_t kv_stride, int kv_offset, int head_dim,
                                                                 const int32_t *slots, int n_slots, float *scores,
                                                                 float *out, const int kv_type) {
    const size_t element_bytes = td_kv_element_bytes(kv_type);
    const int chunks = head_dim / LANES;
    const float scale = 1.0f / sqrtf((float)head_dim);
    __m256 query[TD_MAX_HEAD_DIM / LANES];
    for (int c = 0; c < chunks; c++) query[c] = _mm256_loadu_ps(q + c * LANES);

    float max_score = -INFINITY;
    for (int s = 0; s < n_slots; s++) {
        const void *k = (const char *)k_base + ((int64_t)slots[s] * kv_stride + kv_offset) * element_bytes;
        __m256 lanes = _mm256_setzero_ps();
        for (int c = 0; c < chunks; c++) lanes = _mm256_add_ps(lanes, _mm256_mul_ps(query[c], load_lanes(k, c, kv_type)));
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
        const void *v = (const char *)v_base + ((int64_t)slots[s] * kv_stride + kv_offset) * element_bytes;
        const __m256 p = _mm256_set1_ps(scores[s]);
        for (int c = 0; c < chunks; c++) acc[c] = _mm256_add_ps(acc[c], _mm256_mul_ps(p, load_lanes(v, c, kv_type)));
    }
    const __m256 inverse = _mm256_set1_ps(total > 0.0f ? 1.0f / total : 0.0f);
    for (int c = 0; c < chunks; c++) _mm256_storeu_ps(out + c * LANES, _mm256_mul_ps(acc[c], inverse));
}

TD_ATTN void td_attend_avx2(const float *q, const void *k_base, const void *v_base, int kv_type, int64_t kv_stride,
                            int kv_offset, int head_dim, const int32_t *slots, int n_slots,
                            float *scores, float *out) {
    if (kv_type == TD_TYPE_F16) {
        attend(q, k_base, v_base, kv_stride, kv_offset, head_dim, slots, n_slots, scores, out, TD_TYPE_F16);
    } else {
        attend(q, k_base, v_base, kv_stride, kv_offset, head_dim, slots, n_slots, scores, out, TD_TYPE_F32);
    }
}
#endif
