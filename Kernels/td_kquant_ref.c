/* Scalar reference kernels for Q5_0 and the K-quants (Q4_K, Q5_K, Q6_K): dequantization and
 * dot products with activation blocks. The SIMD paths are tested against these.
 *
 * Every dot product maps each 32-element activation block onto the 32 weights it multiplies
 * (one Q5_0 block, one Q4_K or Q5_K sub-block, two Q6_K sub-blocks). Within that block the
 * products are summed exactly in integers; the block's float contribution is then added to
 * one accumulator in block order. The integer sums of one block stay below 2^24 for every
 * type (Q6_K, the largest: 2 * 128 * 16 * 32 * 127 = 16,646,144), so their conversion to
 * float is exact too. */
#include <string.h>
#include "td_internal.h"

/* Bit 4 of each Q5_0 value, as the little-endian word the format defines. */
static uint32_t q5_0_high_bits(const td_block_q5_0 *blk) {
    return (uint32_t)blk->qh[0] | (uint32_t)blk->qh[1] << 8 | (uint32_t)blk->qh[2] << 16 | (uint32_t)blk->qh[3] << 24;
}

/* Fills q[0..31] with the Q5_0 block's values minus 16, in element order. */
static void q5_0_values(const td_block_q5_0 *blk, int q[TD_QK]) {
    const uint32_t qh = q5_0_high_bits(blk);
    for (int j = 0; j < TD_QK / 2; j++) {
        q[j] = ((blk->qs[j] & 0x0f) | (int)((qh >> j) & 1) << 4) - 16;
        q[j + 16] = ((blk->qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4) - 16;
    }
}

/* Fills q[0..255] with a Q4_K or Q5_K super-block's unsigned values in element order. qh is
 * NULL for Q4_K. */
static void q4_5_K_values(const uint8_t *qs, const uint8_t *qh, int q[TD_QK_K]) {
    for (int s = 0; s < 8; s++) {
        const int shift = 4 * (s % 2);
        for (int l = 0; l < 32; l++) {
            const int high = qh != NULL ? ((qh[l] >> s) & 1) << 4 : 0;
            q[32 * s + l] = ((qs[32 * (s / 2) + l] >> shift) & 0x0f) | high;
        }
    }
}

/* Fills q[0..255] with a Q6_K super-block's values minus 32, in element order. */
static void q6_K_values(const td_block_q6_K *blk, int q[TD_QK_K]) {
    for (int h = 0; h < 2; h++) {
        for (int g = 0; g < 4; g++) {
            const int shift = g < 2 ? 0 : 4;
            for (int l = 0; l < 32; l++) {
                const int low = (blk->ql[64 * h + 32 * (g % 2) + l] >> shift) & 0x0f;
                const int high = (blk->qh[32 * h + l] >> (2 * g)) & 3;
                q[128 * h + 32 * g + l] = (low | high << 4) - 32;
            }
        }
    }
}

int td_dequantize_row_kquant(int type, const void *src, float *dst, int64_t n) {
    if (n < 0) return TD_EINVAL;
    int q[TD_QK_K];
    if (type == TD_TYPE_Q5_0) {
        if (n % TD_QK != 0) return TD_EINVAL;
        for (int64_t b = 0; b < n / TD_QK; b++) {
            const td_block_q5_0 *blk = (const td_block_q5_0 *)src + b;
            const float d = td_fp16_to_fp32(blk->d);
            q5_0_values(blk, q);
            for (int j = 0; j < TD_QK; j++) dst[b * TD_QK + j] = d * (float)q[j];
        }
        return TD_OK;
    }
    if (n % TD_QK_K != 0) return TD_EINVAL;
    for (int64_t b = 0; b < n / TD_QK_K; b++) {
        float *out = dst + b * TD_QK_K;
        if (type == TD_TYPE_Q4_K || type == TD_TYPE_Q5_K) {
            const td_block_q4_K *q4 = (const td_block_q4_K *)src + b;
            const td_block_q5_K *q5 = (const td_block_q5_K *)src + b;
            const int is_q5 = type == TD_TYPE_Q5_K;
            const float d = td_fp16_to_fp32(is_q5 ? q5->d : q4->d);
            const float dmin = td_fp16_to_fp32(is_q5 ? q5->dmin : q4->dmin);
            uint8_t scales[8], mins[8];
            td_kquant_scales_mins(is_q5 ? q5->scales : q4->scales, scales, mins);
            q4_5_K_values(is_q5 ? q5->qs : q4->qs, is_q5 ? q5->qh : NULL, q);
            for (int s = 0; s < 8; s++) {
                const float scale = d * (float)scales[s], offset = dmin * (float)mins[s];
                for (int l = 0; l < 32; l++) out[32 * s + l] = scale * (float)q[32 * s + l] - offset;
            }
        } else if (type == TD_TYPE_Q6_K) {
            const td_block_q6_K *blk = (const td_block_q6_K *)src + b;
            const float d = td_fp16_to_fp32(blk->d);
            q6_K_values(blk, q);
            for (int i = 0; i < TD_QK_K; i++) out[i] = d * (float)blk->scales[i / 16] * (float)q[i];
        } else {
            return TD_ETYPE;
        }
    }
    return TD_OK;
}

float td_dot_q5_0_scalar(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q5_0 *blk = (const td_block_q5_0 *)w;
    float sum = 0.0f;
    int q[TD_QK];
    for (int64_t b = 0; b < nb; b++) {
        q5_0_values(blk + b, q);
        int isum = 0;
        for (int j = 0; j < TD_QK; j++) isum += q[j] * x[b].qs[j];
        sum += td_fp16_to_fp32(blk[b].d) * x[b].d * (float)isum;
    }
    return sum;
}

/* Q4_K and Q5_K: sub-block s adds (d * sc[s]) * x.d * sum(q * y) - (dmin * m[s]) * x.d * sum(y),
 * where y are the activation block's int8 values. d * sc[s] and dmin * m[s] are exact in
 * float (an 11-bit half mantissa times a 6-bit integer). */
static float dot_q4_5_K(const uint8_t *packed, td_fp16 d16, td_fp16 dmin16, const uint8_t *qs, const uint8_t *qh,
                        const td_block_q8_act *x, float sum) {
    int q[TD_QK_K];
    uint8_t scales[8], mins[8];
    td_kquant_scales_mins(packed, scales, mins);
    q4_5_K_values(qs, qh, q);
    const float d = td_fp16_to_fp32(d16), dmin = td_fp16_to_fp32(dmin16);
    for (int s = 0; s < 8; s++) {
        int isum = 0, ysum = 0;
        for (int l = 0; l < 32; l++) {
            isum += q[32 * s + l] * x[s].qs[l];
            ysum += x[s].qs[l];
        }
        const float scale = d * (float)scales[s], offset = dmin * (float)mins[s];
        sum += scale * x[s].d * (float)isum - offset * x[s].d * (float)ysum;
    }
    return sum;
}

float td_dot_q4_K_scalar(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q4_K *blk = (const td_block_q4_K *)w;
    float sum = 0.0f;
    for (int64_t b = 0; b < nb / 8; b++) {
        sum = dot_q4_5_K(blk[b].scales, blk[b].d, blk[b].dmin, blk[b].qs, NULL, x + 8 * b, sum);
    }
    return sum;
}

float td_dot_q5_K_scalar(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q5_K *blk = (const td_block_q5_K *)w;
    float sum = 0.0f;
    for (int64_t b = 0; b < nb / 8; b++) {
        sum = dot_q4_5_K(blk[b].scales, blk[b].d, blk[b].dmin, blk[b].qs, blk[b].qh, x + 8 * b, sum);
    }
    return sum;
}

/* Q6_K: activation block j adds d * x.d * (scales[2j] * sum1 + scales[2j + 1] * sum2), where
 * sum1 and sum2 are the integer dot products of its two 16-element halves. */
float td_dot_q6_K_scalar(const void *w, const td_block_q8_act *x, int64_t nb) {
    const td_block_q6_K *blk = (const td_block_q6_K *)w;
    float sum = 0.0f;
    int q[TD_QK_K];
    for (int64_t b = 0; b < nb / 8; b++) {
        q6_K_values(blk + b, q);
        const float d = td_fp16_to_fp32(blk[b].d);
        for (int j = 0; j < 8; j++) {
            const td_block_q8_act *xb = x + 8 * b + j;
            int halves[2] = { 0, 0 };
            for (int l = 0; l < 32; l++) halves[l / 16] += q[32 * j + l] * xb->qs[l];
            const int isum = blk[b].scales[2 * j] * halves[0] + blk[b].scales[2 * j + 1] * halves[1];
            sum += d * xb->d * (float)isum;
        }
    }
    return sum;
}
