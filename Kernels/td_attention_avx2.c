/* Attention on the AVX2 path: td_attention_simd.h with sixteen 256-bit registers, so value
 * sums keep at most eight accumulators in registers. */
#if defined(__x86_64__)
#define TD_ATTN __attribute__((target("avx2,fma,f16c")))
#define TD_ATTEND_NAME td_attend_avx2
#define TD_ATTEND_ACCUMULATORS 8
#include "td_attention_simd.h"
#endif
