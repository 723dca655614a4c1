/* libFuzzer target: any bytes as an uploaded image, through morsel_classify_encoded on a tiny
 * model ($MORSEL_FUZZ_MODEL, the suite's tiny.morsel: 12x10 input, so inference is cheap and
 * the time goes to decoding), then through morsel_decode_image with EXIF orientation and JPEG
 * DCT scaling on, the paths classify does not take by default. A bad image must give a status
 * and a message; a good one a full top-k. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "morsel.h"

/* Smaller than the defaults so one input stays fast; the limit checks are part of the target. */
#define FUZZ_MAX_PIXELS (4u << 20)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static morsel_model *model;
static morsel_context *ctx;
static morsel_model_info info = MORSEL_MODEL_INFO_INIT;

static void must(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_image: broken contract: %s\n", what);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *path = getenv("MORSEL_FUZZ_MODEL");
    morsel_error err = {0};
    if (!path || morsel_model_open_file(path, &model, &err) != MORSEL_OK ||
        morsel_context_create(model, &ctx, &err) != MORSEL_OK) {
        fprintf(stderr, "fuzz_image: set MORSEL_FUZZ_MODEL to a small .morsel file (%s)\n",
                path ? err.message : "unset");
        exit(2);
    }
    morsel_model_get_info(model, &info, NULL);
    morsel_decode_options opt = MORSEL_DECODE_OPTIONS_INIT;
    opt.max_pixels = FUZZ_MAX_PIXELS;
    must(morsel_context_set_decode_options(ctx, &opt, NULL) == MORSEL_OK, "decode options refused");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    morsel_class top[3];
    int n_top = -1;
    morsel_error err = {0};
    morsel_status st = morsel_classify_encoded(ctx, data, size, 3, top, &n_top, NULL, &err);
    if (st == MORSEL_OK) {
        must(n_top == (info.n_outputs < 3 ? info.n_outputs : 3), "wrong number of classes");
        for (int i = 0; i < n_top; i++)
            must(top[i].index >= 0 && top[i].index < info.n_outputs && top[i].label,
                 "class out of range");
    } else {
        must(err.message[0] != 0, "classify failed without a message");
    }

    morsel_decode_options opt = MORSEL_DECODE_OPTIONS_INIT;
    opt.max_pixels = FUZZ_MAX_PIXELS;
    opt.exif_orientation = 1;
    opt.jpeg_fast_scale = 1;
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    st = morsel_decode_image(data, size, &opt, info.input_w, info.input_h, &rgb, &w, &h, &err);
    if (st == MORSEL_OK) {
        must(rgb && w > 0 && h > 0 && (uint64_t)w * (uint64_t)h <= FUZZ_MAX_PIXELS,
             "decoded image has no pixels or too many");
        /* Touch the last pixel: the buffer must hold w*h*3 bytes. */
        volatile uint8_t last = rgb[(size_t)w * h * 3 - 1];
        (void)last;
    } else {
        must(rgb == NULL && err.message[0] != 0, "decode failed without a message");
    }
    free(rgb);
    return 0;
}
