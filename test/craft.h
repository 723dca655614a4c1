/* Builds .morsel files from scratch for the tests (layout: weights/FORMAT.md), with valid
 * checksums, so hostile-but-well-formed files reach the checks past the CRCs. Header-only:
 * static functions, each test file includes it once. Constants are all zero. */
#ifndef MORSEL_TEST_CRAFT_H
#define MORSEL_TEST_CRAFT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

typedef struct cbuf {
    uint8_t *p;
    size_t n, cap;
} cbuf;

/* Appends n bytes (zeros when src is NULL); returns where they start. Exits on OOM: a test. */
static inline size_t cb_put(cbuf *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            exit(99);
        b->p = p;
        b->cap = cap;
    }
    size_t at = b->n;
    if (src)
        memcpy(b->p + at, src, n);
    else
        memset(b->p + at, 0, n);
    b->n += n;
    return at;
}

static inline void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static inline void putf(uint8_t *p, float v) { memcpy(p, &v, 4); }

typedef struct craft {
    cbuf strings, tensors, ops, weights, model, selftest;
    uint32_t n_tensors, n_ops;
} craft;

typedef struct craft_op {
    uint32_t type;
    int act;
    float alpha, max;
    uint32_t n_in, in[8], out;
    int32_t iattr[12];
    float fattr[4];
} craft_op;

static inline void craft_init(craft *c)
{
    memset(c, 0, sizeof *c);
    cb_put(&c->strings, "", 1);
}

static inline uint32_t craft_str(craft *c, const char *s)
{
    return (uint32_t)cb_put(&c->strings, s, strlen(s) + 1);
}

/* An activation (is_const 0) or a zero constant (1) of rank 1..4; returns its id. */
static inline uint32_t craft_tensor(craft *c, int is_const, uint32_t rank, uint32_t d0, uint32_t d1,
                             uint32_t d2, uint32_t d3)
{
    uint8_t r[64] = {0};
    uint32_t dims[4] = {d0, d1, d2, d3};
    uint64_t count = 1;
    put32(r, 0); /* the empty name */
    put32(r + 4, (uint32_t)is_const);
    put32(r + 8, 1);
    put32(r + 12, rank);
    for (int d = 0; d < 4; d++) {
        put32(r + 16 + 4 * d, dims[d]);
        count *= dims[d];
    }
    if (is_const) {
        while (c->weights.n % 64)
            cb_put(&c->weights, NULL, 1);
        put64(r + 32, cb_put(&c->weights, NULL, count * 4)); /* relative: fixed in finish */
        put64(r + 40, count * 4);
    }
    cb_put(&c->tensors, r, 64);
    return c->n_tensors++;
}

static inline uint32_t craft_add_op(craft *c, const craft_op *o)
{
    uint8_t r[128] = {0};
    put32(r, o->type);
    put32(r + 12, (uint32_t)o->act);
    putf(r + 16, o->alpha);
    putf(r + 20, o->max);
    put32(r + 24, o->n_in);
    for (int j = 0; j < 8; j++)
        put32(r + 28 + 4 * j, o->in[j]);
    put32(r + 60, o->out);
    for (int j = 0; j < 12; j++)
        put32(r + 64 + 4 * j, (uint32_t)o->iattr[j]);
    for (int j = 0; j < 4; j++)
        putf(r + 112 + 4 * j, o->fattr[j]);
    cb_put(&c->ops, r, 128);
    return c->n_ops++;
}

/* The MODEL record: unit preprocessing, softmax output kind, no labels. */
static inline void craft_model(craft *c, uint32_t input, uint32_t output, uint32_t logits)
{
    uint8_t r[128] = {0};
    put32(r, input);
    put32(r + 4, output);
    put32(r + 8, logits);
    put32(r + 20, MORSEL_RESIZE_BILINEAR);
    for (int k = 0; k < 3; k++)
        putf(r + 32 + 4 * k, 1.0f / 255.0f);
    c->model.n = 0;
    cb_put(&c->model, r, 128);
}

/* A SELFTEST record of zero vectors with this tolerance. */
static inline void craft_selftest(craft *c, uint32_t n_in, uint32_t n_out, float tol)
{
    uint8_t r[64] = {0};
    put32(r, n_in);
    put32(r + 4, n_out);
    putf(r + 8, tol);
    c->selftest.n = 0;
    cb_put(&c->selftest, r, 64);
    cb_put(&c->selftest, NULL, 4 * ((size_t)n_in + n_out));
}

/* The file image in a 64-byte aligned buffer of exactly *n bytes (free()); frees c's parts. */
static inline uint8_t *craft_finish(craft *c, size_t *n)
{
    cbuf *sec[6] = {&c->strings, &c->tensors, &c->ops, &c->model, &c->weights, &c->selftest};
    uint64_t counts[6] = {0, c->n_tensors, c->n_ops, 1, 0, 1};
    uint32_t n_sec = c->selftest.n ? 6 : 5;
    uint64_t off[6], at = 64 + 32 * (uint64_t)n_sec;
    for (uint32_t i = 0; i < n_sec; i++) {
        at = (at + 63) / 64 * 64;
        off[i] = at;
        at += sec[i]->n;
    }
    /* Constants' offsets were relative to WEIGHTS. */
    for (uint32_t t = 0; t < c->n_tensors; t++) {
        uint8_t *r = c->tensors.p + 64 * (size_t)t;
        uint64_t o;
        memcpy(&o, r + 32, 8);
        if (r[4] == 1)
            put64(r + 32, o + off[4]);
    }
    void *mem = NULL;
    if (posix_memalign(&mem, 64, at) != 0)
        exit(99);
    uint8_t *b = mem;
    memset(b, 0, at);
    static const uint8_t magic[8] = {0x89, 'M', 'O', 'R', 'S', 'E', 'L', '\n'};
    memcpy(b, magic, 8);
    b[8] = 1;  /* version 1.2 */
    b[10] = 2;
    put32(b + 12, n_sec);
    put64(b + 16, at);
    for (uint32_t i = 0; i < n_sec; i++) {
        uint8_t *e = b + 64 + 32 * i;
        if (sec[i]->n)
            memcpy(b + off[i], sec[i]->p, sec[i]->n);
        put32(e, i + 1);
        put32(e + 4, mf_crc32(0, b + off[i], sec[i]->n));
        put64(e + 8, off[i]);
        put64(e + 16, sec[i]->n);
        put64(e + 24, counts[i]);
    }
    uint8_t head[64];
    memcpy(head, b, 64);
    memset(head + 24, 0, 4);
    put32(b + 24, mf_crc32(mf_crc32(0, head, 64), b + 64, 32 * (size_t)n_sec));
    for (int i = 0; i < 6; i++)
        free(sec[i]->p);
    *n = (size_t)at;
    return b;
}

/* The smallest useful model: [h, w, 3] input, a standalone softmax over the channels after a
 * global average pool: 3 classes. */
static inline uint8_t *craft_tiny(size_t *n, uint32_t h, uint32_t w)
{
    craft c;
    craft_init(&c);
    uint32_t x = craft_tensor(&c, 0, 3, h, w, 3, 1);
    uint32_t y = craft_tensor(&c, 0, 1, 3, 1, 1, 1);
    craft_add_op(&c, &(craft_op){.type = MF_OP_GLOBAL_AVG_POOL, .act = MK_ACT_SOFTMAX,
                                 .n_in = 1, .in = {x}, .out = y});
    craft_model(&c, x, y, MF_NO_TENSOR);
    return craft_finish(&c, n);
}

#endif
