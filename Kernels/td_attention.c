/* Attention over the KV cache: the scalar reference kernel for one (query row, head) and the
 * td_attention driver that splits rows and heads across threads. Keys and values are F32 or
 * F16; half-to-float conversion is exact, so F16 storage gives the same bits as F32 slots
 * holding the same half-precision values. Reductions run in slot and element order, so
 * results are independent of batching and threads. */
#include <math.h>
#include <stdlib.h>
#include "td_exp.h"
#include "td_internal.h"

/* Element i of a key or value row stored as kv_type. */
static inline __attribute__((always_inline)) float kv_element(const void *row, int64_t i, const int kv_type) {
    return kv_type == TD_TYPE_F16 ? td_fp16_to_fp32(((const td_fp16 *)row)[i]) : ((const float *)row)[i];
}

/* q . k over head_dim elements with 8 partial sums (lane j takes elements j, j+8, ...),
 * combined in a fixed tree; the compiler may vectorise the lanes without changing results. */
static inline __attribute__((always_inline)) float dot_head(const float *q, const void *k, int head_dim,
                                                            const int kv_type) {
    float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int d = 0;
    for (; d + 8 <= head_dim; d += 8) {
        for (int j = 0; j < 8; j++) lanes[j] += q[d + j] * kv_element(k, d + j, kv_type);
    }
    float sum = ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
    for (; d < head_dim; d++) sum += q[d] * kv_element(k, d, kv_type);
    return sum;
}

/* The scalar kernel for one element type; kv_type is a constant after inlining, so each
 * instance has no per-element branch. */
static inline __attribute__((always_inline)) void attend(const float *q, const void *k_base, const void *v_base,
                                                         int64_t kv_stride, int kv_offset, int head_dim,
                                                         const int32_t *slots, int n_slots, float *scores,
                                                         float *out, const int kv_type) {
    const size_t element_bytes = td_kv_element_bytes(kv_type);
    const float scale = 1.0f / sqrtf((float)head_dim);
    float max_score = -INFINITY;
    for (int s = 0; s < n_slots; s++) {
        const void *k = (const char *)k_base + ((int64_t)slots[s] * kv_stride + kv_offset) * element_bytes;
        scores[s] = dot_head(q, k, head_dim, kv_type) * scale;
        if (scores[s] > max_score) max_score = scores[s];
    }
    float total = 0.0f;
    for (int s = 0; s < n_slots; s++) {
        scores[s] = td_expf(scores[s] - max_score);
        total += scores[s];
    }
    for (int d = 0; d < head_dim; d++) out[d] = 0.0f;
    for (int s = 0; s < n_slots; s++) {
        const void *v = (const char *)v_base + ((int64_t)slots[s] * kv_stride + kv_offset) * element_bytes;
        const float p = scores[s];
        for (int d = 0; d < head_dim; d++) out[d] += p * kv_element(v, d, kv_type);
    }
    const float inverse = total > 0.0f ? 1.0f / total : 0.0f;
    for (int d = 0; d < head_dim; d++) out[d] *= inverse;
}

void td_attend_scalar(const float *q, const void *k_base, const void *v_base, int kv_type, int64_t kv_stride,
                      int kv_offset, int head_dim, int heads, const int32_t *slots, int n_slots, float *scores,
                      float *out) {
    for (int g = 0; g < heads; g++) {
        const float *q_head = q + (int64_t)g * head_dim;
        float *out_head = out + (int64_t)g * head_dim;
        if (kv_type == TD_TYPE_F16) {
            attend(q_head, k_base, v_base, kv_stride, kv_offset, head_dim, slots, n_slots, scores, out_head, TD_TYPE_F16);
        } else {
            attend(q_head, k_base, v_base, kv_stride, kv_offset, head_dim, slots, n_slots, scores, out_head, TD_TYPE_F32);
        }
    }
}

/* Query heads per work item: a whole KV group (at most TD_ATTEND_MAX_HEADS heads, so the
 * kernel shares each key and value load among them) unless that leaves too few items to keep
 * every thread busy. Results do not depend on this choice. */
static int heads_per_item(int64_t m, int n_kv_heads, int group, int nthreads) {
    int heads = group < TD_ATTEND_MAX_HEADS ? group : TD_ATTEND_MAX_HEADS;
    while (heads > 1 && nthreads > 1) {
        const int64_t items = m * n_kv_heads * ((group + heads - 1) / heads);
        if (items >= 4 * (int64_t)nthreads) break;
        heads--;
    }
    return heads;
}

int td_attention(const float *q, int64_t q_stride, int64_t m, int n_heads, int n_kv_heads,
                 int head_dim, int kv_type, const void *const *k_base, const void *const *v_base,
                 int64_t kv_stride, const int32_t *slot_offsets, const int32_t *slots,
                 float *out, int64_t out_stride, int nthreads) {
    if (q == NULL || k_base == NULL || v_base == NULL || slot_offsets == NULL || out == NULL ||
        m < 0 || n_heads <= 0 || n_kv_heads <= 0 || n_heads % n_kv_heads != 0 || head_dim <= 0 ||
        kv_stride < (int64_t)n_kv_heads * head_dim || nthreads < 1) {
        return TD_EINVAL;
    }
    if (td_kv_element_bytes(kv_type) == 0) return TD_ETYPE;
    int max_slots = 0;
    for (int64_t i = 0; i < m; i++) {
        const int count = slot_offsets[i + 1] - slot_offsets[i];
        if (count < 0) return TD_EINVAL;
        for (int s = slot_offsets[i] + 1; s < slot_offsets[i + 1]; s++) {
            if (slots[s] <= slots[s - 1]) return TD_EINVAL;
        }
        if (count > max_slots) max_slots = count;
    }
    if (max_slots > 0 && (slots == NULL || slots[slot_offsets[0]] < 0)) return TD_EINVAL;

    const int group = n_heads / n_kv_heads;
    const int heads = heads_per_item(m, n_kv_heads, group, nthreads);
    const int parts = (group + heads - 1) / heads;   /* work items per (row, KV head) */
    const size_t scratch = (size_t)heads * (size_t)(max_slots > 0 ? max_slots : 1);
    float *scores = malloc((size_t)nthreads * scratch * sizeof(float));
    if (scores == NULL) return TD_ENOMEM;
    const int64_t items = m * n_kv_heads * parts;
    const td_kernel_table *k = td_active_table();
    const td_attend_fn attend_group = head_dim % k->attend_lanes == 0 && head_dim <= TD_MAX_HEAD_DIM ? k->attend : td_attend_scalar;

    #pragma omp parallel for num_threads(nthreads) schedule(static) if (nthreads > 1 && items > 1)
    for (int64_t item = 0; item < items; item++) {
        const int64_t i = item / (n_kv_heads * parts);
        const int kv_head = (int)(item / parts % n_kv_heads);
        const int first = kv_head * group + (int)(item % parts) * heads;
        const int count = kv_head * group + group - first < heads ? kv_head * group + group - first : heads;
        float *thread_scores = scores + (size_t)omp_get_thread_num() * scratch;
        attend_group(q + i * q_stride + (int64_t)first * head_dim, k_base[i], v_base[i], kv_type, kv_stride,
                     kv_head * head_dim, head_dim, count, slots + slot_offsets[i],
                     slot_offsets[i + 1] - slot_offsets[i], thread_scores, out + i * out_stride + (int64_t)first * head_dim);
    }
    free(scores);
    return TD_OK;
}
