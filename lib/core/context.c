/* Contexts and inference: a context owns the activation arena planned at load, the kernel
 * scratch and the reusable image buffers; the model stays read-only and shareable. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "image.h"
#include "model.h"
#include "pool.h"

struct morsel_context {
    const morsel_model *model;
    uint8_t *arena;
    float *scratch;           /* one block of model->scratch_floats per thread */
    atomic_uint *claims;      /* inside the scratch allocation: mf_execute's piece counters */
    int threads;              /* threads per inference: 1, or the pool's size */
    morsel_pool *pool;        /* NULL when threads == 1 */
    int owns_pool;
    double *op_ms;            /* per-op times of the last run, when profiling */
    mi_buffer pixels;         /* decoded image, grown only for a larger image */
    mi_buffer encoded;        /* file bytes for classify_file, likewise */
    float *pp_scratch;        /* resize intermediates, grown likewise */
    size_t pp_scratch_floats;
    morsel_decode_options decode; /* limits resolved: never 0 */
    morsel_preprocess preprocess;
};

static float *tensor_ptr(morsel_context *ctx, uint32_t t)
{
    return (float *)(void *)(ctx->arena + ctx->model->tensors[t].arena_offset);
}

/* Index of the first NaN/Inf in x[0..n), or n. */
static size_t first_non_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return i;
    return n;
}

/* Copies n floats into the arena; with `check`, returns the index of the first one that is not
 * finite (or n). One pass in blocks the compiler vectorises: checked apart from the copy, the
 * scan alone took 0.1 ms of MobileNetV2's 7 (a NaN/Inf has an all-ones exponent). */
static size_t copy_input(float *dst, const float *src, size_t n, int check)
{
    if (!check) {
        memcpy(dst, src, n * sizeof *src);
        return n;
    }
    enum { BLOCK = 256 };
    for (size_t i = 0; i < n; i += BLOCK) {
        size_t m = n - i < BLOCK ? n - i : BLOCK;
        uint32_t special = 0;
        for (size_t k = 0; k < m; k++) {
            uint32_t u;
            memcpy(&u, src + i + k, sizeof u);
            special |= (u & 0x7f800000u) == 0x7f800000u;
            dst[i + k] = src[i + k];
        }
        if (special)
            return i + first_non_finite(src + i, m);
    }
    return n;
}

typedef struct infer_job {
    morsel_context *c;
    mf_barrier *barrier;
    const float *src; /* the image to copy in first, or NULL */
    size_t n;         /* its floats */
    int check;        /* refuse NaN/Inf in it */
    _Atomic size_t bad; /* the first non-finite index any thread found, or n */
} infer_job;

static void infer_thread(void *arg, int ith, int nth)
{
    infer_job *j = arg;
    morsel_context *c = j->c;
    /* Each thread copies (and checks) its share of the image, so the workers start with the
     * call instead of after a serial copy, and each first reads rows it copied itself. */
    if (j->src) {
        size_t b = (j->n * (size_t)ith / (size_t)nth) & ~(size_t)15;
        size_t e = ith == nth - 1 ? j->n : (j->n * (size_t)(ith + 1) / (size_t)nth) & ~(size_t)15;
        size_t bad = b + copy_input(tensor_ptr(c, c->model->input) + b, j->src + b, e - b,
                                    j->check);
        size_t seen = atomic_load(&j->bad);
        while (bad < e && bad < seen && !atomic_compare_exchange_weak(&j->bad, &seen, bad))
            ;
        mf_barrier_wait(j->barrier);
        if (atomic_load(&j->bad) < j->n)
            return;
    }
    mf_execute(c->model, c->arena, c->scratch, ith, nth, j->barrier, c->claims, c->op_ms);
}

/* One forward pass. src: the image to copy into the input tensor first (NULL: it is there
 * already); with `check`, nothing runs when it holds a NaN/Inf. Returns the index of the first
 * one, or n when the pass ran. */
static size_t infer(morsel_context *c, const float *src, size_t n, int check)
{
    if (c->threads == 1) {
        size_t bad = src ? copy_input(tensor_ptr(c, c->model->input), src, n, check) : n;
        if (bad == n)
            mf_execute(c->model, c->arena, c->scratch, 0, 1, NULL, NULL, c->op_ms);
        return bad;
    }
    memset((void *)c->claims, 0,
           (size_t)(c->threads + 1) * mf_claims_stride(c->model) * sizeof *c->claims);
    infer_job j = {c, mf_pool_barrier(c->pool), src, n, check, n};
    /* With threads, op 0's time also counts the input copy and the workers' start. */
    double start = c->op_ms ? mf_now_ms() : 0.0;
    mf_pool_run(c->pool, infer_thread, &j);
    size_t bad = atomic_load(&j.bad);
    if (c->op_ms && bad == n)
        mf_op_times_from_ends(c->model, start, c->op_ms);
    return bad;
}

/* Scratch for n threads; on failure the context keeps what it had. */
static morsel_status size_scratch(morsel_context *c, int n, morsel_error *err)
{
    const morsel_model *m = c->model;
    size_t floats = m->scratch_floats * (size_t)n;
    size_t claims = n > 1 ? (size_t)(n + 1) * mf_claims_stride(m) : 0;
    floats = (floats + 15) & ~(size_t)15; /* the counters start on a cache line */
    if (m->arena_bytes + floats * sizeof(float) > m->max_memory)
        return morsel_fail(err, MORSEL_ERR_LIMIT,
                           "%d threads need %zu MB of activations and scratch; the model was "
                           "opened with a %llu MB limit (morsel_open_options.max_memory_bytes)",
                           n, (m->arena_bytes + floats * sizeof(float)) >> 20,
                           (unsigned long long)(m->max_memory >> 20));
    void *p = NULL;
    size_t bytes = floats * sizeof(float) + claims * sizeof(atomic_uint);
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0)
        return morsel_fail(err, MORSEL_ERR_NOMEM, "out of memory for %d threads' scratch", n);
    free(c->scratch);
    c->scratch = p;
    c->claims = claims ? (atomic_uint *)(void *)(c->scratch + floats) : NULL;
    return MORSEL_OK;
}

static void drop_pool(morsel_context *c)
{
    if (c->owns_pool)
        morsel_pool_destroy(c->pool);
    c->pool = NULL;
    c->owns_pool = 0;
    c->threads = 1;
}

morsel_status morsel_context_set_pool(morsel_context *c, morsel_pool *pool, morsel_error *err)
{
    if (!c)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "NULL context");
    int n = pool ? mf_pool_size(pool) : 1;
    morsel_status s = size_scratch(c, n, err);
    if (s)
        return s;
    drop_pool(c);
    c->pool = n > 1 ? pool : NULL;
    c->threads = n;
    return MORSEL_OK;
}

morsel_status morsel_context_set_threads(morsel_context *c, int n_threads, morsel_error *err)
{
    if (!c)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "NULL context");
    if (n_threads < 1 || n_threads > 256)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "thread count %d is not in 1..256",
                           n_threads);
    if (n_threads == 1)
        return morsel_context_set_pool(c, NULL, err);
    morsel_pool *p = NULL;
    morsel_status s = morsel_pool_create(n_threads, &p, err);
    if (!s)
        s = morsel_context_set_pool(c, p, err);
    if (s) {
        morsel_pool_destroy(p);
        return s;
    }
    c->owns_pool = 1;
    return MORSEL_OK;
}

morsel_status morsel_context_set_profiling(morsel_context *c, int on, morsel_error *err)
{
    if (!c)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "NULL context");
    if (!on) {
        free(c->op_ms);
        c->op_ms = NULL;
        return MORSEL_OK;
    }
    if (!c->op_ms && !(c->op_ms = calloc(c->model->n_ops, sizeof *c->op_ms)))
        return morsel_fail(err, MORSEL_ERR_NOMEM, "out of memory");
    return MORSEL_OK;
}

morsel_status morsel_context_get_op_times(const morsel_context *c, double *ms, int n,
                                          morsel_error *err)
{
    if (!c || !ms || n < 0 || (uint32_t)n > c->model->n_ops)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "NULL argument or n out of range");
    if (!c->op_ms)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "profiling is off for this context");
    memcpy(ms, c->op_ms, (size_t)n * sizeof *ms);
    return MORSEL_OK;
}

morsel_status morsel_context_create(const morsel_model *model, morsel_context **out,
                                    morsel_error *err)
{
    if (!model || !out)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "model or output pointer is NULL");
    *out = NULL;
    morsel_context *c = calloc(1, sizeof *c);
    if (!c)
        return morsel_fail(err, MORSEL_ERR_NOMEM, "out of memory");
    /* The context's reference: the model outlives morsel_model_close while we use it. */
    mf_model_retain((morsel_model *)model);
    c->model = model;
    c->threads = 1;
    void *arena = NULL, *scratch = NULL;
    int bad = posix_memalign(&arena, 64, model->arena_bytes ? model->arena_bytes : 64) ||
              posix_memalign(&scratch, 64, model->scratch_floats ? model->scratch_floats * 4 : 64);
    c->arena = arena;
    c->scratch = scratch;
    if (bad) {
        morsel_context_destroy(c);
        return morsel_fail(err, MORSEL_ERR_NOMEM, "out of memory for a %zu-byte arena",
                           model->arena_bytes);
    }
    morsel_context_set_decode_options(c, NULL, NULL);
    c->preprocess = model->preprocess;
    *out = c;
    return MORSEL_OK;
}

void morsel_context_destroy(morsel_context *c)
{
    if (!c)
        return;
    drop_pool(c);
    free(c->op_ms);
    free(c->arena);
    free(c->scratch);
    free(c->pp_scratch);
    mi_buffer_free(&c->pixels);
    mi_buffer_free(&c->encoded);
    if (c->model)
        mf_model_release((morsel_model *)c->model);
    free(c);
}

morsel_status morsel_context_set_decode_options(morsel_context *c, const morsel_decode_options *opt,
                                                morsel_error *err)
{
    if (!c)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "NULL context");
    morsel_decode_options d = {.struct_size = sizeof d};
    if (opt) {
        morsel_status s =
            mf_struct_check(opt->struct_size, MF_DECODE_V1, "morsel_decode_options", err);
        if (s)
            return s;
        if ((unsigned)opt->exif_orientation > 1 || (unsigned)opt->jpeg_fast_scale > 1)
            return morsel_fail(err, MORSEL_ERR_ARGUMENT,
                               "exif_orientation (%d) and jpeg_fast_scale (%d) must be 0 or 1",
                               opt->exif_orientation, opt->jpeg_fast_scale);
        d.exif_orientation = opt->exif_orientation;
        d.jpeg_fast_scale = opt->jpeg_fast_scale;
    }
    mi_limits lim; /* every limit resolved here: never 0 in c->decode */
    mi_resolve_limits(opt, &lim, &d.max_encoded_bytes);
    d.max_pixels = lim.max_pixels;
    d.max_decode_work = lim.max_work;
    d.max_decode_memory = lim.max_memory;
    c->decode = d;
    return MORSEL_OK;
}

morsel_status morsel_context_set_preprocess(morsel_context *c, const morsel_preprocess *pp,
                                            morsel_error *err)
{
    if (!c)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "NULL context");
    if (!pp) {
        c->preprocess = c->model->preprocess;
        return MORSEL_OK;
    }
    morsel_status s = mi_check_preprocess(pp, err);
    if (s)
        return s;
    c->preprocess = *pp;
    c->preprocess.struct_size = sizeof c->preprocess;
    return MORSEL_OK;
}

morsel_status morsel_run(morsel_context *c, const float *input, size_t n_in, morsel_output which,
                         float *output, size_t n_out, morsel_error *err)
{
    if (!c || !input || !output)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "NULL context, input or output");
    const morsel_model *m = c->model;
    uint32_t ot = which == MORSEL_OUTPUT_LOGITS ? m->logits : m->output;
    if (which != MORSEL_OUTPUT_PROBS && which != MORSEL_OUTPUT_LOGITS)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "unknown output selector %d", (int)which);
    if (ot == MF_NO_TENSOR)
        return morsel_fail(err, MORSEL_ERR_UNSUPPORTED, "this model has no pre-softmax logits");
    size_t in1 = m->tensors[m->input].count, out1 = m->tensors[ot].count;
    size_t batch = n_in / in1;
    if (batch < 1 || n_in != batch * in1 || n_out != batch * out1)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT,
                           "input has %zu values and output %zu; the model takes N x %zu and "
                           "gives N x %zu", n_in, n_out, in1, out1);
    /* A batch is checked whole before its first image runs; one image, while it is copied in. */
    size_t bad = batch > 1 ? first_non_finite(input, n_in) : n_in;
    /* A batch runs image by image: the arena is planned for one, and at batch 1 the
     * kernels are already split over the context's threads. */
    for (size_t i = 0; i < batch && bad == n_in; i++) {
        size_t b = infer(c, input + i * in1, in1, batch == 1);
        if (b < in1)
            bad = b;
        else
            memcpy(output + i * out1, tensor_ptr(c, ot), out1 * sizeof *output);
    }
    if (bad < n_in)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT,
                           "input value %zu is %s; inputs must be finite", bad,
                           isnan(input[bad]) ? "NaN" : "infinite");
    return MORSEL_OK;
}

morsel_status morsel_selftest(morsel_context *c, float *max_abs_diff, morsel_error *err)
{
    if (!c)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "NULL context");
    const morsel_model *m = c->model;
    if (!m->st_input)
        return morsel_fail(err, MORSEL_ERR_UNSUPPORTED, "the model file has no self-test vector");
    memcpy(tensor_ptr(c, m->input), m->st_input, m->tensors[m->input].count * sizeof(float));
    infer(c, NULL, 0, 0);
    const float *y = tensor_ptr(c, m->output);
    float worst = 0.0f;
    for (size_t i = 0; i < m->tensors[m->output].count; i++) {
        float d = fabsf(y[i] - m->st_output[i]);
        if (!(d <= worst)) /* also catches NaN */
            worst = isnan(d) ? INFINITY : d;
    }
    if (max_abs_diff)
        *max_abs_diff = worst;
    if (!(worst <= m->st_tolerance))
        return morsel_fail(err, MORSEL_ERR_SELFTEST,
                           "self-test: max |difference| from Keras %.3g exceeds tolerance %.3g",
                           (double)worst, (double)m->st_tolerance);
    return MORSEL_OK;
}

/* The k largest outputs, best first; ties keep the lower index first (as numpy argsort of
 * the negated values with a stable sort would). */
static void top_k(const morsel_model *m, const float *y, size_t n, int k, morsel_class *top,
                  int *n_top)
{
    int kk = k < (int)n ? k : (int)n;
    for (int i = 0; i < kk; i++)
        top[i] = (morsel_class){-1, "", -INFINITY};
    for (size_t j = 0; j < n; j++) {
        float v = isnan(y[j]) ? -INFINITY : y[j];
        int pos = kk;
        while (pos > 0 && (top[pos - 1].index < 0 || v > top[pos - 1].probability))
            pos--;
        if (pos >= kk)
            continue;
        memmove(&top[pos + 1], &top[pos], sizeof *top * (size_t)(kk - pos - 1));
        const char *label = morsel_model_label(m, (int)j);
        top[pos] = (morsel_class){(int)j, label ? label : "", y[j]};
    }
    *n_top = kk;
}

morsel_status morsel_classify_rgb(morsel_context *c, const uint8_t *rgb, int width, int height,
                                  size_t stride, int k, morsel_class *top, int *n_top,
                                  morsel_timings *timings, morsel_error *err)
{
    if (!c || !rgb || !top || !n_top || k < 1)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "NULL argument or k < 1");
    if (width < 1 || height < 1 || stride < (size_t)width * 3)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "bad image geometry %dx%d stride %zu",
                           width, height, stride);
    if (timings) {
        morsel_status ts = mf_struct_check(timings->struct_size, MF_TIMINGS_V1, "morsel_timings", err);
        if (ts)
            return ts;
    }
    if ((uint64_t)width * (uint64_t)height > c->decode.max_pixels)
        return morsel_fail(err, MORSEL_ERR_LIMIT, "image %dx%d exceeds the %llu-pixel limit",
                           width, height, (unsigned long long)c->decode.max_pixels);
    const morsel_model *m = c->model;
    const mf_tensor *in = &m->tensors[m->input];
    double t0 = mf_now_ms();
    size_t need = mi_preprocess_scratch(width, height, (int)in->dims[1], (int)in->dims[0]);
    if (need > c->pp_scratch_floats) {
        float *p = realloc(c->pp_scratch, need * sizeof *p);
        if (!p)
            return morsel_fail(err, MORSEL_ERR_NOMEM, "out of memory for resize scratch");
        c->pp_scratch = p;
        c->pp_scratch_floats = need;
    }
    morsel_status s = mi_preprocess(rgb, width, height, stride, &c->preprocess, (int)in->dims[1],
                                    (int)in->dims[0], tensor_ptr(c, m->input), c->pp_scratch, err);
    if (s)
        return s;
    double t1 = mf_now_ms();
    infer(c, NULL, 0, 0);
    double t2 = mf_now_ms();
    top_k(m, tensor_ptr(c, m->output), m->tensors[m->output].count, k, top, n_top);
    if (timings) {
        morsel_timings full = {timings->struct_size, 0, t1 - t0, t2 - t1, mf_now_ms() - t0};
        mf_struct_copy(timings, &full, sizeof full);
    }
    return MORSEL_OK;
}

morsel_status morsel_classify_encoded(morsel_context *c, const void *bytes, size_t size, int k,
                                      morsel_class *top, int *n_top, morsel_timings *timings,
                                      morsel_error *err)
{
    if (!c || !bytes)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "NULL context or image bytes");
    if (timings) {
        morsel_status ts = mf_struct_check(timings->struct_size, MF_TIMINGS_V1, "morsel_timings", err);
        if (ts)
            return ts;
    }
    double t0 = mf_now_ms();
    int w = 0, h = 0;
    const mf_tensor *in = &c->model->tensors[c->model->input];
    morsel_status s = mi_decode(bytes, size, &c->decode, (int)in->dims[1], (int)in->dims[0],
                                &c->pixels, &w, &h, err);
    if (s)
        return s;
    double t1 = mf_now_ms();
    s = morsel_classify_rgb(c, c->pixels.data, w, h, (size_t)w * 3, k, top, n_top, timings, err);
    if (!s && timings) {
        timings->decode_ms = t1 - t0;
        timings->total_ms += t1 - t0;
    }
    return s;
}

morsel_status morsel_classify_file(morsel_context *c, const char *path, int k, morsel_class *top,
                                   int *n_top, morsel_timings *timings, morsel_error *err)
{
    if (!c || !path)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "NULL context or path");
    size_t got = 0;
    morsel_status s = mf_read_file(path, "image", c->decode.max_encoded_bytes, &c->encoded.data,
                                   &c->encoded.capacity, &got, err);
    if (s)
        return s;
    s = morsel_classify_encoded(c, c->encoded.data, got, k, top, n_top, timings, err);
    return morsel_prefix(err, s, path);
}
