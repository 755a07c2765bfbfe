/* Chooses the ISA path once, from the CPU's features and the TAILDRAFT_ISA variable. */
#include <stdlib.h>
#include <string.h>
#include "td_internal.h"

static const td_kernel_table scalar_table = {
    .dot_q4_0 = td_dot_q4_0_scalar, .dot_q4_1 = td_dot_q4_1_scalar, .dot_q8_0 = td_dot_q8_0_scalar,
    .gemm_q4_1x16 = td_gemm_q4_1x16_scalar, .gemm_q8_0x16 = td_gemm_q8_0x16_scalar,
    .dot_f32 = td_dot_f32_scalar, .dot_f16 = td_dot_f16_scalar, .dot_bf16 = td_dot_bf16_scalar,
    .attend = td_attend_scalar, .attend_lanes = 1,
    .dot_q5_0 = td_dot_q5_0_scalar, .dot_q4_K = td_dot_q4_K_scalar,
    .dot_q5_K = td_dot_q5_K_scalar, .dot_q6_K = td_dot_q6_K_scalar,
};

#if defined(__x86_64__)
static const td_kernel_table avx2_table = {
    .dot_q4_0 = td_dot_q4_0_avx2, .dot_q4_1 = td_dot_q4_1_avx2, .dot_q8_0 = td_dot_q8_0_avx2,
    .dot_x4_q4_0 = td_dot_q4_0_x4_avx2,
    .gemm_q4_1x16 = td_gemm_q4_1x16_avx2, .gemm_q8_0x16 = td_gemm_q8_0x16_avx2,
    .dot_f32 = td_dot_f32_avx2, .dot_f16 = td_dot_f16_avx2, .dot_bf16 = td_dot_bf16_avx2,
    .attend = td_attend_avx2, .attend_lanes = 8,
    .dot_q5_0 = td_dot_q5_0_avx2, .dot_q4_K = td_dot_q4_K_avx2,
    .dot_q5_K = td_dot_q5_K_avx2, .dot_q6_K = td_dot_q6_K_avx2,
    .dot_x4_q5_0 = td_dot_q5_0_x4_avx2, .dot_x4_q4_K = td_dot_q4_K_x4_avx2,
    .dot_x4_q5_K = td_dot_q5_K_x4_avx2, .dot_x4_q6_K = td_dot_q6_K_x4_avx2,
};

/* Float-typed weights gain little from 512-bit registers here, so F16 and BF16 reuse AVX2. */
static const td_kernel_table avx512_table = {
    .dot_q4_0 = td_dot_q4_0_avx512, .dot_q4_1 = td_dot_q4_1_avx512, .dot_q8_0 = td_dot_q8_0_avx512,
    .dot_x4_q4_0 = td_dot_q4_0_x4_avx512,
    .gemm_q4_1x16 = td_gemm_q4_1x16_avx512, .gemm_q8_0x16 = td_gemm_q8_0x16_avx512,
    .quantize_act = td_quantize_row_q8_act_avx512,
    .dot_f32 = td_dot_f32_avx512, .dot_f16 = td_dot_f16_avx2, .dot_bf16 = td_dot_bf16_avx2,
    .attend = td_attend_avx512, .attend_lanes = 8,
    .dot_q5_0 = td_dot_q5_0_avx512, .dot_q4_K = td_dot_q4_K_avx512,
    .dot_q5_K = td_dot_q5_K_avx512, .dot_q6_K = td_dot_q6_K_avx512,
    .dot_x4_q5_0 = td_dot_q5_0_x4_avx512, .dot_x4_q4_K = td_dot_q4_K_x4_avx512,
    .dot_x4_q5_K = td_dot_q5_K_x4_avx512, .dot_x4_q6_K = td_dot_q6_K_x4_avx512,
};
#endif

static int active_isa = -1;

int td_isa_best(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        return TD_ISA_AVX512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
        return TD_ISA_AVX2;
    }
#endif
    return TD_ISA_SCALAR;
}

const char *td_isa_name(int isa) {
    switch (isa) {
    case TD_ISA_AVX2: return "avx2";
    case TD_ISA_AVX512: return "avx512";
    default: return "scalar";
    }
}

int td_isa_parse(const char *name) {
    if (name == NULL) return -1;
    if (strcmp(name, "scalar") == 0) return TD_ISA_SCALAR;
    if (strcmp(name, "avx2") == 0) return TD_ISA_AVX2;
    if (strcmp(name, "avx512") == 0) return TD_ISA_AVX512;
    return -1;
}

int td_isa_set(int isa) {
    if (isa < TD_ISA_SCALAR || isa > TD_ISA_AVX512) return TD_EINVAL;
    if (isa > td_isa_best()) return TD_EISA;
    __atomic_store_n(&active_isa, isa, __ATOMIC_RELEASE);
    return TD_OK;
}

int td_isa_active(void) {
    int isa = __atomic_load_n(&active_isa, __ATOMIC_ACQUIRE);
    if (isa >= 0) return isa;
    isa = td_isa_best();
    const int requested = td_isa_parse(getenv("TAILDRAFT_ISA"));
    if (requested >= 0 && requested <= isa) isa = requested;
    __atomic_store_n(&active_isa, isa, __ATOMIC_RELEASE);
    return isa;
}

const td_kernel_table *td_active_table(void) {
#if defined(__x86_64__)
    switch (td_isa_active()) {
    case TD_ISA_AVX512: return &avx512_table;
    case TD_ISA_AVX2: return &avx2_table;
    default: break;
    }
#endif
    return &scalar_table;
}

void td_set_blocktime_ms(int ms) {
    kmp_set_blocktime(ms);
}
