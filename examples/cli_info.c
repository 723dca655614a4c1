/* morsel info: what a model file holds. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *filter_name(morsel_resize_filter f)
{
    const char *name = morsel_resize_filter_name(f);
    return name ? name : "?";
}

static void print_shape(const morsel_op_info *o)
{
    char buf[64];
    int n = 0;
    for (int d = 0; d < o->out_rank; d++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%d", d ? "x" : "", o->out_dims[d]);
    printf("%-14s", buf);
}

int cli_info(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: morsel info MODEL\n");
        return 2;
    }
    morsel_model *m = cli_open_model(argv[1], 1);
    if (!m)
        return 1;
    morsel_model_info in = MORSEL_MODEL_INFO_INIT;
    morsel_model_get_info(m, &in, NULL);
    printf("model          %s\n", in.name);
    printf("file           %s (%llu bytes, format %u.%u)\n", argv[1],
           (unsigned long long)in.file_bytes, in.version_major, in.version_minor);
    printf("source         %s (%s, Keras %s), exporter %s\n", in.source, in.source_format,
           in.keras_version, in.exporter_version);
    if (in.license[0])
        printf("license        %s\n", in.license);
    printf("input          %dx%dx%d float32\n", in.input_h, in.input_w, in.input_c);
    const morsel_preprocess *p = &in.preprocess;
    printf("preprocess     resize %s%s, %s, x*(%g,%g,%g) + (%g,%g,%g)\n", filter_name(p->filter),
           p->center_crop ? " + centre crop" : "", p->bgr ? "BGR" : "RGB", (double)p->scale[0],
           (double)p->scale[1], (double)p->scale[2], (double)p->offset[0],
           (double)p->offset[1], (double)p->offset[2]);
    printf("output         %d classes (%s)%s\n", in.n_outputs,
           in.output_kind == 0 ? "softmax" : in.output_kind == 1 ? "sigmoid" : "raw",
           in.has_logits ? ", logits available" : "");
    printf("parameters     %llu (%.2f MB float32)\n", (unsigned long long)in.n_params,
           in.weights_bytes / 1e6);
    printf("arena          %.2f MB activations + %.2f MB scratch per context\n",
           in.arena_bytes / 1e6, in.scratch_bytes / 1e6);
    printf("work           %.3g G operations per inference (MACs, pool and resize taps)\n",
           in.work / 1e9);
    printf("kernels        %s\n", in.isa);
    printf("self-test      %s\n", in.has_selftest ? "embedded (run `morsel verify`)" : "none");
    printf("\n  #  %-18s %-12s %-14s %10s  %s\n", "op", "activation", "output", "params",
           "Keras layer (class)");
    for (int i = 0; i < in.n_ops; i++) {
        morsel_op_info o = MORSEL_OP_INFO_INIT;
        morsel_model_get_op(m, i, &o, NULL);
        printf("%3d  %-18s %-12s ", i, o.type, o.activation);
        print_shape(&o);
        printf(" %10llu  %s (%s)\n", (unsigned long long)o.n_params, o.name, o.class_name);
    }
    if (in.n_outputs > 0 && morsel_model_label(m, 0)) {
        printf("\nlabels\n");
        for (int i = 0; i < in.n_outputs; i++)
            printf("  %3d  %s\n", i, morsel_model_label(m, i));
    }
    morsel_model_close(m);
    return 0;
}
