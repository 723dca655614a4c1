/* Building answers: plain text, JSON, and the JSON error body every 4xx/5xx carries. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "server.h"

void reply_text(srv_reply *r, unsigned status, const char *ctype, const char *text)
{
    free(r->body);
    r->status = status;
    r->ctype = ctype;
    r->len = strlen(text);
    r->body = malloc(r->len + 1);
    if (r->body)
        memcpy(r->body, text, r->len + 1);
    else
        r->len = 0;
}

void reply_json(srv_reply *r, unsigned status, void *json)
{
    json_t *j = json;
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(j);
    free(r->body);
    r->body = NULL;
    r->len = 0;
    r->ctype = "application/json";
    if (!s) {
        r->status = 500;
        return;
    }
    r->status = status;
    /* jansson allocates with malloc (no custom allocator is set), so MHD may free() it. */
    r->len = strlen(s);
    r->body = s;
}

/* Length of the valid UTF-8 sequence at p (jansson's rules: no overlong forms, surrogates or
 * code points past U+10FFFF), 0 when there is none. */
static int utf8_len(const unsigned char *p)
{
    unsigned char c = p[0];
    int n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
          : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F) || (c == 0xF0 && p[1] < 0x90) ||
        (c == 0xF4 && p[1] > 0x8F))
        return 0;
    return n;
}

void reply_error(srv_reply *r, unsigned status, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Messages quote the client's URL and headers, which need not be UTF-8; jansson refuses
     * such a string, and the client would get an empty 500 instead of its 4xx. */
    for (unsigned char *p = (unsigned char *)msg; *p;) {
        int n = utf8_len(p);
        if (n)
            p += n;
        else
            *p++ = '?';
    }
    /* TF-Serving's REST API reports errors as {"error": "..."}; the other routes do the same. */
    reply_json(r, status, json_pack("{s:s}", "error", msg));
}

void format_pyfloat(char *buf, size_t n, double v)
{
    /* Shortest %g that reads back exactly, as Python's repr(float) does. Only values in
     * (1e-300, 1e15) reach here (probabilities, seconds), where %g and repr pick the same
     * notation. */
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    if (!strpbrk(buf, ".eni")) /* "1" -> "1.0"; leaves "1e-05", "inf", "nan" */
        strncat(buf, ".0", n - strlen(buf) - 1);
}
