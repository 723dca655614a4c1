/* Graph checking: every op reads only what earlier ops produced, writes a fresh activation,
 * and its registry entry recomputes its output shape from its inputs and attributes, which
 * must equal the one stored in the file. After this, kernels index memory without checks. */
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "ops.h"

morsel_status mf_validate_ops(morsel_model *m, morsel_error *err)
{
    /* produced[t]: t holds a value at this point of the (topological) op order. */
    unsigned char *produced = calloc(m->n_tensors, 1);
    if (!produced)
        return morsel_fail(err, MORSEL_ERR_NOMEM, "out of memory");
    produced[m->input] = 1;
    morsel_status s = MORSEL_OK;
    uint64_t work = 0;
    for (uint32_t i = 0; i < m->n_ops && !s; i++) {
        mf_op *op = &m->ops[i];
        op->def = mf_op_def_for(op->type);
        if (!op->def) {
            s = morsel_fail(err, MORSEL_ERR_UNSUPPORTED,
                            "op '%s' (%s) has type %u, unknown to this build", op->name,
                            op->class_name, op->type);
            break;
        }
        if (op->out >= m->n_tensors || m->tensors[op->out].is_const || produced[op->out]) {
            s = mf_op_fail(err, op, "output is not a fresh activation tensor");
            break;
        }
        for (uint32_t j = 0; j < op->n_in && !s; j++) {
            uint32_t t = op->in[j];
            if (t >= m->n_tensors)
                s = mf_op_fail(err, op, "input tensor index out of range");
            else if (!m->tensors[t].is_const && !produced[t])
                s = mf_op_fail(err, op, "reads a tensor no earlier op produced");
            else if (j == 0 && m->tensors[t].is_const)
                s = mf_op_fail(err, op, "first input must be an activation");
        }
        if (!s && op->type != MF_OP_ADD && op->type != MF_OP_MULTIPLY &&
            op->type != MF_OP_CONCAT)
            for (uint32_t j = 1; j < op->n_in && !s; j++)
                if (!m->tensors[op->in[j]].is_const)
                    s = mf_op_fail(err, op, "weights must be constants");
        if (!s && (op->type == MF_OP_ADD || op->type == MF_OP_MULTIPLY ||
                   op->type == MF_OP_CONCAT))
            for (uint32_t j = 0; j < op->n_in && !s; j++)
                if (m->tensors[op->in[j]].is_const)
                    s = mf_op_fail(err, op, "inputs must be activations");
        if (!s && op->act.code == MK_ACT_SOFTMAX && m->tensors[op->out].count == 0)
            s = mf_op_fail(err, op, "softmax over nothing");
        if (!s)
            s = op->def->check(m, op, err);
        if (!s) {
            produced[op->out] = 1;
            /* Every op at least writes its output; saturating, a crafted file may overflow. */
            uint64_t w = (op->work ? op->work : op->macs) + m->tensors[op->out].count;
            op->work = w;
            work = work > UINT64_MAX - w ? UINT64_MAX : work + w;
        }
    }
    m->work = work;
    /* A tiny file can describe minutes of work (a resize to 1024x1024, then a vast pooling
     * window): refuse it here, from the shapes, before anyone runs it. */
    if (!s && work > m->max_work)
        s = morsel_fail(err, MORSEL_ERR_LIMIT,
                        "model needs %.3g G operations (multiply-accumulates, pooling and resize "
                        "taps) per inference; the limit is %.3g G (morsel_open_options.max_work)",
                        (double)work / 1e9, (double)m->max_work / 1e9);
    if (!s && !produced[m->output])
        s = morsel_fail(err, MORSEL_ERR_FORMAT, "corrupt model file: no op produces the output");
    if (!s && m->logits != MF_NO_TENSOR && !produced[m->logits])
        s = morsel_fail(err, MORSEL_ERR_FORMAT, "corrupt model file: no op produces the logits");
    free(produced);
    return s;
}

const char *mf_activation_name(const mk_activation *a)
{
    switch (a->code) {
    case MK_ACT_LINEAR: return "linear";
    case MK_ACT_RELU:
        if (a->alpha != 0.0f)
            return "leaky_relu";
        return a->max == 6.0f ? "relu6" : (a->max < 3.0e38f ? "relu_clipped" : "relu");
    case MK_ACT_SIGMOID: return "sigmoid";
    case MK_ACT_TANH: return "tanh";
    case MK_ACT_SWISH: return "swish";
    case MK_ACT_SOFTMAX: return "softmax";
    case MK_ACT_ELU: return "elu";
    case MK_ACT_HARD_SIGMOID: return "hard_sigmoid";
    case MK_ACT_HARD_SIGMOID_K2: return "hard_sigmoid_k2";
    case MK_ACT_GELU: return "gelu";
    }
    return "?";
}

morsel_status mf_prepare(morsel_model *m, morsel_error *err)
{
    for (uint32_t i = 0; i < m->n_ops; i++) {
        mf_op *op = &m->ops[i];
        if (op->folded)
            continue;
        op->kact = op->tact = op->act;
        op->serial = 1;
        snprintf(op->kernel, sizeof op->kernel, "ref_%s", op->def->name);
        if (op->def->prepare) {
            op->serial = 0;
            double t = mf_now_ms();
            morsel_status s = op->def->prepare(m, op, &m->isa, err);
            op->prepare_ms = mf_now_ms() - t;
            if (s)
                return s;
        }
    }
    return mf_pack_weights(m, err);
}
