/* The body of the attention kernel for a few query heads that share one KV head, included
 * by td_attention_avx2.c and td_attention_avx512.c. Each includer defines TD_ATTN (the target
 * attribute) and TD_ATTEND_NAME (the exported function's name). The AVX-512 instance runs the
 * same 256-bit operations with 32 registers instead of 16, so it gives the same bits.
 *
 * The arithmetic is td_attend_scalar's for each head, eight lanes at a time. Score lanes
 * accumulate elements j, j + 8, ... with separate multiplies and adds and are combined in the
 * scalar kernel's tree, and value accumulation is element-wise, so results equal the scalar
 * kernel's bitwise on every path. F16 keys and values are widened with F16C's exact
 * conversion, so they too give the scalar kernel's bits.
 *
 * Speed comes from three things that leave each head's operations and their order alone:
 * - the heads of a group share every key and value load and its conversion;
 * - head sizes 64 and 128 get their own instances, whose loops the compiler unrolls, so
 *   queries and accumulators stay in registers;
 * - values are summed a few eight-element chunks at a time for all heads of the group, which
 *   gives the processor independent addition chains while keeping each chain in slot order.
 * Needs head_dim to be a multiple of 8 and at most TD_MAX_HEAD_DIM; td_attention falls back
 * to the scalar kernel otherwise. */
#include <immintrin.h>
#include <math.h>
#include "td_exp.h"
#include "td_internal.h"

#define TD_ATTN_INLINE TD_ATTN __attribute__((always_inline))
#define LANES 8

/* ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), the scalar kernel's order. */
static inline TD_ATTN float combine_lanes(__m256 v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 pairs = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(pairs, _mm_movehdup_ps(pairs)));
}

/* Computes combine_lanes for eight slots at once. v[i] contains slot i's lanes, and lane i
 * of the result is slot i's sum, added in combine_lanes's order. */
static inline TD_ATTN_INLINE __m256 combine_slots(const __m256 v[LANES]) {
    /* Transpose the 8x8 block, so t[j] contains lane j of every slot. */
    const __m256 a0 = _mm256_unpacklo_ps(v[0], v[1]), a1 = _mm256_unpackhi_ps(v[0], v[1]);
    const __m256 a2 = _mm256_unpacklo_ps(v[2], v[3]), a3 = _mm256_unpackhi_ps(v[2], v[3]);
    const __m256 a4 = _mm256_unpacklo_ps(v[4], v[5]), a5 = _mm256_unpackhi_ps(v[4], v[5]);
    const __m256 a6 = _mm256_unpacklo_ps(v[6], v[7]), a7 = _mm256_unpackhi_ps(v[6], v[7]);
    const __m256 b0 = _mm256_shuffle_ps(a0, a2, 0x44), b1 = _mm256_shuffle_ps(a0, a2, 0xee);
    const __m256 b2 = _mm256_shuffle_ps(a1, a3, 0x44), b3 = _mm256_shuffle_ps(a1, a3, 0xee);
    const __m256 b4 = _mm256_shuffle_ps(a4, a6, 0x44), b5 = _mm256_shuffle_ps(a4, a6, 0xee);
    const __m256 b6 = _mm256_shuffle_ps(a5, a7, 0x44), b7 = _mm256_shuffle_ps(a5, a7, 0xee);
    const __m256 t0 = _mm256_permute2f128_ps(b0, b4, 0x20), t4 = _mm256_permute2f128_ps(b0, b4, 0x31);
    const __m256 t1 = _mm256_permute2f128_ps(b1, b5, 0x20), t5 = _mm256_permute2f128_ps(b1, b5, 0x31);
    const __m256 t2 = _mm256_permute2f128_ps(b2, b6, 0x20), t6 = _mm256_permute2f128_ps(b2, b6, 0x31);
    const __m256 t3 = _mm256_permute2f128_ps(b3, b7, 0x20), t7 = _mm256_permute2f128_ps(b3, b7, 0x31);
    return _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(t0, t4), _mm256_add_ps(t2, t6)),
                         _mm256_add_ps(_mm256_add_ps(t1, t5), _mm256_add_ps(t3, t7)));
}

/* Elements 8c .. 8c + 7 of a key or value row stored as kv_type, as floats. */
static inline TD_ATTN_INLINE __m256 load_lanes(const void *row, int c, const int kv_type) {
    if (kv_type == TD_TYPE_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const td_fp16 *)row + c * LANES)));
    return _mm256_loadu_ps((const float *)row + c * LANES);
}

/* The kernel for `heads` query heads (1 to 4), `chunks` eight-element chunks per head and
 * one element type. All three are constants after inlining, except `chunks` in the generic
 * instance. scores has room for heads * n_slots floats. */
static inline TD_ATTN_INLINE void attend(const float *q, const void *k_base, const void *v_base,
                                         int64_t kv_stride, int kv_offset, const int chunks,
                                         const int32_t *slots, int n_slots, float *scores,
                                         float *out, const int kv_type, const int heads) {
    const int head_dim = chunks * LANES;
    const size_t element_bytes = td_kv_element_bytes(kv_type);
    const float scale = 1.0f / sqrtf((float)head_dim);

    /* Scores: one key load per chunk serves every head. Each slot's eight lanes per head wait
     * in `pending` until eight slots are ready. combine_slots then adds them with seven vector
     * additions, each slot keeping combine_lanes's operands and order. Slots go four at a
     * time, so twelve addition chains (four slots, three heads) run side by side. */
    __m256 max_lanes[4];
    for (int g = 0; g < heads; g++) max_lanes[g] = _mm256_set1_ps(-INFINITY);
    __m256 pending[4][LANES];
    const int quads = n_slots - n_slots % 4;
    for (int s = 0; s < n_slots; s += 4) {
        const int count = s < quads ? 4 : n_slots - s;
        const void *k[4];
        for (int j = 0; j < 4; j++) {
            const int slot = slots[j < count ? s + j : s];
            k[j] = (const char *)k_base + ((int64_t)slot * kv_stride + kv_offset) * element_bytes;
        }
        __m256 lanes[4][4];
        for (int j = 0; j < 4; j++) {
            for (int g = 0; g < heads; g++) lanes[j][g] = _mm256_setzero_ps();
        }
        for (int c = 0; c < chunks; c++) {
            for (int j = 0; j < 4; j++) {
                const __m256 key = load_lanes(k[j], c, kv_type);
                for (int g = 0; g < heads; g++) {
                    lanes[j][g] = _mm256_add_ps(lanes[j][g], _mm256_mul_ps(_mm256_loadu_ps(q + g * head_dim + c * LANES), key));
                }
            }
        }
        for (int j = 0; j < count; j++) {
            for (int g = 0; g < heads; g++) pending[g][(s + j) % LANES] = lanes[j][g];
        }
        if ((s + 4) % LANES == 0 && count == 4) {
            const int first = s + 4 - LANES;
            for (int g = 0; g < heads; g++) {
                const __m256 batch = _mm256_mul_ps(combine_slots(pending[g]), _mm256_set1_ps(scale));
                _mm256_storeu_ps(scores + g * n_slots + first, batch);
                /* max_ps(new, old) keeps old where new is NaN, as the comparison below does. */
                max_lanes[g] = _mm256_max_ps(batch, max_lanes[g]);
            }
        }
    }
    const int combined = n_slots - n_slots % LANES;
    float max_score[4];
    for (int g = 0; g < heads; g++) {
        float lanes_max[LANES];
        _mm256_storeu_ps(lanes_max, max_lanes[g]);
        max_score[g] = -INFINITY;
        for (int i = 0; i < LANES; i++) {
            if (lanes_max[i] > max_score[g]) max_score[g] = lanes_max[i];
        }
        for (int s = combined; s < n_slots; s++) {
            const float score = combine_lanes(pending[g][s - combined]) * scale;
            scores[g * n_slots + s] = score;
            if (score > max_score[g]) max_score[g] = score;
        }
    }

    /* Softmax: the heads' totals are separate chains, each adding in slot order, so one pass
     * advances all of them side by side. */
    float total[4] = { 0.0f, 0.0f, 0.0f, 0.0f };
    int s = 0;
#ifdef TD_ATTEND_EXP8
    for (; s + 8 <= n_slots; s += 8) {
        for (int g = 0; g < heads; g++) {
            float *row = scores + g * n_slots;
            _mm256_storeu_ps(row + s, TD_ATTEND_EXP8(_mm256_sub_ps(_mm256_loadu_ps(row + s), _mm256_set1_ps(max_score[g]))));
        }
        for (int i = 0; i < 8; i++) {
            for (int g = 0; g < heads; g++) total[g] += scores[g * n_slots + s + i];
        }
    }
#endif
    for (; s < n_slots; s++) {
        for (int g = 0; g < heads; g++) {
            float *row = scores + g * n_slots;
            row[s] = td_expf(row[s] - max_score[g]);
            total[g] += row[s];
        }
    }
    float inverse[4];
    for (int g = 0; g < heads; g++) inverse[g] = total[g] > 0.0f ? 1.0f / total[g] : 0.0f;

    /* Values: `step` chunks of every head per pass over the slots: TD_ATTEND_ACCUMULATORS
     * accumulators at most, which leaves registers for the loaded values. */
    int step = 2;
    if (heads == 1 || heads * 8 <= TD_ATTEND_ACCUMULATORS) {
        step = 8;
    } else if (heads * 4 <= TD_ATTEND_ACCUMULATORS) {
        step = 4;
    }
    if (chunks % step == 0) {
        for (int c0 = 0; c0 < chunks; c0 += step) {
            __m256 acc[4][8];
            for (int g = 0; g < heads; g++) {
                for (int c = 0; c < step; c++) acc[g][c] = _mm256_setzero_ps();
            }
            for (int s = 0; s < n_slots; s++) {
                const void *v = (const char *)v_base + ((int64_t)slots[s] * kv_stride + kv_offset) * element_bytes;
                for (int c = 0; c < step; c++) {
                    const __m256 value = load_lanes(v, c0 + c, kv_type);
                    for (int g = 0; g < heads; g++) {
                        acc[g][c] = _mm256_add_ps(acc[g][c], _mm256_mul_ps(_mm256_set1_ps(scores[g * n_slots + s]), value));
                    }
                }
            }
            for (int g = 0; g < heads; g++) {
                for (int c = 0; c < step; c++) {
                    _mm256_storeu_ps(out + g * head_dim + (c0 + c) * LANES, _mm256_mul_ps(acc[g][c], _mm256_set1_ps(inverse[g])));
                }
            }
        }
    } else {
        for (int c = 0; c < chunks; c++) {
            __m256 acc[4];
            for (int g = 0; g < heads; g++) acc[g] = _mm256_setzero_ps();
            for (int s = 0; s < n_slots; s++) {
                const void *v = (const char *)v_base + ((int64_t)slots[s] * kv_stride + kv_offset) * element_bytes;
                const __m256 value = load_lanes(v, c, kv_type);
                for (int g = 0; g < heads; g++) {
                    acc[g] = _mm256_add_ps(acc[g], _mm256_mul_ps(_mm256_set1_ps(scores[g * n_slots + s]), value));
                }
            }
            for (int g = 0; g < heads; g++) {
                _mm256_storeu_ps(out + g * head_dim + c * LANES, _mm256_mul_ps(acc[g], _mm256_set1_ps(inverse[g])));
            }
        }
    }
}

/* One instance per head count for a given chunk count and element type. */
static inline TD_ATTN_INLINE void attend_heads(const float *q, const void *k_base, const void *v_base,
                                               int64_t kv_stride, int kv_offset, const int chunks,
                                               const int32_t *slots, int n_slots, float *scores,
                                               float *out, const int kv_type, int heads) {
    switch (heads) {
    case 1: attend(q, k_base, v_base, kv_stride, kv_offset, chunks, slots, n_slots, scores, out, kv_type, 1); break;
    case 2: attend(q, k_base, v_base, kv_stride, kv_offset, chunks, slots, n_slots, scores, out, kv_type, 2); break;
    case 3: attend(q, k_base, v_base, kv_stride, kv_offset, chunks, slots, n_slots, scores, out, kv_type, 3); break;
    default: attend(q, k_base, v_base, kv_stride, kv_offset, chunks, slots, n_slots, scores, out, kv_type, 4); break;
    }
}

static inline TD_ATTN_INLINE void attend_type(const float *q, const void *k_base, const void *v_base,
                                              int64_t kv_stride, int kv_offset, int head_dim,
                                              const int32_t *slots, int n_slots, float *scores,
                                              float *out, const int kv_type, int heads) {
    if (head_dim == 64) {
        attend_heads(q, k_base, v_base, kv_stride, kv_offset, 8, slots, n_slots, scores, out, kv_type, heads);
    } else if (head_dim == 128) {
        attend_heads(q, k_base, v_base, kv_stride, kv_offset, 16, slots, n_slots, scores, out, kv_type, heads);
    } else {
        attend_heads(q, k_base, v_base, kv_stride, kv_offset, head_dim / LANES, slots, n_slots, scores, out, kv_type, heads);
    }
}

TD_ATTN void TD_ATTEND_NAME(const float *q, const void *k_base, const void *v_base, int kv_type, int64_t kv_stride,
                            int kv_offset, int head_dim, int heads, const int32_t *slots, int n_slots,
                            float *scores, float *out) {
    for (int first = 0; first < heads; first += 4) {
        const int count = heads - first < 4 ? heads - first : 4;
        const float *q_part = q + (int64_t)first * head_dim;
        float *out_part = out + (int64_t)first * head_dim;
        if (kv_type == TD_TYPE_F16) {
            attend_type(q_part, k_base, v_base, kv_stride, kv_offset, head_dim, slots, n_slots, scores, out_part, TD_TYPE_F16, count);
        } else {
            attend_type(q_part, k_base, v_base, kv_stride, kv_offset, head_dim, slots, n_slots, scores, out_part, TD_TYPE_F32, count);
        }
    }
}
