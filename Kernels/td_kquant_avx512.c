/* AVX-512 VNNI kernels for Q5_0 and the K-quants. Two 32-element activation blocks go
 * through a 512-bit register at a time. The integer products of each block are summed
 * exactly in its own 8 int32 lanes, then scaled and accumulated in its own 8 float lanes, so
 * the order of float operations is fixed per block pair. The 16 lanes are summed in a fixed
 * order at the end.
 *
 * The one-row and four-activation-row kernels of a type share their step functions, so each
 * (weight row, activation row) pair runs the same instructions in the same order and gets
 * bitwise the same result whichever kernel computed it. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>
#include "td_simd_avx512.h"

static inline TD_AVX512 __m512i join2(__m256i lo, __m256i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* ---- Q5_0 ---- */

/* Low four bits of the values of a Q5_0 block, in element order. */
static inline TD_AVX512 __m256i q5_0_nibbles(const td_block_q5_0 *blk) {
    const __m128i p = _mm_loadu_si128((const __m128i *)blk->qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(p, 4), p), _mm256_set1_epi8(0x0f));
}

static inline TD_AVX512 uint32_t q5_0_high_bits(const td_block_q5_0 *blk) {
    uint32_t qh;
    memcpy(&qh, blk->qh, sizeof qh);
    return qh;
}

/* Returns the values of Q5_0 blocks blk[0] and blk[1] minus 16, as 64 signed bytes. A value
 * whose bit 4 is clear loses 16 from its nibble, and one whose bit 4 is set keeps its
 * nibble (nibble + 16 - 16). */
static inline TD_AVX512 __m512i q5_0_values2(const td_block_q5_0 *blk) {
    const __m512i nibbles = join2(q5_0_nibbles(blk), q5_0_nibbles(blk + 1));
    const __mmask64 high = (__mmask64)q5_0_high_bits(blk) | (__mmask64)q5_0_high_bits(blk + 1) << 32;
    return _mm512_mask_sub_epi8(nibbles, ~high, nibbles, _mm512_set1_epi8(16));
}

static inline TD_AVX512 __m512 q5_0_pair(__m512 acc, __m512i q, float d0, float d1, const td_block_q8_act *x) {
    const __m512 s = scales2(d0 * x[0].d, d1 * x[1].d);
    return _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(dot_i8x64(q, load_act2(x))), acc);
}

/* Adds a row's odd last block through the 256-bit form with the same lane layout, and sums
 * the lanes. */
static inline TD_AVX512 float q5_0_finish(__m512 acc, const td_block_q5_0 *blk, const td_block_q8_act *x, int odd) {
    if (odd) {
        const __m256i nibbles = q5_0_nibbles(blk);
        const __m256i q = _mm256_mask_sub_epi8(nibbles, ~(__mmask32)q5_0_high_bits(blk), nibbles, _mm256_set1_epi8(16));
        const __m256i y = _mm256_loadu_si256((const __m256i *)x->qs);
        const __m256i dots = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(q), _mm256_sign_epi8(y, q));
        const __m256 v = _mm256_mul_ps(_mm256_set1_ps(half_to_float(blk->d) * x->d), _mm256_cvtepi32_ps(dots));
        acc = _mm512_add_ps(acc, _mm512_insertf32x8(_mm512_setzero_ps(), v, 0));
    }
    return hsum16(acc);
}

TD_AVX512 float td_dot_q5_0_avx512(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q5_0 *blk = (const td_block_q5_0 *)w;
    __m512 acc = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        _mm_prefetch((const char *)(blk + b) + TD_PREFETCH_BYTES, _MM_HINT_T0);
        acc = q5_0_pair(acc, q5_0_values2(blk + b), half_to_float(blk[b].d), half_to_float(blk[b + 1].d), x + b);
    }
    return q5_0_finish(acc, blk + b, x + b, b < nb);
}

/* One Q5_0 weight row against four activation rows (x_stride blocks apart). */
TD_AVX512 void td_dot_q5_0_x4_avx512(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out) {
    const td_block_q5_0 *blk = (const td_block_q5_0 *)w;
    __m512 acc[4];
    for (int k = 0; k < 4; k++) acc[k] = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        _mm_prefetch((const char *)(blk + b) + TD_PREFETCH_BYTES, _MM_HINT_T0);
        const __m512i q = q5_0_values2(blk + b);
        const float d0 = half_to_float(blk[b].d), d1 = half_to_float(blk[b + 1].d);
        for (int k = 0; k < 4; k++) acc[k] = q5_0_pair(acc[k], q, d0, d1, x + k * x_stride + b);
    }
    for (int k = 0; k < 4; k++) out[k] = q5_0_finish(acc[k], blk + b, x + k * x_stride + b, b < nb);
}

/* ---- Q4_K and Q5_K ---- */

/* Running sums of one weight row against one activation row: the scaled products and,
 * apart, the scaled minimum terms, which are subtracted at the end. */
typedef struct {
    __m512 acc;
    __m512 mins;
} kquant_state;

/* Per super-block weight factors: d * sc[s] and dmin * m[s] for the 8 sub-blocks. */
typedef struct {
    float scale[8];
    float offset[8];
} kquant_factors;

static inline TD_AVX512 kquant_factors q4_5_K_factors(const uint8_t *packed, td_fp16 d16, td_fp16 dmin16) {
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

/* Unpacks the values of sub-blocks 2p (low nibbles, bytes 0..31) and 2p + 1 (high nibbles,
 * bytes 32..63) of a Q4_K or Q5_K super-block. qh is NULL for Q4_K. For Q5_K, bit 4 of the
 * values of sub-block s is bit s of each qh byte. */
static inline TD_AVX512 __m512i q4_5_K_pair(const uint8_t *qs, const uint8_t *qh, int p) {
    const __m256i packed = _mm256_loadu_si256((const __m256i *)(qs + 32 * p));
    const __m512i both = join2(packed, _mm256_srli_epi16(packed, 4));
    __m512i q = _mm512_and_si512(both, _mm512_set1_epi8(0x0f));
    if (qh != NULL) {
        const __m256i high = _mm256_loadu_si256((const __m256i *)qh);
        const __m512i select = join2(_mm256_set1_epi8((char)(1 << (2 * p))), _mm256_set1_epi8((char)(1 << (2 * p + 1))));
        const __mmask64 set = _mm512_test_epi8_mask(join2(high, high), select);
        q = _mm512_mask_add_epi8(q, set, q, _mm512_set1_epi8(16));
    }
    return q;
}

/* Sub-block pair step: adds scale * x.d * sum(q * y) and offset * x.d * sum(y) for
 * activation blocks x[0] and x[1]. */
static inline TD_AVX512 void q4_5_K_step(kquant_state *st, __m512i q, const kquant_factors *f, int p, const td_block_q8_act *x) {
    const __m512i y = load_act2(x);
    const __m512i dots = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, y);
    const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1), y);
    const __m512 scale = scales2(f->scale[2 * p] * x[0].d, f->scale[2 * p + 1] * x[1].d);
    const __m512 offset = scales2(f->offset[2 * p] * x[0].d, f->offset[2 * p + 1] * x[1].d);
    st->acc = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(dots), st->acc);
    st->mins = _mm512_fmadd_ps(offset, _mm512_cvtepi32_ps(sums), st->mins);
}

/* One Q4_K or Q5_K super-block against activation rows x + k * x_stride for k < rows. */
static inline TD_AVX512 void q4_5_K_superblock(kquant_state *st, const kquant_factors *f, const uint8_t *qs, const uint8_t *qh,
                                               const td_block_q8_act *x, int64_t x_stride, int rows) {
    for (int p = 0; p < 4; p++) {
        const __m512i q = q4_5_K_pair(qs, qh, p);
        for (int k = 0; k < rows; k++) q4_5_K_step(&st[k], q, f, p, x + k * x_stride + 2 * p);
    }
}

static inline TD_AVX512 float kquant_finish(const kquant_state *st) {
    return hsum16(st->acc) - hsum16(st->mins);
}

TD_AVX512 float td_dot_q4_K_avx512(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q4_K *blk = (const td_block_q4_K *)w;
    kquant_state st = { _mm512_setzero_ps(), _mm512_setzero_ps() };
    for (int64_t b = 0; b < nb / 8; b++) {
        _mm_prefetch((const char *)(blk + b) + TD_PREFETCH_BYTES, _MM_HINT_T0);
        const kquant_factors f = q4_5_K_factors(blk[b].scales, blk[b].d, blk[b].dmin);
        q4_5_K_superblock(&st, &f, blk[b].qs, NULL, x + 8 * b, 0, 1);
    }
    return kquant_finish(&st);
}

/* One Q4_K weight row against four activation rows (x_stride blocks apart). */
TD_AVX512 void td_dot_q4_K_x4_avx512(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out) {
    const td_block_q4_K *blk = (const td_block_q4_K *)w;
    kquant_state st[4];
    for (int k = 0; k < 4; k++) st[k] = (kquant_state){ _mm512_setzero_ps(), _mm512_setzero_ps() };
    for (int64_t b = 0; b < nb / 8; b++) {
        _mm_prefetch((const char *)(blk + b) + TD_PREFETCH_BYTES, _MM_HINT_T0);
        const kquant_factors f = q4_5_K_factors(blk[b].scales, blk[b].d, blk[b].dmin);
        q4_5_K_superblock(st, &f, blk[b].qs, NULL, x + 8 * b, x_stride, 4);
    }
    for (int k = 0; k < 4; k++) out[k] = kquant_finish(&st[k]);
}

TD_AVX512 float td_dot_q5_K_avx512(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q5_K *blk = (const td_block_q5_K *)w;
    kquant_state st = { _mm512_setzero_ps(), _mm512_setzero_ps() };
    for (int64_t b = 0; b < nb / 8; b++) {
        _mm_prefetch((const char *)(blk + b) + TD_PREFETCH_BYTES, _MM_HINT_T0);
        const kquant_factors f = q4_5_K_factors(blk[b].scales, blk[b].d, blk[b].dmin);
        q4_5_K_superblock(&st, &f, blk[b].qs, blk[b].qh, x + 8 * b, 0, 1);
    }
    return kquant_finish(&st);
}

/* One Q5_K weight row against four activation rows (x_stride blocks apart). */
TD_AVX512 void td_dot_q5_K_x4_avx512(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out) {
    const td_block_q5_K *blk = (const td_block_q5_K *)w;
    kquant_state st[4];
    for (int k = 0; k < 4; k++) st[k] = (kquant_state){ _mm512_setzero_ps(), _mm512_setzero_ps() };
    for (int64_t b = 0; b < nb / 8; b++) {
        _mm_prefetch((const char *)(blk + b) + TD_PREFETCH_BYTES, _MM_HINT_T0);
        const kquant_factors f = q4_5_K_factors(blk[b].scales, blk[b].d, blk[b].dmin);
        q4_5_K_superblock(st, &f, blk[b].qs, blk[b].qh, x + 8 * b, x_stride, 4);
    }
    for (int k = 0; k < 4; k++) out[k] = kquant_finish(&st[k]);
}

/* ---- Q6_K ---- */

/* Returns the values of activation blocks 2p and 2p + 1 (elements 64p..64p+63) of a Q6_K
 * super-block minus 32, as signed bytes. Both blocks read the same 64 ql bytes (low nibbles for even p,
 * high nibbles for odd p) and the same 32 qh bytes, at bit pairs 4 * (p % 2) and
 * 4 * (p % 2) + 2. */
static inline TD_AVX512 __m512i q6_K_values2(const td_block_q6_K *blk, int p) {
    const int h = p / 2, upper = p % 2;
    const __m512i packed = _mm512_loadu_si512((const void *)(blk->ql + 64 * h));
    const __m512i low = _mm512_and_si512(upper ? _mm512_srli_epi16(packed, 4) : packed, _mm512_set1_epi8(0x0f));
    const __m256i qh = _mm256_loadu_si256((const __m256i *)(blk->qh + 32 * h));
    const __m512i shifts = join2(_mm256_set1_epi16((short)(4 * upper)), _mm256_set1_epi16((short)(4 * upper + 2)));
    const __m512i two = _mm512_and_si512(_mm512_srlv_epi16(join2(qh, qh), shifts), _mm512_set1_epi8(3));
    const __m512i q = _mm512_or_si512(low, _mm512_slli_epi16(two, 4));
    return _mm512_sub_epi8(q, _mm512_set1_epi8(32));
}

/* The int16 scale multipliers of activation blocks 2p and 2p + 1: 128-bit quarter i of the
 * result (elements 16i..16i+15 of the pair after maddubs) holds scales[4p + i]. */
static inline TD_AVX512 __m512i q6_K_scales2(__m512i scales16, int p) {
    const __m512i index = _mm512_add_epi16(
        _mm512_set_epi64(0x0003000300030003, 0x0003000300030003, 0x0002000200020002, 0x0002000200020002,
                         0x0001000100010001, 0x0001000100010001, 0x0000000000000000, 0x0000000000000000),
        _mm512_set1_epi16((short)(4 * p)));
    return _mm512_permutexvar_epi16(index, scales16);
}

/* Block pair step: d * x.d times the exact sum of scale * q * y per block, in 8 int32 lanes
 * per block. The int16 pair sums are at most 2 * 32 * 127, and each lane at most
 * 2 * 128 * 8128, so nothing saturates or rounds before the conversion. */
static inline TD_AVX512 __m512 q6_K_step(__m512 acc, __m512i q, __m512i scales, float d, const td_block_q8_act *x) {
    const __m512i y = load_act2(x);
    const __mmask64 negative = _mm512_movepi8_mask(q);
    const __m512i signed_y = _mm512_mask_sub_epi8(y, negative, _mm512_setzero_si512(), y);
    const __m512i pairs = _mm512_maddubs_epi16(_mm512_abs_epi8(q), signed_y);
    const __m512i dots = _mm512_madd_epi16(pairs, scales);
    return _mm512_fmadd_ps(scales2(d * x[0].d, d * x[1].d), _mm512_cvtepi32_ps(dots), acc);
}

static inline TD_AVX512 void q6_K_superblock(__m512 *acc, const td_block_q6_K *blk, const td_block_q8_act *x,
                                             int64_t x_stride, int rows) {
    const float d = half_to_float(blk->d);
    const __m512i scales16 = _mm512_cvtepi8_epi16(_mm256_zextsi128_si256(_mm_loadu_si128((const __m128i *)blk->scales)));
    for (int p = 0; p < 4; p++) {
        const __m512i q = q6_K_values2(blk, p);
        const __m512i scales = q6_K_scales2(scales16, p);
        for (int k = 0; k < rows; k++) acc[k] = q6_K_step(acc[k], q, scales, d, x + k * x_stride + 2 * p);
    }
}

TD_AVX512 float td_dot_q6_K_avx512(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q6_K *blk = (const td_block_q6_K *)w;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb / 8; b++) {
        _mm_prefetch((const char *)(blk + b) + TD_PREFETCH_BYTES, _MM_HINT_T0);
        q6_K_superblock(&acc, blk + b, x + 8 * b, 0, 1);
    }
    return hsum16(acc);
}

/* One Q6_K weight row against four activation rows (x_stride blocks apart). */
TD_AVX512 void td_dot_q6_K_x4_avx512(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out) {
    const td_block_q6_K *blk = (const td_block_q6_K *)w;
    __m512 acc[4];
    for (int k = 0; k < 4; k++) acc[k] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb / 8; b++) {
        _mm_prefetch((const char *)(blk + b) + TD_PREFETCH_BYTES, _MM_HINT_T0);
        q6_K_superblock(acc, blk + b, x + 8 * b, x_stride, 4);
    }
    for (int k = 0; k < 4; k++) out[k] = hsum16(acc[k]);
}
#endif
