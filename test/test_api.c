/* The public API's contract for a careless or hostile caller (issue 10): lifetimes, borrowed vs
 * copied buffers, files that are not files, preprocessing validation, non-finite inputs,
 * messages from every fallible function, versions and size-prefixed structs. Runs under the
 * ASan build too (test_api_asan), where a use-after-free or over-read fails it.
 *
 * usage: test_api IMAGE.jpg     (any photo; classify_file reads it)
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "craft.h"

static int passed, failed;

static void check(int ok, const char *what)
{
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (ok)
        passed++;
    else
        failed++;
}

/* The status is s and the message contains `needle` (and no internal prefix). */
static int says(morsel_status got, const morsel_error *err, morsel_status s, const char *needle)
{
    int ok = got == s && err->status == s && strstr(err->message, needle) != NULL &&
             !strstr(err->message, "mi_") && !strstr(err->message, "mf_");
    if (!ok)
        printf("     got status %d, message \"%s\"\n", (int)got, err->message);
    return ok;
}

static morsel_model *open_tiny(uint32_t h, uint32_t w)
{
    size_t n = 0;
    uint8_t *b = craft_tiny(&n, h, w);
    morsel_model *m = NULL;
    morsel_error err = {0};
    if (morsel_model_open_memory(b, n, &m, &err) != MORSEL_OK)
        printf("     cannot open the crafted model: %s\n", err.message);
    free(b); /* COPY: the model must not need it */
    return m;
}

static void test_lifetimes(const char *image)
{
    morsel_model *m = open_tiny(8, 8);
    morsel_context *a = NULL, *b = NULL;
    morsel_error err = {0};
    check(m && morsel_context_create(m, &a, &err) == MORSEL_OK &&
              morsel_context_create(m, &b, &err) == MORSEL_OK,
          "two contexts on one model");
    if (!a || !b)
        return;
    morsel_model_close(m); /* the caller's reference; the contexts keep theirs */
    float x[8 * 8 * 3], y[3];
    for (int i = 0; i < 8 * 8 * 3; i++)
        x[i] = (float)(i % 7);
    morsel_class top[3];
    int n = 0;
    check(morsel_run(a, x, 192, MORSEL_OUTPUT_PROBS, y, 3, &err) == MORSEL_OK &&
              fabsf(y[0] + y[1] + y[2] - 1.0f) < 1e-5f,
          "morsel_run after morsel_model_close still runs the model");
    check(morsel_classify_file(b, image, 3, top, &n, NULL, &err) == MORSEL_OK && n == 3,
          "classify_file after morsel_model_close still classifies");
    morsel_context_destroy(a);
    check(morsel_run(b, x, 192, MORSEL_OUTPUT_PROBS, y, 3, &err) == MORSEL_OK,
          "the last context keeps the model alive after the others are destroyed");
    morsel_context_destroy(b); /* frees the model: ASan/LeakSanitizer see any mistake */
}

static void test_open_memory(void)
{
    size_t n = 0;
    uint8_t *b = craft_tiny(&n, 4, 4);
    uint8_t *odd = malloc(n + 1);
    memcpy(odd + 1, b, n);
    morsel_model *m = NULL;
    morsel_error err = {0};
    morsel_status s = morsel_model_open_memory_ex(odd + 1, n, MORSEL_MEMORY_BORROW, NULL, &m, &err);
    check(says(s, &err, MORSEL_ERR_ARGUMENT, "64-byte aligned") && !m,
          "BORROW of an unaligned buffer -> MORSEL_ERR_ARGUMENT naming the alignment");
    s = morsel_model_open_memory_ex(odd + 1, n, 7, NULL, &m, &err);
    check(says(s, &err, MORSEL_ERR_ARGUMENT, "MORSEL_MEMORY_COPY"), "an unknown mode is refused");
    /* COPY of an unaligned buffer, which is then scribbled over and freed: the model must
     * not notice (under ASan a read of the freed buffer would fail the test). */
    s = morsel_model_open_memory_ex(odd + 1, n, MORSEL_MEMORY_COPY, NULL, &m, &err);
    memset(odd, 0xA5, n + 1);
    free(odd);
    morsel_context *c = NULL;
    float x[48] = {0}, y[3];
    check(s == MORSEL_OK && morsel_context_create(m, &c, &err) == MORSEL_OK &&
              morsel_run(c, x, 48, MORSEL_OUTPUT_PROBS, y, 3, &err) == MORSEL_OK &&
              fabsf(y[0] - 1.0f / 3) < 1e-6f,
          "COPY of an unaligned buffer runs after the caller frees it");
    morsel_context_destroy(c);
    morsel_model_close(m);
    /* BORROW of an aligned buffer: used in place, so it must still be there. */
    m = NULL;
    s = morsel_model_open_memory_ex(b, n, MORSEL_MEMORY_BORROW, NULL, &m, &err);
    morsel_model_info info = MORSEL_MODEL_INFO_INIT;
    check(s == MORSEL_OK && morsel_model_get_info(m, &info, &err) == MORSEL_OK &&
              info.input_h == 4 && info.n_outputs == 3,
          "BORROW of a 64-byte aligned buffer opens");
    morsel_model_close(m);
    free(b);
}

static void test_bad_files(const char *dir)
{
    char fifo[512], path[600];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    check(mkfifo(fifo, 0600) == 0, "mkfifo");
    morsel_model *m = NULL;
    morsel_error err = {0};
    /* Both would block forever in open() without O_NONBLOCK: the test would hang, not fail. */
    morsel_status s = morsel_model_open_file(fifo, &m, &err);
    check(says(s, &err, MORSEL_ERR_IO, "is a FIFO, not a regular file"),
          "model path: a FIFO with no writer is refused at once");
    s = morsel_model_open_file(dir, &m, &err);
    check(says(s, &err, MORSEL_ERR_IO, "is a directory"), "model path: a directory is refused");
    snprintf(path, sizeof path, "%s/missing.morsel", dir);
    s = morsel_model_open_file(path, &m, &err);
    check(says(s, &err, MORSEL_ERR_IO, strerror(ENOENT)),
          "model path: a missing file's message has strerror");
    m = open_tiny(4, 4);
    morsel_context *c = NULL;
    morsel_context_create(m, &c, &err);
    morsel_class top[3];
    int n = 0;
    s = morsel_classify_file(c, dir, 3, top, &n, NULL, &err);
    check(says(s, &err, MORSEL_ERR_IO, "is a directory"),
          "image path: a directory is refused (not '9223372036854775807 bytes')");
    s = morsel_classify_file(c, fifo, 3, top, &n, NULL, &err);
    check(says(s, &err, MORSEL_ERR_IO, "is a FIFO"), "image path: a FIFO is refused at once");
    s = morsel_classify_file(c, path, 3, top, &n, NULL, &err);
    check(says(s, &err, MORSEL_ERR_IO, strerror(ENOENT)),
          "image path: a missing file's message has strerror");
    morsel_context_destroy(c);
    morsel_model_close(m);
    unlink(fifo);
}

static void test_preprocess(const char *image)
{
    morsel_model *m = open_tiny(8, 8);
    morsel_context *c = NULL;
    morsel_error err = {0};
    morsel_context_create(m, &c, &err);
    morsel_model_info info = MORSEL_MODEL_INFO_INIT;
    morsel_model_get_info(m, &info, &err);
    morsel_class ref[3], top[3];
    int n = 0;
    morsel_classify_file(c, image, 3, ref, &n, NULL, &err);
    struct {
        const char *what;
        morsel_preprocess pp;
    } bad[6];
    for (int i = 0; i < 6; i++)
        bad[i].pp = info.preprocess;
    bad[0].what = "bgr = 5", bad[0].pp.bgr = 5;
    bad[1].what = "center_crop = -1", bad[1].pp.center_crop = -1;
    bad[2].what = "filter = 9", bad[2].pp.filter = (morsel_resize_filter)9;
    bad[3].what = "scale[1] = NaN", bad[3].pp.scale[1] = NAN;
    bad[4].what = "offset[2] = -Inf", bad[4].pp.offset[2] = -INFINITY;
    bad[5].what = "struct_size = 0", bad[5].pp.struct_size = 0;
    for (int i = 0; i < 6; i++) {
        char what[96];
        snprintf(what, sizeof what, "set_preprocess refuses %s with a message", bad[i].what);
        morsel_status s = morsel_context_set_preprocess(c, &bad[i].pp, &err);
        check(s == MORSEL_ERR_ARGUMENT && err.status == s && err.message[0], what);
    }
    morsel_classify_file(c, image, 3, top, &n, NULL, &err);
    check(top[0].index == ref[0].index && top[0].probability == ref[0].probability,
          "a refused set_preprocess leaves the context as it was");
    morsel_preprocess other = info.preprocess;
    other.scale[0] = other.scale[1] = other.scale[2] = 0.5f;
    morsel_context_set_preprocess(c, &other, &err);
    morsel_classify_file(c, image, 3, top, &n, NULL, &err);
    int changed = top[0].probability != ref[0].probability;
    morsel_status s = morsel_context_set_preprocess(c, NULL, &err);
    morsel_classify_file(c, image, 3, top, &n, NULL, &err);
    check(changed && s == MORSEL_OK && top[0].index == ref[0].index &&
              top[0].probability == ref[0].probability,
          "set_preprocess(NULL) restores the model's own preprocessing");
    float x[192] = {0}, y[3];
    x[77] = NAN;
    s = morsel_run(c, x, 192, MORSEL_OUTPUT_PROBS, y, 3, &err);
    check(says(s, &err, MORSEL_ERR_ARGUMENT, "input value 77 is NaN"), "morsel_run refuses NaN");
    x[77] = INFINITY;
    s = morsel_run(c, x, 192, MORSEL_OUTPUT_PROBS, y, 3, &err);
    check(says(s, &err, MORSEL_ERR_ARGUMENT, "infinite"), "morsel_run refuses Inf");
    /* With threads, each copies and checks its share of the image: whichever finds one, the
     * first bad value is the one named. A batch is checked whole before its first image. */
    for (int t = 2; t <= 3; t++) {
        morsel_context_set_threads(c, t, &err);
        float xt[192] = {0};
        xt[191] = NAN;
        xt[150] = INFINITY;
        s = morsel_run(c, xt, 192, MORSEL_OUTPUT_PROBS, y, 3, &err);
        check(says(s, &err, MORSEL_ERR_ARGUMENT, "input value 150 is infinite"),
              "with threads, the first bad value in a later share is named");
        xt[5] = NAN;
        s = morsel_run(c, xt, 192, MORSEL_OUTPUT_PROBS, y, 3, &err);
        check(says(s, &err, MORSEL_ERR_ARGUMENT, "input value 5 is NaN"),
              "with threads, the first bad value wins over later ones");
        float xb[384] = {0}, yb[6] = {42, 42, 42, 42, 42, 42};
        xb[192 + 10] = NAN;
        s = morsel_run(c, xb, 384, MORSEL_OUTPUT_PROBS, yb, 6, &err);
        check(says(s, &err, MORSEL_ERR_ARGUMENT, "input value 202 is NaN") && yb[0] == 42,
              "a NaN in a batch's second image is refused before the first runs");
        x[77] = 0.5f;
        s = morsel_run(c, x, 192, MORSEL_OUTPUT_PROBS, y, 3, &err);
        check(s == MORSEL_OK && y[0] + y[1] + y[2] > 0.99f,
              "after a refusal the context runs the next image");
    }
    morsel_context_destroy(c);
    morsel_model_close(m);
}

static void test_messages_and_abi(void)
{
    morsel_model *m = open_tiny(4, 4);
    morsel_context *c = NULL;
    morsel_error err = {0};
    morsel_context_create(m, &c, &err);
    morsel_model_info info = MORSEL_MODEL_INFO_INIT;
    morsel_op_info op = MORSEL_OP_INFO_INIT;
    morsel_status s = morsel_model_get_info(NULL, &info, &err);
    check(says(s, &err, MORSEL_ERR_ARGUMENT, "NULL"), "get_info(NULL) explains itself");
    s = morsel_model_get_op(m, 5, &op, &err);
    check(says(s, &err, MORSEL_ERR_ARGUMENT, "op index 5"), "get_op out of range explains itself");
    morsel_decode_options d = MORSEL_DECODE_OPTIONS_INIT;
    d.jpeg_fast_scale = 3;
    s = morsel_context_set_decode_options(c, &d, &err);
    check(says(s, &err, MORSEL_ERR_ARGUMENT, "jpeg_fast_scale"),
          "set_decode_options names the bad flag");
    morsel_model_info small = {.struct_size = 8};
    s = morsel_model_get_info(m, &small, &err);
    check(says(s, &err, MORSEL_ERR_ARGUMENT, "struct_size"),
          "get_info refuses a struct_size below the first version's");
    /* A caller built against a later header passes a bigger struct: the library writes only
     * what it knows and leaves the rest alone. */
    struct {
        morsel_model_info info;
        unsigned char future[32];
    } big;
    memset(&big, 0x5A, sizeof big);
    big.info.struct_size = sizeof big;
    s = morsel_model_get_info(m, &big.info, &err);
    int untouched = 1;
    for (size_t i = 0; i < sizeof big.future; i++)
        untouched &= big.future[i] == 0x5A;
    check(s == MORSEL_OK && untouched && big.info.struct_size == sizeof big &&
              big.info.input_w == 4 && big.info.preprocess.struct_size == sizeof(morsel_preprocess),
          "get_info with a larger struct_size writes only the fields it knows");
    morsel_timings t = {.struct_size = 4};
    float x[48] = {0};
    (void)x;
    morsel_class top[3];
    int n = 0;
    uint8_t rgb[12] = {0};
    s = morsel_classify_rgb(c, rgb, 2, 2, 6, 3, top, &n, &t, &err);
    check(says(s, &err, MORSEL_ERR_ARGUMENT, "morsel_timings"),
          "classify refuses timings without struct_size");
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", MORSEL_VERSION_MAJOR, MORSEL_VERSION_MINOR,
             MORSEL_VERSION_PATCH);
    check(!strcmp(morsel_version(), MORSEL_VERSION_STRING) && !strcmp(v, MORSEL_VERSION_STRING) &&
              morsel_version_number() == MORSEL_VERSION_NUMBER,
          "morsel_version() and the version macros agree");
    morsel_open_options o = {.struct_size = 4};
    morsel_model *m2 = NULL;
    s = morsel_model_open_file_ex("/nonexistent", &o, &m2, &err);
    check(says(s, &err, MORSEL_ERR_ARGUMENT, "struct_size"),
          "open options without struct_size are refused");
    morsel_context_destroy(c);
    morsel_model_close(m);
}

/* morsel_open_options.pages: a value outside the two is refused by name; either page size
 * gives the same bits (the same kernels read the same packed weights); a caller built against
 * a header without the field gets the default. Whether the pages are huge is checked through
 * `morsel bench`'s AnonHugePages in test_cli.py. */
static void test_pages(void)
{
    size_t n = 0;
    uint8_t *b = craft_tiny(&n, 8, 8);
    morsel_error err = {0};
    morsel_model *bad = NULL, *huge = NULL, *small = NULL, *old = NULL;
    morsel_open_options o = {.struct_size = sizeof o, .pages = 7};
    morsel_status s = morsel_model_open_memory_ex(b, n, MORSEL_MEMORY_COPY, &o, &bad, &err);
    check(says(s, &err, MORSEL_ERR_ARGUMENT, "morsel_open_options.pages is 7") && !bad,
          "an unknown pages value is refused by name");
    o.pages = MORSEL_PAGES_HUGE;
    morsel_model_open_memory_ex(b, n, MORSEL_MEMORY_COPY, &o, &huge, &err);
    o.pages = MORSEL_PAGES_SMALL;
    morsel_model_open_memory_ex(b, n, MORSEL_MEMORY_COPY, &o, &small, &err);
    o.pages = 7; /* beyond an older caller's struct_size: never read */
    o.struct_size = offsetof(morsel_open_options, max_memory_bytes) + sizeof o.max_memory_bytes;
    s = morsel_model_open_memory_ex(b, n, MORSEL_MEMORY_COPY, &o, &old, &err);
    if (s != MORSEL_OK)
        printf("     %s\n", err.message);
    check(s == MORSEL_OK, "an options struct from before `pages` opens with the default");
    float x[8 * 8 * 3], y[2][3];
    for (int i = 0; i < 8 * 8 * 3; i++)
        x[i] = (float)(i % 11) * 0.25f;
    morsel_model *ms[2] = {huge, small};
    int ran = 1;
    for (int k = 0; k < 2; k++) {
        morsel_context *c = NULL;
        ran &= ms[k] && morsel_context_create(ms[k], &c, &err) == MORSEL_OK &&
               morsel_run(c, x, 192, MORSEL_OUTPUT_PROBS, y[k], 3, &err) == MORSEL_OK;
        morsel_context_destroy(c);
    }
    check(ran && !memcmp(y[0], y[1], sizeof y[0]), "huge and small pages give the same bits");
    morsel_model_close(huge);
    morsel_model_close(small);
    morsel_model_close(old);
    free(b);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_api IMAGE\n");
        return 2;
    }
    char dir[] = "/tmp/morsel_test_api_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_lifetimes(argv[1]);
    test_open_memory();
    test_bad_files(dir);
    test_preprocess(argv[1]);
    test_messages_and_abi();
    test_pages();
    rmdir(dir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
