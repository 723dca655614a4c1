/* multipart/form-data (RFC 7578) over a body already in memory and bounded by --max-body:
 * find the part whose Content-Disposition names the wanted field. Every search is bounded by
 * the body's end, so a malformed body only ever yields an error. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server.h"

static int get_boundary(const char *ct, char *out, size_t n)
{
    const char *p = ct;
    for (; (p = strchr(p, ';')) != NULL; p++) {
        const char *q = p + 1;
        while (*q == ' ' || *q == '\t')
            q++;
        if (strncasecmp(q, "boundary=", 9) != 0)
            continue;
        q += 9;
        size_t len;
        if (*q == '"') {
            q++;
            const char *end = strchr(q, '"');
            if (!end)
                return -1;
            len = (size_t)(end - q);
        } else {
            len = strcspn(q, "; \t");
        }
        if (len == 0 || len > 70 || len + 1 > n)
            return -1;
        memcpy(out, q, len);
        out[len] = 0;
        return 0;
    }
    return -1;
}

/* Does this part's header block (hdr..hdr+n) say name="field"? */
static int part_has_name(const char *hdr, size_t n, const char *field)
{
    char h[2048];
    if (n >= sizeof h)
        n = sizeof h - 1;
    memcpy(h, hdr, n);
    h[n] = 0;
    for (char *line = h; line && *line;) {
        char *next = strstr(line, "\r\n");
        if (next) {
            *next = 0;
            next += 2;
        }
        if (strncasecmp(line, "content-disposition:", 20) == 0) {
            for (char *p = line + 20; (p = strstr(p, "name=")) != NULL; p += 5) {
                if (p[-1] != ' ' && p[-1] != ';' && p[-1] != '\t')
                    continue; /* "filename=" */
                const char *v = p + 5;
                size_t len;
                if (*v == '"') {
                    v++;
                    const char *end = strchr(v, '"');
                    len = end ? (size_t)(end - v) : strlen(v);
                } else {
                    len = strcspn(v, "; \t");
                }
                return len == strlen(field) && strncmp(v, field, len) == 0;
            }
        }
        line = next;
    }
    return 0;
}

int multipart_find(const char *content_type, const char *body, size_t len, const char *field,
                   const char **data, size_t *data_len, char *why, size_t why_n)
{
    char boundary[80], delim[84];
    if (get_boundary(content_type, boundary, sizeof boundary)) {
        snprintf(why, why_n, "multipart/form-data without a valid boundary parameter");
        return -1;
    }
    int dn = snprintf(delim, sizeof delim, "--%s", boundary);
    const char *end = body ? body + len : NULL; /* NULL + 0 is undefined */
    const char *p = body ? memmem(body, len, delim, (size_t)dn) : NULL;
    while (p) {
        p += dn;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            break; /* closing delimiter */
        const char *hdr = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!hdr)
            break;
        hdr += 2;
        const char *hend = memmem(hdr, (size_t)(end - hdr), "\r\n\r\n", 4);
        if (!hend)
            break;
        const char *content = hend + 4;
        /* The part ends at CRLF + delimiter. */
        const char *next = NULL;
        for (const char *s = content; s < end;) {
            const char *m = memmem(s, (size_t)(end - s), delim, (size_t)dn);
            if (!m)
                break;
            if (m - content >= 2 && m[-2] == '\r' && m[-1] == '\n') {
                next = m;
                break;
            }
            s = m + 1;
        }
        if (!next)
            break;
        if (part_has_name(hdr, (size_t)(hend - hdr) + 2, field)) {
            *data = content;
            *data_len = (size_t)(next - 2 - content);
            return 0;
        }
        p = next;
    }
    snprintf(why, why_n, "multipart body has no complete part named '%s'", field);
    return -1;
}
