/* Names users type for resize filters and preprocessing presets, shared by the CLI and any other
 * front end (the HTTP server) so they all accept and print the same words. */
#include "abi.h"
#include "error.h"

#include <string.h>

/* Indexed by morsel_resize_filter (MORSEL_RESIZE_NEAREST .. MORSEL_RESIZE_BOX are 0..4). */
static const char *const filter_names[] = {"nearest", "bilinear", "bicubic", "lanczos", "box"};
#define N_FILTERS (sizeof filter_names / sizeof filter_names[0])

morsel_status morsel_resize_filter_parse(const char *name, morsel_resize_filter *out,
                                         morsel_error *err)
{
    if (!name || !out)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "morsel_resize_filter_parse: NULL argument");
    for (size_t i = 0; i < N_FILTERS; i++)
        if (!strcmp(name, filter_names[i])) {
            *out = (morsel_resize_filter)i;
            return MORSEL_OK;
        }
    return morsel_fail(err, MORSEL_ERR_ARGUMENT,
                       "unknown resize filter '%s': expected nearest, bilinear, bicubic, lanczos "
                       "or box", name);
}

const char *morsel_resize_filter_name(morsel_resize_filter f)
{
    return (unsigned)f < N_FILTERS ? filter_names[f] : NULL;
}

/* The exporter's --preprocess presets (weights/morsel_exporter/cli.py): input = pixel * scale +
 * offset per channel in model order, computed in double and stored as float exactly as the
 * exporter stores them, so a preset given here equals the one baked into a file. */
morsel_status morsel_preprocess_preset(const char *name, morsel_preprocess *pp, morsel_error *err)
{
    static const double caffe_bgr_mean[3] = {103.939, 116.779, 123.68};
    static const double torch_mean[3] = {0.485, 0.456, 0.406};
    static const double torch_std[3] = {0.229, 0.224, 0.225};
    if (!name || !pp)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "morsel_preprocess_preset: NULL argument");
    morsel_status s =
        mf_struct_check(pp->struct_size, MF_PREPROCESS_V1, "morsel_preprocess", err);
    if (s)
        return s;
    double scale[3], offset[3];
    int bgr = 0;
    for (int c = 0; c < 3; c++) {
        if (!strcmp(name, "unit")) {
            scale[c] = 1.0 / 255.0;
            offset[c] = 0.0;
        } else if (!strcmp(name, "tf")) {
            scale[c] = 1.0 / 127.5;
            offset[c] = -1.0;
        } else if (!strcmp(name, "caffe")) {
            scale[c] = 1.0;
            offset[c] = -caffe_bgr_mean[c];
            bgr = 1;
        } else if (!strcmp(name, "torch")) {
            scale[c] = 1.0 / (255.0 * torch_std[c]);
            offset[c] = -torch_mean[c] / torch_std[c];
        } else if (!strcmp(name, "raw")) {
            scale[c] = 1.0;
            offset[c] = 0.0;
        } else {
            return morsel_fail(err, MORSEL_ERR_ARGUMENT,
                               "unknown preprocessing preset '%s': expected unit, tf, caffe, "
                               "torch or raw", name);
        }
    }
    for (int c = 0; c < 3; c++) {
        pp->scale[c] = (float)scale[c];
        pp->offset[c] = (float)offset[c];
    }
    pp->bgr = bgr;
    return MORSEL_OK;
}
