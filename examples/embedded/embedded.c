/* A classifier whose model is part of the executable: model_blob.S assembles the .morsel file
 * into read-only data (.incbin), and morsel_model_open_memory_ex(..., MORSEL_MEMORY_BORROW, ...)
 * reads it where it lies -- no copy, and no file to find, open or keep next to the program.
 * The weights are pages of the executable, shared by every process running it.
 *
 * usage: morsel_embedded [--top K] [--copy] IMAGE...            JPEG/PNG files
 *        morsel_embedded [--top K] [--copy] --rgb WxH FILE|-    raw RGB24 bytes (any build)
 * One JSON line per input, as `morsel classify --json` prints it (without the timings).
 * --copy opens with MORSEL_MEMORY_COPY instead, to compare the memory each way. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli.h"

/* model_blob.S: the file's bytes, 64-byte aligned, and the address just past them. */
extern const unsigned char morsel_embedded_model[];
extern const unsigned char morsel_embedded_model_end[];

static int usage(void)
{
    fprintf(stderr, "usage: morsel_embedded [--top K] [--copy] IMAGE...\n"
                    "       morsel_embedded [--top K] [--copy] --rgb WxH FILE|-\n");
    return 2;
}

/* Exactly w*h*3 bytes from path ("-": stdin) into a new buffer, or NULL with a message. */
static uint8_t *read_rgb(const char *path, int w, int h)
{
    size_t need = (size_t)w * (size_t)h * 3;
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "morsel_embedded: cannot open %s\n", path);
        return NULL;
    }
    uint8_t *rgb = malloc(need + 1);
    size_t got = rgb ? fread(rgb, 1, need + 1, f) : 0;
    if (f != stdin)
        fclose(f);
    if (rgb && got == need)
        return rgb;
    if (rgb)
        fprintf(stderr, "morsel_embedded: %s has %s%zu bytes; %dx%d RGB is %zu\n", path,
                got > need ? "more than " : "", got > need ? need : got, w, h, need);
    free(rgb);
    return NULL;
}

static void print_json(const char *name, const morsel_class *top, int n)
{
    printf("{\"image\": ");
    cli_json_string(stdout, name);
    printf(", \"top\": ");
    cli_json_top(stdout, top, n);
    printf("}\n");
}

int main(int argc, char **argv)
{
    int k = 5, copy = 0, w = 0, h = 0, i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        if (!strcmp(argv[i], "--top") && i + 1 < argc)
            k = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--copy"))
            copy = 1;
        else if (!strcmp(argv[i], "--rgb") && i + 1 < argc) {
            if (sscanf(argv[++i], "%dx%d", &w, &h) != 2 || w < 1 || h < 1 || w > 65536 ||
                h > 65536)
                return usage();
        } else {
            return usage();
        }
    }
    if (i >= argc || k < 1 || k > 1000 || (w && argc - i != 1))
        return usage();

    size_t size = (size_t)(morsel_embedded_model_end - morsel_embedded_model);
    morsel_model *model = NULL;
    morsel_context *ctx = NULL;
    morsel_error err = {0};
    morsel_class *top = calloc((size_t)k, sizeof *top);
    if (!top || morsel_model_open_memory_ex(morsel_embedded_model, size,
                                            copy ? MORSEL_MEMORY_COPY : MORSEL_MEMORY_BORROW,
                                            NULL, &model, &err) != MORSEL_OK ||
        morsel_context_create(model, &ctx, &err) != MORSEL_OK) {
        fprintf(stderr, "morsel_embedded: %s\n", top ? err.message : "out of memory");
        morsel_model_close(model);
        free(top);
        return 1;
    }
    int rc = 0;
    for (; i < argc; i++) {
        int n = 0;
        morsel_status s;
        if (w) {
            uint8_t *rgb = read_rgb(argv[i], w, h);
            if (!rgb) {
                rc = 1;
                continue;
            }
            s = morsel_classify_rgb(ctx, rgb, w, h, (size_t)w * 3, k, top, &n, NULL, &err);
            free(rgb);
        } else {
            s = morsel_classify_file(ctx, argv[i], k, top, &n, NULL, &err);
        }
        if (s != MORSEL_OK) {
            fprintf(stderr, "morsel_embedded: %s: %s\n", argv[i], err.message);
            rc = 1;
            continue;
        }
        print_json(argv[i], top, n);
    }
    morsel_context_destroy(ctx);
    morsel_model_close(model);
    free(top);
    return rc;
}
