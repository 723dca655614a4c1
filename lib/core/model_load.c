/* Parsing a .morsel file image (weights/FORMAT.md): header, section table, strings, tensors,
 * ops, model record, self-test. Every offset, size and index is checked here, once. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "Morsel uses little-endian weights in place; big-endian hosts are not supported yet"
#endif

enum { SEC_STRINGS = 1, SEC_TENSORS, SEC_OPS, SEC_MODEL, SEC_WEIGHTS, SEC_SELFTEST, SEC_MAX_ };

#define HEADER_SIZE 64
#define SECTION_ENTRY 32
#define TENSOR_REC 64
#define OP_REC 128
#define MODEL_REC 128
#define SELFTEST_REC 64
#define MAX_SECTIONS 64
#define MAX_TENSORS 100000u
#define MAX_OPS 100000u

static const uint8_t MAGIC[8] = {0x89, 'M', 'O', 'R', 'S', 'E', 'L', '\n'};

typedef struct section {
    int present;
    uint64_t offset, size, count;
    const uint8_t *p;
} section;

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static float rdf(const uint8_t *p) { float v; memcpy(&v, p, 4); return v; }

static morsel_status bad(morsel_error *err, const char *what)
{
    return morsel_fail(err, MORSEL_ERR_FORMAT, "corrupt model file: %s", what);
}

/* A string reference is valid when a NUL follows it inside STRINGS. */
static const char *str_at(const section *s, uint32_t off)
{
    if (off >= s->size)
        return NULL;
    const uint8_t *nul = memchr(s->p + off, 0, (size_t)(s->size - off));
    return nul ? (const char *)(s->p + off) : NULL;
}

static morsel_status read_sections(morsel_model *m, section *sec, morsel_error *err)
{
    const uint8_t *b = m->base;
    if (m->size < HEADER_SIZE)
        return bad(err, "shorter than the 64-byte header");
    if (memcmp(b, MAGIC, 8) != 0)
        return morsel_fail(err, MORSEL_ERR_FORMAT, "not a .morsel file (bad magic)");
    m->version_major = rd16(b + 8);
    m->version_minor = rd16(b + 10);
    if (m->version_major != 1)
        return morsel_fail(err, MORSEL_ERR_VERSION,
                           "model file version %u.%u; this build reads 1.x",
                           m->version_major, m->version_minor);
    uint32_t n_sec = rd32(b + 12);
    uint64_t file_size = rd64(b + 16);
    if (file_size != m->size)
        return morsel_fail(err, MORSEL_ERR_FORMAT,
                           "corrupt model file: header says %llu bytes, file has %llu (truncated?)",
                           (unsigned long long)file_size, (unsigned long long)m->size);
    if (n_sec < 1 || n_sec > MAX_SECTIONS)
        return bad(err, "section count out of range");
    size_t table_end = HEADER_SIZE + (size_t)n_sec * SECTION_ENTRY;
    if (table_end > m->size)
        return bad(err, "section table runs past the end of the file");

    /* Header CRC: the header with its crc field zeroed, then the section table. */
    uint8_t head[HEADER_SIZE];
    memcpy(head, b, HEADER_SIZE);
    memset(head + 24, 0, 4);
    uint32_t want = mf_crc32(mf_crc32(0, head, HEADER_SIZE), b + HEADER_SIZE,
                             table_end - HEADER_SIZE);
    if (want != rd32(b + 24))
        return bad(err, "header checksum mismatch");

    uint64_t span_off[MAX_SECTIONS], span_end[MAX_SECTIONS];
    for (uint32_t i = 0; i < n_sec; i++) {
        const uint8_t *e = b + HEADER_SIZE + (size_t)i * SECTION_ENTRY;
        uint32_t kind = rd32(e);
        uint64_t off = rd64(e + 8), size = rd64(e + 16);
        if (off % 64 || off < table_end || off > m->size || size > m->size - off)
            return bad(err, "a section lies outside the file or is misaligned");
        double t = mf_now_ms();
        uint32_t crc = mf_crc32(0, b + off, (size_t)size);
        m->load_ms[MF_LOAD_CRC] += mf_now_ms() - t;
        if (crc != rd32(e + 4))
            return morsel_fail(err, MORSEL_ERR_FORMAT,
                               "corrupt model file: checksum mismatch in section %u", kind);
        /* Insertion by offset, for the overlap and padding checks below. */
        uint32_t j = i;
        for (; j > 0 && span_off[j - 1] > off; j--) {
            span_off[j] = span_off[j - 1];
            span_end[j] = span_end[j - 1];
        }
        span_off[j] = off;
        span_end[j] = off + size;
        if (kind == 0 || kind >= SEC_MAX_)
            continue; /* a later minor version's section: ignored */
        if (sec[kind].present)
            return bad(err, "a section kind appears twice");
        sec[kind] = (section){1, off, size, rd64(e + 24), b + off};
    }
    /* Bytes outside every section are covered by no checksum, so the format pins them to
     * zero: together with the CRCs, any flipped bit anywhere in the file is caught. */
    uint64_t cursor = table_end;
    for (uint32_t i = 0; i <= n_sec; i++) {
        uint64_t next = i < n_sec ? span_off[i] : m->size;
        if (next < cursor)
            return bad(err, "sections overlap");
        for (uint64_t k = cursor; k < next; k++)
            if (b[k] != 0)
                return bad(err, "non-zero padding between sections");
        if (i < n_sec)
            cursor = span_end[i];
    }
    static const char *const names[] = {"", "STRINGS", "TENSORS", "OPS", "MODEL", "WEIGHTS"};
    for (int k = SEC_STRINGS; k <= SEC_WEIGHTS; k++)
        if (!sec[k].present)
            return morsel_fail(err, MORSEL_ERR_FORMAT, "corrupt model file: no %s section",
                               names[k]);
    if (sec[SEC_STRINGS].size == 0 || sec[SEC_STRINGS].p[0] != 0)
        return bad(err, "STRINGS must start with an empty string");
    return MORSEL_OK;
}

static morsel_status read_tensors(morsel_model *m, const section *sec, morsel_error *err)
{
    const section *ts = &sec[SEC_TENSORS], *ws = &sec[SEC_WEIGHTS], *ss = &sec[SEC_STRINGS];
    if (ts->count > MAX_TENSORS)
        return morsel_fail(err, MORSEL_ERR_LIMIT, "too many tensors: %llu (limit %u)",
                           (unsigned long long)ts->count, MAX_TENSORS);
    if (ts->count == 0 || ts->size != ts->count * TENSOR_REC)
        return bad(err, "TENSORS size does not match its count");
    m->n_tensors = (uint32_t)ts->count;
    m->tensors = calloc(m->n_tensors, sizeof *m->tensors);
    if (!m->tensors)
        return morsel_fail(err, MORSEL_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        const uint8_t *r = ts->p + (size_t)i * TENSOR_REC;
        mf_tensor *t = &m->tensors[i];
        t->name = str_at(ss, rd32(r));
        uint32_t kind = rd32(r + 4), dtype = rd32(r + 8);
        t->rank = rd32(r + 12);
        if (!t->name)
            return bad(err, "tensor name outside STRINGS");
        if (kind > 1 || dtype != 1)
            return morsel_fail(err, MORSEL_ERR_FORMAT,
                               "corrupt model file: tensor '%s' has kind %u dtype %u", t->name,
                               kind, dtype);
        if (t->rank < 1 || t->rank > 4)
            return morsel_fail(err, MORSEL_ERR_FORMAT, "corrupt model file: tensor '%s' rank %u",
                               t->name, t->rank);
        uint64_t count = 1;
        for (int d = 0; d < 4; d++) {
            t->dims[d] = rd32(r + 16 + 4 * d);
            if (t->dims[d] < 1 || (d >= (int)t->rank && t->dims[d] != 1) || t->dims[d] > (1u << 24))
                return morsel_fail(err, MORSEL_ERR_FORMAT,
                                   "corrupt model file: tensor '%s' has a bad dimension", t->name);
            count *= t->dims[d];
            if (count > (1ull << 31))
                return morsel_fail(err, MORSEL_ERR_FORMAT,
                                   "corrupt model file: tensor '%s' is too large", t->name);
        }
        t->count = (size_t)count;
        uint64_t off = rd64(r + 32), size = rd64(r + 40);
        t->is_const = kind == 1;
        if (t->is_const) {
            if (size != count * 4 || off % 64 || off < ws->offset || off > ws->offset + ws->size ||
                size > ws->offset + ws->size - off)
                return morsel_fail(err, MORSEL_ERR_FORMAT,
                                   "corrupt model file: constant '%s' lies outside WEIGHTS",
                                   t->name);
            t->data = (const float *)(const void *)(m->base + off);
            m->n_params += count;
        } else if (off != 0 || size != 0) {
            return morsel_fail(err, MORSEL_ERR_FORMAT,
                               "corrupt model file: activation '%s' has data", t->name);
        }
        t->first_use = t->last_use = -1;
    }
    return MORSEL_OK;
}

static morsel_status read_ops(morsel_model *m, const section *sec, morsel_error *err)
{
    const section *os = &sec[SEC_OPS], *ss = &sec[SEC_STRINGS];
    if (os->count > MAX_OPS)
        return morsel_fail(err, MORSEL_ERR_LIMIT, "too many ops: %llu (limit %u)",
                           (unsigned long long)os->count, MAX_OPS);
    if (os->count == 0 || os->size != os->count * OP_REC)
        return bad(err, "OPS size does not match its count");
    m->n_ops = (uint32_t)os->count;
    m->ops = calloc(m->n_ops, sizeof *m->ops);
    if (!m->ops)
        return morsel_fail(err, MORSEL_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < m->n_ops; i++) {
        const uint8_t *r = os->p + (size_t)i * OP_REC;
        mf_op *op = &m->ops[i];
        op->type = rd32(r);
        op->name = str_at(ss, rd32(r + 4));
        op->class_name = str_at(ss, rd32(r + 8));
        if (!op->name || !op->class_name)
            return bad(err, "op name outside STRINGS");
        op->act.code = (int)rd32(r + 12);
        op->act.alpha = rdf(r + 16);
        op->act.max = rdf(r + 20);
        op->n_in = rd32(r + 24);
        if (op->n_in < 1 || op->n_in > MF_MAX_INPUTS)
            return morsel_fail(err, MORSEL_ERR_FORMAT,
                               "corrupt model file: op '%s' has %u inputs", op->name, op->n_in);
        for (int j = 0; j < MF_MAX_INPUTS; j++)
            op->in[j] = rd32(r + 28 + 4 * j);
        op->out = rd32(r + 60);
        for (int j = 0; j < 12; j++)
            op->iattr[j] = (int32_t)rd32(r + 64 + 4 * j);
        for (int j = 0; j < 4; j++)
            op->fattr[j] = rdf(r + 112 + 4 * j);
        if (op->type == 0 || op->type >= MF_OP_COUNT_)
            return morsel_fail(err, MORSEL_ERR_UNSUPPORTED,
                               "op '%s' (%s) has type %u, unknown to this build", op->name,
                               op->class_name, op->type);
        if (isnan(op->act.alpha) || isnan(op->act.max))
            return morsel_fail(err, MORSEL_ERR_FORMAT,
                               "corrupt model file: op '%s' (%s) has a NaN activation %s",
                               op->name, op->class_name, isnan(op->act.alpha) ? "alpha" : "max");
        if (op->act.code < MK_ACT_LINEAR || op->act.code > MK_ACT_HARD_SIGMOID_K2)
            return morsel_fail(err, MORSEL_ERR_UNSUPPORTED,
                               "op '%s' (%s) has activation code %d, unknown to this build",
                               op->name, op->class_name, op->act.code);
        for (uint32_t j = 0; j < 4; j++)
            if (!isfinite(op->fattr[j]))
                return morsel_fail(err, MORSEL_ERR_FORMAT,
                                   "corrupt model file: op '%s' has a non-finite attribute", op->name);
    }
    return MORSEL_OK;
}

static morsel_status read_model_record(morsel_model *m, const section *sec, morsel_error *err)
{
    const section *ms = &sec[SEC_MODEL], *ss = &sec[SEC_STRINGS];
    if (ms->count != 1 || ms->size < MODEL_REC)
        return bad(err, "MODEL record missing");
    const uint8_t *r = ms->p;
    m->input = rd32(r);
    m->output = rd32(r + 4);
    m->logits = rd32(r + 8);
    m->n_labels = rd32(r + 12);
    m->output_kind = rd32(r + 16);
    if (ms->size != MODEL_REC + 4ull * m->n_labels)
        return bad(err, "MODEL size does not match its label count");
    uint32_t filter = rd32(r + 20), crop = rd32(r + 24), order = rd32(r + 28);
    if (filter > MORSEL_RESIZE_BOX || crop > 1 || order > 1 || m->output_kind > 2)
        return bad(err, "preprocessing spec out of range");
    m->preprocess.filter = (morsel_resize_filter)filter;
    m->preprocess.center_crop = (int)crop;
    m->preprocess.bgr = (int)order;
    for (int c = 0; c < 3; c++) {
        m->preprocess.scale[c] = rdf(r + 32 + 4 * c);
        m->preprocess.offset[c] = rdf(r + 44 + 4 * c);
        if (!isfinite(m->preprocess.scale[c]) || !isfinite(m->preprocess.offset[c]))
            return bad(err, "non-finite preprocessing scale");
    }
    const char **dst[] = {&m->name, &m->source, &m->keras_version, &m->exporter_version,
                          &m->source_format, &m->license};
    for (int j = 0; j < 6; j++)
        if (!(*dst[j] = str_at(ss, rd32(r + 56 + 4 * j))))
            return bad(err, "model string outside STRINGS");
    if (m->n_labels) {
        m->labels = calloc(m->n_labels, sizeof *m->labels);
        if (!m->labels)
            return morsel_fail(err, MORSEL_ERR_NOMEM, "out of memory");
        for (uint32_t i = 0; i < m->n_labels; i++)
            if (!(m->labels[i] = str_at(ss, rd32(r + MODEL_REC + 4 * i))))
                return bad(err, "label outside STRINGS");
    }
    return MORSEL_OK;
}

/* The self-test is optional but, when present, must agree with the graph's tensor sizes. */
static morsel_status read_selftest(morsel_model *m, const section *sec, morsel_error *err)
{
    const section *st = &sec[SEC_SELFTEST];
    if (!st->present)
        return MORSEL_OK;
    if (st->count != 1 || st->size < SELFTEST_REC)
        return bad(err, "SELFTEST record missing");
    uint64_t n_in = rd32(st->p), n_out = rd32(st->p + 4);
    float tol = rdf(st->p + 8);
    if (n_in != m->tensors[m->input].count || n_out != m->tensors[m->output].count)
        return bad(err, "SELFTEST sizes differ from the model's input/output");
    if (!(tol >= 0.0f) || !isfinite(tol))
        return morsel_fail(err, MORSEL_ERR_FORMAT,
                           "corrupt model file: self-test tolerance %g is not a finite value >= 0",
                           (double)tol);
    if (SELFTEST_REC + 4 * (n_in + n_out) > st->size)
        return bad(err, "SELFTEST data runs past its section");
    m->st_input = (const float *)(const void *)(st->p + SELFTEST_REC);
    m->st_output = m->st_input + n_in;
    m->st_tolerance = tol;
    return MORSEL_OK;
}

morsel_status mf_parse(morsel_model *m, morsel_error *err)
{
    section sec[SEC_MAX_];
    memset(sec, 0, sizeof sec);
    morsel_status s;
    double t = mf_now_ms();
    if ((s = read_sections(m, sec, err)) || (s = read_tensors(m, sec, err)) ||
        (s = read_ops(m, sec, err)) || (s = read_model_record(m, sec, err)))
        return s;
    if (m->input >= m->n_tensors || m->output >= m->n_tensors ||
        (m->logits != MF_NO_TENSOR && m->logits >= m->n_tensors))
        return bad(err, "model input/output tensor index out of range");
    if (m->tensors[m->input].is_const || m->tensors[m->output].is_const)
        return bad(err, "model input/output is a constant");
    if (m->output == m->input || m->logits == m->input)
        return bad(err, "the model's output is its input tensor (no op computes it)");
    const mf_tensor *in = &m->tensors[m->input];
    if (in->rank != 3 || in->dims[2] != 3)
        return morsel_fail(err, MORSEL_ERR_UNSUPPORTED,
                           "model input '%s' must be an RGB image [H, W, 3]", in->name);
    const mf_tensor *out = &m->tensors[m->output];
    if (m->n_labels && m->n_labels != out->dims[out->rank - 1])
        return bad(err, "label count differs from the output size");
    s = read_selftest(m, sec, err);
    m->load_ms[MF_LOAD_PARSE] = mf_now_ms() - t - m->load_ms[MF_LOAD_CRC];
    return s;
}
