/* Declarations shared by the drafter kernel sources; not part of the public API. */
#ifndef TD_DRAFTER_INTERNAL_H
#define TD_DRAFTER_INTERNAL_H

#include "td_kernels.h"

/* Lanes of the drafter's dot products: lane j sums elements j, j + 16, j + 32, ... */
#define TD_DRAFTER_LANES 16
/* Weight rows per block of the forward product (one accumulator per row). */
#define TD_DRAFTER_ROW_BLOCK 4

/* Products of TD_DRAFTER_ROW_BLOCK consecutive weight rows (n floats each, w_stride apart)
 * with one activation row: out[0..3]. Each result is the path's one-row dot product. */
typedef void (*td_drafter_dot4_fn)(const float *w, int64_t w_stride, const float *x, int64_t n, float *out);
/* Dot product of one weight row with one activation row in the lane order above. */
typedef float (*td_drafter_dot_fn)(const float *w, const float *x, int64_t n);
/* y[c] += a * x[c] for n elements, as a multiply then an add (never fused). */
typedef void (*td_drafter_axpy_fn)(float a, const float *x, float *y, int64_t n);

typedef struct {
    td_drafter_dot_fn dot;
    td_drafter_dot4_fn dot4;
    td_drafter_axpy_fn axpy;
} td_drafter_table;

void td_drafter_dot4_scalar(const float *w, int64_t w_stride, const float *x, int64_t n, float *out);
float td_drafter_dot_scalar(const float *w, const float *x, int64_t n);
void td_drafter_axpy_scalar(float a, const float *x, float *y, int64_t n);

#if defined(__x86_64__)
void td_drafter_dot4_avx2(const float *w, int64_t w_stride, const float *x, int64_t n, float *out);
float td_drafter_dot_avx2(const float *w, const float *x, int64_t n);
void td_drafter_axpy_avx2(float a, const float *x, float *y, int64_t n);
void td_drafter_dot4_avx512(const float *w, int64_t w_stride, const float *x, int64_t n, float *out);
float td_drafter_dot_avx512(const float *w, const float *x, int64_t n);
void td_drafter_axpy_avx512(float a, const float *x, float *y, int64_t n);
#endif

#endif
