/* Machine-limit probes for the benchmark runner: memory read bandwidth and int8
 * multiply-add peak. Not used by inference. */
#include <string.h>
#include "td_internal.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

uint64_t td_sum_words(const uint64_t *data, size_t count, int nthreads) {
    uint64_t total = 0;
    #pragma omp parallel for num_threads(nthreads) reduction(+ : total) schedule(static) if (nthreads > 1)
    for (size_t i = 0; i < count; i++) total += data[i];
    return total;
}

#if defined(__x86_64__)
/* 12 independent accumulators hide vpdpbusd's latency; each instruction does 64 MACs. */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static int64_t peak_avx512(int64_t iterations) {
    __m512i acc[12];
    const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(5);
    for (int k = 0; k < 12; k++) acc[k] = _mm512_setzero_si512();
    for (int64_t i = 0; i < iterations; i++) {
        for (int k = 0; k < 12; k++) acc[k] = _mm512_dpbusd_epi32(acc[k], a, b);
        __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]));
    }
    int64_t sum = 0;
    for (int k = 0; k < 12; k++) sum += _mm512_reduce_add_epi32(acc[k]);
    return sum;
}

/* AVX2 has no int8 dot instruction: maddubs (16 pairs) plus madd count as 32 MACs. */
__attribute__((target("avx2"))) static int64_t peak_avx2(int64_t iterations) {
    __m256i acc[12];
    const __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(5), ones = _mm256_set1_epi16(1);
    for (int k = 0; k < 12; k++) acc[k] = _mm256_setzero_si256();
    for (int64_t i = 0; i < iterations; i++) {
        for (int k = 0; k < 12; k++) acc[k] = _mm256_add_epi32(acc[k], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones));
        __asm__ volatile("" : "+x"(acc[0]), "+x"(acc[1]), "+x"(acc[2]), "+x"(acc[3]));
    }
    int64_t sum = 0;
    int32_t lanes[8];
    for (int k = 0; k < 12; k++) {
        _mm256_storeu_si256((__m256i *)lanes, acc[k]);
        for (int j = 0; j < 8; j++) sum += lanes[j];
    }
    return sum;
}
/* The same multiply-adds, each vpdpbusd result converted to float and added into a float
 * accumulator by a fused multiply-add, as the Q4_1 kernels must do per block group to keep
 * the reference's order. On CPUs where these share execution ports with vpdpbusd this is
 * the most that order allows. */
__attribute__((target("avx512f,avx512bw,avx512vnni,fma"))) static int64_t scaled_peak_avx512(int64_t iterations) {
    __m512 acc[12];
    __m512i a[12];
    const __m512i b = _mm512_set1_epi8(5);
    const __m512 scale = _mm512_set1_ps(0x1p-20f);
    for (int k = 0; k < 12; k++) {
        acc[k] = _mm512_setzero_ps();
        a[k] = _mm512_set1_epi8((char)(k + 1));  /* distinct inputs, so no product is shared */
    }
    for (int64_t i = 0; i < iterations; i++) {
        __m512i b_now = b;
        __asm__ volatile("" : "+v"(b_now));  /* keeps the dot products inside the loop */
        for (int k = 0; k < 12; k++) {
            acc[k] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), a[k], b_now)), acc[k]);
        }
        __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]));
    }
    float sum = 0.0f;
    for (int k = 0; k < 12; k++) sum += _mm512_reduce_add_ps(acc[k]);
    return (int64_t)sum;
}

__attribute__((target("avx2,fma"))) static int64_t scaled_peak_avx2(int64_t iterations) {
    __m256 acc[12];
    __m256i a[12];
    const __m256i b = _mm256_set1_epi8(5), ones = _mm256_set1_epi16(1);
    const __m256 scale = _mm256_set1_ps(0x1p-20f);
    for (int k = 0; k < 12; k++) {
        acc[k] = _mm256_setzero_ps();
        a[k] = _mm256_set1_epi8((char)(k + 1));  /* distinct inputs, so no product is shared */
    }
    for (int64_t i = 0; i < iterations; i++) {
        __m256i b_now = b;
        __asm__ volatile("" : "+x"(b_now));  /* keeps the dot products inside the loop */
        for (int k = 0; k < 12; k++) {
            const __m256i dots = _mm256_madd_epi16(_mm256_maddubs_epi16(a[k], b_now), ones);
            acc[k] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(dots), acc[k]);
        }
        __asm__ volatile("" : "+x"(acc[0]), "+x"(acc[1]), "+x"(acc[2]), "+x"(acc[3]));
    }
    float lanes[8], sum = 0.0f;
    for (int k = 0; k < 12; k++) {
        _mm256_storeu_ps(lanes, acc[k]);
        for (int j = 0; j < 8; j++) sum += lanes[j];
    }
    return (int64_t)sum;
}
#endif

int64_t td_int8_peak_macs_per_iteration(void) {
#if defined(__x86_64__)
    switch (td_isa_active()) {
    case TD_ISA_AVX512: return 12 * 64;
    case TD_ISA_AVX2: return 12 * 32;
    default: break;
    }
#endif
    return 0;
}

/* Runs one of the loops above on every thread and adds up their results. */
static int64_t run_probe(int64_t iterations, int nthreads, int scaled) {
    int64_t total = 0;
    #pragma omp parallel num_threads(nthreads) reduction(+ : total) if (nthreads > 1)
    {
#if defined(__x86_64__)
        switch (td_isa_active()) {
        case TD_ISA_AVX512: total += scaled ? scaled_peak_avx512(iterations) : peak_avx512(iterations); break;
        case TD_ISA_AVX2: total += scaled ? scaled_peak_avx2(iterations) : peak_avx2(iterations); break;
        default: break;
        }
#endif
    }
    return total;
}

int64_t td_int8_peak(int64_t iterations, int nthreads) {
    return run_probe(iterations, nthreads, 0);
}

int64_t td_int8_scaled_peak(int64_t iterations, int nthreads) {
    return run_probe(iterations, nthreads, 1);
}
