/* morsel-serve: load one .morsel model, self-test it, serve it over HTTP until SIGTERM, then
 * drain: stop accepting, finish every request already received, exit 0 (what a Kubernetes
 * rolling update needs). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

/* Kubernetes' default terminationGracePeriodSeconds is 30: finish well before SIGKILL. */
#define DRAIN_DEADLINE_MS 25000.0

srv_state g_srv;

double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int read_file(const char *path, uint64_t limit, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    size_t got;
    while (b && (got = fread(b + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n > limit) {
            free(b);
            b = NULL;
            break;
        }
        if (n == cap) {
            uint8_t *nb = realloc(b, cap *= 2);
            if (!nb)
                free(b);
            b = nb;
        }
    }
    fclose(f);
    if (!b)
        return -1;
    *out = b;
    *len = n;
    return 0;
}

/* The file header's CRC (it covers the section table, hence every section's CRC): a cheap
 * identity of the exact file, available at once, unlike the SHA-256. */
static uint32_t header_crc(const char *path)
{
    uint8_t h[28] = {0};
    FILE *f = fopen(path, "rb");
    if (f) {
        if (fread(h, 1, sizeof h, f) != sizeof h)
            memset(h, 0, sizeof h);
        fclose(f);
    }
    return (uint32_t)h[24] | (uint32_t)h[25] << 8 | (uint32_t)h[26] << 16 | (uint32_t)h[27] << 24;
}

static const char *default_name(const char *path)
{
    if (g_srv.info.name && *g_srv.info.name)
        return g_srv.info.name;
    static char stem[256];
    const char *base = strrchr(path, '/');
    snprintf(stem, sizeof stem, "%s", base ? base + 1 : path);
    char *dot = strrchr(stem, '.');
    if (dot && dot != stem)
        *dot = 0;
    return stem;
}

static int load(void)
{
    srv_config *cfg = &g_srv.cfg;
    morsel_error err = {0};
    morsel_open_options opt = {.struct_size = sizeof opt, .max_work = cfg->max_work,
                               .max_memory_bytes = cfg->max_memory};
    if (morsel_model_open_file_ex(cfg->model, &opt, &g_srv.model, &err) != MORSEL_OK) {
        fprintf(stderr, "morsel-serve: cannot load %s: %s\n", cfg->model, err.message);
        return -1;
    }
    g_srv.info = (morsel_model_info)MORSEL_MODEL_INFO_INIT;
    morsel_model_get_info(g_srv.model, &g_srv.info, NULL);
    g_srv.header_crc = header_crc(cfg->model);
    if (!cfg->model_name)
        cfg->model_name = default_name(cfg->model);
    if (cfg->test_image &&
        read_file(cfg->test_image, cfg->max_body, &g_srv.test_image, &g_srv.test_image_len)) {
        fprintf(stderr, "morsel-serve: cannot read --test-image %s (missing, or over --max-body)\n",
                cfg->test_image);
        return -1;
    }
    config_resolve_cpus(cfg);
    if (queue_start(&g_srv.queue, cfg->queue, cfg->workers, cfg->threads, &err)) {
        fprintf(stderr, "morsel-serve: cannot start workers: %s\n", err.message);
        return -1;
    }
    /* No request can arrive yet, so worker 0's context is free for the self-test. */
    float diff = 0;
    double t_selftest = now_ms();
    morsel_status st = morsel_selftest(queue_context(g_srv.queue, 0), &diff, &err);
    g_srv.selftest_ms = now_ms() - t_selftest;
    if (st == MORSEL_OK) {
        g_srv.ready = 1;
    } else if (st == MORSEL_ERR_UNSUPPORTED) {
        g_srv.ready = 1;
        fprintf(stderr, "morsel-serve: warning: %s has no embedded self-test; ready without it\n",
                cfg->model);
    } else {
        snprintf(g_srv.selftest_msg, sizeof g_srv.selftest_msg, "self-test failed: %s",
                 err.message);
        fprintf(stderr, "morsel-serve: %s; /readyz answers 503\n", g_srv.selftest_msg);
    }
    return 0;
}

/* SIGTERM/SIGINT arrive through a self-pipe. A signal sent to the process goes to any thread
 * that does not block it, and libraries may start threads before main() (OpenBLAS does, in a
 * constructor) with every signal unblocked: with sigwait() alone, such a thread would take the
 * default action and kill the process mid-drain. A handler runs wherever the signal lands and
 * only writes one byte, which main() reads. */
static int g_sigpipe[2] = {-1, -1};

static void on_signal(int sig)
{
    unsigned char b = (unsigned char)sig;
    ssize_t r = write(g_sigpipe[1], &b, 1);
    (void)r;
}

static int install_signals(void)
{
    if (pipe(g_sigpipe) != 0)
        return -1;
    for (int i = 0; i < 2; i++)
        fcntl(g_sigpipe[i], F_SETFD, FD_CLOEXEC);
    fcntl(g_sigpipe[1], F_SETFL, O_NONBLOCK);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL) ? -1 : 0;
}

/* Waits up to timeout_ms (-1: forever) for a signal byte; 1 when one came. */
static int wait_signal(int timeout_ms)
{
    struct pollfd p = {.fd = g_sigpipe[0], .events = POLLIN};
    int r;
    while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
        ;
    if (r <= 0)
        return 0;
    unsigned char b;
    return read(g_sigpipe[0], &b, 1) == 1;
}

static void drain(void)
{
    g_srv.draining = 1;
    http_quiesce();
    double t0 = now_ms();
    int n = http_in_flight();
    fprintf(stderr, "morsel-serve: SIGTERM: no longer accepting; draining %d request(s)\n", n);
    while (http_in_flight() > 0 && now_ms() - t0 < DRAIN_DEADLINE_MS) {
        if (wait_signal(10)) {
            fprintf(stderr, "morsel-serve: second signal: stopping without waiting\n");
            break;
        }
    }
    n = http_in_flight();
    http_stop();
    queue_stop(g_srv.queue);
    fprintf(stderr, "morsel-serve: stopped after %.0f ms of draining%s\n", now_ms() - t0,
            n ? " (some requests were cut off)" : "");
}

int main(int argc, char **argv)
{
    g_srv.t_process_start_ms = now_ms();
    /* Threads started from here on (workers, libmicrohttpd) inherit a mask blocking SIGTERM
     * and SIGINT, so their system calls are never interrupted; main() unblocks them once
     * serving, and the handler's byte reaches it through the pipe wherever it ran. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (install_signals() != 0) {
        perror("morsel-serve: signal handlers");
        return 1;
    }

    int rc = config_parse(&g_srv.cfg, argc, argv);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (load() || http_start())
        return 1;
    const srv_config *cfg = &g_srv.cfg;
    printf("morsel-serve: listening on http://%s:%d model %s (%s, %d worker(s) x %d thread(s), "
           "queue %d, isa %s) started in %.1f ms (self-test %.1f ms)\n",
           cfg->host, http_bound_port(), cfg->model_name, g_srv.ready ? "ready" : "NOT READY",
           cfg->workers, cfg->threads, cfg->queue, g_srv.info.isa ? g_srv.info.isa : "?",
           now_ms() - g_srv.t_process_start_ms, g_srv.selftest_ms);
    fflush(stdout);

    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    while (!wait_signal(-1))
        ;
    drain();
    free(g_srv.test_image);
    morsel_model_close(g_srv.model);
    return 0;
}
