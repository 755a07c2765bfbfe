/* AVX2 + FMA + F16C kernels for Q5_0 and the K-quants. The integer products of each
 * 32-element activation block are summed exactly in 8 int32 lanes, then scaled in float and
 * accumulated in 8 float lanes in block order. The lanes are summed in a fixed order at the
 * end.
 *
 * The one-row and four-activation-row kernels of a type share their block step functions,
 * so each (weight row, activation row) pair runs the same instructions in the same order and
 * gets bitwise the same result whichever kernel computed it. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>
#include "td_simd_avx2.h"

/* Sum of signed bytes a[i] * b[i], in int16 pairs: |a| * (b with a's sign). Exact while
 * 2 * max|a| * 127 fits in int16. */
static inline TD_AVX2 __m256i dot_i8_pairs(__m256i a, __m256i b) {
    return _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
}

/* Sum of the 32 signed activation bytes, as 8 int32 lanes of 4 bytes each. */
static inline TD_AVX2 __m256i sum_i8(__m256i y) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), y), _mm256_set1_epi16(1));
}

static inline TD_AVX2 __m256i load_act(const td_block_q8_act *x) {
    return _mm256_loadu_si256((const __m256i *)x->qs);
}

/* ---- Q5_0 ---- */

/* Returns the 32 values of a Q5_0 block minus 16, as signed bytes in element order. Byte i
 * of the high-bit mask takes byte i / 8 of qh and tests bit i % 8. */
static inline TD_AVX2 __m256i q5_0_values(const td_block_q5_0 *blk) {
    const __m128i packed = _mm_loadu_si128((const __m128i *)blk->qs);
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
    const __m256i nibbles = _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
    uint32_t qh;
    memcpy(&qh, blk->qh, sizeof qh);
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh),
        _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                         2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    /* Values without bit 4 lose 16; values with it keep their nibble (nibble + 16 - 16). */
    return _mm256_sub_epi8(nibbles, _mm256_andnot_si256(set, _mm256_set1_epi8(16)));
}

static inline TD_AVX2 __m256 q5_0_block(__m256 acc, __m256i q, float d, const td_block_q8_act *x) {
    const __m256i dots = _mm256_madd_epi16(dot_i8_pairs(q, load_act(x)), _mm256_set1_epi16(1));
    return _mm256_fmadd_ps(_mm256_set1_ps(d * x->d), _mm256_cvtepi32_ps(dots), acc);
}

TD_AVX2 float td_dot_q5_0_avx2(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q5_0 *blk = (const td_block_q5_0 *)w;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) acc = q5_0_block(acc, q5_0_values(blk + b), half_to_float(blk[b].d), x + b);
    return hsum8(acc);
}

/* One Q5_0 weight row against four activation rows (x_stride blocks apart). */
TD_AVX2 void td_dot_q5_0_x4_avx2(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out) {
    const td_block_q5_0 *blk = (const td_block_q5_0 *)w;
    __m256 acc[4];
    for (int k = 0; k < 4; k++) acc[k] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m256i q = q5_0_values(blk + b);
        const float d = half_to_float(blk[b].d);
        for (int k = 0; k < 4; k++) acc[k] = q5_0_block(acc[k], q, d, x + k * x_stride + b);
    }
    for (int k = 0; k < 4; k++) out[k] = hsum8(acc[k]);
}

/* ---- Q4_K and Q5_K ---- */

/* Running sums of one weight row against one activation row: the scaled products and,
 * apart, the scaled minimum terms, which are subtracted at the end. */
typedef struct {
    __m256 acc;
    __m256 mins;
} kquant_state;

/* Per super-block weight factors: d * sc[s] and dmin * m[s] for the 8 sub-blocks. */
typedef struct {
    float scale[8];
    float offset[8];
} kquant_factors;

static inline TD_AVX2 kquant_factors q4_5_K_factors(const uint8_t *packed, td_fp16 d16, td_fp16 dmin16) {
    uint8_t scales[8], mins[8];
    td_kquant_scales_mins(packed, scales, mins);
    const float d = half_to_float(d16), dmin = half_to_float(dmin16);
    kquant_factors f;
    for (int s = 0; s < 8; s++) {
        f.scale[s] = d * (float)scales[s];
        f.offset[s] = dmin * (float)mins[s];
    }
    return f;
}

/* Sub-block step: adds scale * x.d * sum(q * y) and offset * x.d * sum(y) to the row state. */
static inline TD_AVX2 void q4_5_K_sub(kquant_state *st, __m256i q, float scale, float offset, const td_block_q8_act *x) {
    const __m256i y = load_act(x);
    st->acc = _mm256_fmadd_ps(_mm256_set1_ps(scale * x->d), _mm256_cvtepi32_ps(dot_u8_i8(q, y)), st->acc);
    st->mins = _mm256_fmadd_ps(_mm256_set1_ps(offset * x->d), _mm256_cvtepi32_ps(sum_i8(y)), st->mins);
}

static inline TD_AVX2 float kquant_finish(const kquant_state *st) {
    return hsum8(st->acc) - hsum8(st->mins);
}

/* Bit 4 of the values of sub-block s in a Q5_K super-block: bit s of each qh byte, moved to
 * bit 4 (the 16-bit shifts cannot carry across bytes because of the masks). */
static inline TD_AVX2 __m256i q5_K_high(__m256i qh, int s) {
    const __m256i bit = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(s)), _mm256_set1_epi8(1));
    return _mm256_slli_epi16(bit, 4);
}

/* Unpacks the values of sub-blocks 2p (low nibbles) and 2p + 1 (high nibbles) of a Q4_K or
 * Q5_K super-block. qh is NULL for Q4_K. */
static inline TD_AVX2 void q4_5_K_pair(const uint8_t *qs, const uint8_t *qh, int p, __m256i *even, __m256i *odd) {
    const __m256i packed = _mm256_loadu_si256((const __m256i *)(qs + 32 * p));
    const __m256i mask = _mm256_set1_epi8(0x0f);
    *even = _mm256_and_si256(packed, mask);
    *odd = _mm256_and_si256(_mm256_srli_epi16(packed, 4), mask);
    if (qh != NULL) {
        const __m256i high = _mm256_loadu_si256((const __m256i *)qh);
        *even = _mm256_or_si256(*even, q5_K_high(high, 2 * p));
        *odd = _mm256_or_si256(*odd, q5_K_high(high, 2 * p + 1));
    }
}

/* One Q4_K or Q5_K super-block against activation rows x + k * x_stride for k < rows. */
static inline TD_AVX2 void q4_5_K_superblock(kquant_state *st, const kquant_factors *f, const uint8_t *qs, const uint8_t *qh,
                                             const td_block_q8_act *x, int64_t x_stride, int rows) {
    for (int p = 0; p < 4; p++) {
        __m256i even, odd;
        q4_5_K_pair(qs, qh, p, &even, &odd);
        for (int k = 0; k < rows; k++) {
            const td_block_q8_act *xk = x + k * x_stride + 2 * p;
            q4_5_K_sub(&st[k], even, f->scale[2 * p], f->offset[2 * p], xk);
            q4_5_K_sub(&st[k], odd, f->scale[2 * p + 1], f->offset[2 * p + 1], xk + 1);
        }
    }
}

TD_AVX2 float td_dot_q4_K_avx2(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q4_K *blk = (const td_block_q4_K *)w;
    kquant_state st = { _mm256_setzero_ps(), _mm256_setzero_ps() };
    for (int64_t b = 0; b < nb / 8; b++) {
        const kquant_factors f = q4_5_K_factors(blk[b].scales, blk[b].d, blk[b].dmin);
        q4_5_K_superblock(&st, &f, blk[b].qs, NULL, x + 8 * b, 0, 1);
    }
    return kquant_finish(&st);
}

/* One Q4_K weight row against four activation rows (x_stride blocks apart). */
TD_AVX2 void td_dot_q4_K_x4_avx2(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out) {
    const td_block_q4_K *blk = (const td_block_q4_K *)w;
    kquant_state st[4];
    for (int k = 0; k < 4; k++) st[k] = (kquant_state){ _mm256_setzero_ps(), _mm256_setzero_ps() };
    for (int64_t b = 0; b < nb / 8; b++) {
        const kquant_factors f = q4_5_K_factors(blk[b].scales, blk[b].d, blk[b].dmin);
        q4_5_K_superblock(st, &f, blk[b].qs, NULL, x + 8 * b, x_stride, 4);
    }
    for (int k = 0; k < 4; k++) out[k] = kquant_finish(&st[k]);
}

TD_AVX2 float td_dot_q5_K_avx2(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q5_K *blk = (const td_block_q5_K *)w;
    kquant_state st = { _mm256_setzero_ps(), _mm256_setzero_ps() };
    for (int64_t b = 0; b < nb / 8; b++) {
        const kquant_factors f = q4_5_K_factors(blk[b].scales, blk[b].d, blk[b].dmin);
        q4_5_K_superblock(&st, &f, blk[b].qs, blk[b].qh, x + 8 * b, 0, 1);
    }
    return kquant_finish(&st);
}

/* One Q5_K weight row against four activation rows (x_stride blocks apart). */
TD_AVX2 void td_dot_q5_K_x4_avx2(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out) {
    const td_block_q5_K *blk = (const td_block_q5_K *)w;
    kquant_state st[4];
    for (int k = 0; k < 4; k++) st[k] = (kquant_state){ _mm256_setzero_ps(), _mm256_setzero_ps() };
    for (int64_t b = 0; b < nb / 8; b++) {
        const kquant_factors f = q4_5_K_factors(blk[b].scales, blk[b].d, blk[b].dmin);
        q4_5_K_superblock(st, &f, blk[b].qs, blk[b].qh, x + 8 * b, x_stride, 4);
    }
    for (int k = 0; k < 4; k++) out[k] = kquant_finish(&st[k]);
}

/* ---- Q6_K ---- */

/* Returns the values of activation block j (elements 32j..32j+31) of a Q6_K super-block
 * minus 32, as signed bytes. */
static inline TD_AVX2 __m256i q6_K_values(const td_block_q6_K *blk, int j) {
    const int h = j / 4, g = j % 4;
    const __m256i packed = _mm256_loadu_si256((const __m256i *)(blk->ql + 64 * h + 32 * (g % 2)));
    const __m256i low = _mm256_and_si256(g < 2 ? packed : _mm256_srli_epi16(packed, 4), _mm256_set1_epi8(0x0f));
    const __m256i qh = _mm256_loadu_si256((const __m256i *)(blk->qh + 32 * h));
    const __m256i two = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * g)), _mm256_set1_epi8(3));
    const __m256i q = _mm256_or_si256(low, _mm256_slli_epi16(two, 4));
    return _mm256_sub_epi8(q, _mm256_set1_epi8(32));
}

/* The int16 scale multipliers of activation block j: scales[2j] for its first 16 elements
 * (int16 lanes 0..7 of a maddubs result), scales[2j + 1] for the rest. */
static inline TD_AVX2 __m256i q6_K_scales(const td_block_q6_K *blk, int j) {
    return _mm256_set_m128i(_mm_set1_epi16(blk->scales[2 * j + 1]), _mm_set1_epi16(blk->scales[2 * j]));
}

/* Block step: d * x.d times the exact sum of scale * q * y, kept in 8 int32 lanes. The int16
 * pair sums are at most 2 * 32 * 127, and each lane at most 2 * 128 * 8128, so nothing
 * saturates or rounds before the conversion. */
static inline TD_AVX2 __m256 q6_K_block(__m256 acc, __m256i q, __m256i scales, float d, const td_block_q8_act *x) {
    const __m256i dots = _mm256_madd_epi16(dot_i8_pairs(q, load_act(x)), scales);
    return _mm256_fmadd_ps(_mm256_set1_ps(d * x->d), _mm256_cvtepi32_ps(dots), acc);
}

static inline TD_AVX2 void q6_K_superblock(__m256 *acc, const td_block_q6_K *blk, const td_block_q8_act *x,
                                           int64_t x_stride, int rows) {
    const float d = half_to_float(blk->d);
    for (int j = 0; j < 8; j++) {
        const __m256i q = q6_K_values(blk, j);
        const __m256i scales = q6_K_scales(blk, j);
        for (int k = 0; k < rows; k++) acc[k] = q6_K_block(acc[k], q, scales, d, x + k * x_stride + j);
    }
}

TD_AVX2 float td_dot_q6_K_avx2(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q6_K *blk = (const td_block_q6_K *)w;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb / 8; b++) q6_K_superblock(&acc, blk + b, x + 8 * b, 0, 1);
    return hsum8(acc);
}

/* One Q6_K weight row against four activation rows (x_stride blocks apart). */
TD_AVX2 void td_dot_q6_K_x4_avx2(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out) {
    const td_block_q6_K *blk = (const td_block_q6_K *)w;
    __m256 acc[4];
    for (int k = 0; k < 4; k++) acc[k] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb / 8; b++) q6_K_superblock(acc, blk + b, x + 8 * b, x_stride, 4);
    for (int k = 0; k < 4; k++) out[k] = hsum8(acc[k]);
}
#endif
