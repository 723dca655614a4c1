/* morsel-serve: shared types. One model, W inference workers each owning a morsel_context,
 * a bounded queue between libmicrohttpd's polling thread and the workers. */
#ifndef SERVER_H
#define SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <morsel.h>

/* ---- configuration (config.c) ----------------------------------------------------------- */
typedef struct srv_config {
    const char *model, *host, *test_image, *model_name;
    int port, workers, threads, queue, timeout_s, max_connections, top_k, log_json;
    int http_nice; /* added to the HTTP thread's nice value (inference keeps the CPU) */
    uint64_t max_body, max_pixels, max_body_total;
    uint64_t max_decode_memory, max_decode_work; /* per decode (morsel_decode_options); 0: lib */
    uint64_t max_work, max_memory; /* model budgets (morsel_open_options); 0: the library's */
} srv_config;

/* Fills cfg from MORSEL_* variables, then argv (flags win). Returns 0, 1 after --help, or 2
 * after printing why a value is bad. */
int config_parse(srv_config *cfg, int argc, char **argv);

/* CPUs this process may use: the affinity mask capped by the cgroup (v2 cpu.max or v1
 * cfs_quota/period) quota, rounded up. *why names what bounded it. */
int cpus_usable(const char **why);

/* Resolves workers x threads against the usable CPUs; warns on stderr when it clamps. */
void config_resolve_cpus(srv_config *cfg);

/* ---- routes and metrics labels ------------------------------------------------------------ */
enum srv_route {
    R_INDEX, R_PREDICT, R_TEST, R_CLASSIFY, R_TFS_PREDICT, R_TFS_STATUS, R_TFS_METADATA,
    R_HEALTHZ, R_READYZ, R_METRICS, R_OTHER, R_COUNT_
};
const char *route_name(int route);

/* An answer, built by routes.c / infer.c, sent by http.c. body is malloc'ed (may be NULL). */
typedef struct srv_reply {
    unsigned status;
    const char *ctype;
    char *body;
    size_t len;
    int retry_after; /* seconds, 0: no Retry-After header */
    const char *allow; /* Allow header of a 405 */
} srv_reply;

/* Inference kinds a worker runs. */
enum srv_job { JOB_NONE, JOB_LEGACY, JOB_TEST, JOB_CLASSIFY, JOB_TFS_PREDICT };

/* One HTTP request, from its headers to its completion. http.c owns it; while a job is queued
 * or running, the worker owns it until it hands it back (http_resume). */
typedef struct srv_request {
    const char *method, *url;   /* libmicrohttpd's, valid for the request's lifetime */
    char content_type[256];
    char query_k[16];
    char *body;
    size_t body_len, body_cap;
    size_t reserved;            /* budget taken at once for a Content-Length body (0: chunked) */
    int body_too_large;
    int body_over_budget;       /* --max-body-total reached: discard the rest, answer 503 */
    double t_start_ms;          /* headers received */
    double t_enqueued_ms;
    int route, job;
    srv_reply reply;
    /* for the access log */
    char label[96];
    double queue_ms, decode_ms, preprocess_ms, inference_ms;
    int n_images;
    void *conn;                 /* struct MHD_Connection * */
    int suspended;
} srv_request;

/* ---- the server ---------------------------------------------------------------------------- */
typedef struct srv_queue srv_queue;

typedef struct srv_state {
    srv_config cfg;
    morsel_model *model;
    morsel_model_info info;
    int ready;                  /* self-test passed (or the file has none) */
    volatile int draining;
    char selftest_msg[600];
    uint32_t header_crc;
    uint8_t *test_image;
    size_t test_image_len;
    srv_queue *queue;
    double t_process_start_ms, selftest_ms;
} srv_state;

extern srv_state g_srv;

double now_ms(void);

/* routes.c: decides what a fully received request gets. Returns 1 when it queued a job (the
 * worker answers later), 0 when req->reply is ready now. */
int routes_dispatch(srv_request *req);
/* The route for metrics, known from the URL alone. */
int routes_classify_url(const char *url);

/* infer.c: runs req->job on this worker's context and fills req->reply. */
void infer_run(srv_request *req, morsel_context *ctx);

/* reply helpers (reply.c) */
void reply_text(srv_reply *r, unsigned status, const char *ctype, const char *text);
void reply_error(srv_reply *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Takes ownership of a jansson json_t * (passed as void * to keep jansson out of this header). */
void reply_json(srv_reply *r, unsigned status, void *json);

/* Python's repr() of a double: the shortest digits that read back to the same value. */
void format_pyfloat(char *buf, size_t n, double v);

/* http.c */
int http_start(void);
void http_quiesce(void);
void http_stop(void);
void http_resume(srv_request *req);
int http_in_flight(void);
int http_bound_port(void);

/* queue.c */
int queue_start(srv_queue **out, int capacity, int workers, int threads, morsel_error *err);
int queue_push(srv_queue *q, srv_request *req); /* 0, or -1 when full */
int queue_full(const srv_queue *q);  /* a push now would be refused (503) */
int queue_depth(const srv_queue *q);
void queue_stop(srv_queue *q);                   /* drains remaining jobs, joins workers */
/* The first worker's context, for the start-up self-test before any request arrives. */
morsel_context *queue_context(srv_queue *q, int i);

/* metrics.c */
void metrics_request_done(int route, unsigned status, double latency_s);
void metrics_inference(double seconds, double queue_wait_s);
void metrics_rejected(void);
char *metrics_render(size_t *len);

/* accesslog.c */
void accesslog_write(const srv_request *req, const char *remote, size_t bytes_out);

/* meta.c */
void *meta_status_json(void);
void *meta_metadata_json(void);
const char *meta_sha256(void);

/* multipart.c: the first part named `field` of a multipart/form-data body. */
int multipart_find(const char *content_type, const char *body, size_t len, const char *field,
                   const char **data, size_t *data_len, char *why, size_t why_n);

/* b64.c: standard or URL-safe alphabet, padding optional, whitespace rejected. Returns the
 * decoded length or -1. out must hold 3 * (n / 4) + 3 bytes. */
long b64_decode(const char *in, size_t n, uint8_t *out);

#endif
