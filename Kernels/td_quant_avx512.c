/* AVX-512 VNNI path. vpdpbusd multiplies unsigned by signed bytes and sums groups of four
 * into int32 lanes in one instruction. Blocks go two at a time through a 512-bit register;
 * the two halves keep separate float lanes, so accumulation order is fixed per block pair. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>
#include "td_simd_avx512.h"

/* Nibbles of two consecutive 4-bit blocks (qs at a and b) as 64 bytes, each block's low
 * nibbles then high nibbles, matching the activation element order. */
static inline TD_AVX512 __m512i unpack_nibbles2(const uint8_t *a, const uint8_t *b) {
    const __m128i pa = _mm_loadu_si128((const __m128i *)a);
    const __m128i pb = _mm_loadu_si128((const __m128i *)b);
    const __m256i ya = _mm256_set_m128i(_mm_srli_epi16(pa, 4), pa);
    const __m256i yb = _mm256_set_m128i(_mm_srli_epi16(pb, 4), pb);
    const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(ya), yb, 1);
    return _mm512_and_si512(both, _mm512_set1_epi8(0x0f));
}

/* The odd last block of a row goes through the 256-bit form with the same lane layout. */
static inline TD_AVX512 __m256i dot_i8x32(__m256i a, __m256i b) {
    const __m256i abs_a = _mm256_abs_epi8(a);
    const __m256i signed_b = _mm256_sign_epi8(b, a);
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), abs_a, signed_b);
}

static inline TD_AVX512 __m512 widen(__m256 v) {
    return _mm512_insertf32x8(_mm512_setzero_ps(), v, 0);
}


/* Q4_1, row-major: one row's sixteen partial sums in one register, lanes 0..7 for the even
 * block of each pair and 8..15 for the odd one. The operations follow the scalar reference's
 * order (td_quant_ref.c), so results equal every other path's bitwise. */
typedef struct {
    __m512 acc;
    float offsets;
    float offsets_odd;
} q4_1_state;

static inline TD_AVX512 void q4_1_pair(q4_1_state *st, const td_block_q4_1 *blk, const td_block_q8_act *x) {
    const __m512i q = unpack_nibbles2(blk[0].qs, blk[1].qs);
    const __m512i dots = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, load_act2(x));
    const __m512 s = scales2(half_to_float(blk[0].d) * x[0].d, half_to_float(blk[1].d) * x[1].d);
    st->acc = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(dots), st->acc);
    st->offsets += half_to_float(blk[0].m) * x[0].s;
    st->offsets_odd += half_to_float(blk[1].m) * x[1].s;
}

static inline TD_AVX512 float q4_1_finish(q4_1_state *st, const td_block_q4_1 *blk, const td_block_q8_act *x, int odd) {
    st->offsets += st->offsets_odd;
    if (odd) {
        const __m128i p = _mm_loadu_si128((const __m128i *)blk->qs);
        const __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(p, 4), p), _mm256_set1_epi8(0x0f));
        const __m256i y = _mm256_loadu_si256((const __m256i *)x->qs);
        const __m256i dots = _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, y);
        const __m256 v = _mm256_mul_ps(_mm256_set1_ps(half_to_float(blk->d) * x->d), _mm256_cvtepi32_ps(dots));
        st->acc = _mm512_add_ps(st->acc, widen(v));
        st->offsets += half_to_float(blk->m) * x->s;
    }
    return hsum16(st->acc) + st->offsets;
}

TD_AVX512 float td_dot_q4_1_avx512(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q4_1 *blk = (const td_block_q4_1 *)w;
    q4_1_state st = { _mm512_setzero_ps(), 0.0f, 0.0f };
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        _mm_prefetch((const char *)(blk + b) + TD_PREFETCH_BYTES, _MM_HINT_T0);
        q4_1_pair(&st, blk + b, x + b);
    }
    return q4_1_finish(&st, blk + b, x + b, b < nb);
}

/* Interleaved Q4_1 (td_block_q4_1x16): lane r of every register belongs to weight row r, so
 * register even[g] contains partial sum g of sixteen rows and odd[g] sum 8 + g. A block's four
 * 64-byte quarters unpack into the eight groups' weights of all rows. vpdpbusd against a
 * group's four activation bytes, broadcast to every lane, gives sixteen rows' exact group
 * sums at once. Same operations, same order as the scalar reference, per lane. */
static inline TD_AVX512 __m512i broadcast_group(const td_block_q8_act *x, int g) {
    int32_t four;
    memcpy(&four, x->qs + 4 * g, sizeof four);
    return _mm512_set1_epi32(four);
}

/* Advances acc[0..7] by one block: fused (scale * group sum) when `fused`, else a product
 * then a sum (the odd last block). */
static inline TD_AVX512 void q4_1x16_block(__m512 acc[8], const td_block_q4_1x16 *blk, const td_block_q8_act *x, int fused) {
    const __m512i low = _mm512_set1_epi8(0x0f);
    const __m512 scale = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk->d)), _mm512_set1_ps(x->d));
    for (int j = 0; j < 4; j++) {
        const __m512i packed = _mm512_loadu_si512((const void *)(blk->qs + 64 * j));
        const __m512i lo = _mm512_and_si512(packed, low);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(packed, 4), low);
        const __m512 sum_lo = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, broadcast_group(x, j)));
        const __m512 sum_hi = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), hi, broadcast_group(x, j + 4)));
        if (fused) {
            acc[j] = _mm512_fmadd_ps(scale, sum_lo, acc[j]);
            acc[j + 4] = _mm512_fmadd_ps(scale, sum_hi, acc[j + 4]);
        } else {
            acc[j] = _mm512_add_ps(acc[j], _mm512_mul_ps(scale, sum_lo));
            acc[j + 4] = _mm512_add_ps(acc[j + 4], _mm512_mul_ps(scale, sum_hi));
        }
    }
}

static inline TD_AVX512 __m512 q4_1x16_offset(const td_block_q4_1x16 *blk, const td_block_q8_act *x) {
    return _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk->m)), _mm512_set1_ps(x->s));
}

/* Sixteen rows' products with one activation row. */
static inline TD_AVX512 __m512 q4_1x16_row(const td_block_q4_1x16 *blk, int64_t nb, const td_block_q8_act *x) {
    __m512 even[8], odd[8];
    for (int g = 0; g < 8; g++) even[g] = odd[g] = _mm512_setzero_ps();
    __m512 offsets = _mm512_setzero_ps(), offsets_odd = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        _mm_prefetch((const char *)(blk + b) + TD_PREFETCH_BYTES, _MM_HINT_T0);
        q4_1x16_block(even, blk + b, x + b, 1);
        q4_1x16_block(odd, blk + b + 1, x + b + 1, 1);
        offsets = _mm512_add_ps(offsets, q4_1x16_offset(blk + b, x + b));
        offsets_odd = _mm512_add_ps(offsets_odd, q4_1x16_offset(blk + b + 1, x + b + 1));
    }
    offsets = _mm512_add_ps(offsets, offsets_odd);
    if (b < nb) {
        q4_1x16_block(even, blk + b, x + b, 0);
        offsets = _mm512_add_ps(offsets, q4_1x16_offset(blk + b, x + b));
    }
    __m512 t[8];
    for (int g = 0; g < 8; g++) t[g] = _mm512_add_ps(even[g], odd[g]);
    const __m512 sum = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(t[0], t[4]), _mm512_add_ps(t[2], t[6])),
                                     _mm512_add_ps(_mm512_add_ps(t[1], t[5]), _mm512_add_ps(t[3], t[7])));
    return _mm512_add_ps(sum, offsets);
}

/* Several activation rows. q4_1x16_row keeps sixteen partial-sum registers per activation
 * row (eight groups times block parity), so it cannot hold two rows at once and would unpack
 * every block again for each row. The sixteen sums of a row are independent chains, though.
 * A tile of rows advances sixteen of its chains, all of one block parity, in one pass over the
 * blocks. Two rows take all eight groups per pass, so they need two passes. Three or four
 * rows take four groups per pass and need four. Each chain gets the same operations in the
 * same order as in q4_1x16_row, so the results are bitwise equal, and each block is unpacked
 * once per pass for the whole tile. */
#define TD_Q4_TILE_ROWS 4

/* Cache lines in one td_block_q4_1x16. */
#define TD_Q4_BLOCK_LINES 5
_Static_assert(sizeof(td_block_q4_1x16) == TD_Q4_BLOCK_LINES * 64, "an interleaved Q4_1 block must be five cache lines");

/* Prefetch distance and cache level of the tiles: the group this many groups ahead, in line
 * order, into L2. On Zen 4 two rows of Q4_1 49152x576 then took 1.15 times the one-row time,
 * against 2.0 times with the next group prefetched block by block into L1, where the lines
 * arrived late. */
#define TD_Q4_PREFETCH_GROUPS 2
#define TD_Q4_PREFETCH_HINT _MM_HINT_T1

/* Sequential prefetch spread over a tile's passes: each block step of a pass requests the
 * next `step` cache lines from `cursor` until it reaches `end`. */
typedef struct {
    const char *cursor;
    const char *end;
    int step;
} td_prefetch_cursor;

static inline TD_AVX512 void prefetch_advance(td_prefetch_cursor *p) {
    for (int i = 0; i < p->step && p->cursor < p->end; i++, p->cursor += 64) _mm_prefetch(p->cursor, TD_Q4_PREFETCH_HINT);
}

/* One pass over the blocks of one parity for groups g0 .. g0 + ng - 1 of `rows` rows.
 * Writes the chains to sums[row][group] and advances the prefetch `p`. */
static inline __attribute__((always_inline)) TD_AVX512 void q4_1x16_pass(
    __m512 sums[TD_Q4_TILE_ROWS][8], const td_block_q4_1x16 *blk, int64_t nb, const td_block_q8_act *x,
    int64_t x_stride, const int rows, int parity, const int g0, const int ng,
    td_prefetch_cursor *p) {
    const __m512i low = _mm512_set1_epi8(0x0f);
    __m512 acc[TD_Q4_TILE_ROWS][8];
    for (int r = 0; r < rows; r++) {
        for (int k = 0; k < ng; k++) acc[r][k] = _mm512_setzero_ps();
    }
    const int64_t paired = nb & ~(int64_t)1;
    for (int64_t b = parity; b < nb; b += 2) {
        prefetch_advance(p);
        const int fused = b < paired;
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk[b].d));
        __m512i q[8];
        for (int k = 0; k < ng; k++) {
            const int g = g0 + k;
            const __m512i packed = _mm512_loadu_si512((const void *)(blk[b].qs + 64 * (g & 3)));
            q[k] = _mm512_and_si512(g >= 4 ? _mm512_srli_epi16(packed, 4) : packed, low);
        }
        for (int r = 0; r < rows; r++) {
            const td_block_q8_act *xb = x + r * x_stride + b;
            const __m512 scale = _mm512_mul_ps(d, _mm512_set1_ps(xb->d));
            for (int k = 0; k < ng; k++) {
                const __m512 sum = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q[k], broadcast_group(xb, g0 + k)));
                acc[r][k] = fused ? _mm512_fmadd_ps(scale, sum, acc[r][k]) : _mm512_add_ps(acc[r][k], _mm512_mul_ps(scale, sum));
            }
        }
    }
    for (int r = 0; r < rows; r++) {
        for (int k = 0; k < ng; k++) sums[r][g0 + k] = acc[r][k];
    }
}

/* The offsets term of q4_1x16_row, in its order. */
static inline TD_AVX512 __m512 q4_1x16_offsets(const td_block_q4_1x16 *blk, int64_t nb, const td_block_q8_act *x) {
    __m512 offsets = _mm512_setzero_ps(), offsets_odd = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        offsets = _mm512_add_ps(offsets, q4_1x16_offset(blk + b, x + b));
        offsets_odd = _mm512_add_ps(offsets_odd, q4_1x16_offset(blk + b + 1, x + b + 1));
    }
    offsets = _mm512_add_ps(offsets, offsets_odd);
    if (b < nb) offsets = _mm512_add_ps(offsets, q4_1x16_offset(blk + b, x + b));
    return offsets;
}

/* Up to four rows against one group. Unless `next` is NULL, the tile prefetches the group
 * at `next` (nb blocks) while it computes. */
static inline __attribute__((always_inline)) TD_AVX512 void q4_1x16_tile(
    const td_block_q4_1x16 *blk, int64_t nb, const td_block_q8_act *x, int64_t x_stride, const int rows,
    float *out, int64_t out_stride, __mmask16 valid, const td_block_q4_1x16 *next) {
    __m512 even[TD_Q4_TILE_ROWS][8], odd[TD_Q4_TILE_ROWS][8];
    /* The passes take nb * passes / 2 block steps in all, so a group's 5 * nb lines need
     * 10 / passes lines per step (rounded up). */
    const int wide = rows <= 2;
    td_prefetch_cursor p = { NULL, NULL, wide ? TD_Q4_BLOCK_LINES : (TD_Q4_BLOCK_LINES + 1) / 2 };
    if (next != NULL) {
        p.cursor = (const char *)next;
        p.end = (const char *)(next + nb);
    }
    if (wide) {
        q4_1x16_pass(even, blk, nb, x, x_stride, rows, 0, 0, 8, &p);
        q4_1x16_pass(odd, blk, nb, x, x_stride, rows, 1, 0, 8, &p);
    } else {
        q4_1x16_pass(even, blk, nb, x, x_stride, rows, 0, 0, 4, &p);
        q4_1x16_pass(odd, blk, nb, x, x_stride, rows, 1, 0, 4, &p);
        q4_1x16_pass(even, blk, nb, x, x_stride, rows, 0, 4, 4, &p);
        q4_1x16_pass(odd, blk, nb, x, x_stride, rows, 1, 4, 4, &p);
    }
    for (int r = 0; r < rows; r++) {
        __m512 t[8];
        for (int g = 0; g < 8; g++) t[g] = _mm512_add_ps(even[r][g], odd[r][g]);
        const __m512 sum = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(t[0], t[4]), _mm512_add_ps(t[2], t[6])),
                                         _mm512_add_ps(_mm512_add_ps(t[1], t[5]), _mm512_add_ps(t[3], t[7])));
        const __m512 result = _mm512_add_ps(sum, q4_1x16_offsets(blk, nb, x + r * x_stride));
        _mm512_mask_storeu_ps(out + r * out_stride, valid, result);
    }
}

TD_AVX512 void td_gemm_q4_1x16_avx512(const void *group, int64_t nb, const td_block_q8_act *x, int64_t x_stride,
                                      int64_t m, float *out, int64_t out_stride, int valid_rows) {
    const td_block_q4_1x16 *blk = (const td_block_q4_1x16 *)group;
    const __mmask16 valid = (__mmask16)((1u << valid_rows) - 1);
    if (m == 1) {
        /* Decode: one pass that unpacks as it streams the weights from memory. */
        _mm512_mask_storeu_ps(out, valid, q4_1x16_row(blk, nb, x));
        return;
    }
    /* The matrix driver hands a thread consecutive groups, so the first tile prefetches a
     * later group while it computes. Past a matrix's end the hint is harmless. */
    const td_block_q4_1x16 *next = blk + TD_Q4_PREFETCH_GROUPS * nb;
    int64_t i = 0;
    for (; i + TD_Q4_TILE_ROWS <= m; i += TD_Q4_TILE_ROWS) {
        q4_1x16_tile(blk, nb, x + i * x_stride, x_stride, TD_Q4_TILE_ROWS, out + i * out_stride, out_stride, valid, next);
        next = NULL;
    }
    const td_block_q8_act *xi = x + i * x_stride;
    float *oi = out + i * out_stride;
    switch (m - i) {
    case 3: q4_1x16_tile(blk, nb, xi, x_stride, 3, oi, out_stride, valid, next); break;
    case 2: q4_1x16_tile(blk, nb, xi, x_stride, 2, oi, out_stride, valid, next); break;
    case 1: q4_1x16_tile(blk, nb, xi, x_stride, 1, oi, out_stride, valid, next); break;
    default: break;
    }
}

/* Q4_0 steps shared by the one-row and four-activation-row kernels, so each (weight row,
 * activation row) pair runs the same instructions in the same order. signed_pair multiplies
 * a block pair's signed weights q by the pair's activations. signed_finish adds a row's odd
 * last block and sums the lanes. */
static inline TD_AVX512 __m512 signed_pair(__m512 acc, __m512i q, float d0, float d1, const td_block_q8_act *x) {
    const __m512 s = scales2(d0 * x[0].d, d1 * x[1].d);
    return _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(dot_i8x64(q, load_act2(x))), acc);
}

static inline TD_AVX512 float signed_finish(__m512 acc, __m256i q, float d, const td_block_q8_act *x) {
    const __m256i y = _mm256_loadu_si256((const __m256i *)x->qs);
    const __m256 v = _mm256_mul_ps(_mm256_set1_ps(d * x->d), _mm256_cvtepi32_ps(dot_i8x32(q, y)));
    return hsum16(_mm512_add_ps(acc, widen(v)));
}

/* Q8_0, row-major: each block's exact integer sum, then the scalar reference's fused
 * multiply-add, so results equal every other path's bitwise. */
TD_AVX512 float td_dot_q8_0_avx512(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q8_0 *blk = (const td_block_q8_0 *)w;
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)blk[b].qs);
        const __m256i lanes = dot_i8x32(q, _mm256_loadu_si256((const __m256i *)x[b].qs));
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(lanes), _mm256_extracti128_si256(lanes, 1));
        s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
        acc = fmaf(half_to_float(blk[b].d) * x[b].d, (float)_mm_cvtsi128_si32(s), acc);
    }
    return acc;
}

/* Interleaved Q8_0 (td_block_q8_0x16): lane r is weight row r. vpdpbusd multiplies unsigned
 * by signed bytes, so the activations, offset by 128 into 1..255, are the unsigned side
 * (broadcast to every lane) and the weights the signed side. vpdpbusd of 128 by the weights
 * gives 128 times each row's weight sum once per block. Subtracting it leaves the exact signed
 * sum of the scalar reference. */
static inline TD_AVX512 __m512i q8_0x16_offset(const td_block_q8_0x16 *blk) {
    __m512i sum = _mm512_setzero_si512();
    for (int g = 0; g < 8; g++) {
        sum = _mm512_dpbusd_epi32(sum, _mm512_set1_epi8((char)0x80), _mm512_loadu_si512((const void *)(blk->qs + 64 * g)));
    }
    return sum;
}

/* Exact signed sums of sixteen rows' block with one activation block, whose bytes `shifted`
 * hold q + 128 (q XOR 0x80): each group's four bytes are broadcast straight from memory. */
static inline TD_AVX512 __m512i q8_0x16_sum(const td_block_q8_0x16 *blk, const uint8_t *shifted, __m512i offset) {
    __m512i sum = _mm512_setzero_si512();
    for (int g = 0; g < 8; g++) {
        int32_t four;
        memcpy(&four, shifted + 4 * g, sizeof four);
        sum = _mm512_dpbusd_epi32(sum, _mm512_set1_epi32(four), _mm512_loadu_si512((const void *)(blk->qs + 64 * g)));
    }
    return _mm512_sub_epi32(sum, offset);
}

/* Blocks per row up to which the per-block offsets fit the stack scratch (32 KiB). */
#define TD_Q8_OFFSET_BLOCKS 512

/* Sixteen weight rows against one activation row whose bytes, shifted into unsigned form,
 * are in `shifted`. `offsets` gives each block's offset, or is NULL to compute them here. */
static inline TD_AVX512 __m512 q8_0x16_row(const td_block_q8_0x16 *blk, int64_t nb, const td_block_q8_act *x,
                                          const uint8_t *shifted, const __m512i *offsets) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        _mm_prefetch((const char *)(blk + b) + TD_PREFETCH_BYTES, _MM_HINT_T0);
        const __m512i offset = offsets != NULL ? offsets[b] : q8_0x16_offset(blk + b);
        const __m512i sum = q8_0x16_sum(blk + b, shifted + b * TD_QK, offset);
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk[b].d));
        acc = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(x[b].d)), _mm512_cvtepi32_ps(sum), acc);
    }
    return acc;
}

/* Activation rows per tile of the several-row kernel. */
#define TD_Q8_TILE_ROWS 4

/* Cache lines to prefetch per block step so that nb steps cover a group of nb 544-byte
 * blocks. */
#define TD_Q8_BLOCK_LINES 9

/* Up to four activation rows against sixteen weight rows: each block's eight weight
 * registers are loaded once for the whole tile. Each row's shifted bytes start at
 * shifted + r * nb * TD_QK. Each row's integer block sum runs in two chains of four
 * (integer addition is exact, so the sum is the same) and then takes q8_0x16_row's float
 * operations in its order.
 * The `first` tile of a group computes each block's offset into offsets[b], which later
 * tiles read, and it is the one that prefetches. With one or two rows it prefetches ahead in
 * its own stream, as q8_0x16_row does, which measured faster for so little compute. With more
 * rows it prefetches a later group in line order, as the Q4_1 tiles do, because the matrix
 * driver hands the same thread that group (past a matrix's end the hint is harmless). */
static inline __attribute__((always_inline)) TD_AVX512 void q8_0x16_tile(
    const td_block_q8_0x16 *blk, int64_t nb, const td_block_q8_act *x, int64_t x_stride, const uint8_t *shifted,
    const int rows, __m512i *offsets, int first, float *out, int64_t out_stride, __mmask16 valid) {
    __m512 acc[TD_Q8_TILE_ROWS];
    for (int r = 0; r < rows; r++) acc[r] = _mm512_setzero_ps();
    const td_block_q8_0x16 *later = blk + TD_Q4_PREFETCH_GROUPS * nb;
    td_prefetch_cursor p = { (const char *)later, (const char *)(later + nb), TD_Q8_BLOCK_LINES };
    for (int64_t b = 0; b < nb; b++) {
        if (first && rows <= 2) {
            _mm_prefetch((const char *)(blk + b) + TD_PREFETCH_BYTES, _MM_HINT_T0);
        } else if (first) {
            prefetch_advance(&p);
        }
        __m512i w[8];
        for (int g = 0; g < 8; g++) w[g] = _mm512_loadu_si512((const void *)(blk[b].qs + 64 * g));
        __m512i offset;
        if (first) {
            const __m512i bias = _mm512_set1_epi8((char)0x80);
            __m512i low = _mm512_setzero_si512(), high = _mm512_setzero_si512();
            for (int g = 0; g < 4; g++) {
                low = _mm512_dpbusd_epi32(low, bias, w[g]);
                high = _mm512_dpbusd_epi32(high, bias, w[g + 4]);
            }
            offset = _mm512_add_epi32(low, high);
            offsets[b] = offset;
        } else {
            offset = offsets[b];
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk[b].d));
        for (int r = 0; r < rows; r++) {
            const uint8_t *bytes = shifted + (r * nb + b) * TD_QK;
            __m512i low = _mm512_setzero_si512(), high = _mm512_setzero_si512();
            for (int g = 0; g < 4; g++) {
                int32_t four_low, four_high;
                memcpy(&four_low, bytes + 4 * g, sizeof four_low);
                memcpy(&four_high, bytes + 4 * (g + 4), sizeof four_high);
                low = _mm512_dpbusd_epi32(low, _mm512_set1_epi32(four_low), w[g]);
                high = _mm512_dpbusd_epi32(high, _mm512_set1_epi32(four_high), w[g + 4]);
            }
            const __m512i sum = _mm512_sub_epi32(_mm512_add_epi32(low, high), offset);
            const __m512 scale = _mm512_mul_ps(d, _mm512_set1_ps(x[r * x_stride + b].d));
            acc[r] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(sum), acc[r]);
        }
    }
    for (int r = 0; r < rows; r++) _mm512_mask_storeu_ps(out + r * out_stride, valid, acc[r]);
}

/* Writes rows' activation bytes XOR 0x80 (q + 128) to shifted, row after row. */
static inline TD_AVX512 void q8_shift_rows(const td_block_q8_act *x, int64_t x_stride, int64_t nb, int rows, uint8_t *shifted) {
    for (int r = 0; r < rows; r++) {
        for (int64_t b = 0; b < nb; b++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)x[r * x_stride + b].qs);
            _mm256_storeu_si256((__m256i *)(shifted + (r * nb + b) * TD_QK), _mm256_xor_si256(q, _mm256_set1_epi8((char)0x80)));
        }
    }
}

TD_AVX512 void td_gemm_q8_0x16_avx512(const void *group, int64_t nb, const td_block_q8_act *x, int64_t x_stride,
                                      int64_t m, float *out, int64_t out_stride, int valid_rows) {
    const td_block_q8_0x16 *blk = (const td_block_q8_0x16 *)group;
    const __mmask16 valid = (__mmask16)((1u << valid_rows) - 1);

    if (m == 1 || nb > TD_Q8_OFFSET_BLOCKS) {
        /* One row (decode), or rows too long for the offsets scratch: each row computes the
         * offsets in its main loop, so the weights stream from memory once per row. */
        uint8_t shifted[nb * TD_QK] __attribute__((aligned(64)));
        for (int64_t i = 0; i < m; i++) {
            q8_shift_rows(x + i * x_stride, x_stride, nb, 1, shifted);
            _mm512_mask_storeu_ps(out + i * out_stride, valid, q8_0x16_row(blk, nb, x + i * x_stride, shifted, NULL));
        }
        return;
    }

    /* Tiles of rows share each block's weight loads; the first tile computes the blocks'
     * offsets for the others. */
    __m512i offsets[nb];
    uint8_t shifted[TD_Q8_TILE_ROWS * nb * TD_QK] __attribute__((aligned(64)));
    for (int64_t i = 0; i < m; i += TD_Q8_TILE_ROWS) {
        const int rows = (int)(m - i < TD_Q8_TILE_ROWS ? m - i : TD_Q8_TILE_ROWS);
        const td_block_q8_act *xi = x + i * x_stride;
        float *oi = out + i * out_stride;
        const int first = i == 0;
        q8_shift_rows(xi, x_stride, nb, rows, shifted);
        switch (rows) {
        case 4: q8_0x16_tile(blk, nb, xi, x_stride, shifted, 4, offsets, first, oi, out_stride, valid); break;
        case 3: q8_0x16_tile(blk, nb, xi, x_stride, shifted, 3, offsets, first, oi, out_stride, valid); break;
        case 2: q8_0x16_tile(blk, nb, xi, x_stride, shifted, 2, offsets, first, oi, out_stride, valid); break;
        default: q8_0x16_tile(blk, nb, xi, x_stride, shifted, 1, offsets, first, oi, out_stride, valid); break;
        }
    }
}

/* td_round_half_finite through F16C: its round-to-nearest-even gives the scalar conversion's
 * half for every input that is not NaN (checked over all 2^32 patterns), and an input that
 * rounds to infinity stays itself, as there. */
static inline TD_AVX512 float round_half_finite(float x) {
    const __m128i half = _mm_cvtps_ph(_mm_set_ss(x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const float rounded = _mm_cvtss_f32(_mm_cvtph_ps(half));
    return isinf(rounded) && !isinf(x) ? x : rounded;
}

/* Quantizes activations with the scalar reference's arithmetic (td_quant_ref.c). It takes the
 * same block maximum, the same product x * (127 / max) rounded half to even by the default
 * MXCSR mode and the same exact integer sum, so blocks are bitwise the reference's. A block
 * with a non-finite value goes through the reference. */
TD_AVX512 void td_quantize_row_q8_act_avx512(const float *x, td_block_q8_act *y, int64_t nb) {
    const __m512 sign = _mm512_set1_ps(-0.0f);
    for (int64_t b = 0; b < nb; b++) {
        const float *xb = x + b * TD_QK;
        const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1)));
        const __mmask16 nan = _mm512_cmp_ps_mask(v0, v0, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(v1, v1, _CMP_UNORD_Q);
        if (nan != 0 || !(amax <= 3.4028235e38f)) {
            td_quantize_row_q8_act(xb, y + b, TD_QK);
            continue;
        }
        const float d = amax / 127.0f;
        const __m512 id = _mm512_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
        const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id));
        const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
        _mm_storeu_si128((__m128i *)y[b].qs, _mm512_cvtepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(y[b].qs + 16), _mm512_cvtepi32_epi8(q1));
        const int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
        y[b].d = round_half_finite(d);
        y[b].s = round_half_finite(d * (float)sum);
    }
}

TD_AVX512 float td_dot_f32_avx512(const void *w, const float *x, int64_t n) {
    const float *wf = (const float *)w;
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(wf + i), _mm512_loadu_ps(x + i), acc);
    float sum = hsum16(acc);
    for (; i < n; i++) sum += wf[i] * x[i];
    return sum;
}

/* Q4_0 unpacks a block pair's nibbles and shifts them to -8..7 for the signed steps above. */
static inline TD_AVX512 __m512i load_q4_0_pair(const td_block_q4_0 *blk) {
    return _mm512_sub_epi8(unpack_nibbles2(blk[0].qs, blk[1].qs), _mm512_set1_epi8(8));
}

static inline TD_AVX512 float q4_0_finish(__m512 acc, const td_block_q4_0 *blk, const td_block_q8_act *x, int odd) {
    if (!odd) return hsum16(acc);
    const __m128i p = _mm_loadu_si128((const __m128i *)blk->qs);
    const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(p, 4), p), _mm256_set1_epi8(0x0f));
    return signed_finish(acc, _mm256_sub_epi8(nib, _mm256_set1_epi8(8)), half_to_float(blk->d), x);
}

TD_AVX512 float td_dot_q4_0_avx512(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q4_0 *blk = (const td_block_q4_0 *)w;
    __m512 acc = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        acc = signed_pair(acc, load_q4_0_pair(blk + b), half_to_float(blk[b].d), half_to_float(blk[b + 1].d), x + b);
    }
    return q4_0_finish(acc, blk + b, x + b, b < nb);
}

/* One Q4_0 weight row against four activation rows (x_stride blocks apart). */
TD_AVX512 void td_dot_q4_0_x4_avx512(const void *w, const td_block_q8_act *x, int64_t x_stride, int64_t nb, float *out) {
    const td_block_q4_0 *blk = (const td_block_q4_0 *)w;
    __m512 acc[4];
    for (int k = 0; k < 4; k++) acc[k] = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        _mm_prefetch((const char *)(blk + b) + TD_PREFETCH_BYTES, _MM_HINT_T0);
        const __m512i q = load_q4_0_pair(blk + b);
        const float d0 = half_to_float(blk[b].d), d1 = half_to_float(blk[b + 1].d);
        for (int k = 0; k < 4; k++) acc[k] = signed_pair(acc[k], q, d0, d1, x + k * x_stride + b);
    }
    for (int k = 0; k < 4; k++) out[k] = q4_0_finish(acc[k], blk + b, x + k * x_stride + b, b < nb);
}
#endif
