/* One JSON object per request on stderr, written with a single write() so lines from different
 * threads never interleave (stderr is a pipe under Kubernetes; writes up to PIPE_BUF are atomic,
 * and our lines are far shorter). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "server.h"

void accesslog_write(const srv_request *r, const char *remote, size_t bytes_out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);

    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:f}", "time", when,
                          "remote", remote, "method", r->method, "path", r->url, "route",
                          route_name(r->route), "status", (int)r->reply.status, "bytes_in",
                          (json_int_t)r->body_len, "bytes_out", (json_int_t)bytes_out,
                          "duration_ms", now_ms() - r->t_start_ms);
    if (!j)
        return;
    if (r->job != JOB_NONE) {
        json_object_set_new(j, "queue_ms", json_real(r->queue_ms));
        json_object_set_new(j, "images", json_integer(r->n_images));
        if (r->n_images) {
            json_object_set_new(j, "decode_ms", json_real(r->decode_ms));
            json_object_set_new(j, "preprocess_ms", json_real(r->preprocess_ms));
            json_object_set_new(j, "inference_ms", json_real(r->inference_ms));
            json_object_set_new(j, "label", json_string(r->label));
        }
    }
    if (r->reply.status == 0)
        json_object_set_new(j, "aborted", json_true());
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(j);
    if (!s)
        return;
    size_t len = strlen(s);
    char *line = realloc(s, len + 2);
    if (!line) {
        free(s);
        return;
    }
    line[len] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len + 1);
    (void)w; /* a full or closed log pipe must not stop serving */
    free(line);
}
