/* Attention on the AVX-512 path: td_attention_simd.h with the same 256-bit operations. With
 * thirty-two registers, value sums keep up to twenty-four accumulators in registers.
 * Softmax exponentials run eight at a time (td_expf8_avx512, bitwise equal to td_expf). */
#if defined(__x86_64__)
#define TD_ATTN __attribute__((target("avx512f,avx512vl,avx2,fma,f16c")))
#define TD_ATTEND_NAME td_attend_avx512
#define TD_ATTEND_ACCUMULATORS 24
#define TD_ATTEND_EXP8 td_expf8_avx512
#include "td_attention_simd.h"
#endif
