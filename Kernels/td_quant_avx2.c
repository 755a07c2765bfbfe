/* AVX2 + FMA + F16C path. Each block's integer dot product is exact; block results are
 * accumulated in 8 float lanes in block order, then summed across lanes in a fixed order. */
#if defined(__x86_64__)
#include <immintrin.h>
#include "td_internal.h"

#define TD_AVX2 __attribute__((target("avx2,fma,f16c")))

/* fp16 to fp32 through a zero-extending 32-bit move. _cvtsh_ss compiles to a vpinsrw that
 * merges into whatever register it picks, which can chain every block's scale load behind
 * the previous block's arithmetic. */
static inline TD_AVX2 float half_to_float(td_fp16 h) {
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

/* Sums the 8 lanes as ((0+4)+(2+6)) + ((1+5)+(3+7)). */
static inline TD_AVX2 float hsum8(__m256 v) {
    const __m128 lo = _mm256_castps256_ps128(v);
    const __m128 hi = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(lo, hi);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 32 nibbles of a 4-bit block as bytes: low nibbles in bytes 0..15, high nibbles in 16..31. */
static inline TD_AVX2 __m256i unpack_nibbles(const uint8_t *qs) {
    const __m128i packed = _mm_loadu_si128((const __m128i *)qs);
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

/* Sum of a[i] * b[i] over 32 signed bytes as 8 int32 lanes (each lane sums 4 products). */
static inline TD_AVX2 __m256i dot_i8(__m256i a, __m256i b) {
    const __m256i products = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
    return _mm256_madd_epi16(products, _mm256_set1_epi16(1));
}

/* Sum of u[i] * s[i] with u unsigned (0..15) and s signed bytes, as 8 int32 lanes. */
static inline TD_AVX2 __m256i dot_u8_i8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}


/* Q4_1 block step shared by the one-row, four-weight-row and four-activation-row kernels,
 * so each (weight row, activation row) pair runs the same instructions in the same order
 * and gets bitwise the same result whichever kernel computed it. */
static inline TD_AVX2 void q4_1_block(__m256 *acc, float *offsets, __m256i q, float d, float m, const td_block_q8_act *x) {
    const __m256i y = _mm256_loadu_si256((const __m256i *)x->qs);
    const __m256 scale = _mm256_set1_ps(d * x->d);
    *acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(dot_u8_i8(q, y)), *acc);
    *offsets += m * x->s;
}

TD_AVX2 float td_dot_q4_1_avx2(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q4_1 *blk = (const td_block_q4_1 *)w;
    __m256 acc = _mm256_setzero_ps();
    float offsets = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        q4_1_block(&acc, &offsets, unpack_nibbles(blk[b].qs), half_to_float(blk[b].d), half_to_float(blk[b].m), x + b);
    }
    return hsum8(acc) + offsets;
}

/* Four consecutive Q4_1 weight rows against one activation row, in lockstep. */
TD_AVX2 void td_dot4_q4_1_avx2(const void *w, size_t row_bytes, const td_block_q8_act *x, int64_t nb, float *out) {
    const td_block_q4_1 *rows[4];
    __m256 acc[4];
    float offsets[4];
    for (int k = 0; k < 4; k++) {
        rows[k] = (const td_block_q4_1 *)((const char *)w + k * row_bytes);
        acc[k] = _mm256_setzero_ps();
        offsets[k] = 0.0f;
    }
    for (int64_t b = 0; b < nb; b++) {
        for (int k = 0; k < 4; k++) {
            const td_block_q4_1 *blk = rows[k] + b;
            q4_1_block(&acc[k], &offsets[k], unpack_nibbles(blk->qs), half_to_float(blk->d), half_to_float(blk->m), x + b);
        }
    }
    for (int k = 0; k < 4; k++) out[k] = hsum8(acc[k]) + offsets[k];
}

/* One Q4_1 weight row against four activation rows (x_stride blocks apart): each block is
 * unpacked once for all four. */
TD_AVX2 void td_dot_q4_1_x4_avx2(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out) {
    const td_block_q4_1 *blk = (const td_block_q4_1 *)w;
    __m256 acc[4];
    float offsets[4];
    for (int k = 0; k < 4; k++) {
        acc[k] = _mm256_setzero_ps();
        offsets[k] = 0.0f;
    }
    for (int64_t b = 0; b < nb; b++) {
        const __m256i q = unpack_nibbles(blk[b].qs);
        const float d = half_to_float(blk[b].d), m = half_to_float(blk[b].m);
        for (int k = 0; k < 4; k++) q4_1_block(&acc[k], &offsets[k], q, d, m, x + k * x_stride + b);
    }
    for (int k = 0; k < 4; k++) out[k] = hsum8(acc[k]) + offsets[k];
}

static inline TD_AVX2 __m256 q8_0_block(__m256 acc, __m256i q, float d, const td_block_q8_act *x) {
    const __m256i y = _mm256_loadu_si256((const __m256i *)x->qs);
    const __m256 scale = _mm256_set1_ps(d * x->d);
    return _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(dot_i8(q, y)), acc);
}

TD_AVX2 float td_dot_q8_0_avx2(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q8_0 *blk = (const td_block_q8_0 *)w;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        acc = q8_0_block(acc, _mm256_loadu_si256((const __m256i *)blk[b].qs), half_to_float(blk[b].d), x + b);
    }
    return hsum8(acc);
}

/* One Q8_0 weight row against four activation rows (x_stride blocks apart). */
TD_AVX2 void td_dot_q8_0_x4_avx2(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out) {
    const td_block_q8_0 *blk = (const td_block_q8_0 *)w;
    __m256 acc[4];
    for (int k = 0; k < 4; k++) acc[k] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)blk[b].qs);
        const float d = half_to_float(blk[b].d);
        for (int k = 0; k < 4; k++) acc[k] = q8_0_block(acc[k], q, d, x + k * x_stride + b);
    }
    for (int k = 0; k < 4; k++) out[k] = hsum8(acc[k]);
}

/* Float dot products: 8 lanes, elements in order within each lane, scalar tail last. */

TD_AVX2 float td_dot_f32_avx2(const void *w, const float *x, int64_t n) {
    const float *wf = (const float *)w;
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(wf + i), _mm256_loadu_ps(x + i), acc);
    float sum = hsum8(acc);
    for (; i < n; i++) sum += wf[i] * x[i];
    return sum;
}

TD_AVX2 float td_dot_f16_avx2(const void *w, const float *x, int64_t n) {
    const td_fp16 *wh = (const td_fp16 *)w;
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 wv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wh + i)));
        acc = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + i), acc);
    }
    float sum = hsum8(acc);
    for (; i < n; i++) sum += half_to_float(wh[i]) * x[i];
    return sum;
}

TD_AVX2 float td_dot_bf16_avx2(const void *w, const float *x, int64_t n) {
    const uint16_t *wh = (const uint16_t *)w;
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(wh + i)));
        const __m256 wv = _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
        acc = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + i), acc);
    }
    float sum = hsum8(acc);
    for (; i < n; i++) sum += td_bf16_to_fp32(wh[i]) * x[i];
    return sum;
}
/* Q4_0 reuses the Q8_0 block step once its nibbles are shifted to -8..7. */
TD_AVX2 float td_dot_q4_0_avx2(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q4_0 *blk = (const td_block_q4_0 *)w;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m256i q = _mm256_sub_epi8(unpack_nibbles(blk[b].qs), _mm256_set1_epi8(8));
        acc = q8_0_block(acc, q, half_to_float(blk[b].d), x + b);
    }
    return hsum8(acc);
}

/* One Q4_0 weight row against four activation rows (x_stride blocks apart). */
TD_AVX2 void td_dot_q4_0_x4_avx2(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out) {
    const td_block_q4_0 *blk = (const td_block_q4_0 *)w;
    __m256 acc[4];
    for (int k = 0; k < 4; k++) acc[k] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m256i q = _mm256_sub_epi8(unpack_nibbles(blk[b].qs), _mm256_set1_epi8(8));
        const float d = half_to_float(blk[b].d);
        for (int k = 0; k < 4; k++) acc[k] = q8_0_block(acc[k], q, d, x + k * x_stride + b);
    }
    for (int k = 0; k < 4; k++) out[k] = hsum8(acc[k]);
}
#endif
