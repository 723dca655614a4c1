/* The bounded queue between the HTTP thread and W inference workers. A request enters only once
 * its body is fully received, so a slow client never holds a worker; a full queue refuses at
 * once (503) rather than letting every waiting request's latency grow. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "server.h"

struct srv_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_request **ring;
    int cap, head, count, stopping;
    int n_workers;
    pthread_t *tids;
    morsel_context **ctx;
};

typedef struct worker_arg {
    srv_queue *q;
    int i;
} worker_arg;

static void *worker_main(void *p)
{
    worker_arg *a = p;
    srv_queue *q = a->q;
    morsel_context *ctx = q->ctx[a->i];
    free(a);
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (q->count == 0 && !q->stopping)
            pthread_cond_wait(&q->cv, &q->mu);
        if (q->count == 0) {
            pthread_mutex_unlock(&q->mu);
            return NULL;
        }
        srv_request *r = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        pthread_mutex_unlock(&q->mu);
        r->queue_ms = now_ms() - r->t_enqueued_ms;
        infer_run(r, ctx);
        http_resume(r); /* r belongs to the HTTP side from here on */
    }
}

int queue_start(srv_queue **out, int capacity, int workers, int threads, morsel_error *err)
{
    srv_queue *q = calloc(1, sizeof *q);
    if (!q)
        return -1;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->cap = capacity;
    q->ring = calloc((size_t)capacity, sizeof *q->ring);
    q->tids = calloc((size_t)workers, sizeof *q->tids);
    q->ctx = calloc((size_t)workers, sizeof *q->ctx);
    if (!q->ring || !q->tids || !q->ctx) {
        snprintf(err->message, sizeof err->message, "out of memory");
        queue_stop(q);
        return -1;
    }
    for (int i = 0; i < workers; i++) {
        if (morsel_context_create(g_srv.model, &q->ctx[i], err) != MORSEL_OK) {
            queue_stop(q);
            return -1;
        }
        morsel_decode_options dec = {.struct_size = sizeof dec,
                                     .max_encoded_bytes = g_srv.cfg.max_body,
                                     .max_pixels = g_srv.cfg.max_pixels,
                                     .max_decode_work = g_srv.cfg.max_decode_work,
                                     .max_decode_memory = g_srv.cfg.max_decode_memory};
        if (morsel_context_set_decode_options(q->ctx[i], &dec, err) != MORSEL_OK) {
            queue_stop(q);
            return -1;
        }
        if (threads > 1 && morsel_context_set_threads(q->ctx[i], threads, err) != MORSEL_OK) {
            queue_stop(q);
            return -1;
        }
    }
    for (int i = 0; i < workers; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (!a) {
            queue_stop(q);
            return -1;
        }
        *a = (worker_arg){q, i};
        if (pthread_create(&q->tids[i], NULL, worker_main, a) != 0) {
            free(a);
            snprintf(err->message, sizeof err->message, "cannot start worker thread %d", i);
            queue_stop(q);
            return -1;
        }
        q->n_workers = i + 1;
        /* Named so that ps, top -H and the tests can tell workers from the HTTP thread. */
        pthread_setname_np(q->tids[i], "morsel-worker");
    }
    *out = q;
    return 0;
}

int queue_push(srv_queue *q, srv_request *req)
{
    pthread_mutex_lock(&q->mu);
    if (q->count == q->cap || q->stopping) {
        pthread_mutex_unlock(&q->mu);
        return -1;
    }
    req->t_enqueued_ms = now_ms();
    q->ring[(q->head + q->count) % q->cap] = req;
    q->count++;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

int queue_full(const srv_queue *q)
{
    pthread_mutex_lock((pthread_mutex_t *)&q->mu);
    int full = q->count == q->cap || q->stopping;
    pthread_mutex_unlock((pthread_mutex_t *)&q->mu);
    return full;
}

int queue_depth(const srv_queue *q)
{
    pthread_mutex_lock((pthread_mutex_t *)&q->mu);
    int n = q->count;
    pthread_mutex_unlock((pthread_mutex_t *)&q->mu);
    return n;
}

morsel_context *queue_context(srv_queue *q, int i)
{
    return q->ctx[i];
}

void queue_stop(srv_queue *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    q->stopping = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    for (int i = 0; i < q->n_workers; i++)
        pthread_join(q->tids[i], NULL);
    if (q->ctx)
        for (int i = 0; i < g_srv.cfg.workers; i++)
            morsel_context_destroy(q->ctx[i]);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q->ring);
    free(q->tids);
    free(q->ctx);
    free(q);
}
