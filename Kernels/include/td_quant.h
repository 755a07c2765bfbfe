/*
 * Block layouts of the quantized tensor types, bit-compatible with ggml's GGUF encoding.
 *
 * Q4_0, Q4_1, Q5_0 and Q8_0 store a row as consecutive blocks of TD_QK = 32 elements; the
 * K-quants (Q4_K, Q5_K, Q6_K) as super-blocks of TD_QK_K = 256. Element i of a block is
 * dequantized as shown next to each struct. Scales are IEEE half floats (td_fp16).
 */
#ifndef TD_QUANT_H
#define TD_QUANT_H

#include <stdint.h>

#define TD_QK 32

typedef uint16_t td_fp16;

/* Q4_0: 4.5 bits per weight. x[i] = d * (q[i] - 8), q[i] in 0..15.
 * qs[j] holds element j in its low nibble and element j + 16 in its high nibble. */
typedef struct {
    td_fp16 d;                  /* scale */
    uint8_t qs[TD_QK / 2];      /* 32 unsigned 4-bit values */
} td_block_q4_0;
_Static_assert(sizeof(td_block_q4_0) == 18, "Q4_0 block must be 18 bytes");

/* Q4_1: 5 bits per weight. x[i] = d * q[i] + m, q[i] in 0..15; nibble order as Q4_0. */
typedef struct {
    td_fp16 d;                  /* scale */
    td_fp16 m;                  /* minimum (offset) */
    uint8_t qs[TD_QK / 2];      /* 32 unsigned 4-bit values */
} td_block_q4_1;
_Static_assert(sizeof(td_block_q4_1) == 20, "Q4_1 block must be 20 bytes");

/* Q4_1 with 16 rows interleaved (engine-internal, built at load time by td_repack): block b
 * of rows 16g .. 16g + 15 in one struct, so one vector load serves 16 rows. d[r] and m[r] are
 * row r's scale and minimum. qs[(16 * j + r) * 4 + k] is row r's original qs[4 * j + k]
 * (j = 0..3, k = 0..3): each 64-byte quarter j gives every row four bytes, whose low nibbles
 * are elements 4j..4j+3 and high nibbles elements 16+4j..16+4j+3. */
#define TD_INTERLEAVE 16
typedef struct {
    td_fp16 d[TD_INTERLEAVE];
    td_fp16 m[TD_INTERLEAVE];
    uint8_t qs[TD_INTERLEAVE * TD_QK / 2];
} td_block_q4_1x16;
_Static_assert(sizeof(td_block_q4_1x16) == 16 * 20, "interleaved Q4_1 block must be 320 bytes");

/* Q8_0: 8.5 bits per weight. x[i] = d * q[i], q[i] in -127..127. */
typedef struct {
    td_fp16 d;                  /* scale */
    int8_t qs[TD_QK];           /* 32 signed 8-bit values */
} td_block_q8_0;
_Static_assert(sizeof(td_block_q8_0) == 34, "Q8_0 block must be 34 bytes");

/* Q5_0: 5.5 bits per weight. x[i] = d * (q[i] - 16), q[i] in 0..31. The low four bits of
 * q[i] sit in qs as in Q4_0 (element j in the low nibble of qs[j], element j + 16 in its high
 * nibble). Bit 4 of q[i] is bit i of qh read as a little-endian 32-bit word. */
typedef struct {
    td_fp16 d;                  /* scale */
    uint8_t qh[4];              /* bit 4 of each of the 32 values */
    uint8_t qs[TD_QK / 2];      /* low 4 bits of the 32 values */
} td_block_q5_0;
_Static_assert(sizeof(td_block_q5_0) == 22, "Q5_0 block must be 22 bytes");

/* The K-quant types store a row as super-blocks of TD_QK_K = 256 elements, so their rows
 * must be multiples of 256 elements. */
#define TD_QK_K 256

/* Q4_K: 4.5 bits per weight. A super-block has 8 sub-blocks of 32 elements; sub-block s has
 * a 6-bit scale sc[s] and a 6-bit minimum m[s], both unsigned. Element l of sub-block s
 * (element 32 * s + l of the super-block) is
 *     x = d * sc[s] * q - dmin * m[s],  q in 0..15,
 * where q is the low nibble of qs[32 * (s / 2) + l] for even s and its high nibble for odd s.
 * The 12 bytes of `scales` pack sc and m as follows:
 *     s < 4:  sc[s] = scales[s] & 63,
 *             m[s]  = scales[s + 4] & 63;
 *     s >= 4: sc[s] = (scales[s + 4] & 15) | (scales[s - 4] >> 6) << 4,
 *             m[s]  = (scales[s + 4] >> 4) | (scales[s] >> 6) << 4. */
typedef struct {
    td_fp16 d;                  /* scale of the sub-block scales */
    td_fp16 dmin;               /* scale of the sub-block minimums */
    uint8_t scales[12];         /* 8 scales and 8 minimums of 6 bits each */
    uint8_t qs[TD_QK_K / 2];    /* 256 unsigned 4-bit values */
} td_block_q4_K;
_Static_assert(sizeof(td_block_q4_K) == 144, "Q4_K block must be 144 bytes");

/* Q5_K: 5.5 bits per weight. As Q4_K, with q in 0..31: the low four bits of q come from qs as
 * in Q4_K, and bit 4 of q for element l of sub-block s is bit s of qh[l]. */
typedef struct {
    td_fp16 d;                  /* scale of the sub-block scales */
    td_fp16 dmin;               /* scale of the sub-block minimums */
    uint8_t scales[12];         /* 8 scales and 8 minimums of 6 bits each, packed as in Q4_K */
    uint8_t qh[TD_QK_K / 8];    /* bit 4 of the 256 values */
    uint8_t qs[TD_QK_K / 2];    /* low 4 bits of the 256 values */
} td_block_q5_K;
_Static_assert(sizeof(td_block_q5_K) == 176, "Q5_K block must be 176 bytes");

/* Q6_K: 6.5625 bits per weight. A super-block has 16 sub-blocks of 16 elements, each with a
 * signed 8-bit scale. Element i = 128 * h + 32 * g + l (h in 0..1, g in 0..3, l in 0..31) is
 *     x[i] = d * scales[i / 16] * (q - 32),  q in 0..63,
 * where the low four bits of q are the low nibble of ql[64 * h + 32 * (g % 2) + l] for g < 2
 * and its high nibble for g >= 2, and bits 4..5 of q are bits 2g..2g+1 of qh[32 * h + l]. */
typedef struct {
    uint8_t ql[TD_QK_K / 2];    /* low 4 bits of the 256 values */
    uint8_t qh[TD_QK_K / 4];    /* high 2 bits of the 256 values */
    int8_t scales[TD_QK_K / 16];/* one signed scale per 16 elements */
    td_fp16 d;                  /* scale of the scales */
} td_block_q6_K;
_Static_assert(sizeof(td_block_q6_K) == 210, "Q6_K block must be 210 bytes");

/* Q8_0 with 16 rows interleaved (engine-internal, built by td_repack): d[r] is row r's scale
 * and qs[(16 * g + r) * 4 + k] is row r's qs[4 * g + k] (g = 0..7, k = 0..3), so each
 * 64-byte eighth g gives every row its four weights of elements 4g..4g+3. */
typedef struct {
    td_fp16 d[TD_INTERLEAVE];
    int8_t qs[TD_INTERLEAVE * TD_QK];
} td_block_q8_0x16;
_Static_assert(sizeof(td_block_q8_0x16) == 16 * 34, "interleaved Q8_0 block must be 544 bytes");

/* Activation block (engine-internal, never stored in files): x[i] ~= d * q[i], q[i] in
 * -127..127, q[i] = x[i] * 127 / max|x| rounded half to even, d = max|x| / 127. As in
 * llama.cpp's Q8_0 and Q8_1 activation blocks, d and s = d * sum(q) are rounded to half
 * precision (unless beyond its range), but kept in float32 fields. s lets Q4_1 dot products
 * apply their offsets once per block. A row of activations quantizes block by block, so a
 * row's blocks never depend on other rows of a batch. */
typedef struct {
    float d;                    /* scale */
    float s;                    /* d * sum of qs */
    int8_t qs[TD_QK];           /* 32 signed 8-bit values */
} td_block_q8_act;
_Static_assert(sizeof(td_block_q8_act) == 40, "activation block must be 40 bytes");

#endif
