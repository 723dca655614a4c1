/* libmicrohttpd glue: one polling thread accepts, reads headers and bodies (bounded in size and
 * time), then either answers at once or suspends the connection while a worker runs the job;
 * the worker resumes it and the reply is sent from the polling thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <microhttpd.h>

#include "server.h"

static struct MHD_Daemon *daemon_;
static atomic_int in_flight;
/* Bytes of request bodies held (being received or waiting in the queue): the queue bounds their
 * count, this bounds their memory, slow uploads included. */
static atomic_ullong body_bytes;

int http_in_flight(void)
{
    return atomic_load(&in_flight);
}

static enum MHD_Result send_reply(struct MHD_Connection *c, srv_request *r)
{
    srv_reply *rep = &r->reply;
    struct MHD_Response *resp;
    if (rep->body) {
        resp = MHD_create_response_from_buffer(rep->len, rep->body, MHD_RESPMEM_MUST_FREE);
        if (resp)
            rep->body = NULL; /* MHD frees it now */
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!resp)
        return MHD_NO;
    if (rep->ctype)
        MHD_add_response_header(resp, "Content-Type", rep->ctype);
    if (rep->retry_after) {
        char s[16];
        snprintf(s, sizeof s, "%d", rep->retry_after);
        MHD_add_response_header(resp, "Retry-After", s);
    }
    if (rep->allow)
        MHD_add_response_header(resp, "Allow", rep->allow);
    /* While draining, make clients reconnect (to another replica) for their next request. */
    if (g_srv.draining || r->body_too_large || r->body_over_budget)
        MHD_add_response_header(resp, "Connection", "close");
    enum MHD_Result ok = MHD_queue_response(c, rep->status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static int append_body(srv_request *r, const char *data, size_t n)
{
    if (r->body_too_large || r->body_len + n > g_srv.cfg.max_body) {
        r->body_too_large = 1; /* keep reading to the end, then answer 413 */
        return 0;
    }
    if (r->body_over_budget)
        return 0;
    /* A body with a Content-Length took its whole share of the budget when admitted. */
    if (!r->reserved && atomic_fetch_add(&body_bytes, n) + n > g_srv.cfg.max_body_total) {
        atomic_fetch_sub(&body_bytes, n);
        r->body_over_budget = 1; /* keep reading to the end, then answer 503 */
        return 0;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 64 * 1024;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b)
            return -1;
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = 0; /* so JSON bodies can be parsed in place */
    return 0;
}

static srv_request *new_request(struct MHD_Connection *c, const char *url, const char *method)
{
    srv_request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->method = method;
    r->url = url;
    r->conn = c;
    r->t_start_ms = now_ms();
    r->route = routes_classify_url(url);
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    snprintf(r->content_type, sizeof r->content_type, "%s", ct ? ct : "");
    const char *k = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "k");
    snprintf(r->query_k, sizeof r->query_k, "%s", k ? k : "");
    return r;
}

static void reply_busy(srv_request *r)
{
    metrics_rejected();
    if (r->body_over_budget)
        reply_error(&r->reply, 503, "server busy: request bodies held at once would exceed "
                    "%llu bytes", (unsigned long long)g_srv.cfg.max_body_total);
    else
        reply_error(&r->reply, 503, "server busy: %d requests already waiting", g_srv.cfg.queue);
    r->reply.retry_after = 1;
    r->job = JOB_NONE;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
    srv_request *r = *req_cls;
    if (!r) {
        r = new_request(c, url, method);
        if (!r)
            return MHD_NO;
        *req_cls = r;
        atomic_fetch_add(&in_flight, 1);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        unsigned long long announced = cl ? strtoull(cl, NULL, 10) : 0;
        if (announced > g_srv.cfg.max_body) {
            r->body_too_large = 1;
            reply_error(&r->reply, 413, "request body of %s bytes exceeds the limit of %llu",
                        cl, (unsigned long long)g_srv.cfg.max_body);
            return send_reply(c, r);
        }
        /* Reserve the announced size now: counting bytes only as they arrive let a burst of
         * large uploads all start, all cross the budget half-way and all end in 503 (34 x 7.7
         * MiB at once against 64 MiB: not one answered). Reserved, the first that fit are
         * served and the rest refused before they send anything. */
        if (announced) {
            if (atomic_fetch_add(&body_bytes, announced) + announced >
                g_srv.cfg.max_body_total) {
                atomic_fetch_sub(&body_bytes, announced);
                r->body_over_budget = 1; /* refuse before the body is read, and close */
                reply_busy(r);
                return send_reply(c, r);
            }
            r->reserved = (size_t)announced;
        }
        return MHD_YES;
    }
    if (r->suspended) { /* a worker finished and resumed us */
        r->suspended = 0;
        return send_reply(c, r);
    }
    if (*upload_size) {
        /* The idle timeout alone lets a client drip one byte per interval forever. */
        if (now_ms() - r->t_start_ms > 1000.0 * g_srv.cfg.timeout_s)
            return MHD_NO;
        if (append_body(r, upload, *upload_size))
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->body_too_large) {
        reply_error(&r->reply, 413, "request body exceeds the limit of %llu bytes",
                    (unsigned long long)g_srv.cfg.max_body);
        return send_reply(c, r);
    }
    if (r->body_over_budget) {
        reply_busy(r);
        return send_reply(c, r);
    }
    if (!routes_dispatch(r))
        return send_reply(c, r);
    /* Under overload most requests are refused: refusing before the suspend/resume round trip
     * keeps each 503 cheap, so a storm of them takes less CPU from the workers. */
    if (queue_full(g_srv.queue)) {
        reply_busy(r);
        return send_reply(c, r);
    }
    /* Suspend before queueing: a fast worker may resume before we would get to it. */
    r->suspended = 1;
    MHD_suspend_connection(c);
    if (queue_push(g_srv.queue, r) != 0) {
        reply_busy(r);
        MHD_resume_connection(c);
    }
    return MHD_YES;
}

void http_resume(srv_request *req)
{
    MHD_resume_connection(req->conn);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    srv_request *r = *req_cls;
    if (!r)
        return;
    *req_cls = NULL;
    double latency_s = (now_ms() - r->t_start_ms) / 1000.0;
    unsigned status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? r->reply.status : 0;
    if (status)
        metrics_request_done(r->route, status, latency_s);
    if (g_srv.cfg.log_json) {
        char remote[INET6_ADDRSTRLEN] = "";
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, remote,
                      sizeof remote);
        r->reply.status = status;
        accesslog_write(r, remote, r->reply.len);
    }
    atomic_fetch_sub(&body_bytes, r->reserved ? r->reserved : r->body_len);
    free(r->reply.body);
    free(r->body);
    free(r);
    atomic_fetch_sub(&in_flight, 1);
}

int http_start(void)
{
    const srv_config *cfg = &g_srv.cfg;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, cfg->host, &sa.sin_addr) != 1) {
        fprintf(stderr, "morsel-serve: --host '%s' is not an IPv4 address\n", cfg->host);
        return -1;
    }
    /* libmicrohttpd's polling thread inherits this thread's nice value; the workers, started
     * earlier, keep theirs. Under a flood (wrk -c 100 against one worker) answering 503s kept
     * the HTTP thread always runnable, and at equal weight it took half the CPU from the
     * requests being served. At nice 10 its CFS weight is 110 against the workers' 1024. On
     * Linux the nice value belongs to the thread, not the process (setpriority(2), NOTES). */
    if (cfg->http_nice > 0) {
        errno = 0;
        int cur = getpriority(PRIO_PROCESS, 0);
        if ((cur == -1 && errno) || setpriority(PRIO_PROCESS, 0, cur + cfg->http_nice) != 0)
            fprintf(stderr, "morsel-serve: warning: cannot lower the HTTP thread's priority: %s\n",
                    strerror(errno));
    }
    daemon_ = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
        (uint16_t)cfg->port, NULL, NULL, on_request, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_END);
    if (!daemon_) {
        fprintf(stderr, "morsel-serve: cannot listen on %s:%d (in use, or not permitted?)\n",
                cfg->host, cfg->port);
        return -1;
    }
    return 0;
}

int http_bound_port(void)
{
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    return di ? di->port : g_srv.cfg.port;
}

void http_quiesce(void)
{
    MHD_socket fd = MHD_quiesce_daemon(daemon_);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

void http_stop(void)
{
    MHD_stop_daemon(daemon_);
    daemon_ = NULL;
}
