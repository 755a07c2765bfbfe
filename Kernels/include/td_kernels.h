/*
 * TailDraft's C kernels: quantized matrix products, normalisation, RoPE and attention.
 *
 * Contracts shared by every kernel:
 * - Functions return 0 on success and a negative TD_E* code on invalid arguments; none exits.
 * - Batch invariance: each output element is computed by the same instructions in the same
 *   order whatever the batch size m, the row's index in the batch and the thread count. Work
 *   is split across threads by output rows, attention heads or query rows, never along a
 *   reduction axis. Results may differ between ISA paths, never within one.
 * - Matrices are row-major in ggml order: a weight with `rows` rows of `cols` elements stores
 *   row r at byte offset r * td_row_bytes(type, cols). Interleaved types (td_repack) store
 *   groups of TD_INTERLEAVE rows instead, and give bitwise the same products as their
 *   row-major type on the same path.
 */
#ifndef TD_KERNELS_H
#define TD_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "td_quant.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes. */
#define TD_OK 0
#define TD_EINVAL (-1)      /* an argument is out of range */
#define TD_ETYPE (-2)       /* the tensor type has no kernel */
#define TD_EISA (-3)        /* the requested ISA path is not supported by this CPU */
#define TD_ENOMEM (-4)      /* a scratch allocation failed */

/* Tensor type codes, equal to ggml's. */
enum td_type {
    TD_TYPE_F32 = 0,
    TD_TYPE_F16 = 1,
    TD_TYPE_Q4_0 = 2,
    TD_TYPE_Q4_1 = 3,
    TD_TYPE_Q5_0 = 6,
    TD_TYPE_Q8_0 = 8,
    TD_TYPE_Q4_K = 12,
    TD_TYPE_Q5_K = 13,
    TD_TYPE_Q6_K = 14,
    TD_TYPE_BF16 = 30,
    /* Engine-internal interleaved layouts, never found in files (see td_repack). */
    TD_TYPE_Q4_1_X16 = 0x1003,
    TD_TYPE_Q8_0_X16 = 0x1008,
};

/* Instruction-set paths. */
enum td_isa {
    TD_ISA_SCALAR = 0,  /* portable C; the reference every other path is tested against */
    TD_ISA_AVX2 = 1,    /* AVX2 + FMA + F16C */
    TD_ISA_AVX512 = 2,  /* AVX-512 F/BW/DQ/VL + VNNI */
};

/* Returns the best path this CPU supports. */
int td_isa_best(void);
/* Returns the active path. The first call picks td_isa_best(), or the path named by the
 * TAILDRAFT_ISA environment variable (scalar, avx2 or avx512) when it is set and supported. */
int td_isa_active(void);
/* Selects a path for all later calls; returns TD_EISA if the CPU lacks it. Not thread-safe
 * against concurrent kernel calls. */
int td_isa_set(int isa);
/* Returns a static name for a path: "scalar", "avx2", "avx512". */
const char *td_isa_name(int isa);
/* Parses a path name; returns -1 for an unknown name. */
int td_isa_parse(const char *name);

/* Returns whether the kernels can multiply weights of this type. */
int td_type_supported(int type);
/* Returns the bytes of one row of `cols` elements, or 0 when cols is not a multiple of the
 * block size or the type is unknown. */
size_t td_row_bytes(int type, int64_t cols);

/* Returns the interleaved type td_repack makes of `type` (TD_TYPE_Q4_1 -> TD_TYPE_Q4_1_X16,
 * TD_TYPE_Q8_0 -> TD_TYPE_Q8_0_X16), or -1 when the type has no interleaved layout. */
int td_interleaved_type(int type);
/* Bytes of a matrix of `rows` x `cols` in the interleaved layout: rows rounded up to a
 * multiple of TD_INTERLEAVE; 0 when the type has no interleaved layout or cols is invalid. */
size_t td_repacked_bytes(int type, int64_t rows, int64_t cols);
/* Copies a row-major matrix of `type` into dst (td_repacked_bytes bytes) in the interleaved
 * layout; rows past `rows` in the last group are zero. Cost: one pass over the matrix. */
int td_repack(int type, const void *src, int64_t rows, int64_t cols, void *dst);
/* Dequantizes row `row` of an interleaved matrix of `cols` columns into dst, giving the same
 * floats as td_dequantize_row on the row-major original. */
int td_dequantize_interleaved_row(int type, const void *data, int64_t row, int64_t cols, float *dst);

/* Half-float conversion (exact for fp16 -> fp32; round-to-nearest-even for fp32 -> fp16). */
float td_fp16_to_fp32(td_fp16 h);
td_fp16 td_fp32_to_fp16(float f);
float td_bf16_to_fp32(uint16_t h);

/* Quantizes n activations (n a multiple of 32) into n / 32 blocks. */
int td_quantize_row_q8_act(const float *x, td_block_q8_act *y, int64_t n);
/* Quantizes n weights (n a multiple of 32) into n / 32 Q8_0 blocks: each block's scale is
 * its largest magnitude / 127 rounded to half precision, and each value the nearest multiple
 * of that scale (ties to even), so |x - d * q| <= d / 2. */
int td_quantize_row_q8_0(const float *x, void *dst, int64_t n);
/* Dequantizes one row of n elements of any supported type into floats. */
int td_dequantize_row(int type, const void *src, float *dst, int64_t n);

/* Dot product of one weight row of `n` elements with a float activation row, using the
 * active ISA path exactly as td_matmul does (activations are quantized first for quantized
 * weights). For tests and benchmarks. */
int td_dot_row(int type, const void *w, const float *x, int64_t n, float *result);

/* One weight matrix of a td_matmul call. */
typedef struct {
    int32_t type;           /* td_type of the weights */
    int64_t rows;           /* output features */
    const void *data;       /* rows * td_row_bytes(type, cols) bytes */
    float *out;             /* out[i * out_stride + r] receives row r for batch row i */
    int64_t out_stride;     /* floats between consecutive batch rows of out; >= rows */
} td_matrix;

/*
 * Multiplies m activation rows (x[i * x_stride .. + cols]) by each of n_mats weight matrices
 * that share the same input: out = x * W^T. Fusing matrices that share an input (Q, K and V;
 * gate and up) saves a thread barrier per matrix.
 *
 * scratch must hold td_matmul_scratch_bytes(m, cols) bytes (activations quantized once per
 * row). Threads: nthreads >= 1 OpenMP threads split the rows of all matrices; each output
 * element is computed by one thread in a fixed order (see the batch-invariance contract).
 * Cost: O(m * cols * total rows) multiply-adds; each weight row is read once per call.
 */
int td_matmul(const td_matrix *mats, int n_mats, const float *x, int64_t m, int64_t cols,
              int64_t x_stride, void *scratch, int nthreads);
size_t td_matmul_scratch_bytes(int64_t m, int64_t cols);

/* y[i] = x[i] / sqrt(mean(x^2) + eps) * w[i] for each of m rows of n elements. The sum of
 * squares runs in element order. y may alias x. */
int td_rmsnorm(const float *x, const float *w, float *y, int64_t m, int64_t n, float eps);

/*
 * Rotates adjacent pairs (x[2i], x[2i+1]) of each head by pos * base^(-2i / head_dim)
 * (llama's "normal" RoPE as GGUF files of the llama architecture expect).
 * x contains m rows of n_heads * head_dim floats with row stride `stride`, and positions m entries.
 */
int td_rope_pairs(float *x, int64_t m, int64_t stride, int n_heads, int head_dim,
                  const int32_t *positions, float base);

/*
 * Rotates the halves of each head, pairing x[i] with x[i + head_dim / 2], by
 * pos * base^(-2i / head_dim) (GPT-NeoX style RoPE, which GGUF files of the qwen2
 * architecture expect). Arguments as td_rope_pairs; pair i of a position turns by the same
 * angle, bit for bit, in both kernels.
 */
int td_rope_halves(float *x, int64_t m, int64_t stride, int n_heads, int head_dim,
                   const int32_t *positions, float base);

/* x[i * stride + j] += bias[j] for m rows of n elements (a projection's bias, added after
 * the matmul). Each element is one float addition, so rows are independent of the batch. */
int td_add_bias(float *x, int64_t m, int64_t stride, const float *bias, int64_t n);

/* Returns x rounded to the nearest half-precision value (ties to even), or x itself when its
 * magnitude is beyond the half range (65504), so extreme values never become infinite. */
float td_round_half_finite(float x);
/* y[i] = td_round_half_finite(x[i]) for n elements. y may alias x. */
int td_round_to_half(const float *x, float *y, int64_t n);
/* y[i] = x[i] as a half float, rounded to nearest even, for n elements. Finite values that
 * round past the half range become +-65504 instead of infinity. So td_fp16_to_fp32(y[i])
 * equals td_round_half_finite(x[i]) whenever |x[i]| < 65520; beyond that this function
 * saturates while td_round_half_finite keeps x[i]. */
int td_convert_to_half(const float *x, td_fp16 *y, int64_t n);

/* y[i] = e^x[i] for n floats, as attention's softmax and td_swiglu compute it: the same bits
 * on every ISA path and thread count, independent of the C library. */
int td_exp_row(const float *x, float *y, int64_t n);

/* out[i] = silu(gate[i]) * up[i] for n elements. out may alias gate or up. */
int td_swiglu(const float *gate, const float *up, float *out, int64_t n);

/* Returns the first index of the largest of n floats, comparing with ==, so +0 and -0 tie.
 * NaN values are skipped; with no other value (n == 0 or all NaN) it returns 0. O(n). */
int64_t td_argmax(const float *x, int64_t n);

/*
 * Grouped-query attention for m query rows.
 *
 * q: m rows of n_heads * head_dim floats (row stride q_stride). Query head h reads KV head
 * h / (n_heads / n_kv_heads). Keys and values are elements of kv_type: TD_TYPE_F32 (float) or
 * TD_TYPE_F16 (td_fp16, converted to float exactly on load). Row i attends to KV slots listed
 * in slots[slot_offsets[i] .. slot_offsets[i + 1]) in strictly increasing order. Its keys
 * start at k_base[i] + slot * kv_stride elements and its values at v_base[i] + slot * kv_stride
 * elements, where each slot contains n_kv_heads * head_dim elements. Each row has its own
 * bases, so rows of different sequences may share a call.
 * out: m rows of n_heads * head_dim floats (row stride out_stride).
 *
 * Each (row, head) walks its slots in list order: scores, a running max, exponentials and a
 * weighted sum of values, all in slot order. The result for a row depends only on its query
 * and the listed slots' contents, not on m or the thread count. F16 storage gives the same
 * bits as F32 storage of the same half-precision values, on every ISA path.
 * Returns TD_ETYPE for any other kv_type.
 */
int td_attention(const float *q, int64_t q_stride, int64_t m, int n_heads, int n_kv_heads,
                 int head_dim, int kv_type, const void *const *k_base, const void *const *v_base,
                 int64_t kv_stride, const int32_t *slot_offsets, const int32_t *slots,
                 float *out, int64_t out_stride, int nthreads);

/* Benchmark probes. td_sum_words reads count 64-bit words with nthreads threads and returns
 * their sum (a memory read bandwidth probe). td_int8_peak runs a register-only loop of int8
 * multiply-adds on the active ISA path, `iterations` times per thread, and returns a value to
 * keep the work alive; td_int8_peak_macs_per_iteration gives its multiply-adds per thread and
 * iteration (0 on the scalar path, which has no int8 dot instruction). td_int8_scaled_peak
 * runs as many multiply-adds per iteration, but also converts each instruction's int32 sums
 * to float and adds them into float accumulators with a fused multiply-add. That is the
 * least work per instruction that Q4_1's per-group float accumulation order needs. */
uint64_t td_sum_words(const uint64_t *data, size_t count, int nthreads);
int64_t td_int8_peak(int64_t iterations, int nthreads);
int64_t td_int8_scaled_peak(int64_t iterations, int nthreads);
int64_t td_int8_peak_macs_per_iteration(void);

/* Sets libomp's spin time after a parallel region, in milliseconds (libomp's default is 200,
 * which burns an idle core), for the parallel regions the calling thread starts. */
void td_set_blocktime_ms(int ms);

/*
 * Learned drafter kernels (td_drafter*.c): F32 products and their gradients for a small
 * model trained online. Every product computes each output element in one fixed order, the
 * same on every ISA path, so forward results are batch-invariant and equal across paths.
 */

/* y[i * out + r] = w[r] . x[i] for m rows of `in` floats and `out` weight rows. Threads
 * split the weight rows. */
int td_drafter_linear(const float *x, int64_t m, int64_t in, const float *w, int64_t out, float *y, int nthreads);
/* Gradients of td_drafter_linear for the output gradient dy (m x out): dx = dy * w (m x in;
 * added to dx when accumulate_dx is nonzero, else stored) and dw += dy^T * x (out x in).
 * Either output may be NULL to skip it. */
int td_drafter_linear_backward(const float *dy, const float *x, int64_t m, int64_t in, const float *w, int64_t out,
                               float *dx, int accumulate_dx, float *dw, int nthreads);
/* td_rmsnorm that also stores each row's 1 / sqrt(mean(x^2) + eps) in rstd (may be NULL). */
int td_drafter_rmsnorm(const float *x, const float *w, float *y, float *rstd, int64_t m, int64_t n, float eps);
/* Gradient of td_drafter_rmsnorm: dx (stored, or added when accumulate_dx is nonzero) and
 * dw += (may be NULL), from the forward input x and its rstd. */
int td_drafter_rmsnorm_backward(const float *dy, const float *x, const float *w, const float *rstd, int64_t m,
                                int64_t n, float *dx, int accumulate_dx, float *dw);
/* Gradient of td_swiglu: dgate and dup from dout and the forward inputs (n elements). */
int td_drafter_swiglu_backward(const float *dout, const float *gate, const float *up, float *dgate, float *dup,
                               int64_t n);
/* y[i] += x[i] for n elements. */
int td_drafter_add(const float *x, float *y, int64_t n);
/* Sum of x[i]^2 in element order, in double precision. */
double td_drafter_sum_squares(const float *x, int64_t n);
/*
 * Gradient of td_attention for m query rows whose keys and values are rows of the same
 * batch: row i attends to rows slots[slot_offsets[i] .. slot_offsets[i + 1]) of k and v
 * (n_kv_heads * head_dim floats each). q, k are after RoPE. Stores dq (m x n_heads *
 * head_dim), dk and dv (m x n_kv_heads * head_dim). Single-threaded.
 */
int td_drafter_attention_backward(const float *q, const float *k, const float *v, const float *dout, int64_t m,
                                  int n_heads, int n_kv_heads, int head_dim, const int32_t *slot_offsets,
                                  const int32_t *slots, float *dq, float *dk, float *dv);
/*
 * The drafter's training loss for m rows: feature_weight * mean SmoothL1(predicted -
 * target_hidden) over m x h elements plus ce_weight * mean cross-entropy of softmax(logits)
 * against softmax(target_logits) (m x v each). Stores the gradients d_predicted and d_logits
 * (either may be NULL) and results[0] = mean SmoothL1, results[1] = mean cross-entropy,
 * results[2] = rows whose argmax agrees with the target's.
 */
int td_drafter_loss(const float *predicted, const float *target_hidden, const float *logits,
                    const float *target_logits, int64_t m, int64_t h, int64_t v, float feature_weight,
                    float ce_weight, float *d_predicted, float *d_logits, double *results);
/* The k largest of n logits, largest first (ties: lower index first), with their softmax
 * probabilities over all n logits. */
int td_drafter_top_k(const float *logits, int64_t n, int k, int32_t *indices, float *probabilities);

/* One AdamW update's settings; bias_correction1/2 are 1 - beta1^t and 1 - beta2^t. */
typedef struct {
    float learning_rate;
    float beta1;
    float beta2;
    float epsilon;
    float weight_decay;     /* decoupled: param -= learning_rate * weight_decay * param */
    float grad_scale;       /* multiplies every gradient first (gradient clipping) */
    float bias_correction1;
    float bias_correction2;
} td_adamw_step;
/* Applies one AdamW step to n parameters with first and second moments m1, m2. */
int td_drafter_adamw(float *param, const float *grad, float *m1, float *m2, int64_t n, const td_adamw_step *step);

/* A 64-bit hash of n bytes (not cryptographic), for checkpoint checksums. */
uint64_t td_drafter_hash(const void *data, size_t n);
/* td_drafter_hash of the whole file at path, read in 1 MiB chunks, and its size in bytes.
 * TD_EINVAL when the file cannot be opened or read. */
int td_drafter_hash_file(const char *path, uint64_t *hash, uint64_t *size);

/* Thread controls (td_thread.c), for background work that must not slow inference. */
/* Moves the calling thread to SCHED_IDLE; when that fails, sets its nice value to 19.
 * Returns 0 for SCHED_IDLE, 1 for nice 19, TD_EINVAL when both failed. */
int td_thread_lower_priority(void);
/* Pins the calling thread to the listed CPU cores; TD_EINVAL for an invalid core or when
 * the system rejects the mask. */
int td_thread_pin(const int32_t *cores, int count);
/* Pins the calling thread and the OpenMP threads of an nthreads-wide team (the one the
 * kernels use at that thread count) to the listed cores, so inference stays off the cores
 * given to a background trainer. Threads the team starts later inherit the mask. */
int td_thread_pin_team(const int32_t *cores, int count, int nthreads);

#ifdef __cplusplus
}
#endif

#endif
