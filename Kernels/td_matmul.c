/* Weight x activation products over one or more matrices that share their input. */
#include <stdlib.h>
#include "td_internal.h"

/* Rows per unit of work handed to a thread. Small enough to balance 576-row matrices over
 * two threads, large enough that the per-chunk bookkeeping is negligible. */
#define TD_ROW_CHUNK 16
_Static_assert(TD_ROW_CHUNK % TD_INTERLEAVE == 0, "row chunks must hold whole interleaved groups");

int td_type_supported(int type) {
    switch (type) {
    case TD_TYPE_F32: case TD_TYPE_F16: case TD_TYPE_BF16:
    case TD_TYPE_Q4_0: case TD_TYPE_Q4_1: case TD_TYPE_Q8_0: case TD_TYPE_Q4_1_X16: case TD_TYPE_Q8_0_X16:
    case TD_TYPE_Q5_0: case TD_TYPE_Q4_K: case TD_TYPE_Q5_K: case TD_TYPE_Q6_K:
        return 1;
    default:
        return 0;
    }
}

static int is_quantized(int type) {
    return type == TD_TYPE_Q4_0 || type == TD_TYPE_Q4_1 || type == TD_TYPE_Q8_0 || type == TD_TYPE_Q4_1_X16 ||
           type == TD_TYPE_Q8_0_X16 ||
           type == TD_TYPE_Q5_0 || type == TD_TYPE_Q4_K || type == TD_TYPE_Q5_K || type == TD_TYPE_Q6_K;
}

size_t td_row_bytes(int type, int64_t cols) {
    if (cols <= 0) return 0;
    switch (type) {
    case TD_TYPE_F32: return (size_t)cols * 4;
    case TD_TYPE_F16: case TD_TYPE_BF16: return (size_t)cols * 2;
    default: break;
    }
    if (cols % TD_QK != 0) return 0;
    const size_t nb = (size_t)(cols / TD_QK);
    switch (type) {
    case TD_TYPE_Q4_0: return nb * sizeof(td_block_q4_0);
    case TD_TYPE_Q4_1: case TD_TYPE_Q4_1_X16: return nb * sizeof(td_block_q4_1);
    case TD_TYPE_Q8_0: case TD_TYPE_Q8_0_X16: return nb * sizeof(td_block_q8_0);
    case TD_TYPE_Q5_0: return nb * sizeof(td_block_q5_0);
    case TD_TYPE_Q4_K: return cols % TD_QK_K == 0 ? (size_t)(cols / TD_QK_K) * sizeof(td_block_q4_K) : 0;
    case TD_TYPE_Q5_K: return cols % TD_QK_K == 0 ? (size_t)(cols / TD_QK_K) * sizeof(td_block_q5_K) : 0;
    case TD_TYPE_Q6_K: return cols % TD_QK_K == 0 ? (size_t)(cols / TD_QK_K) * sizeof(td_block_q6_K) : 0;
    default: return 0;
    }
}

size_t td_matmul_scratch_bytes(int64_t m, int64_t cols) {
    if (m <= 0 || cols <= 0) return 0;
    return (size_t)m * (size_t)((cols + TD_QK - 1) / TD_QK) * sizeof(td_block_q8_act);
}

/* Quantizes one activation row of n elements with the path's quantizer, or the reference's. */
static void quantize_activations(const td_kernel_table *k, const float *x, td_block_q8_act *xq, int64_t n) {
    if (k->quantize_act != NULL) {
        k->quantize_act(x, xq, n / TD_QK);
    } else {
        td_quantize_row_q8_act(x, xq, n);
    }
}

static td_dot_q_fn quantized_dot(const td_kernel_table *k, int type) {
    switch (type) {
    case TD_TYPE_Q4_0: return k->dot_q4_0;
    case TD_TYPE_Q4_1: return k->dot_q4_1;
    case TD_TYPE_Q8_0: return k->dot_q8_0;
    case TD_TYPE_Q5_0: return k->dot_q5_0;
    case TD_TYPE_Q4_K: return k->dot_q4_K;
    case TD_TYPE_Q5_K: return k->dot_q5_K;
    case TD_TYPE_Q6_K: return k->dot_q6_K;
    default: return NULL;
    }
}

static td_dot_x4_q_fn quantized_dot_x4(const td_kernel_table *k, int type) {
    switch (type) {
    case TD_TYPE_Q4_0: return k->dot_x4_q4_0;
    case TD_TYPE_Q5_0: return k->dot_x4_q5_0;
    case TD_TYPE_Q4_K: return k->dot_x4_q4_K;
    case TD_TYPE_Q5_K: return k->dot_x4_q5_K;
    case TD_TYPE_Q6_K: return k->dot_x4_q6_K;
    default: return NULL;
    }
}

static td_dot_f_fn float_dot(const td_kernel_table *k, int type) {
    switch (type) {
    case TD_TYPE_F16: return k->dot_f16;
    case TD_TYPE_BF16: return k->dot_bf16;
    default: return k->dot_f32;
    }
}

int td_dot_row(int type, const void *w, const float *x, int64_t n, float *result) {
    /* One row-major row only: an interleaved matrix has no contiguous rows. */
    if (type == TD_TYPE_Q4_1_X16 || type == TD_TYPE_Q8_0_X16 || !td_type_supported(type) || td_row_bytes(type, n) == 0) return TD_EINVAL;
    const td_kernel_table *k = td_active_table();
    if (!is_quantized(type)) {
        *result = float_dot(k, type)(w, x, n);
        return TD_OK;
    }
    td_block_q8_act *xq = malloc(td_matmul_scratch_bytes(1, n));
    if (xq == NULL) return TD_ENOMEM;
    quantize_activations(k, x, xq, n);
    *result = quantized_dot(k, type)(w, xq, n / TD_QK);
    free(xq);
    return TD_OK;
}

/* Computes rows [r0, r1) of one matrix for all m batch rows. Each weight row is reused from
 * L1 for every batch row. Each output element is one call of the path's dot product, or one
 * lane of the interleaved kernel, which computes the same operations. */
static void matmul_rows(const td_kernel_table *k, const td_matrix *mat, int64_t r0, int64_t r1,
                        const float *x, const td_block_q8_act *xq, int64_t m, int64_t cols,
                        int64_t x_stride) {
    const size_t row_bytes = td_row_bytes(mat->type, cols);
    const char *base = (const char *)mat->data;
    if (mat->type == TD_TYPE_Q4_1_X16 || mat->type == TD_TYPE_Q8_0_X16) {
        /* r0 is a multiple of TD_ROW_CHUNK, itself a multiple of TD_INTERLEAVE. */
        const int64_t nb = cols / TD_QK;
        const int q4 = mat->type == TD_TYPE_Q4_1_X16;
        const size_t group_bytes = (size_t)nb * (q4 ? sizeof(td_block_q4_1x16) : sizeof(td_block_q8_0x16));
        const td_gemm_x16_fn gemm = q4 ? k->gemm_q4_1x16 : k->gemm_q8_0x16;
        for (int64_t r = r0; r < r1; r += TD_INTERLEAVE) {
            const void *group = base + (size_t)(r / TD_INTERLEAVE) * group_bytes;
            const int valid = (int)(r1 - r < TD_INTERLEAVE ? r1 - r : TD_INTERLEAVE);
            gemm(group, nb, xq, nb, m, mat->out + r, mat->out_stride, valid);
        }
    } else if (is_quantized(mat->type)) {
        const td_dot_q_fn dot = quantized_dot(k, mat->type);
        const int64_t nb = cols / TD_QK;
        const td_dot_x4_q_fn dot_x4 = quantized_dot_x4(k, mat->type);
        for (int64_t r = r0; r < r1; r++) {
            const void *w = base + (size_t)r * row_bytes;
            int64_t i = 0;
            if (dot_x4 != NULL) {
                /* Batches: each weight row serves four activation rows per pass. */
                for (; i + 4 <= m; i += 4) {
                    float four[4];
                    dot_x4(w, xq + i * nb, nb, nb, four);
                    for (int j = 0; j < 4; j++) mat->out[(i + j) * mat->out_stride + r] = four[j];
                }
            }
            for (; i < m; i++) mat->out[i * mat->out_stride + r] = dot(w, xq + i * nb, nb);
        }
    } else {
        const td_dot_f_fn dot = float_dot(k, mat->type);
        for (int64_t r = r0; r < r1; r++) {
            const void *w = base + (size_t)r * row_bytes;
            for (int64_t i = 0; i < m; i++) mat->out[i * mat->out_stride + r] = dot(w, x + i * x_stride, cols);
        }
    }
}

int td_matmul(const td_matrix *mats, int n_mats, const float *x, int64_t m, int64_t cols,
              int64_t x_stride, void *scratch, int nthreads) {
    if (mats == NULL || n_mats <= 0 || n_mats > 8 || x == NULL || m <= 0 || cols <= 0 ||
        x_stride < cols || nthreads < 1) {
        return TD_EINVAL;
    }
    int any_quantized = 0;
    int64_t chunk_start[9];
    chunk_start[0] = 0;
    for (int j = 0; j < n_mats; j++) {
        if (!td_type_supported(mats[j].type)) return TD_ETYPE;
        if (td_row_bytes(mats[j].type, cols) == 0 || mats[j].rows <= 0 || mats[j].out_stride < mats[j].rows ||
            mats[j].data == NULL || mats[j].out == NULL) {
            return TD_EINVAL;
        }
        any_quantized |= is_quantized(mats[j].type);
        chunk_start[j + 1] = chunk_start[j] + (mats[j].rows + TD_ROW_CHUNK - 1) / TD_ROW_CHUNK;
    }
    if (any_quantized && scratch == NULL) return TD_EINVAL;

    const td_kernel_table *k = td_active_table();
    td_block_q8_act *xq = (td_block_q8_act *)scratch;
    const int64_t nb = cols / TD_QK;
    const int64_t n_chunks = chunk_start[n_mats];

    #pragma omp parallel num_threads(nthreads) if (nthreads > 1)
    {
        if (any_quantized) {
            #pragma omp for schedule(static)
            for (int64_t i = 0; i < m; i++) quantize_activations(k, x + i * x_stride, xq + i * nb, cols);
        }
        #pragma omp for schedule(static)
        for (int64_t c = 0; c < n_chunks; c++) {
            int j = 0;
            while (c >= chunk_start[j + 1]) j++;
            const int64_t r0 = (c - chunk_start[j]) * TD_ROW_CHUNK;
            const int64_t r1 = r0 + TD_ROW_CHUNK < mats[j].rows ? r0 + TD_ROW_CHUNK : mats[j].rows;
            matmul_rows(k, &mats[j], r0, r1, x, xq, m, cols, x_stride);
        }
    }
    return TD_OK;
}
