/* Row-wise operations: RMSNorm, RoPE, SwiGLU and attention over the KV cache. All loops that
 * reduce run in a fixed element order, so results are independent of batching and threads. */
#include <math.h>
#include <stdlib.h>
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

int td_rope_pairs(float *x, int64_t m, int64_t stride, int n_heads, int head_dim,
                  const int32_t *positions, float base) {
    if (x == NULL || positions == NULL || m < 0 || n_heads <= 0 || head_dim <= 0 ||
        head_dim % 2 != 0 || stride < (int64_t)n_heads * head_dim || !(base > 0.0f)) {
        return TD_EINVAL;
    }
    const float theta_scale = powf(base, -2.0f / (float)head_dim);
    for (int64_t i = 0; i < m; i++) {
        /* The angle of pair p is pos * theta_scale^p, built by repeated float multiplication
         * as llama.cpp does. It depends on the position alone, not on the batch. */
        float theta = (float)positions[i];
        for (int p = 0; p < head_dim / 2; p++) {
            const float c = cosf(theta), s = sinf(theta);
            for (int h = 0; h < n_heads; h++) {
                float *pair = x + i * stride + (int64_t)h * head_dim + 2 * p;
                const float x0 = pair[0], x1 = pair[1];
                pair[0] = x0 * c - x1 * s;
                pair[1] = x0 * s + x1 * c;
            }
            theta *= theta_scale;
        }
    }
    return TD_OK;
}

int td_round_to_half(const float *x, float *y, int64_t n) {
    if (x == NULL || y == NULL || n < 0) return TD_EINVAL;
    for (int64_t i = 0; i < n; i++) y[i] = td_round_half_finite(x[i]);
    return TD_OK;
}

int td_swiglu(const float *gate, const float *up, float *out, int64_t n) {
    if (gate == NULL || up == NULL || out == NULL || n < 0) return TD_EINVAL;
    for (int64_t i = 0; i < n; i++) {
        const float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
    return TD_OK;
}

/* q . k over head_dim elements with 8 partial sums (lane j takes elements j, j+8, ...),
 * combined in a fixed tree; the compiler may vectorise the lanes without changing results. */
static inline float dot_head(const float *q, const float *k, int head_dim) {
    float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int d = 0;
    for (; d + 8 <= head_dim; d += 8) {
        for (int j = 0; j < 8; j++) lanes[j] += q[d + j] * k[d + j];
    }
    float sum = ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
    for (; d < head_dim; d++) sum += q[d] * k[d];
    return sum;
}

void td_attend_scalar(const float *q, const float *k_base, const float *v_base, int64_t kv_stride,
                       int kv_offset, int head_dim, const int32_t *slots, int n_slots,
                       float *scores, float *out) {
    const float scale = 1.0f / sqrtf((float)head_dim);
    float max_score = -INFINITY;
    for (int s = 0; s < n_slots; s++) {
        const float *k = k_base + (int64_t)slots[s] * kv_stride + kv_offset;
        scores[s] = dot_head(q, k, head_dim) * scale;
        if (scores[s] > max_score) max_score = scores[s];
    }
    float total = 0.0f;
    for (int s = 0; s < n_slots; s++) {
        scores[s] = expf(scores[s] - max_score);
        total += scores[s];
    }
    for (int d = 0; d < head_dim; d++) out[d] = 0.0f;
    for (int s = 0; s < n_slots; s++) {
        const float *v = v_base + (int64_t)slots[s] * kv_stride + kv_offset;
        const float p = scores[s];
        for (int d = 0; d < head_dim; d++) out[d] += p * v[d];
    }
    const float inverse = total > 0.0f ? 1.0f / total : 0.0f;
    for (int d = 0; d < head_dim; d++) out[d] *= inverse;
}

int td_attention(const float *q, int64_t q_stride, int64_t m, int n_heads, int n_kv_heads,
                 int head_dim, const float *const *k_base, const float *const *v_base,
                 int64_t kv_stride, const int32_t *slot_offsets, const int32_t *slots,
                 float *out, int64_t out_stride, int nthreads) {
    if (q == NULL || k_base == NULL || v_base == NULL || slot_offsets == NULL || out == NULL ||
        m < 0 || n_heads <= 0 || n_kv_heads <= 0 || n_heads % n_kv_heads != 0 || head_dim <= 0 ||
        kv_stride < (int64_t)n_kv_heads * head_dim || nthreads < 1) {
        return TD_EINVAL;
    }
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

    float *scores = malloc((size_t)nthreads * (size_t)(max_slots > 0 ? max_slots : 1) * sizeof(float));
    if (scores == NULL) return TD_ENOMEM;
    const int group = n_heads / n_kv_heads;
    const int64_t items = m * n_heads;
    const td_kernel_table *k = td_active_table();
    const td_attend_fn attend = head_dim % k->attend_lanes == 0 && head_dim <= TD_MAX_HEAD_DIM ? k->attend : td_attend_scalar;

    #pragma omp parallel for num_threads(nthreads) schedule(static) if (nthreads > 1 && items > 1)
    for (int64_t item = 0; item < items; item++) {
        const int64_t i = item / n_heads;
        const int h = (int)(item % n_heads);
        float *thread_scores = scores + (size_t)omp_get_thread_num() * (size_t)max_slots;
        attend(q + i * q_stride + (int64_t)h * head_dim, k_base[i], v_base[i], kv_stride,
                   (h / group) * head_dim, head_dim, slots + slot_offsets[i],
                   slot_offsets[i + 1] - slot_offsets[i], thread_scores, out + i * out_stride + (int64_t)h * head_dim);
    }
    free(scores);
    return TD_OK;
}
