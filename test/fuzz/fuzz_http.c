/* libFuzzer target: any bytes as an HTTP request to morsel-serve, handled in-process by the
 * server's own routing, multipart, base64, JSON and inference code (examples/server/routes.c,
 * infer.c, multipart.c, b64.c, reply.c, meta.c, metrics.c) on a tiny model
 * ($MORSEL_FUZZ_MODEL). libmicrohttpd is not in the loop: this harness splits the request the
 * way it hands it over (method, path, the k query argument, Content-Type, body). Every request
 * must get a status in 200..599 with a body, and a JSON route's body must be valid JSON. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "server.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

srv_state g_srv;
static morsel_context *ctx;

double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* What metrics.c reads from the parts of the server not linked here. */
int queue_depth(const srv_queue *q)
{
    return 0;
}

int http_in_flight(void)
{
    return 0;
}

static void must(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_http: broken contract: %s\n", what);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    morsel_error err = {0};
    g_srv.cfg.model = getenv("MORSEL_FUZZ_MODEL");
    if (!g_srv.cfg.model || morsel_model_open_file(g_srv.cfg.model, &g_srv.model, &err) != MORSEL_OK ||
        morsel_context_create(g_srv.model, &ctx, &err) != MORSEL_OK) {
        fprintf(stderr, "fuzz_http: set MORSEL_FUZZ_MODEL to a small .morsel file (%s)\n",
                g_srv.cfg.model ? err.message : "unset");
        exit(2);
    }
    g_srv.info = (morsel_model_info)MORSEL_MODEL_INFO_INIT;
    morsel_model_get_info(g_srv.model, &g_srv.info, NULL);
    g_srv.cfg.model_name = "tiny";
    g_srv.cfg.top_k = 5;
    g_srv.cfg.queue = 4;
    g_srv.cfg.workers = 1;
    g_srv.cfg.threads = 1;
    g_srv.cfg.max_body = 1 << 20;
    g_srv.ready = 1;
    morsel_decode_options opt = MORSEL_DECODE_OPTIONS_INIT;
    opt.max_pixels = 4u << 20;
    morsel_context_set_decode_options(ctx, &opt, NULL);
    return 0;
}

/* A copy of [p, p+n) as a NUL-terminated string (the request's strings are C strings). */
static char *dup_n(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *end = in + size;
    const char *eol = memchr(in, '\n', size);
    if (!eol)
        return 0;
    /* Request line: METHOD SP TARGET [SP VERSION] */
    const char *sp = memchr(in, ' ', (size_t)(eol - in));
    if (!sp)
        return 0;
    const char *tend = memchr(sp + 1, ' ', (size_t)(eol - sp - 1));
    if (!tend)
        tend = eol[-1] == '\r' ? eol - 1 : eol;
    if (tend < sp + 1)
        return 0;
    char *method = dup_n(in, (size_t)(sp - in));
    const char *q = memchr(sp + 1, '?', (size_t)(tend - sp - 1));
    char *url = dup_n(sp + 1, (size_t)((q ? q : tend) - sp - 1));
    srv_request *r = calloc(1, sizeof *r);
    if (!method || !url || !r || strlen(method) != (size_t)(sp - in) || strchr(url, 0) != url +
        ((q ? q : tend) - sp - 1))
        goto out; /* an embedded NUL: libmicrohttpd refuses such a request line */
    r->method = method;
    r->url = url;
    r->t_start_ms = now_ms();
    r->route = routes_classify_url(url);
    if (q) {
        for (const char *a = q + 1; a < tend;) {
            const char *amp = memchr(a, '&', (size_t)(tend - a));
            const char *aend = amp ? amp : tend;
            if (aend - a >= 2 && a[0] == 'k' && a[1] == '=') {
                size_t n = (size_t)(aend - a - 2);
                if (n >= sizeof r->query_k)
                    n = sizeof r->query_k - 1;
                memcpy(r->query_k, a + 2, n);
                r->query_k[n] = 0;
            }
            a = aend + 1;
        }
    }
    /* Headers up to an empty line; only Content-Type matters to the handlers. */
    const char *line = eol + 1;
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *lend = nl ? nl : end;
        size_t n = (size_t)(lend - line);
        if (n && line[n - 1] == '\r')
            n--;
        if (n == 0) {
            line = nl ? nl + 1 : end;
            break;
        }
        if (n > 13 && strncasecmp(line, "content-type:", 13) == 0) {
            const char *v = line + 13;
            while (v < line + n && (*v == ' ' || *v == '\t'))
                v++;
            size_t vn = (size_t)(line + n - v);
            if (vn >= sizeof r->content_type)
                vn = sizeof r->content_type - 1;
            memcpy(r->content_type, v, vn);
            r->content_type[vn] = 0;
        }
        line = nl ? nl + 1 : end;
    }
    size_t body_len = (size_t)(end - line);
    if (body_len) {
        /* http.c keeps the body NUL-terminated after its last byte. */
        r->body = dup_n(line, body_len);
        if (!r->body)
            goto out;
        r->body_len = body_len;
        r->body_cap = body_len + 1;
    }
    if (routes_dispatch(r))
        infer_run(r, ctx);
    srv_reply *rep = &r->reply;
    must(rep->status >= 200 && rep->status <= 599, "reply status outside 200..599");
    must(rep->ctype != NULL, "reply without a content type");
    if (rep->ctype && strncmp(rep->ctype, "application/json", 16) == 0) {
        json_error_t jerr;
        json_t *j = json_loadb(rep->body, rep->len, 0, &jerr);
        must(j != NULL, "a JSON reply does not parse");
        json_decref(j);
    }
out:
    if (r) {
        free(r->reply.body);
        free(r->body);
    }
    free(r);
    free(method);
    free(url);
    return 0;
}
