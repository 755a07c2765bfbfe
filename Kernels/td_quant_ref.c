/* Scalar reference kernels: the specification every SIMD path is tested against. */
#include <math.h>
#include <string.h>
#include "td_internal.h"

float td_fp16_to_fp32(td_fp16 h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ff;
    uint32_t bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000u | (mantissa << 13);          /* inf or NaN */
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;                                           /* signed zero */
    } else {
        /* Subnormal half: normalise into a float32 exponent. */
        uint32_t e = 113;
        while ((mantissa & 0x400) == 0) { mantissa <<= 1; e--; }
        bits = sign | (e << 23) | ((mantissa & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

td_fp16 td_fp32_to_fp16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    const uint32_t sign = (x >> 16) & 0x8000;
    const uint32_t abs = x & 0x7fffffff;
    if (abs >= 0x7f800000u) {                                  /* inf or NaN */
        return (td_fp16)(sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0));
    }
    if (abs >= 0x477ff000u) return (td_fp16)(sign | 0x7c00);   /* rounds past 65504 */
    if (abs < 0x38800000u) {                                   /* half subnormal or zero */
        if (abs < 0x33000000u) return (td_fp16)sign;
        /* The value is mantissa * 2^(exponent - 150) and a half subnormal unit is 2^-24,
         * so the unit count is mantissa >> (126 - exponent), a shift of 14...24 here. */
        const uint32_t shift = 126 - (abs >> 23);
        const uint32_t mantissa = (abs & 0x7fffff) | 0x800000;
        uint32_t half = mantissa >> shift;
        const uint32_t rest = mantissa & ((1u << shift) - 1);
        const uint32_t halfway = 1u << (shift - 1);
        if (rest > halfway || (rest == halfway && (half & 1))) half++;
        return (td_fp16)(sign | half);
    }
    uint32_t half = ((abs >> 13) - (112u << 10));
    const uint32_t rest = abs & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) half++;
    return (td_fp16)(sign | half);
}

float td_round_half_finite(float x) {
    const float rounded = td_fp16_to_fp32(td_fp32_to_fp16(x));
    return isinf(rounded) && !isinf(x) ? x : rounded;
}

float td_bf16_to_fp32(uint16_t h) {
    const uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

int td_quantize_row_q8_act(const float *x, td_block_q8_act *y, int64_t n) {
    if (n < 0 || n % TD_QK != 0) return TD_EINVAL;
    for (int64_t b = 0; b < n / TD_QK; b++) {
        const float *xb = x + b * TD_QK;
        float amax = 0.0f;
        for (int j = 0; j < TD_QK; j++) {
            const float v = fabsf(xb[j]);
            if (v > amax) amax = v;
        }
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < TD_QK; j++) {
            const int q = (int)nearbyintf(xb[j] * id);    /* round half to even */
            y[b].qs[j] = (int8_t)q;
            sum += q;
        }
        /* Scales are rounded to half precision, as llama.cpp's Q8_0 and Q8_1 activation
         * blocks store them, so both engines see the same activation values. */
        y[b].d = td_round_half_finite(d);
        y[b].s = td_round_half_finite(d * (float)sum);
    }
    return TD_OK;
}

int td_quantize_row_q8_0(const float *x, void *dst, int64_t n) {
    if (x == NULL || dst == NULL || n < 0 || n % TD_QK != 0) return TD_EINVAL;
    td_block_q8_0 *y = (td_block_q8_0 *)dst;
    for (int64_t b = 0; b < n / TD_QK; b++) {
        const float *xb = x + b * TD_QK;
        float amax = 0.0f;
        for (int j = 0; j < TD_QK; j++) {
            const float v = fabsf(xb[j]);
            if (v > amax) amax = v;
        }
        /* Dividing by the stored (half-rounded) scale keeps each error within half a step. */
        y[b].d = td_fp32_to_fp16(amax / 127.0f);
        const float d = td_fp16_to_fp32(y[b].d);
        for (int j = 0; j < TD_QK; j++) {
            const float q = d != 0.0f ? nearbyintf(xb[j] / d) : 0.0f;    /* round half to even */
            y[b].qs[j] = (int8_t)(q > 127.0f ? 127.0f : (q < -127.0f ? -127.0f : q));
        }
    }
    return TD_OK;
}

int td_dequantize_row(int type, const void *src, float *dst, int64_t n) {
    if (n < 0) return TD_EINVAL;
    switch (type) {
    case TD_TYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return TD_OK;
    case TD_TYPE_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = td_fp16_to_fp32(((const td_fp16 *)src)[i]);
        return TD_OK;
    case TD_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = td_bf16_to_fp32(((const uint16_t *)src)[i]);
        return TD_OK;
    case TD_TYPE_Q5_0: case TD_TYPE_Q4_K: case TD_TYPE_Q5_K: case TD_TYPE_Q6_K:
        return td_dequantize_row_kquant(type, src, dst, n);
    default:
        break;
    }
    if (n % TD_QK != 0) return TD_EINVAL;
    const int64_t nb = n / TD_QK;
    for (int64_t b = 0; b < nb; b++) {
        float *out = dst + b * TD_QK;
        if (type == TD_TYPE_Q4_0) {
            const td_block_q4_0 *blk = (const td_block_q4_0 *)src + b;
            const float d = td_fp16_to_fp32(blk->d);
            for (int j = 0; j < TD_QK / 2; j++) {
                out[j] = d * (float)((blk->qs[j] & 0x0f) - 8);
                out[j + 16] = d * (float)((blk->qs[j] >> 4) - 8);
            }
        } else if (type == TD_TYPE_Q4_1) {
            const td_block_q4_1 *blk = (const td_block_q4_1 *)src + b;
            const float d = td_fp16_to_fp32(blk->d), m = td_fp16_to_fp32(blk->m);
            for (int j = 0; j < TD_QK / 2; j++) {
                out[j] = d * (float)(blk->qs[j] & 0x0f) + m;
                out[j + 16] = d * (float)(blk->qs[j] >> 4) + m;
            }
        } else if (type == TD_TYPE_Q8_0) {
            const td_block_q8_0 *blk = (const td_block_q8_0 *)src + b;
            const float d = td_fp16_to_fp32(blk->d);
            for (int j = 0; j < TD_QK; j++) out[j] = d * (float)blk->qs[j];
        } else {
            return TD_ETYPE;
        }
    }
    return TD_OK;
}

/* Each quantized dot product sums exact int32 products per block, then adds the block's
 * float contribution to one accumulator in block order. */

float td_dot_q4_0_scalar(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q4_0 *blk = (const td_block_q4_0 *)w;
    float sum = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        int isum = 0;
        for (int j = 0; j < TD_QK / 2; j++) {
            isum += ((blk[b].qs[j] & 0x0f) - 8) * x[b].qs[j];
            isum += ((blk[b].qs[j] >> 4) - 8) * x[b].qs[j + 16];
        }
        sum += td_fp16_to_fp32(blk[b].d) * x[b].d * (float)isum;
    }
    return sum;
}

/* Q4_1 keeps sixteen float partial sums per row: sum g (g < 8) gathers group g (elements
 * 4g..4g+3 in the unpacked order: group j < 4 is the low nibbles of qs[4j..4j+3], group
 * j >= 4 the high nibbles of qs[4(j-4)..]) of the even blocks, sum 8 + g the same group of
 * the odd blocks. Each advances by a fused multiply-add of (d * x.d) and the group's exact
 * integer sum. The offsets m * x.s run in two more sums, even and odd blocks apart. Every
 * SIMD path takes these operations in this order (a 16-lane register contains the sixteen sums
 * of one row, or one sum of sixteen interleaved rows), so all paths agree bitwise. */
static int q4_1_group_sum(const td_block_q4_1 *blk, const td_block_q8_act *x, int g) {
    int isum = 0;
    for (int k = 0; k < 4; k++) {
        const uint8_t byte = blk->qs[4 * (g & 3) + k];
        isum += (g < 4 ? byte & 0x0f : byte >> 4) * x->qs[4 * g + k];
    }
    return isum;
}

void td_q4_1_pair_scalar(td_q4_1_sums *st, const td_block_q4_1 *blk, const td_block_q8_act *x) {
    const float s0 = td_fp16_to_fp32(blk[0].d) * x[0].d;
    const float s1 = td_fp16_to_fp32(blk[1].d) * x[1].d;
    for (int g = 0; g < 8; g++) {
        st->acc[g] = fmaf(s0, (float)q4_1_group_sum(blk, x, g), st->acc[g]);
        st->acc[8 + g] = fmaf(s1, (float)q4_1_group_sum(blk + 1, x + 1, g), st->acc[8 + g]);
    }
    st->offsets += td_fp16_to_fp32(blk[0].m) * x[0].s;
    st->offsets_odd += td_fp16_to_fp32(blk[1].m) * x[1].s;
}

float td_q4_1_finish_scalar(td_q4_1_sums *st, const td_block_q4_1 *last, const td_block_q8_act *x) {
    st->offsets += st->offsets_odd;
    if (last != NULL) {
        /* An odd block count leaves one block, added to the even sums without fusing. */
        const float s = td_fp16_to_fp32(last->d) * x->d;
        for (int g = 0; g < 8; g++) st->acc[g] = st->acc[g] + s * (float)q4_1_group_sum(last, x, g);
        st->offsets += td_fp16_to_fp32(last->m) * x->s;
    }
    float t[8];
    for (int g = 0; g < 8; g++) t[g] = st->acc[g] + st->acc[8 + g];
    return (((t[0] + t[4]) + (t[2] + t[6])) + ((t[1] + t[5]) + (t[3] + t[7]))) + st->offsets;
}

float td_dot_q4_1_scalar(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q4_1 *blk = (const td_block_q4_1 *)w;
    td_q4_1_sums st = { { 0 }, 0.0f, 0.0f };
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) td_q4_1_pair_scalar(&st, blk + b, x + b);
    return td_q4_1_finish_scalar(&st, b < nb ? blk + b : NULL, x + b);
}

/* Row r of an interleaved block, back in the row-major layout. */
static td_block_q4_1 q4_1x16_row(const td_block_q4_1x16 *blk, int r) {
    td_block_q4_1 row;
    row.d = blk->d[r];
    row.m = blk->m[r];
    for (int j = 0; j < 4; j++) memcpy(row.qs + 4 * j, blk->qs + (TD_INTERLEAVE * j + r) * 4, 4);
    return row;
}

void td_gemm_q4_1x16_scalar(const void *group, int64_t nb, const td_block_q8_act *x, int64_t x_stride,
                            int64_t m, float *out, int64_t out_stride, int valid_rows) {
    const td_block_q4_1x16 *blk = (const td_block_q4_1x16 *)group;
    for (int64_t i = 0; i < m; i++) {
        const td_block_q8_act *xi = x + i * x_stride;
        for (int r = 0; r < valid_rows; r++) {
            td_q4_1_sums st = { { 0 }, 0.0f, 0.0f };
            int64_t b = 0;
            for (; b + 2 <= nb; b += 2) {
                const td_block_q4_1 pair[2] = { q4_1x16_row(blk + b, r), q4_1x16_row(blk + b + 1, r) };
                td_q4_1_pair_scalar(&st, pair, xi + b);
            }
            const td_block_q4_1 last = b < nb ? q4_1x16_row(blk + b, r) : (td_block_q4_1){ 0 };
            out[i * out_stride + r] = td_q4_1_finish_scalar(&st, b < nb ? &last : NULL, xi + b);
        }
    }
}

/* Q8_0 sums each block's 32 products exactly, then advances one float sum by a fused
 * multiply-add of (d * x.d) and that integer, block by block. Every path, row-major or
 * interleaved, takes these operations in this order, so all agree bitwise. */
static int q8_0_block_sum(const int8_t *qs, const td_block_q8_act *x) {
    int isum = 0;
    for (int j = 0; j < TD_QK; j++) isum += qs[j] * x->qs[j];
    return isum;
}

float td_dot_q8_0_scalar(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q8_0 *blk = (const td_block_q8_0 *)w;
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        acc = fmaf(td_fp16_to_fp32(blk[b].d) * x[b].d, (float)q8_0_block_sum(blk[b].qs, x + b), acc);
    }
    return acc;
}

void td_gemm_q8_0x16_scalar(const void *group, int64_t nb, const td_block_q8_act *x, int64_t x_stride,
                            int64_t m, float *out, int64_t out_stride, int valid_rows) {
    const td_block_q8_0x16 *blk = (const td_block_q8_0x16 *)group;
    for (int64_t i = 0; i < m; i++) {
        for (int r = 0; r < valid_rows; r++) {
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                int8_t qs[TD_QK];
                for (int g = 0; g < 8; g++) memcpy(qs + 4 * g, blk[b].qs + (TD_INTERLEAVE * g + r) * 4, 4);
                const td_block_q8_act *xb = x + i * x_stride + b;
                acc = fmaf(td_fp16_to_fp32(blk[b].d[r]) * xb->d, (float)q8_0_block_sum(qs, xb), acc);
            }
            out[i * out_stride + r] = acc;
        }
    }
}

float td_dot_f32_scalar(const void *w, const float *x, int64_t n) {
    const float *wf = (const float *)w;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += wf[i] * x[i];
    return sum;
}

float td_dot_f16_scalar(const void *w, const float *x, int64_t n) {
    const td_fp16 *wh = (const td_fp16 *)w;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += td_fp16_to_fp32(wh[i]) * x[i];
    return sum;
}

float td_dot_bf16_scalar(const void *w, const float *x, int64_t n) {
    const uint16_t *wh = (const uint16_t *)w;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += td_bf16_to_fp32(wh[i]) * x[i];
    return sum;
}
