/* Thread priority and CPU pinning for background threads (Linux; elsewhere they fail with
 * TD_EINVAL). Kept in C so the Swift targets need no _GNU_SOURCE. */
#include "td_kernels.h"
#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

int td_thread_lower_priority(void) {
#if defined(__linux__)
    struct sched_param param = {.sched_priority = 0};
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &param) == 0) return 0;
    /* Linux applies a nice value to one thread when given its thread id. */
    const pid_t tid = (pid_t)syscall(SYS_gettid);
    if (setpriority(PRIO_PROCESS, (id_t)tid, 19) == 0) return 1;
#endif
    return TD_EINVAL;
}

int td_thread_pin(const int32_t *cores, int count) {
#if defined(__linux__)
    if (cores == NULL || count <= 0) return TD_EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < count; i++) {
        if (cores[i] < 0 || cores[i] >= CPU_SETSIZE) return TD_EINVAL;
        CPU_SET(cores[i], &set);
    }
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0 ? TD_OK : TD_EINVAL;
#else
    (void)cores;
    (void)count;
    return TD_EINVAL;
#endif
}

int td_thread_pin_team(const int32_t *cores, int count, int nthreads) {
#if defined(__linux__)
    if (cores == NULL || count <= 0 || nthreads < 1) return TD_EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < count; i++) {
        if (cores[i] < 0 || cores[i] >= CPU_SETSIZE) return TD_EINVAL;
        CPU_SET(cores[i], &set);
    }
    int failed = 0;
    /* The calling thread is thread 0 of the team, so it is pinned too. */
    #pragma omp parallel num_threads(nthreads) reduction(| : failed)
    failed |= pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0;
    return failed ? TD_EINVAL : TD_OK;
#else
    (void)cores;
    (void)count;
    (void)nthreads;
    return TD_EINVAL;
#endif
}
