/* Interleaved weight layouts, built once at load time (see td_block_q4_1x16). */
#include <string.h>
#include "td_internal.h"

int td_interleaved_type(int type) {
    switch (type) {
    case TD_TYPE_Q4_1: return TD_TYPE_Q4_1_X16;
    case TD_TYPE_Q8_0: return TD_TYPE_Q8_0_X16;
    default: return -1;
    }
}

/* Bytes of one interleaved block (sixteen rows' worth of one block index). */
static size_t interleaved_block_bytes(int type) {
    return type == TD_TYPE_Q4_1 ? sizeof(td_block_q4_1x16) : sizeof(td_block_q8_0x16);
}

size_t td_repacked_bytes(int type, int64_t rows, int64_t cols) {
    if (td_interleaved_type(type) < 0 || rows <= 0 || cols <= 0 || cols % TD_QK != 0) return 0;
    const int64_t groups = (rows + TD_INTERLEAVE - 1) / TD_INTERLEAVE;
    return (size_t)groups * (size_t)(cols / TD_QK) * interleaved_block_bytes(type);
}

int td_repack(int type, const void *src, int64_t rows, int64_t cols, void *dst) {
    const size_t bytes = td_repacked_bytes(type, rows, cols);
    if (bytes == 0 || src == NULL || dst == NULL) return TD_EINVAL;
    memset(dst, 0, bytes);
    const int64_t nb = cols / TD_QK;
    for (int64_t row = 0; row < rows; row++) {
        const int64_t group = row / TD_INTERLEAVE;
        const int r = (int)(row % TD_INTERLEAVE);
        for (int64_t b = 0; b < nb; b++) {
            if (type == TD_TYPE_Q4_1) {
                const td_block_q4_1 *from = (const td_block_q4_1 *)src + row * nb + b;
                td_block_q4_1x16 *to = (td_block_q4_1x16 *)dst + group * nb + b;
                to->d[r] = from->d;
                to->m[r] = from->m;
                for (int j = 0; j < 4; j++) memcpy(to->qs + (TD_INTERLEAVE * j + r) * 4, from->qs + 4 * j, 4);
            } else {
                const td_block_q8_0 *from = (const td_block_q8_0 *)src + row * nb + b;
                td_block_q8_0x16 *to = (td_block_q8_0x16 *)dst + group * nb + b;
                to->d[r] = from->d;
                for (int g = 0; g < 8; g++) memcpy(to->qs + (TD_INTERLEAVE * g + r) * 4, from->qs + 4 * g, 4);
            }
        }
    }
    return TD_OK;
}

int td_dequantize_interleaved_row(int type, const void *data, int64_t row, int64_t cols, float *dst) {
    if ((type != TD_TYPE_Q4_1_X16 && type != TD_TYPE_Q8_0_X16) || data == NULL || dst == NULL || row < 0 ||
        cols <= 0 || cols % TD_QK != 0) {
        return TD_EINVAL;
    }
    const int64_t nb = cols / TD_QK;
    const int64_t group = row / TD_INTERLEAVE;
    const int r = (int)(row % TD_INTERLEAVE);
    for (int64_t b = 0; b < nb; b++) {
        float *out = dst + b * TD_QK;
        if (type == TD_TYPE_Q4_1_X16) {
            const td_block_q4_1x16 *blk = (const td_block_q4_1x16 *)data + group * nb + b;
            td_block_q4_1 one = { .d = blk->d[r], .m = blk->m[r] };
            for (int j = 0; j < 4; j++) memcpy(one.qs + 4 * j, blk->qs + (TD_INTERLEAVE * j + r) * 4, 4);
            td_dequantize_row(TD_TYPE_Q4_1, &one, out, TD_QK);
        } else {
            const td_block_q8_0x16 *blk = (const td_block_q8_0x16 *)data + group * nb + b;
            td_block_q8_0 one = { .d = blk->d[r] };
            for (int g = 0; g < 8; g++) memcpy(one.qs + 4 * g, blk->qs + (TD_INTERLEAVE * g + r) * 4, 4);
            td_dequantize_row(TD_TYPE_Q8_0, &one, out, TD_QK);
        }
    }
    return TD_OK;
}
