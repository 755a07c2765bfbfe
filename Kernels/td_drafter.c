/* F32 kernels of the learned drafter: products and their gradients, RMSNorm, SwiGLU and
 * attention gradients, the training loss and AdamW.
 *
 * Products use one order of operations on every path. A dot product keeps 16 lane sums
 * (lane j sums elements j, j + 16, ... as a multiply, then an add), combines them by
 * halving (lanes j and j + 8, then j and j + 4, j and j + 2, j and j + 1), then adds the
 * n % 16 tail elements in order. Gradient products are sums of
 * element-wise multiply-adds in a fixed row order. So the AVX2 and AVX-512 paths give
 * bitwise the scalar reference's results, and every product is batch-invariant. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "td_drafter_internal.h"

/* ---- Scalar reference ---- */

static inline float combine_lanes(float *l) {
    for (int half = TD_DRAFTER_LANES / 2; half >= 1; half /= 2) {
        for (int j = 0; j < half; j++) l[j] = l[j] + l[j + half];
    }
    return l[0];
}

float td_drafter_dot_scalar(const float *w, const float *x, int64_t n) {
    float l[TD_DRAFTER_LANES] = {0};
    int64_t k = 0;
    for (; k + TD_DRAFTER_LANES <= n; k += TD_DRAFTER_LANES) {
        for (int j = 0; j < TD_DRAFTER_LANES; j++) l[j] = l[j] + w[k + j] * x[k + j];
    }
    float sum = combine_lanes(l);
    for (; k < n; k++) sum = sum + w[k] * x[k];
    return sum;
}

void td_drafter_dot4_scalar(const float *w, int64_t w_stride, const float *x, int64_t n, float *out) {
    for (int r = 0; r < TD_DRAFTER_ROW_BLOCK; r++) out[r] = td_drafter_dot_scalar(w + r * w_stride, x, n);
}

void td_drafter_axpy_scalar(float a, const float *x, float *y, int64_t n) {
    for (int64_t c = 0; c < n; c++) y[c] = y[c] + a * x[c];
}

/* ---- Dispatch ---- */

static const td_drafter_table scalar_table = {
    .dot = td_drafter_dot_scalar, .dot4 = td_drafter_dot4_scalar, .axpy = td_drafter_axpy_scalar,
};
#if defined(__x86_64__)
static const td_drafter_table avx2_table = {
    .dot = td_drafter_dot_avx2, .dot4 = td_drafter_dot4_avx2, .axpy = td_drafter_axpy_avx2,
};
static const td_drafter_table avx512_table = {
    .dot = td_drafter_dot_avx512, .dot4 = td_drafter_dot4_avx512, .axpy = td_drafter_axpy_avx512,
};
#endif

static const td_drafter_table *drafter_table(void) {
#if defined(__x86_64__)
    switch (td_isa_active()) {
    case TD_ISA_AVX512: return &avx512_table;
    case TD_ISA_AVX2: return &avx2_table;
    default: break;
    }
#endif
    return &scalar_table;
}

/* ---- Products ---- */

int td_drafter_linear(const float *x, int64_t m, int64_t in, const float *w, int64_t out, float *y, int nthreads) {
    if (x == NULL || w == NULL || y == NULL || m < 0 || in <= 0 || out <= 0 || nthreads < 1) return TD_EINVAL;
    const td_drafter_table *k = drafter_table();
    const int64_t blocks = (out + TD_DRAFTER_ROW_BLOCK - 1) / TD_DRAFTER_ROW_BLOCK;

    /* Threads take blocks of weight rows; each block stays in L1 while every activation row
     * passes by. */
    #pragma omp parallel for num_threads(nthreads) schedule(static) if (nthreads > 1 && blocks > 1)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t r0 = b * TD_DRAFTER_ROW_BLOCK;
        const float *wb = w + r0 * in;
        if (r0 + TD_DRAFTER_ROW_BLOCK <= out) {
            for (int64_t i = 0; i < m; i++) k->dot4(wb, in, x + i * in, in, y + i * out + r0);
        } else {
            for (int64_t i = 0; i < m; i++) {
                for (int64_t r = r0; r < out; r++) y[i * out + r] = k->dot(w + r * in, x + i * in, in);
            }
        }
    }
    return TD_OK;
}

/* Rows of dx handled together, so a block of weight rows is reused from cache across them. */
#define TD_DRAFTER_DX_ROWS 16
#define TD_DRAFTER_DX_WEIGHT_ROWS 32

int td_drafter_linear_backward(const float *dy, const float *x, int64_t m, int64_t in, const float *w, int64_t out,
                               float *dx, int accumulate_dx, float *dw, int nthreads) {
    if (dy == NULL || m < 0 || in <= 0 || out <= 0 || nthreads < 1) return TD_EINVAL;
    if ((dx != NULL && w == NULL) || (dw != NULL && x == NULL)) return TD_EINVAL;
    const td_drafter_table *k = drafter_table();

    if (dx != NULL) {
        /* dx[i, c] (+)= sum over r in increasing order of dy[i, r] * w[r, c]. Weight-row
         * blocks run in increasing order for every dx row, which keeps that order. */
        const int64_t row_groups = (m + TD_DRAFTER_DX_ROWS - 1) / TD_DRAFTER_DX_ROWS;
        #pragma omp parallel for num_threads(nthreads) schedule(static) if (nthreads > 1 && row_groups > 1)
        for (int64_t g = 0; g < row_groups; g++) {
            const int64_t i0 = g * TD_DRAFTER_DX_ROWS;
            const int64_t i1 = i0 + TD_DRAFTER_DX_ROWS < m ? i0 + TD_DRAFTER_DX_ROWS : m;
            if (!accumulate_dx) memset(dx + i0 * in, 0, (size_t)((i1 - i0) * in) * sizeof(float));
            for (int64_t r0 = 0; r0 < out; r0 += TD_DRAFTER_DX_WEIGHT_ROWS) {
                const int64_t r1 = r0 + TD_DRAFTER_DX_WEIGHT_ROWS < out ? r0 + TD_DRAFTER_DX_WEIGHT_ROWS : out;
                for (int64_t i = i0; i < i1; i++) {
                    for (int64_t r = r0; r < r1; r++) k->axpy(dy[i * out + r], w + r * in, dx + i * in, in);
                }
            }
        }
    }
    if (dw != NULL) {
        /* dw[r, c] += sum over i in increasing order of dy[i, r] * x[i, c]. */
        #pragma omp parallel for num_threads(nthreads) schedule(static) if (nthreads > 1 && out > 1)
        for (int64_t r = 0; r < out; r++) {
            for (int64_t i = 0; i < m; i++) k->axpy(dy[i * out + r], x + i * in, dw + r * in, in);
        }
    }
    return TD_OK;
}

/* ---- Normalisation and activations ---- */

int td_drafter_rmsnorm(const float *x, const float *w, float *y, float *rstd, int64_t m, int64_t n, float eps) {
    if (x == NULL || w == NULL || y == NULL || m < 0 || n <= 0) return TD_EINVAL;
    for (int64_t i = 0; i < m; i++) {
        const float *row = x + i * n;
        double sum = 0.0;
        for (int64_t j = 0; j < n; j++) sum += (double)(row[j] * row[j]);
        const float scale = 1.0f / sqrtf((float)(sum / (double)n) + eps);
        if (rstd != NULL) rstd[i] = scale;
        float *out = y + i * n;
        for (int64_t j = 0; j < n; j++) out[j] = row[j] * scale * w[j];
    }
    return TD_OK;
}

int td_drafter_rmsnorm_backward(const float *dy, const float *x, const float *w, const float *rstd, int64_t m,
                                int64_t n, float *dx, int accumulate_dx, float *dw) {
    if (dy == NULL || x == NULL || w == NULL || rstd == NULL || dx == NULL || m < 0 || n <= 0) return TD_EINVAL;
    for (int64_t i = 0; i < m; i++) {
        const float *g = dy + i * n, *row = x + i * n;
        const float r = rstd[i];
        /* y = x * r * w with r = (mean(x^2) + eps)^(-1/2), so dr/dx_j = -r^3 x_j / n. */
        double dot = 0.0;
        for (int64_t j = 0; j < n; j++) dot += (double)g[j] * (double)w[j] * (double)row[j];
        const float coefficient = (float)(dot * (double)r * (double)r * (double)r / (double)n);
        float *out = dx + i * n;
        for (int64_t j = 0; j < n; j++) {
            const float value = r * w[j] * g[j] - row[j] * coefficient;
            out[j] = accumulate_dx ? out[j] + value : value;
        }
        if (dw != NULL) {
            for (int64_t j = 0; j < n; j++) dw[j] += g[j] * row[j] * r;
        }
    }
    return TD_OK;
}

int td_drafter_swiglu_backward(const float *dout, const float *gate, const float *up, float *dgate, float *dup,
                               int64_t n) {
    if (dout == NULL || gate == NULL || up == NULL || dgate == NULL || dup == NULL || n < 0) return TD_EINVAL;
    for (int64_t i = 0; i < n; i++) {
        const float g = gate[i];
        const float s = 1.0f / (1.0f + expf(-g));
        const float silu = g * s;
        const float d = dout[i];
        dgate[i] = d * up[i] * (s * (1.0f + g * (1.0f - s)));
        dup[i] = d * silu;
    }
    return TD_OK;
}

int td_drafter_add(const float *x, float *y, int64_t n) {
    if (x == NULL || y == NULL || n < 0) return TD_EINVAL;
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
    return TD_OK;
}

double td_drafter_sum_squares(const float *x, int64_t n) {
    double sum = 0.0;
    for (int64_t i = 0; x != NULL && i < n; i++) sum += (double)x[i] * (double)x[i];
    return sum;
}

/* ---- Attention gradient ---- */

int td_drafter_attention_backward(const float *q, const float *k, const float *v, const float *dout, int64_t m,
                                  int n_heads, int n_kv_heads, int head_dim, const int32_t *slot_offsets,
                                  const int32_t *slots, float *dq, float *dk, float *dv) {
    if (q == NULL || k == NULL || v == NULL || dout == NULL || slot_offsets == NULL || dq == NULL || dk == NULL ||
        dv == NULL || m < 0 || n_heads <= 0 || n_kv_heads <= 0 || n_heads % n_kv_heads != 0 || head_dim <= 0) {
        return TD_EINVAL;
    }
    const int64_t q_dim = (int64_t)n_heads * head_dim, kv_dim = (int64_t)n_kv_heads * head_dim;
    int max_slots = 1;
    for (int64_t i = 0; i < m; i++) {
        const int count = slot_offsets[i + 1] - slot_offsets[i];
        if (count < 0) return TD_EINVAL;
        for (int s = slot_offsets[i]; s < slot_offsets[i + 1]; s++) {
            if (slots == NULL || slots[s] < 0 || slots[s] >= m) return TD_EINVAL;
        }
        if (count > max_slots) max_slots = count;
    }
    float *p = malloc(2 * (size_t)max_slots * sizeof(float));
    if (p == NULL) return TD_ENOMEM;
    float *dp = p + max_slots;
    memset(dq, 0, (size_t)(m * q_dim) * sizeof(float));
    memset(dk, 0, (size_t)(m * kv_dim) * sizeof(float));
    memset(dv, 0, (size_t)(m * kv_dim) * sizeof(float));
    const int group = n_heads / n_kv_heads;
    const float scale = 1.0f / sqrtf((float)head_dim);

    for (int64_t i = 0; i < m; i++) {
        const int32_t *row_slots = slots + slot_offsets[i];
        const int n_slots = slot_offsets[i + 1] - slot_offsets[i];
        for (int h = 0; h < n_heads; h++) {
            const float *qh = q + i * q_dim + (int64_t)h * head_dim;
            const float *gh = dout + i * q_dim + (int64_t)h * head_dim;
            const int64_t offset = (int64_t)(h / group) * head_dim;

            /* Recompute the probabilities as the forward pass did. */
            float max_score = -INFINITY;
            for (int s = 0; s < n_slots; s++) {
                const float *kj = k + (int64_t)row_slots[s] * kv_dim + offset;
                float dot = 0.0f;
                for (int d = 0; d < head_dim; d++) dot += qh[d] * kj[d];
                p[s] = dot * scale;
                if (p[s] > max_score) max_score = p[s];
            }
            float total = 0.0f;
            for (int s = 0; s < n_slots; s++) {
                p[s] = expf(p[s] - max_score);
                total += p[s];
            }
            const float inverse = total > 0.0f ? 1.0f / total : 0.0f;

            /* out = sum_j p_j v_j, so dp_j = dout . v_j and ds_j = p_j (dp_j - sum_l p_l dp_l). */
            float weighted = 0.0f;
            for (int s = 0; s < n_slots; s++) {
                p[s] *= inverse;
                const float *vj = v + (int64_t)row_slots[s] * kv_dim + offset;
                float dot = 0.0f;
                for (int d = 0; d < head_dim; d++) dot += gh[d] * vj[d];
                dp[s] = dot;
                weighted += p[s] * dot;
            }
            float *dqh = dq + i * q_dim + (int64_t)h * head_dim;
            for (int s = 0; s < n_slots; s++) {
                const int64_t j = row_slots[s];
                const float ds = p[s] * (dp[s] - weighted) * scale;
                const float *kj = k + j * kv_dim + offset;
                float *dkj = dk + j * kv_dim + offset, *dvj = dv + j * kv_dim + offset;
                for (int d = 0; d < head_dim; d++) {
                    dqh[d] += ds * kj[d];
                    dkj[d] += ds * qh[d];
                    dvj[d] += p[s] * gh[d];
                }
            }
        }
    }
    free(p);
    return TD_OK;
}

/* ---- Loss ---- */

/* Softmax of n logits into p (double sums); returns log of the normaliser relative to max. */
static float softmax_row(const float *logits, int64_t n, float *p) {
    float max_logit = -INFINITY;
    for (int64_t j = 0; j < n; j++) if (logits[j] > max_logit) max_logit = logits[j];
    double total = 0.0;
    for (int64_t j = 0; j < n; j++) {
        p[j] = expf(logits[j] - max_logit);
        total += p[j];
    }
    const float inverse = (float)(1.0 / total);
    for (int64_t j = 0; j < n; j++) p[j] *= inverse;
    return max_logit + logf((float)total);
}

static int64_t argmax_row(const float *x, int64_t n) {
    int64_t best = 0;
    for (int64_t j = 1; j < n; j++) if (x[j] > x[best]) best = j;
    return best;
}

int td_drafter_loss(const float *predicted, const float *target_hidden, const float *logits,
                    const float *target_logits, int64_t m, int64_t h, int64_t v, float feature_weight,
                    float ce_weight, float *d_predicted, float *d_logits, double *results) {
    if (predicted == NULL || target_hidden == NULL || logits == NULL || target_logits == NULL || results == NULL ||
        m <= 0 || h <= 0 || v <= 0) {
        return TD_EINVAL;
    }
    float *target_p = malloc((size_t)v * sizeof(float));
    if (target_p == NULL) return TD_ENOMEM;
    double feature_loss = 0.0, ce_loss = 0.0, matches = 0.0;
    const float feature_scale = feature_weight / (float)(m * h);
    const float ce_scale = ce_weight / (float)m;

    for (int64_t i = 0; i < m; i++) {
        /* SmoothL1 with beta 1 on each hidden element, averaged over elements and rows. */
        const float *y = predicted + i * h, *t = target_hidden + i * h;
        for (int64_t j = 0; j < h; j++) {
            const float d = y[j] - t[j];
            const float a = fabsf(d);
            feature_loss += a < 1.0f ? 0.5 * (double)d * (double)d : (double)a - 0.5;
            if (d_predicted != NULL) d_predicted[i * h + j] = feature_scale * fmaxf(-1.0f, fminf(1.0f, d));
        }

        /* Cross-entropy against the target's distribution over the same vocabulary. */
        const float *z = logits + i * v, *tz = target_logits + i * v;
        softmax_row(tz, v, target_p);
        float *q = d_logits != NULL ? d_logits + i * v : NULL;
        float max_logit = -INFINITY;
        for (int64_t j = 0; j < v; j++) if (z[j] > max_logit) max_logit = z[j];
        double total = 0.0;
        for (int64_t j = 0; j < v; j++) total += exp((double)(z[j] - max_logit));
        const double log_total = (double)max_logit + log(total);
        for (int64_t j = 0; j < v; j++) {
            const double log_q = (double)z[j] - log_total;
            ce_loss -= (double)target_p[j] * log_q;
            if (q != NULL) q[j] = ce_scale * ((float)exp(log_q) - target_p[j]);
        }
        if (argmax_row(z, v) == argmax_row(tz, v)) matches += 1.0;
    }
    results[0] = feature_loss / (double)(m * h);
    results[1] = ce_loss / (double)m;
    results[2] = matches;
    free(target_p);
    return TD_OK;
}

/* ---- Drafting ---- */

int td_drafter_top_k(const float *logits, int64_t n, int k, int32_t *indices, float *probabilities) {
    if (logits == NULL || indices == NULL || probabilities == NULL || n <= 0 || k <= 0 || k > n) return TD_EINVAL;
    float max_logit = -INFINITY;
    for (int64_t j = 0; j < n; j++) if (logits[j] > max_logit) max_logit = logits[j];
    double total = 0.0;
    for (int64_t j = 0; j < n; j++) total += exp((double)(logits[j] - max_logit));

    /* Insertion into a sorted list of k; ties keep the lower index first. */
    int filled = 0;
    for (int64_t j = 0; j < n; j++) {
        const float value = logits[j];
        if (filled == k && !(value > logits[indices[k - 1]])) continue;
        int at = filled < k ? filled++ : k - 1;
        while (at > 0 && value > logits[indices[at - 1]]) {
            indices[at] = indices[at - 1];
            at--;
        }
        indices[at] = (int32_t)j;
    }
    for (int i = 0; i < k; i++) probabilities[i] = (float)(exp((double)(logits[indices[i]] - max_logit)) / total);
    return TD_OK;
}

/* ---- Optimizer ---- */

int td_drafter_adamw(float *param, const float *grad, float *m1, float *m2, int64_t n, const td_adamw_step *step) {
    if (param == NULL || grad == NULL || m1 == NULL || m2 == NULL || step == NULL || n < 0) return TD_EINVAL;
    const float b1 = step->beta1, b2 = step->beta2;
    const float c1 = 1.0f / step->bias_correction1, c2 = 1.0f / step->bias_correction2;
    for (int64_t i = 0; i < n; i++) {
        const float g = grad[i] * step->grad_scale;
        m1[i] = b1 * m1[i] + (1.0f - b1) * g;
        m2[i] = b2 * m2[i] + (1.0f - b2) * g * g;
        const float update = (m1[i] * c1) / (sqrtf(m2[i] * c2) + step->epsilon);
        param[i] -= step->learning_rate * (update + step->weight_decay * param[i]);
    }
    return TD_OK;
}

/* ---- Checkpoint hashing ---- */

/* Mixes whole 8-byte words into h; n must be a multiple of 8. */
static uint64_t hash_words(uint64_t h, const unsigned char *data, size_t n) {
    for (size_t i = 0; i < n; i += 8) {
        uint64_t word;
        memcpy(&word, data + i, 8);
        h = (h ^ word) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
    }
    return h;
}

/* Mixes the last n % 8 bytes and the total length into h. */
static uint64_t hash_finish(uint64_t h, const unsigned char *tail, size_t tail_bytes, uint64_t total) {
    unsigned char last[8] = {0};
    memcpy(last, tail, tail_bytes);
    h = hash_words(h, last, 8);
    h = (h ^ total) * 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 31);
}

uint64_t td_drafter_hash(const void *data, size_t n) {
    static const unsigned char empty[1] = {0};
    const unsigned char *bytes = data != NULL ? (const unsigned char *)data : empty;
    if (data == NULL) n = 0;
    const size_t whole = n - n % 8;
    return hash_finish(hash_words(0x243F6A8885A308D3ull, bytes, whole), bytes + whole, n % 8, (uint64_t)n);
}

int td_drafter_hash_file(const char *path, uint64_t *hash, uint64_t *size) {
    if (path == NULL || hash == NULL || size == NULL) return TD_EINVAL;
    FILE *file = fopen(path, "rb");
    if (file == NULL) return TD_EINVAL;
    const size_t chunk = (size_t)1 << 20;
    unsigned char *buffer = malloc(chunk);
    if (buffer == NULL) {
        fclose(file);
        return TD_ENOMEM;
    }
    /* Whole words are hashed as they arrive; a short read can only happen at the end. */
    uint64_t h = 0x243F6A8885A308D3ull, total = 0;
    size_t got;
    size_t pending = 0;
    while ((got = fread(buffer + pending, 1, chunk - pending, file)) > 0) {
        const size_t available = pending + got;
        const size_t whole = available - available % 8;
        h = hash_words(h, buffer, whole);
        total += got;
        pending = available - whole;
        memmove(buffer, buffer + whole, pending);
    }
    const int failed = ferror(file);
    fclose(file);
    if (failed) {
        free(buffer);
        return TD_EINVAL;
    }
    *hash = hash_finish(h, buffer, pending, total);
    *size = total;
    free(buffer);
    return TD_OK;
}
