/* Opening and describing models: file -> validated model -> planned graph. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"

#define OPT_HAS(opt, field) \
    ((opt) && (opt)->struct_size >= offsetof(morsel_open_options, field) + sizeof (opt)->field)

/* file image -> validated graph -> kernels chosen and weights packed -> memory plan. */
static morsel_status finish_open(morsel_model *m, const morsel_open_options *opt,
                                 morsel_model **out, morsel_error *err)
{
    m->refs = 1;
    const char *isa = OPT_HAS(opt, isa) ? opt->isa : NULL;
    m->max_work = OPT_HAS(opt, max_work) && opt->max_work ? opt->max_work
                                                           : MORSEL_DEFAULT_MAX_WORK;
    m->max_memory = OPT_HAS(opt, max_memory_bytes) && opt->max_memory_bytes
                        ? opt->max_memory_bytes
                        : MORSEL_DEFAULT_MAX_MEMORY_BYTES;
    if (m->max_memory > MF_MAX_ARENA_BYTES)
        m->max_memory = MF_MAX_ARENA_BYTES;
    m->small_pages = OPT_HAS(opt, pages) && opt->pages == MORSEL_PAGES_SMALL;
    morsel_status s = mf_parse(m, err);
    double t0 = mf_now_ms();
    if (!s)
        s = mf_validate_ops(m, err);
    double t1 = mf_now_ms();
    if (!s)
        s = mf_isa_select(isa, &m->isa, err);
    if (!s) {
        mf_fold_pads(m);
        mf_blas_single_thread();
        s = mf_prepare(m, err);
        if (!s) {
            mf_fold_reshapes(m);
            mf_fuse_expand_dw(m);
            mf_fuse_residual_add(m);
            mf_fuse_se(m);
            mf_fuse_dw_project(m);
            mf_set_parts(m);
        }
    }
    double t2 = mf_now_ms();
    if (!s)
        s = mf_plan(m, err);
    if (s) {
        morsel_model_close(m);
        return s;
    }
    m->load_ms[MF_LOAD_CHECK] = t1 - t0;
    m->load_ms[MF_LOAD_PREPARE] = t2 - t1;
    m->load_ms[MF_LOAD_PLAN] = mf_now_ms() - t2;
    *out = m;
    return MORSEL_OK;
}

static morsel_status check_options(const morsel_open_options *opt, morsel_error *err)
{
    if (opt && opt->struct_size < offsetof(morsel_open_options, isa) + sizeof opt->isa)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT,
                           "morsel_open_options.struct_size is %zu; set it to sizeof the struct",
                           opt->struct_size);
    if (OPT_HAS(opt, pages) && opt->pages != MORSEL_PAGES_HUGE && opt->pages != MORSEL_PAGES_SMALL)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT,
                           "morsel_open_options.pages is %d; use MORSEL_PAGES_HUGE (0) or "
                           "MORSEL_PAGES_SMALL (1)", opt->pages);
    return MORSEL_OK;
}

morsel_status morsel_model_open_memory_ex(const void *data, size_t size, int mode,
                                          const morsel_open_options *opt, morsel_model **out,
                                          morsel_error *err)
{
    if (!out || (!data && size))
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "model buffer or output pointer is NULL");
    *out = NULL;
    if (mode != MORSEL_MEMORY_COPY && mode != MORSEL_MEMORY_BORROW)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT,
                           "memory mode %d is neither MORSEL_MEMORY_COPY nor MORSEL_MEMORY_BORROW",
                           mode);
    /* Weights are read in place as floats, by SIMD loads that assume 64-byte alignment. */
    if (mode == MORSEL_MEMORY_BORROW && (uintptr_t)data % 64 != 0)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT,
                           "a borrowed model buffer must be 64-byte aligned (this one is at "
                           "%zu mod 64); use MORSEL_MEMORY_COPY", (size_t)((uintptr_t)data % 64));
    morsel_status s = check_options(opt, err);
    if (s)
        return s;
    double t = mf_now_ms();
    morsel_model *m = calloc(1, sizeof *m);
    if (!m)
        return morsel_fail(err, MORSEL_ERR_NOMEM, "out of memory");
    if (mode == MORSEL_MEMORY_BORROW) {
        m->base = data;
    } else {
        void *copy = NULL;
        if (posix_memalign(&copy, 64, size ? size : 1) != 0) {
            free(m);
            return morsel_fail(err, MORSEL_ERR_NOMEM, "out of memory copying a %zu-byte model",
                               size);
        }
        if (size)
            memcpy(copy, data, size);
        m->base = copy;
        m->owned = copy;
    }
    m->size = size;
    m->load_ms[MF_LOAD_READ] = mf_now_ms() - t;
    return finish_open(m, opt, out, err);
}

morsel_status morsel_model_open_memory(const void *data, size_t size, morsel_model **out,
                                       morsel_error *err)
{
    return morsel_model_open_memory_ex(data, size, MORSEL_MEMORY_COPY, NULL, out, err);
}

morsel_status morsel_model_open_file(const char *path, morsel_model **out, morsel_error *err)
{
    return morsel_model_open_file_ex(path, NULL, out, err);
}

morsel_status morsel_model_open_file_ex(const char *path, const morsel_open_options *opt,
                                        morsel_model **out, morsel_error *err)
{
    if (!path || !out)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "model path or output pointer is NULL");
    *out = NULL;
    morsel_status s = check_options(opt, err);
    if (s)
        return s;
    char why[128];
    int fd = -1;
    double t = mf_now_ms();
    if ((s = mf_open_regular(path, "model", &fd, err)))
        return s;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return morsel_fail(err, MORSEL_ERR_IO, "cannot stat model '%s': %s", path,
                           mf_strerror(e, why, sizeof why));
    }
    morsel_model *m = calloc(1, sizeof *m);
    if (!m) {
        close(fd);
        return morsel_fail(err, MORSEL_ERR_NOMEM, "out of memory");
    }
    m->size = (size_t)st.st_size;
    if (m->size > 0) {
        /* mmap: weights are used where they lie; pages are shared by every process using the
         * same model file. */
        void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            free(m);
            return morsel_fail(err, MORSEL_ERR_IO, "cannot map model '%s': %s", path,
                               mf_strerror(e, why, sizeof why));
        }
        m->base = p;
        m->owned = p;
        m->owned_is_mmap = 1;
    } else {
        m->base = (const uint8_t *)"";
    }
    close(fd);
    m->load_ms[MF_LOAD_READ] = mf_now_ms() - t;
    s = finish_open(m, opt, out, err);
    return morsel_prefix(err, s, path);
}

static void model_free(morsel_model *m)
{
    if (m->owned_is_mmap)
        munmap(m->owned, m->size);
    else
        free(m->owned);
    free(m->tensors);
    mf_pack_free(m);
    free(m->ops);
    free(m->labels);
    free(m);
}

void mf_model_retain(morsel_model *m)
{
    __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
}

/* acq_rel: every thread's last use of the model happens before the free. */
void mf_model_release(morsel_model *m)
{
    if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0)
        model_free(m);
}

void morsel_model_close(morsel_model *m)
{
    if (m)
        mf_model_release(m);
}

const char *morsel_version(void) { return MORSEL_VERSION_STRING; }
int morsel_version_number(void) { return MORSEL_VERSION_NUMBER; }

morsel_status morsel_model_get_info(const morsel_model *m, morsel_model_info *info,
                                    morsel_error *err)
{
    if (!m || !info)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "NULL model or info");
    morsel_status s = mf_struct_check(info->struct_size, MF_INFO_V1, "morsel_model_info", err);
    if (s)
        return s;
    const mf_tensor *in = &m->tensors[m->input], *out = &m->tensors[m->output];
    morsel_model_info full = {
        .struct_size = info->struct_size, .input_h = (int)in->dims[0], .input_w = (int)in->dims[1], .input_c = (int)in->dims[2],
        .n_outputs = (int)out->dims[out->rank - 1], .n_ops = (int)m->n_ops,
        .n_tensors = (int)m->n_tensors, .has_logits = m->logits != MF_NO_TENSOR,
        .has_selftest = m->st_input != NULL, .output_kind = (int)m->output_kind,
        .n_params = m->n_params, .weights_bytes = m->n_params * 4, .arena_bytes = m->arena_bytes,
        .scratch_bytes = m->scratch_floats * sizeof(float), .file_bytes = m->size,
        .version_major = m->version_major, .version_minor = m->version_minor,
        .preprocess = m->preprocess, .name = m->name, .source = m->source,
        .keras_version = m->keras_version, .exporter_version = m->exporter_version,
        .source_format = m->source_format, .license = m->license,
        .isa = m->isa.name, .work = m->work, .load_read_ms = m->load_ms[MF_LOAD_READ],
        .load_crc_ms = m->load_ms[MF_LOAD_CRC], .load_parse_ms = m->load_ms[MF_LOAD_PARSE],
        .load_check_ms = m->load_ms[MF_LOAD_CHECK],
        .load_prepare_ms = m->load_ms[MF_LOAD_PREPARE], .load_plan_ms = m->load_ms[MF_LOAD_PLAN]};
    full.preprocess.struct_size = sizeof full.preprocess;
    mf_struct_copy(info, &full, sizeof full);
    return MORSEL_OK;
}

const char *morsel_model_label(const morsel_model *m, int i)
{
    if (!m || i < 0 || (uint32_t)i >= m->n_labels)
        return NULL;
    return m->labels[i];
}

morsel_status morsel_model_get_op(const morsel_model *m, int i, morsel_op_info *info,
                                   morsel_error *err)
{
    if (!m || !info)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "NULL model or op info");
    if (i < 0 || (uint32_t)i >= m->n_ops)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "op index %d is not in 0..%u", i,
                           m->n_ops - 1);
    morsel_status s = mf_struct_check(info->struct_size, MF_OP_INFO_V1, "morsel_op_info", err);
    if (s)
        return s;
    const mf_op *op = &m->ops[i];
    const mf_tensor *y = &m->tensors[op->out];
    morsel_op_info full = {.struct_size = info->struct_size, .type = mf_op_type_name(op->type),
                             .activation = mf_activation_name(&op->act), .name = op->name,
                             .class_name = op->class_name, .out_rank = (int)y->rank,
                             .kernel = op->kernel, .macs = op->macs, .work = op->work,
                             .prepare_ms = op->prepare_ms};
    for (uint32_t d = 0; d < 4; d++)
        full.out_dims[d] = (int)y->dims[d];
    for (uint32_t j = 0; j < op->n_in; j++)
        if (m->tensors[op->in[j]].is_const)
            full.n_params += m->tensors[op->in[j]].count;
    mf_struct_copy(info, &full, sizeof full);
    return MORSEL_OK;
}
