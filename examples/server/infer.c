/* Worker side: get the image bytes out of the request, classify on this worker's context, and
 * write the answer in the route's format. Parsing happens here too, so a large JSON body never
 * stalls the HTTP thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "server.h"

/* Bad input is the client's fault (4xx); only a failure of our own is a 5xx. */
static unsigned status_for(morsel_status s)
{
    switch (s) {
    case MORSEL_ERR_IMAGE:
    case MORSEL_ERR_ARGUMENT:
        return 400;
    case MORSEL_ERR_LIMIT:
        return 422;
    default:
        return 500;
    }
}

typedef struct result {
    morsel_class *top;
    int n_top;
    morsel_timings tm;
    morsel_error err;
    morsel_status st;
} result;

static int classify(srv_request *r, morsel_context *ctx, const void *img, size_t len, int k,
                    result *out)
{
    memset(&out->err, 0, sizeof out->err);
    out->n_top = 0;
    out->tm = (morsel_timings)MORSEL_TIMINGS_INIT;
    if (len == 0) {
        out->st = MORSEL_ERR_IMAGE;
        snprintf(out->err.message, sizeof out->err.message, "empty image");
        return -1;
    }
    out->st = morsel_classify_encoded(ctx, img, len, k, out->top, &out->n_top, &out->tm,
                                      &out->err);
    if (out->st != MORSEL_OK)
        return -1;
    r->decode_ms += out->tm.decode_ms;
    r->preprocess_ms += out->tm.preprocess_ms;
    r->inference_ms += out->tm.inference_ms;
    r->n_images++;
    metrics_inference(out->tm.inference_ms / 1000.0, r->queue_ms / 1000.0);
    snprintf(r->label, sizeof r->label, "%s", out->top[0].label);
    return 0;
}

static void fail(srv_request *r, const result *res, const char *what)
{
    reply_error(&r->reply, status_for(res->st), "%s%s", what, res->err.message);
}

/* The Flask app's answer: "<label> (<probability>), Inference Time : <seconds> seconds".
 * The probability is printed as Python prints the float32 value in an f-string (repr of the
 * double it widens to), the time as the Flask app's time.time() difference prints. */
static void legacy(srv_request *r, morsel_context *ctx, const void *img, size_t len, result *res)
{
    if (classify(r, ctx, img, len, 1, res)) {
        fail(r, res, "");
        return;
    }
    char prob[40], secs[40], text[400];
    format_pyfloat(prob, sizeof prob, (double)res->top[0].probability);
    format_pyfloat(secs, sizeof secs, res->tm.total_ms / 1000.0);
    snprintf(text, sizeof text, "%s (%s), Inference Time : %s seconds", res->top[0].label, prob,
             secs);
    /* The label comes from the model file and the Flask app answers text/html: escape it. */
    char esc[sizeof text * 5];
    size_t o = 0;
    for (const char *p = text; *p; p++) {
        const char *e = *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : *p == '&' ? "&amp;" : NULL;
        if (e) {
            memcpy(esc + o, e, strlen(e));
            o += strlen(e);
        } else {
            esc[o++] = *p;
        }
    }
    esc[o] = 0;
    reply_text(&r->reply, 200, "text/html; charset=utf-8", esc);
}

static int requested_k(const srv_request *r)
{
    int k = g_srv.cfg.top_k;
    if (r->query_k[0]) {
        char *end;
        long v = strtol(r->query_k, &end, 10);
        k = (*end || v < 1) ? -1 : v > 1 << 16 ? 1 << 16 : (int)v;
    }
    return k;
}

static void classify_json(srv_request *r, morsel_context *ctx, result *res)
{
    const char *img = r->body;
    size_t len = r->body_len;
    char why[200];
    if (strncasecmp(r->content_type, "multipart/", 10) == 0 &&
        multipart_find(r->content_type, r->body, r->body_len, "file", &img, &len, why,
                       sizeof why)) {
        reply_error(&r->reply, 400, "%s", why);
        return;
    }
    int k = requested_k(r);
    if (k < 1) {
        reply_error(&r->reply, 400, "query parameter k='%s' is not a positive integer",
                    r->query_k);
        return;
    }
    if (classify(r, ctx, img, len, k, res)) {
        fail(r, res, "");
        return;
    }
    json_t *preds = json_array();
    for (int i = 0; i < res->n_top; i++)
        json_array_append_new(preds, json_pack("{s:s, s:i, s:f}", "label", res->top[i].label,
                                               "index", res->top[i].index, "probability",
                                               (double)res->top[i].probability));
    json_t *t = json_pack("{s:f, s:f, s:f, s:f}", "queue_wait", r->queue_ms, "decode",
                          res->tm.decode_ms, "preprocess", res->tm.preprocess_ms, "inference",
                          res->tm.inference_ms);
    reply_json(&r->reply, 200, json_pack("{s:s, s:o, s:o}", "model", g_srv.cfg.model_name,
                                         "predictions", preds, "timings_ms", t));
}

/* One instance: {"b64": "..."} or, as Google's clients send it, {"<input name>": {"b64": ...}}. */
static const char *instance_b64(json_t *inst, size_t *n)
{
    json_t *b = json_is_object(inst) ? json_object_get(inst, "b64") : NULL;
    if (!b && json_is_object(inst) && json_object_size(inst) == 1) {
        json_t *inner = json_object_iter_value(json_object_iter(inst));
        b = json_is_object(inner) ? json_object_get(inner, "b64") : NULL;
    }
    if (!json_is_string(b))
        return NULL;
    *n = json_string_length(b);
    return json_string_value(b);
}

/* TF-Serving's row format: {"predictions": [[p_0 .. p_{C-1}], ...]}, one probability vector
 * per instance, in the model's class order. */
static void tfs_predict(srv_request *r, morsel_context *ctx, result *res)
{
    json_error_t jerr;
    json_t *root = json_loadb(r->body ? r->body : "", r->body_len, 0, &jerr);
    if (!root) {
        reply_error(&r->reply, 400, "bad JSON body: %s (line %d, column %d)", jerr.text,
                    jerr.line, jerr.column);
        return;
    }
    json_t *insts = json_is_object(root) ? json_object_get(root, "instances") : NULL;
    if (!json_is_array(insts) || json_array_size(insts) == 0) {
        json_decref(root);
        reply_error(&r->reply, 400, "the body must be {\"instances\": [{\"b64\": \"...\"}, ...]} "
                                    "with at least one instance");
        return;
    }
    int classes = g_srv.info.n_outputs;
    json_t *out = json_array();
    uint8_t *buf = NULL;
    size_t i;
    json_t *inst;
    json_array_foreach(insts, i, inst) {
        size_t n = 0;
        const char *b64 = instance_b64(inst, &n);
        if (!b64) {
            reply_error(&r->reply, 400, "instance %zu: expected {\"b64\": \"<base64 image>\"}", i);
            goto done;
        }
        free(buf);
        buf = malloc(3 * (n / 4) + 3);
        long len = buf ? b64_decode(b64, n, buf) : -1;
        if (len < 0) {
            reply_error(&r->reply, 400, "instance %zu: bad base64", i);
            goto done;
        }
        if (classify(r, ctx, buf, (size_t)len, classes, res)) {
            char what[40];
            snprintf(what, sizeof what, "instance %zu: ", i);
            fail(r, res, what);
            goto done;
        }
        json_t *row = json_array();
        for (int c = 0; c < classes; c++)
            json_array_append_new(row, json_real(0));
        for (int t = 0; t < res->n_top; t++)
            json_real_set(json_array_get(row, (size_t)res->top[t].index),
                          (double)res->top[t].probability);
        json_array_append_new(out, row);
    }
    reply_json(&r->reply, 200, json_pack("{s:O}", "predictions", out));
done:
    free(buf);
    json_decref(out);
    json_decref(root);
}

void infer_run(srv_request *r, morsel_context *ctx)
{
    result res;
    res.top = malloc(sizeof *res.top * (size_t)g_srv.info.n_outputs);
    if (!res.top) {
        reply_error(&r->reply, 500, "out of memory");
        return;
    }
    const char *img;
    size_t len;
    char why[200];
    switch (r->job) {
    case JOB_LEGACY:
        if (multipart_find(r->content_type, r->body, r->body_len, "file", &img, &len, why,
                           sizeof why))
            reply_error(&r->reply, 400, "%s", why);
        else
            legacy(r, ctx, img, len, &res);
        break;
    case JOB_TEST:
        legacy(r, ctx, g_srv.test_image, g_srv.test_image_len, &res);
        break;
    case JOB_CLASSIFY:
        classify_json(r, ctx, &res);
        break;
    case JOB_TFS_PREDICT:
        tfs_predict(r, ctx, &res);
        break;
    default:
        reply_error(&r->reply, 500, "internal error: no job");
    }
    free(res.top);
}
