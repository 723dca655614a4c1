/* Prometheus text exposition (format 0.0.4). A single mutex: a few counter updates per request
 * are nothing next to a 10 ms inference. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

static const double BUCKETS[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                 0.25,  0.5,    1,     2.5,  5,     10};
#define N_BUCKETS (sizeof BUCKETS / sizeof BUCKETS[0])
#define MAX_CODES 16

typedef struct histogram {
    uint64_t counts[N_BUCKETS + 1]; /* last: +Inf only */
    uint64_t n;
    double sum;
} histogram;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    unsigned code[MAX_CODES];
    uint64_t count[MAX_CODES];
    int n;
} requests[R_COUNT_];
static histogram latency[R_COUNT_], inference, queue_wait;
static uint64_t rejected;

static void observe(histogram *h, double v)
{
    size_t i = 0;
    while (i < N_BUCKETS && v > BUCKETS[i])
        i++;
    h->counts[i]++;
    h->n++;
    h->sum += v;
}

void metrics_request_done(int route, unsigned status, double latency_s)
{
    pthread_mutex_lock(&mu);
    int i = 0, n = requests[route].n;
    while (i < n && requests[route].code[i] != status)
        i++;
    if (i == n && n < MAX_CODES) {
        requests[route].code[i] = status;
        requests[route].n++;
    }
    if (i < MAX_CODES)
        requests[route].count[i]++;
    observe(&latency[route], latency_s);
    pthread_mutex_unlock(&mu);
}

void metrics_inference(double seconds, double queue_wait_s)
{
    pthread_mutex_lock(&mu);
    observe(&inference, seconds);
    observe(&queue_wait, queue_wait_s);
    pthread_mutex_unlock(&mu);
}

void metrics_rejected(void)
{
    pthread_mutex_lock(&mu);
    rejected++;
    pthread_mutex_unlock(&mu);
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = b->oom ? -1 : vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        char *q = realloc(b->p, b->cap * 2 + (size_t)n);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = b->cap * 2 + (size_t)n;
    }
}

static void put_histogram(sbuf *b, const char *name, const char *labels, const histogram *h)
{
    uint64_t cum = 0;
    const char *sep = *labels ? "," : "";
    for (size_t i = 0; i < N_BUCKETS; i++) {
        cum += h->counts[i];
        put(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, BUCKETS[i],
            (unsigned long long)cum);
    }
    put(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)h->n);
    put(b, "%s_sum%s%s%s %.9g\n", name, *labels ? "{" : "", labels, *labels ? "}" : "", h->sum);
    put(b, "%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
        (unsigned long long)h->n);
}

static long rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * sysconf(_SC_PAGESIZE);
}

char *metrics_render(size_t *len)
{
    sbuf b = {malloc(8192), 0, 8192, 0};
    if (!b.p)
        return NULL;
    pthread_mutex_lock(&mu);
    put(&b, "# HELP morsel_http_requests_total HTTP requests answered, by route and status.\n"
            "# TYPE morsel_http_requests_total counter\n");
    for (int r = 0; r < R_COUNT_; r++)
        for (int i = 0; i < requests[r].n; i++)
            put(&b, "morsel_http_requests_total{route=\"%s\",code=\"%u\"} %llu\n", route_name(r),
                requests[r].code[i], (unsigned long long)requests[r].count[i]);
    put(&b, "# HELP morsel_http_request_duration_seconds Headers received to answer sent.\n"
            "# TYPE morsel_http_request_duration_seconds histogram\n");
    for (int r = 0; r < R_COUNT_; r++) {
        if (!latency[r].n)
            continue;
        char labels[64];
        snprintf(labels, sizeof labels, "route=\"%s\"", route_name(r));
        put_histogram(&b, "morsel_http_request_duration_seconds", labels, &latency[r]);
    }
    put(&b, "# HELP morsel_inference_duration_seconds The network alone, per image.\n"
            "# TYPE morsel_inference_duration_seconds histogram\n");
    put_histogram(&b, "morsel_inference_duration_seconds", "", &inference);
    put(&b, "# HELP morsel_queue_wait_seconds Time a request waited for a worker.\n"
            "# TYPE morsel_queue_wait_seconds histogram\n");
    put_histogram(&b, "morsel_queue_wait_seconds", "", &queue_wait);
    put(&b, "# HELP morsel_rejected_total Requests refused with 503 because the queue was full.\n"
            "# TYPE morsel_rejected_total counter\nmorsel_rejected_total %llu\n",
        (unsigned long long)rejected);
    pthread_mutex_unlock(&mu);
    put(&b, "# HELP morsel_queue_depth Requests waiting for a worker.\n"
            "# TYPE morsel_queue_depth gauge\nmorsel_queue_depth %d\n", queue_depth(g_srv.queue));
    put(&b, "# HELP morsel_queue_capacity Queue bound (beyond it: 503).\n"
            "# TYPE morsel_queue_capacity gauge\nmorsel_queue_capacity %d\n", g_srv.cfg.queue);
    /* The scrape itself is one of them. */
    put(&b, "# HELP morsel_in_flight_requests Requests received and not yet answered.\n"
            "# TYPE morsel_in_flight_requests gauge\nmorsel_in_flight_requests %d\n",
        http_in_flight());
    put(&b, "# HELP morsel_workers Inference workers (threads per inference: morsel_threads).\n"
            "# TYPE morsel_workers gauge\nmorsel_workers %d\n"
            "# TYPE morsel_threads gauge\nmorsel_threads %d\n", g_srv.cfg.workers,
        g_srv.cfg.threads);
    put(&b, "# HELP morsel_ready 1 when the model loaded and its self-test passed.\n"
            "# TYPE morsel_ready gauge\nmorsel_ready %d\n", g_srv.ready);
    put(&b, "# HELP process_resident_memory_bytes Resident set size.\n"
            "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n",
        rss_bytes());
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
