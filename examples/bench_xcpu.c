/* How far apart two CPUs are, as `morsel bench` reports it next to a multi-thread result: the
 * time for a cache line to go from one CPU to another and back. On shared VMs this is what
 * moves under a 2-thread figure: on one 2-vCPU EPYC VM, minutes in which it was 350-1900 ns
 * were minutes in which every engine's 2-thread times grew (EfficientNetB0: Morsel 5.9 -> 8.9
 * ms, ONNX Runtime 6.8 -> 11.5), while two 1-thread processes side by side kept their speed. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "cli.h"

#define TRIPS 20000
#define BUDGET_NS 50000000LL /* a partner CPU busy with another process must not stall bench */
#define STOP (-1)

typedef struct xcpu {
    _Alignas(64) atomic_int ball; /* odd: the partner's turn; even: ours; STOP: done */
    int cpu;
} xcpu;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

static void *partner(void *arg)
{
    xcpu *x = arg;
    pin(x->cpu);
    for (;;) {
        int v = atomic_load_explicit(&x->ball, memory_order_acquire);
        if (v == STOP)
            return NULL;
        if (v & 1)
            atomic_store_explicit(&x->ball, v + 1, memory_order_release);
    }
}

double bench_xcpu_ns(void)
{
#ifdef __linux__
    cpu_set_t allowed;
    int cpus[2], n = 0;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        return -1;
    for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
        if (CPU_ISSET(c, &allowed))
            cpus[n++] = c;
    if (n < 2)
        return -1;
    pthread_t self = pthread_self(), t;
    cpu_set_t mine;
    if (pthread_getaffinity_np(self, sizeof mine, &mine) != 0)
        return -1;
    xcpu *x = aligned_alloc(64, sizeof *x);
    if (!x)
        return -1;
    atomic_init(&x->ball, 0);
    x->cpu = cpus[1];
    if (pthread_create(&t, NULL, partner, x) != 0) {
        free(x);
        return -1;
    }
    pin(cpus[0]);
    /* the first trips also wait for the partner to start: not timed */
    int v = 0, trips = 0;
    for (int i = 0; i < 100; i++) {
        atomic_store_explicit(&x->ball, ++v, memory_order_release);
        while (atomic_load_explicit(&x->ball, memory_order_acquire) == v)
            ;
        v++;
    }
    long long t0 = now_ns(), t1 = t0;
    while (trips < TRIPS && t1 - t0 < BUDGET_NS) {
        for (int i = 0; i < 32; i++, trips++) {
            atomic_store_explicit(&x->ball, ++v, memory_order_release);
            while (atomic_load_explicit(&x->ball, memory_order_acquire) == v)
                ;
            v++;
        }
        t1 = now_ns();
    }
    atomic_store(&x->ball, STOP);
    pthread_join(t, NULL);
    pthread_setaffinity_np(self, sizeof mine, &mine);
    free(x);
    return (double)(t1 - t0) / trips;
#else
    return -1;
#endif
}
