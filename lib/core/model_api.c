/* Opening and describing models: file -> validated model -> planned graph. */
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

/* file image -> validated graph -> kernels chosen and weights packed -> memory plan. */
static morsel_status finish_open(morsel_model *m, const morsel_open_options *opt,
                                 morsel_model **out, morsel_error *err)
{
    const char *isa = opt && opt->struct_size >= offsetof(morsel_open_options, isa) +
                                                     sizeof opt->isa
                          ? opt->isa
                          : NULL;
    morsel_status s;
    if ((s = mf_parse(m, err)) || (s = mf_validate_ops(m, err)) ||
        (s = mf_isa_select(isa, &m->isa, err))) {
        morsel_model_close(m);
        return s;
    }
    mf_fold_pads(m);
    mf_blas_single_thread();
    if ((s = mf_prepare(m, err)) || (s = mf_plan(m, err))) {
        morsel_model_close(m);
        return s;
    }
    *out = m;
    return MORSEL_OK;
}

morsel_status morsel_model_open_memory(const void *data, size_t size, morsel_model **out,
                                       morsel_error *err)
{
    if (!out || (!data && size))
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "model buffer or output pointer is NULL");
    *out = NULL;
    morsel_model *m = calloc(1, sizeof *m);
    if (!m)
        return morsel_fail(err, MORSEL_ERR_NOMEM, "out of memory");
    if ((uintptr_t)data % 64 == 0) {
        m->base = data;
    } else {
        /* Weights are read in place as floats: a misaligned buffer gets an aligned copy. */
        void *copy = NULL;
        if (posix_memalign(&copy, 64, size ? size : 1) != 0) {
            free(m);
            return morsel_fail(err, MORSEL_ERR_NOMEM, "out of memory copying a %zu-byte model",
                               size);
        }
        memcpy(copy, data, size);
        m->base = copy;
        m->owned = copy;
    }
    m->size = size;
    return finish_open(m, NULL, out, err);
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
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return morsel_fail(err, MORSEL_ERR_IO, "cannot open model '%s'", path);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return morsel_fail(err, MORSEL_ERR_IO, "model '%s' is not a regular file", path);
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
            close(fd);
            free(m);
            return morsel_fail(err, MORSEL_ERR_IO, "cannot map model '%s'", path);
        }
        m->base = p;
        m->owned = p;
        m->owned_is_mmap = 1;
    } else {
        m->base = (const uint8_t *)"";
    }
    close(fd);
    morsel_status s = finish_open(m, opt, out, err);
    return morsel_prefix(err, s, path);
}

void morsel_model_close(morsel_model *m)
{
    if (!m)
        return;
    if (m->owned_is_mmap)
        munmap(m->owned, m->size);
    else
        free(m->owned);
    free(m->tensors);
    for (uint32_t i = 0; m->ops && i < m->n_ops; i++)
        free(m->ops[i].packed);
    free(m->ops);
    free(m->labels);
    free(m);
}

morsel_status morsel_model_get_info(const morsel_model *m, morsel_model_info *info)
{
    if (!m || !info)
        return MORSEL_ERR_ARGUMENT;
    const mf_tensor *in = &m->tensors[m->input], *out = &m->tensors[m->output];
    *info = (morsel_model_info){
        .input_h = (int)in->dims[0], .input_w = (int)in->dims[1], .input_c = (int)in->dims[2],
        .n_outputs = (int)out->dims[out->rank - 1], .n_ops = (int)m->n_ops,
        .n_tensors = (int)m->n_tensors, .has_logits = m->logits != MF_NO_TENSOR,
        .has_selftest = m->st_input != NULL, .output_kind = (int)m->output_kind,
        .n_params = m->n_params, .weights_bytes = m->n_params * 4, .arena_bytes = m->arena_bytes,
        .scratch_bytes = m->scratch_floats * sizeof(float), .file_bytes = m->size,
        .version_major = m->version_major, .version_minor = m->version_minor,
        .preprocess = m->preprocess, .name = m->name, .source = m->source,
        .keras_version = m->keras_version, .exporter_version = m->exporter_version,
        .source_format = m->source_format, .license = m->license,
        .isa = m->isa.name};
    return MORSEL_OK;
}

const char *morsel_model_label(const morsel_model *m, int i)
{
    if (!m || i < 0 || (uint32_t)i >= m->n_labels)
        return NULL;
    return m->labels[i];
}

morsel_status morsel_model_get_op(const morsel_model *m, int i, morsel_op_info *info)
{
    if (!m || !info || i < 0 || (uint32_t)i >= m->n_ops)
        return MORSEL_ERR_ARGUMENT;
    const mf_op *op = &m->ops[i];
    const mf_tensor *y = &m->tensors[op->out];
    *info = (morsel_op_info){.type = mf_op_type_name(op->type),
                             .activation = mf_activation_name(&op->act), .name = op->name,
                             .class_name = op->class_name, .out_rank = (int)y->rank,
                             .kernel = op->kernel, .macs = op->macs};
    for (uint32_t d = 0; d < 4; d++)
        info->out_dims[d] = (int)y->dims[d];
    for (uint32_t j = 0; j < op->n_in; j++)
        if (m->tensors[op->in[j]].is_const)
            info->n_params += m->tensors[op->in[j]].count;
    return MORSEL_OK;
}
