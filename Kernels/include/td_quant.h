/*
 * Block layouts of the quantized tensor types, bit-compatible with ggml's GGUF encoding.
 *
 * Every quantized type stores a row as consecutive blocks of TD_QK = 32 elements. Element i of
 * a block is dequantized as shown next to each struct. Scales are IEEE half floats (td_fp16).
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
 * row r's scale and minimum. qs[(16 * j + r) * 4 + k] holds row r's original qs[4 * j + k]
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

/* Q8_0 with 16 rows interleaved (engine-internal, built by td_repack): d[r] is row r's scale
 * and qs[(16 * g + r) * 4 + k] holds row r's qs[4 * g + k] (g = 0..7, k = 0..3), so each
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
