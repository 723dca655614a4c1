/* Routing: which handler a URL reaches, method and content-type checks, and the answers that
 * need no worker (page, health, metrics, model status). Inference routes only pick a job here;
 * infer.c runs it on a worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "server.h"

static const char *ROUTE_NAMES[R_COUNT_] = {
    "/", "/predict", "/test", "/v1/classify", "/v1/models/{name}:predict",
    "/v1/models/{name}", "/v1/models/{name}/metadata", "/healthz", "/readyz", "/metrics", "other"};

const char *route_name(int route)
{
    return route >= 0 && route < R_COUNT_ ? ROUTE_NAMES[route] : "other";
}

static const char INDEX_HTML[] =
    "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>morsel-serve</title></head>\n"
    "<body>\n<h1>Image classifier</h1>\n"
    "<form action=\"/predict\" method=\"post\" enctype=\"multipart/form-data\">\n"
    "<input type=\"file\" name=\"file\" accept=\"image/*\">\n"
    "<input type=\"submit\" value=\"Upload\">\n</form>\n</body></html>\n";

#define TFS_PREFIX "/v1/models/"

/* For /v1/models/<name>[...]: does <name> (up to the suffix) equal the served name? */
static int tfs_name_matches(const char *url, const char *suffix)
{
    const char *name = url + strlen(TFS_PREFIX);
    size_t n = strlen(name) - strlen(suffix);
    return strlen(g_srv.cfg.model_name) == n && strncmp(name, g_srv.cfg.model_name, n) == 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a > b && strcmp(s + a - b, suffix) == 0;
}

int routes_classify_url(const char *url)
{
    static const struct { const char *path; int route; } fixed[] = {
        {"/", R_INDEX}, {"/predict", R_PREDICT}, {"/test", R_TEST}, {"/v1/classify", R_CLASSIFY},
        {"/healthz", R_HEALTHZ}, {"/readyz", R_READYZ}, {"/metrics", R_METRICS}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strcmp(url, fixed[i].path) == 0)
            return fixed[i].route;
    if (strncmp(url, TFS_PREFIX, strlen(TFS_PREFIX)) != 0 || !url[strlen(TFS_PREFIX)])
        return R_OTHER;
    const char *name = url + strlen(TFS_PREFIX);
    if (ends_with(url, ":predict"))
        return strchr(name, '/') ? R_OTHER : R_TFS_PREDICT;
    if (ends_with(url, "/metadata"))
        return strchr(name, '/') == strrchr(name, '/') ? R_TFS_METADATA : R_OTHER;
    return strchr(name, '/') || strchr(name, ':') ? R_OTHER : R_TFS_STATUS;
}

/* The media type without parameters, lower-case compare. */
static int ctype_is(const char *ct, const char *type)
{
    size_t n = strlen(type);
    return strncasecmp(ct, type, n) == 0 && (ct[n] == 0 || ct[n] == ';' || ct[n] == ' ');
}

static int method_ok(srv_request *r, const char *want)
{
    if (strcmp(r->method, want) == 0 || (strcmp(want, "GET") == 0 && !strcmp(r->method, "HEAD")))
        return 1;
    reply_error(&r->reply, 405, "%s %s: method not allowed (use %s)", r->method, r->url, want);
    r->reply.allow = strcmp(want, "GET") == 0 ? "GET, HEAD" : want;
    return 0;
}

static void readyz(srv_reply *rep)
{
    int ready = g_srv.ready && !g_srv.draining;
    const char *why = !g_srv.ready ? g_srv.selftest_msg : g_srv.draining ? "shutting down" : "";
    reply_json(rep, ready ? 200 : 503,
               json_pack("{s:b, s:s, s:s}", "ready", ready, "model", g_srv.cfg.model_name,
                         "reason", why));
}

int routes_dispatch(srv_request *r)
{
    srv_reply *rep = &r->reply;
    const char *ct = r->content_type;
    switch (r->route) {
    case R_INDEX:
        if (method_ok(r, "GET"))
            reply_text(rep, 200, "text/html; charset=utf-8", INDEX_HTML);
        return 0;
    case R_PREDICT:
        if (!method_ok(r, "POST"))
            return 0;
        if (!ctype_is(ct, "multipart/form-data")) {
            reply_error(rep, 415, "POST /predict takes multipart/form-data with a 'file' field, "
                                  "not '%s'", ct);
            return 0;
        }
        r->job = JOB_LEGACY;
        return 1;
    case R_TEST:
        if (!method_ok(r, "GET"))
            return 0;
        if (!g_srv.test_image) {
            reply_error(rep, 404, "no test image configured (--test-image / MORSEL_TEST_IMAGE)");
            return 0;
        }
        r->job = JOB_TEST;
        return 1;
    case R_CLASSIFY:
        if (!method_ok(r, "POST"))
            return 0;
        if (!(*ct == 0 || ctype_is(ct, "application/octet-stream") ||
              strncasecmp(ct, "image/", 6) == 0 || ctype_is(ct, "multipart/form-data"))) {
            reply_error(rep, 415, "POST /v1/classify takes an image/* or application/octet-stream "
                                  "body, or multipart/form-data with a 'file' field, not '%s'", ct);
            return 0;
        }
        r->job = JOB_CLASSIFY;
        return 1;
    case R_TFS_PREDICT:
        if (!method_ok(r, "POST"))
            return 0;
        if (!tfs_name_matches(r->url, ":predict"))
            break;
        /* TF-Serving ignores the content type and curl -d sends a form type; refuse only
         * bodies that are clearly not JSON. */
        if (strncasecmp(ct, "image/", 6) == 0 || strncasecmp(ct, "multipart/", 10) == 0 ||
            ctype_is(ct, "application/octet-stream")) {
            reply_error(rep, 415, "POST %s takes a JSON body {\"instances\": [{\"b64\": ...}]}, "
                                  "not '%s'", r->url, ct);
            return 0;
        }
        r->job = JOB_TFS_PREDICT;
        return 1;
    case R_TFS_STATUS:
        if (!method_ok(r, "GET"))
            return 0;
        if (!tfs_name_matches(r->url, ""))
            break;
        reply_json(rep, 200, meta_status_json());
        return 0;
    case R_TFS_METADATA:
        if (!method_ok(r, "GET"))
            return 0;
        if (!tfs_name_matches(r->url, "/metadata"))
            break;
        reply_json(rep, 200, meta_metadata_json());
        return 0;
    case R_HEALTHZ:
        if (method_ok(r, "GET"))
            reply_json(rep, 200, json_pack("{s:s}", "status", "ok"));
        return 0;
    case R_READYZ:
        if (method_ok(r, "GET"))
            readyz(rep);
        return 0;
    case R_METRICS:
        if (method_ok(r, "GET")) {
            free(rep->body);
            rep->status = 200;
            rep->ctype = "text/plain; version=0.0.4; charset=utf-8";
            rep->body = metrics_render(&rep->len);
            if (!rep->body)
                reply_error(rep, 500, "out of memory");
        }
        return 0;
    default:
        reply_error(rep, 404, "no route for %s %s", r->method, r->url);
        return 0;
    }
    /* A TF-Serving route naming another model. */
    reply_error(rep, 404, "Servable not found for request: Latest(%s); this server serves '%s'",
                r->url + strlen(TFS_PREFIX), g_srv.cfg.model_name);
    return 0;
}
