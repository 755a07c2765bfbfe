/* AVX2 + FMA + F16C path. Each block's integer dot product is exact; block results are
 * accumulated in 8 float lanes in block order, then summed across lanes in a fixed order. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>
#include "td_simd_avx2.h"

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

/* Q4_1 in the operation order of the scalar reference (td_quant_ref.c): a row's sixteen
 * partial sums in two registers, `even` for the first block of each pair and `odd` for the
 * second, so results equal every other path's bitwise. */
static inline TD_AVX2 __m256 q4_1_block(__m256 acc, const td_block_q4_1 *blk, const td_block_q8_act *x, int fused) {
    const __m256i y = _mm256_loadu_si256((const __m256i *)x->qs);
    const __m256 scale = _mm256_set1_ps(half_to_float(blk->d) * x->d);
    const __m256 sums = _mm256_cvtepi32_ps(dot_u8_i8(unpack_nibbles(blk->qs), y));
    return fused ? _mm256_fmadd_ps(scale, sums, acc) : _mm256_add_ps(acc, _mm256_mul_ps(scale, sums));
}

/* Sums the sixteen partial sums as the scalar reference does. */
static inline TD_AVX2 float q4_1_total(__m256 even, __m256 odd, float offsets) {
    return hsum8(_mm256_add_ps(even, odd)) + offsets;
}

TD_AVX2 float td_dot_q4_1_avx2(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q4_1 *blk = (const td_block_q4_1 *)w;
    __m256 even = _mm256_setzero_ps(), odd = _mm256_setzero_ps();
    float offsets = 0.0f, offsets_odd = 0.0f;
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        even = q4_1_block(even, blk + b, x + b, 1);
        odd = q4_1_block(odd, blk + b + 1, x + b + 1, 1);
        offsets += half_to_float(blk[b].m) * x[b].s;
        offsets_odd += half_to_float(blk[b + 1].m) * x[b + 1].s;
    }
    offsets += offsets_odd;
    if (b < nb) {
        even = q4_1_block(even, blk + b, x + b, 0);
        offsets += half_to_float(blk[b].m) * x[b].s;
    }
    return q4_1_total(even, odd, offsets);
}

/* Interleaved Q4_1 (td_block_q4_1x16), eight rows per register: lane r of acc[g] is partial
 * sum g of row 8 * half + r. Quarter j of qs, half `half`, is 32 bytes: each of those rows'
 * four bytes of group j (low nibbles) and group j + 4 (high nibbles). */
static inline TD_AVX2 __m256i broadcast_group(const td_block_q8_act *x, int g) {
    int32_t four;
    memcpy(&four, x->qs + 4 * g, sizeof four);
    return _mm256_set1_epi32(four);
}

static inline TD_AVX2 void q4_1x8_block(__m256 acc[8], const td_block_q4_1x16 *blk, int half, const td_block_q8_act *x,
                                        int fused) {
    const __m256i low = _mm256_set1_epi8(0x0f);
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk->d + 8 * half)));
    const __m256 scale = _mm256_mul_ps(d, _mm256_set1_ps(x->d));
    for (int j = 0; j < 4; j++) {
        const __m256i packed = _mm256_loadu_si256((const __m256i *)(blk->qs + 64 * j + 32 * half));
        const __m256i lo = _mm256_and_si256(packed, low);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low);
        const __m256 sum_lo = _mm256_cvtepi32_ps(dot_u8_i8(lo, broadcast_group(x, j)));
        const __m256 sum_hi = _mm256_cvtepi32_ps(dot_u8_i8(hi, broadcast_group(x, j + 4)));
        if (fused) {
            acc[j] = _mm256_fmadd_ps(scale, sum_lo, acc[j]);
            acc[j + 4] = _mm256_fmadd_ps(scale, sum_hi, acc[j + 4]);
        } else {
            acc[j] = _mm256_add_ps(acc[j], _mm256_mul_ps(scale, sum_lo));
            acc[j + 4] = _mm256_add_ps(acc[j + 4], _mm256_mul_ps(scale, sum_hi));
        }
    }
}

static inline TD_AVX2 __m256 q4_1x8_offset(const td_block_q4_1x16 *blk, int half, const td_block_q8_act *x) {
    const __m256 m = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk->m + 8 * half)));
    return _mm256_mul_ps(m, _mm256_set1_ps(x->s));
}

static inline TD_AVX2 __m256 q4_1x8_rows(const td_block_q4_1x16 *blk, int64_t nb, int half, const td_block_q8_act *x) {
    __m256 even[8], odd[8];
    for (int g = 0; g < 8; g++) even[g] = odd[g] = _mm256_setzero_ps();
    __m256 offsets = _mm256_setzero_ps(), offsets_odd = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        q4_1x8_block(even, blk + b, half, x + b, 1);
        q4_1x8_block(odd, blk + b + 1, half, x + b + 1, 1);
        offsets = _mm256_add_ps(offsets, q4_1x8_offset(blk + b, half, x + b));
        offsets_odd = _mm256_add_ps(offsets_odd, q4_1x8_offset(blk + b + 1, half, x + b + 1));
    }
    offsets = _mm256_add_ps(offsets, offsets_odd);
    if (b < nb) {
        q4_1x8_block(even, blk + b, half, x + b, 0);
        offsets = _mm256_add_ps(offsets, q4_1x8_offset(blk + b, half, x + b));
    }
    __m256 t[8];
    for (int g = 0; g < 8; g++) t[g] = _mm256_add_ps(even[g], odd[g]);
    const __m256 sum = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(t[0], t[4]), _mm256_add_ps(t[2], t[6])),
                                     _mm256_add_ps(_mm256_add_ps(t[1], t[5]), _mm256_add_ps(t[3], t[7])));
    return _mm256_add_ps(sum, offsets);
}

TD_AVX2 void td_gemm_q4_1x16_avx2(const void *group, int64_t nb, const td_block_q8_act *x, int64_t x_stride,
                                  int64_t m, float *out, int64_t out_stride, int valid_rows) {
    const td_block_q4_1x16 *blk = (const td_block_q4_1x16 *)group;
    for (int64_t i = 0; i < m; i++) {
        float rows[TD_INTERLEAVE];
        _mm256_storeu_ps(rows, q4_1x8_rows(blk, nb, 0, x + i * x_stride));
        if (valid_rows > 8) _mm256_storeu_ps(rows + 8, q4_1x8_rows(blk, nb, 1, x + i * x_stride));
        memcpy(out + i * out_stride, rows, (size_t)valid_rows * sizeof(float));
    }
}

static inline TD_AVX2 __m256 q8_0_block(__m256 acc, __m256i q, float d, const td_block_q8_act *x) {
    const __m256i y = _mm256_loadu_si256((const __m256i *)x->qs);
    const __m256 scale = _mm256_set1_ps(d * x->d);
    return _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(dot_i8(q, y)), acc);
}

/* Sums 8 int32 lanes (exact). */
static inline TD_AVX2 int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

/* Q8_0, row-major: each block's exact integer sum, then the scalar reference's fused
 * multiply-add, so results equal every other path's bitwise. */
TD_AVX2 float td_dot_q8_0_avx2(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q8_0 *blk = (const td_block_q8_0 *)w;
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)blk[b].qs);
        const int isum = hsum_i32(dot_i8(q, _mm256_loadu_si256((const __m256i *)x[b].qs)));
        acc = fmaf(half_to_float(blk[b].d) * x[b].d, (float)isum, acc);
    }
    return acc;
}

/* Interleaved Q8_0 (td_block_q8_0x16), eight rows per register: lane r is row 8 * half + r.
 * Eighth g of qs, half `half`, is 32 bytes: those rows' four weights of group g. */
static inline TD_AVX2 __m256 q8_0x8_rows(const td_block_q8_0x16 *blk, int64_t nb, int half, const td_block_q8_act *x) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i isum = _mm256_setzero_si256();
        for (int g = 0; g < 8; g++) {
            const __m256i w = _mm256_loadu_si256((const __m256i *)(blk[b].qs + 64 * g + 32 * half));
            isum = _mm256_add_epi32(isum, dot_i8(w, broadcast_group(x + b, g)));
        }
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk[b].d + 8 * half)));
        acc = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(x[b].d)), _mm256_cvtepi32_ps(isum), acc);
    }
    return acc;
}

TD_AVX2 void td_gemm_q8_0x16_avx2(const void *group, int64_t nb, const td_block_q8_act *x, int64_t x_stride,
                                  int64_t m, float *out, int64_t out_stride, int valid_rows) {
    const td_block_q8_0x16 *blk = (const td_block_q8_0x16 *)group;
    for (int64_t i = 0; i < m; i++) {
        float rows[TD_INTERLEAVE];
        _mm256_storeu_ps(rows, q8_0x8_rows(blk, nb, 0, x + i * x_stride));
        if (valid_rows > 8) _mm256_storeu_ps(rows + 8, q8_0x8_rows(blk, nb, 1, x + i * x_stride));
        memcpy(out + i * out_stride, rows, (size_t)valid_rows * sizeof(float));
    }
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
