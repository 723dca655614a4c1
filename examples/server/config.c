/* Flags and MORSEL_* environment variables. Every option has both spellings so a Kubernetes
 * manifest can set either; a flag wins over the environment. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

enum kind { K_STR, K_INT, K_U64, K_LOG };

typedef struct option_def {
    const char *flag, *env, *meta, *help;
    enum kind kind;
    long lo, hi; /* integer range */
    size_t off;
} option_def;

#define OFF(f) offsetof(srv_config, f)
static const option_def OPTS[] = {
    {"model", "MORSEL_MODEL", "PATH", "the .morsel file to serve (required)", K_STR, 0, 0, OFF(model)},
    {"port", "MORSEL_PORT", "N", "TCP port; 0 picks a free one (default 8080)", K_INT, 0, 65535, OFF(port)},
    {"host", "MORSEL_HOST", "ADDR", "IPv4 address to listen on (default 0.0.0.0)", K_STR, 0, 0, OFF(host)},
    {"workers", "MORSEL_WORKERS", "W", "inference workers (default: usable CPUs / threads)", K_INT, 1, 256, OFF(workers)},
    {"threads", "MORSEL_THREADS", "T", "threads per inference (default 1)", K_INT, 1, 256, OFF(threads)},
    {"queue", "MORSEL_QUEUE", "Q", "requests waiting for a worker before 503 (default 32*W)", K_INT, 1, 1 << 20, OFF(queue)},
    {"max-body", "MORSEL_MAX_BODY", "BYTES", "largest request body, else 413 (default 16 MiB)", K_U64, 1, 0, OFF(max_body)},
    {"max-body-total", "MORSEL_MAX_BODY_TOTAL", "BYTES", "request bodies held at once (received or queued), else 503 (default 128 MiB)", K_U64, 1, 0, OFF(max_body_total)},
    {"max-pixels", "MORSEL_MAX_PIXELS", "N", "largest image width*height, else 422 (default 40 Mi)", K_U64, 1, 0, OFF(max_pixels)},
    {"max-decode-memory", "MORSEL_MAX_DECODE_MEMORY", "BYTES", "memory one image decode may hold, else 422 (default 512 MiB; W workers decode at once)", K_U64, 1, 0, OFF(max_decode_memory)},
    {"max-decode-work", "MORSEL_MAX_DECODE_WORK", "N", "JPEG decoding work in pixel-scans (width*height*scans), else 422 (default 2 Gi)", K_U64, 1, 0, OFF(max_decode_work)},
    {"max-work", "MORSEL_MAX_WORK", "OPS", "refuse a model needing more operations per inference (default 1e11)", K_U64, 1, 0, OFF(max_work)},
    {"max-memory", "MORSEL_MAX_MEMORY", "BYTES", "refuse a model needing more activation+scratch per worker (default 1 GiB)", K_U64, 1, 0, OFF(max_memory)},
    {"timeout", "MORSEL_TIMEOUT", "SEC", "idle connection timeout; also the whole body's deadline (default 10)", K_INT, 1, 3600, OFF(timeout_s)},
    {"max-connections", "MORSEL_MAX_CONNECTIONS", "N", "open connections at once (default 512)", K_INT, 1, 1 << 16, OFF(max_connections)},
    {"http-nice", "MORSEL_HTTP_NICE", "N", "nice value added to the HTTP thread, so a flood of refused requests cannot starve inference (default 10; 0 off)", K_INT, 0, 19, OFF(http_nice)},
    {"test-image", "MORSEL_TEST_IMAGE", "PATH", "image GET /test classifies (default: none, 404)", K_STR, 0, 0, OFF(test_image)},
    {"model-name", "MORSEL_MODEL_NAME", "NAME", "name in /v1/models/<name> (default: the file's model name)", K_STR, 0, 0, OFF(model_name)},
    {"top-k", "MORSEL_TOP_K", "K", "classes /v1/classify returns (default 5; ?k= overrides)", K_INT, 1, 1 << 16, OFF(top_k)},
    {"log", "MORSEL_LOG", "json|off", "access log, one JSON line per request on stderr (default json)", K_LOG, 0, 0, OFF(log_json)},
};
#define N_OPTS (sizeof OPTS / sizeof OPTS[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: morsel-serve --model PATH [options]\n\n"
               "Serves one .morsel image classifier over HTTP. Each option may also be given as\n"
               "the environment variable shown; a flag wins over the environment.\n\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        char left[48];
        snprintf(left, sizeof left, "--%s %s", OPTS[i].flag, OPTS[i].meta);
        fprintf(f, "  %-26s %-24s %s\n", left, OPTS[i].env, OPTS[i].help);
    }
    fprintf(f, "  %-26s %-24s %s\n", "--help", "", "this text");
    fprintf(f, "\nW*T never exceeds the CPUs the process may use (affinity mask and cgroup CPU\n"
               "quota): W is lowered to fit, with a warning.\n");
}

static int set_value(srv_config *cfg, const option_def *o, const char *v, const char *source)
{
    char *p = (char *)cfg + o->off;
    if (o->kind == K_STR) {
        if (!*v) {
            fprintf(stderr, "morsel-serve: %s: empty value\n", source);
            return 2;
        }
        *(const char **)p = v;
        return 0;
    }
    if (o->kind == K_LOG) {
        if (strcmp(v, "json") && strcmp(v, "off")) {
            fprintf(stderr, "morsel-serve: %s: '%s' is not json or off\n", source, v);
            return 2;
        }
        *(int *)p = strcmp(v, "json") == 0;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end || !isdigit((unsigned char)*v)) { /* strtoull takes " -1" */
        fprintf(stderr, "morsel-serve: %s: '%s' is %s\n", source, v,
                errno == ERANGE ? "out of range" : "not a non-negative integer");
        return 2;
    }
    if (o->kind == K_U64) {
        if (x < (unsigned long long)o->lo) {
            fprintf(stderr, "morsel-serve: %s: must be at least %ld\n", source, o->lo);
            return 2;
        }
        *(uint64_t *)p = x;
        return 0;
    }
    if (x < (unsigned long long)o->lo || x > (unsigned long long)o->hi) {
        fprintf(stderr, "morsel-serve: %s: %s is outside %ld..%ld\n", source, v, o->lo, o->hi);
        return 2;
    }
    *(int *)p = (int)x;
    return 0;
}

int config_parse(srv_config *cfg, int argc, char **argv)
{
    *cfg = (srv_config){.host = "0.0.0.0", .port = 8080, .threads = 1, .max_body = 16u << 20,
                        .max_body_total = 128u << 20,
                        .max_pixels = 40u << 20, .timeout_s = 10, .max_connections = 512,
                        .top_k = 5, .log_json = 1, .http_nice = 10};
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *v = getenv(OPTS[i].env);
        if (v && *v) {
            int rc = set_value(cfg, &OPTS[i], v, OPTS[i].env);
            if (rc)
                return rc;
        }
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "morsel-serve: unexpected argument '%s' (see --help)\n", arg);
            return 2;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const option_def *o = NULL;
        for (size_t i = 0; i < N_OPTS; i++)
            if (strlen(OPTS[i].flag) == nlen && !strncmp(OPTS[i].flag, name, nlen))
                o = &OPTS[i];
        if (!o) {
            fprintf(stderr, "morsel-serve: unknown option '%s' (see --help)\n", arg);
            return 2;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (a + 1 >= argc) {
                fprintf(stderr, "morsel-serve: --%s needs a value\n", o->flag);
                return 2;
            }
            v = argv[++a];
        }
        char source[64];
        snprintf(source, sizeof source, "--%s", o->flag);
        int rc = set_value(cfg, o, v, source);
        if (rc)
            return rc;
    }
    if (!cfg->model) {
        fprintf(stderr, "morsel-serve: --model PATH (or MORSEL_MODEL) is required (see --help)\n");
        return 2;
    }
    return 0;
}

void config_resolve_cpus(srv_config *cfg)
{
    const char *why = "";
    int cpus = cpus_usable(&why);
    if (cfg->threads > cpus) {
        fprintf(stderr, "morsel-serve: warning: --threads %d exceeds the %d usable CPU(s) (%s); "
                        "using %d\n", cfg->threads, cpus, why, cpus);
        cfg->threads = cpus;
    }
    int fit = cpus / cfg->threads;
    if (cfg->workers == 0) {
        cfg->workers = fit;
    } else if (cfg->workers > fit) {
        fprintf(stderr, "morsel-serve: warning: %d workers x %d threads exceeds the %d usable "
                        "CPU(s) (%s); using %d workers\n", cfg->workers, cfg->threads, cpus, why, fit);
        cfg->workers = fit;
    }
    if (cfg->queue == 0)
        cfg->queue = 32 * cfg->workers; /* RESOURCES.md: the users' siege -c 30 fits, c=100 sheds */
}
