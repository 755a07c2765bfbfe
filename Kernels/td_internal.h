/* Declarations shared by the kernel sources; not part of the public API. */
#ifndef TD_INTERNAL_H
#define TD_INTERNAL_H

#include "td_kernels.h"

/* Dot product of a quantized weight row (nb blocks) with quantized activations. */
typedef float (*td_dot_q_fn)(const void *w, const td_block_q8_act *x, int64_t nb);
/* Dot product of a float-typed weight row (n elements) with float activations. */
typedef float (*td_dot_f_fn)(const void *w, const float *x, int64_t n);

/* Dot products of one weight row with four activation rows (x_stride blocks apart), out[0..3];
 * each result bitwise equal to the one-row function's. */
typedef void (*td_dot_x4_q_fn)(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out);

/* Products of one interleaved group of TD_INTERLEAVE weight rows (nb blocks each) with m
 * activation rows (x_stride blocks apart): out[i * out_stride + r] for r < valid_rows. Each
 * result is bitwise equal to the row-major one-row function's on every path. */
typedef void (*td_gemm_x16_fn)(const void *group, int64_t nb, const td_block_q8_act *x, int64_t x_stride,
                               int64_t m, float *out, int64_t out_stride, int valid_rows);

/* Attention of `heads` consecutive query heads that read the same KV head, over their listed
 * KV slots (see td_attention). q and out hold the heads head_dim floats apart. kv_stride and
 * kv_offset count elements of kv_type. scores is scratch for min(heads, TD_ATTEND_MAX_HEADS)
 * * n_slots floats. Each head's result equals td_attend_scalar's for that head alone. */
typedef void (*td_attend_fn)(const float *q, const void *k_base, const void *v_base, int kv_type, int64_t kv_stride,
                             int kv_offset, int head_dim, int heads, const int32_t *slots, int n_slots,
                             float *scores, float *out);

/* Query heads one attention kernel call handles together at most. */
#define TD_ATTEND_MAX_HEADS 4

/* Bytes per key or value element of a KV cache type, or 0 for a type attention does not read. */
static inline size_t td_kv_element_bytes(int kv_type) {
    switch (kv_type) {
    case TD_TYPE_F32: return 4;
    case TD_TYPE_F16: return 2;
    default: return 0;
    }
}

/* Largest head size the SIMD attention kernel takes (it keeps a head in registers). */
#define TD_MAX_HEAD_DIM 256

/* One ISA path: a dot product per weight type, optional four-activation-row forms (NULL when
 * the path has none), and the interleaved-layout products. */
typedef struct {
    td_dot_q_fn dot_q4_0;
    td_dot_q_fn dot_q4_1;
    td_dot_q_fn dot_q8_0;
    td_dot_x4_q_fn dot_x4_q4_0;
    td_gemm_x16_fn gemm_q4_1x16;
    td_gemm_x16_fn gemm_q8_0x16;
    /* Quantizes nb blocks of activations exactly as td_quantize_row_q8_act does. */
    void (*quantize_act)(const float *x, td_block_q8_act *y, int64_t nb);
    td_dot_f_fn dot_f32;
    td_dot_f_fn dot_f16;
    td_dot_f_fn dot_bf16;
    td_attend_fn attend;
    int attend_lanes;       /* head_dim must be a multiple of this for `attend` */
    /* Q5_0 and the K-quants. nb counts 32-element activation blocks for these as for the
     * others, so a K-quant row of nb blocks has nb / 8 super-blocks. */
    td_dot_q_fn dot_q5_0;
    td_dot_q_fn dot_q4_K;
    td_dot_q_fn dot_q5_K;
    td_dot_q_fn dot_q6_K;
    td_dot_x4_q_fn dot_x4_q5_0;
    td_dot_x4_q_fn dot_x4_q4_K;
    td_dot_x4_q_fn dot_x4_q5_K;
    td_dot_x4_q_fn dot_x4_q6_K;
} td_kernel_table;

const td_kernel_table *td_active_table(void);

/* Scalar reference path (td_quant_ref.c). */
float td_dot_q4_0_scalar(const void *w, const td_block_q8_act *x, int64_t nb);
float td_dot_q4_1_scalar(const void *w, const td_block_q8_act *x, int64_t nb);
float td_dot_q8_0_scalar(const void *w, const td_block_q8_act *x, int64_t nb);
/* Running sums of one Q4_1 row product (see td_quant_ref.c for the order of operations). */
typedef struct {
    float acc[16];
    float offsets;
    float offsets_odd;
} td_q4_1_sums;
/* Adds blocks blk[0] and blk[1] (an even block and the next). */
void td_q4_1_pair_scalar(td_q4_1_sums *st, const td_block_q4_1 *blk, const td_block_q8_act *x);
/* Adds the odd last block when `last` is not NULL, then returns the product. */
float td_q4_1_finish_scalar(td_q4_1_sums *st, const td_block_q4_1 *last, const td_block_q8_act *x);
void td_gemm_q4_1x16_scalar(const void *group, int64_t nb, const td_block_q8_act *x, int64_t x_stride,
                            int64_t m, float *out, int64_t out_stride, int valid_rows);
void td_gemm_q8_0x16_scalar(const void *group, int64_t nb, const td_block_q8_act *x, int64_t x_stride,
                            int64_t m, float *out, int64_t out_stride, int valid_rows);
float td_dot_f32_scalar(const void *w, const float *x, int64_t n);
float td_dot_f16_scalar(const void *w, const float *x, int64_t n);
float td_dot_bf16_scalar(const void *w, const float *x, int64_t n);
void td_attend_scalar(const float *q, const void *k_base, const void *v_base, int kv_type, int64_t kv_stride,
                      int kv_offset, int head_dim, int heads, const int32_t *slots, int n_slots,
                      float *scores, float *out);

/* Unpacks the 6-bit scales and minimums of a Q4_K or Q5_K super-block (see td_quant.h). */
static inline void td_kquant_scales_mins(const uint8_t *packed, uint8_t *scales, uint8_t *mins) {
    for (int s = 0; s < 4; s++) {
        scales[s] = packed[s] & 63;
        mins[s] = packed[s + 4] & 63;
    }
    for (int s = 4; s < 8; s++) {
        scales[s] = (uint8_t)((packed[s + 4] & 15) | (packed[s - 4] >> 6) << 4);
        mins[s] = (uint8_t)((packed[s + 4] >> 4) | (packed[s] >> 6) << 4);
    }
}

/* Scalar Q5_0 and K-quant kernels (td_kquant_ref.c). */
int td_dequantize_row_kquant(int type, const void *src, float *dst, int64_t n);
float td_dot_q5_0_scalar(const void *w, const td_block_q8_act *x, int64_t nb);
float td_dot_q4_K_scalar(const void *w, const td_block_q8_act *x, int64_t nb);
float td_dot_q5_K_scalar(const void *w, const td_block_q8_act *x, int64_t nb);
float td_dot_q6_K_scalar(const void *w, const td_block_q8_act *x, int64_t nb);

#if defined(__x86_64__)
/* AVX2 Q5_0 and K-quant kernels (td_kquant_avx2.c). */
float td_dot_q5_0_avx2(const void *w, const td_block_q8_act *x, int64_t nb);
float td_dot_q4_K_avx2(const void *w, const td_block_q8_act *x, int64_t nb);
float td_dot_q5_K_avx2(const void *w, const td_block_q8_act *x, int64_t nb);
float td_dot_q6_K_avx2(const void *w, const td_block_q8_act *x, int64_t nb);
void td_dot_q5_0_x4_avx2(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out);
void td_dot_q4_K_x4_avx2(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out);
void td_dot_q5_K_x4_avx2(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out);
void td_dot_q6_K_x4_avx2(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out);

/* AVX-512 VNNI Q5_0 and K-quant kernels (td_kquant_avx512.c). */
float td_dot_q5_0_avx512(const void *w, const td_block_q8_act *x, int64_t nb);
float td_dot_q4_K_avx512(const void *w, const td_block_q8_act *x, int64_t nb);
float td_dot_q5_K_avx512(const void *w, const td_block_q8_act *x, int64_t nb);
float td_dot_q6_K_avx512(const void *w, const td_block_q8_act *x, int64_t nb);
void td_dot_q5_0_x4_avx512(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out);
void td_dot_q4_K_x4_avx512(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out);
void td_dot_q5_K_x4_avx512(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out);
void td_dot_q6_K_x4_avx512(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out);
#endif

#if defined(__x86_64__)
/* AVX2 path (td_quant_avx2.c). */
float td_dot_q4_0_avx2(const void *w, const td_block_q8_act *x, int64_t nb);
float td_dot_q4_1_avx2(const void *w, const td_block_q8_act *x, int64_t nb);
float td_dot_q8_0_avx2(const void *w, const td_block_q8_act *x, int64_t nb);
float td_dot_f32_avx2(const void *w, const float *x, int64_t n);
float td_dot_f16_avx2(const void *w, const float *x, int64_t n);
float td_dot_bf16_avx2(const void *w, const float *x, int64_t n);
void td_gemm_q4_1x16_avx2(const void *group, int64_t nb, const td_block_q8_act *x, int64_t x_stride,
                          int64_t m, float *out, int64_t out_stride, int valid_rows);
void td_gemm_q8_0x16_avx2(const void *group, int64_t nb, const td_block_q8_act *x, int64_t x_stride,
                          int64_t m, float *out, int64_t out_stride, int valid_rows);
void td_dot_q4_0_x4_avx2(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out);
void td_attend_avx2(const float *q, const void *k_base, const void *v_base, int kv_type, int64_t kv_stride,
                    int kv_offset, int head_dim, int heads, const int32_t *slots, int n_slots,
                    float *scores, float *out);
/* The same kernel with AVX-512VL's 32 registers (td_attention_avx512.c). */
void td_attend_avx512(const float *q, const void *k_base, const void *v_base, int kv_type, int64_t kv_stride,
                      int kv_offset, int head_dim, int heads, const int32_t *slots, int n_slots,
                      float *scores, float *out);

/* AVX-512 VNNI path (td_quant_avx512.c). */
float td_dot_q4_0_avx512(const void *w, const td_block_q8_act *x, int64_t nb);
float td_dot_q4_1_avx512(const void *w, const td_block_q8_act *x, int64_t nb);
float td_dot_q8_0_avx512(const void *w, const td_block_q8_act *x, int64_t nb);
void td_gemm_q4_1x16_avx512(const void *group, int64_t nb, const td_block_q8_act *x, int64_t x_stride,
                            int64_t m, float *out, int64_t out_stride, int valid_rows);
void td_quantize_row_q8_act_avx512(const float *x, td_block_q8_act *y, int64_t nb);
void td_gemm_q8_0x16_avx512(const void *group, int64_t nb, const td_block_q8_act *x, int64_t x_stride,
                            int64_t m, float *out, int64_t out_stride, int valid_rows);
void td_dot_q4_0_x4_avx512(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out);
float td_dot_f32_avx512(const void *w, const float *x, int64_t n);

#endif

/* The few OpenMP runtime entry points used; declared here so no omp.h include path is needed. */
int omp_get_thread_num(void);
void kmp_set_blocktime(int milliseconds);

#endif
