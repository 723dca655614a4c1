/* Morsel: run Keras-trained CNN image classifiers from one flat .morsel file.
 *
 * Thread-safety contract: a morsel_model is immutable after morsel_model_open_*() and may be
 * shared by any number of threads. Each thread that runs inference owns its own
 * morsel_context (activation arena + scratch). A context must not be used by two threads at
 * once. No function keeps global state; none calls exit() or abort() on bad input.
 *
 * Memory: the caller owns every buffer it passes in. morsel_model_open_memory() uses a 64-byte
 * aligned buffer in place (it must then outlive the model) and copies any other. Inference on a
 * context allocates nothing; decoding an
 * encoded image reuses a per-context pixel buffer that grows only when a larger image arrives.
 */
#ifndef MORSEL_H
#define MORSEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MORSEL_VERSION_STRING "0.1.0"

#if defined(__GNUC__) || defined(__clang__)
#define MORSEL_API __attribute__((visibility("default")))
#else
#define MORSEL_API
#endif

typedef enum morsel_status {
    MORSEL_OK = 0,
    MORSEL_ERR_ARGUMENT = 1,    /* a NULL pointer, a bad size, an index out of range */
    MORSEL_ERR_IO = 2,          /* a file could not be opened or read */
    MORSEL_ERR_FORMAT = 3,      /* the model file is corrupt, truncated or inconsistent */
    MORSEL_ERR_VERSION = 4,     /* the model file's major version is not supported */
    MORSEL_ERR_UNSUPPORTED = 5, /* a valid file asks for something this build cannot do */
    MORSEL_ERR_IMAGE = 6,       /* an image could not be decoded */
    MORSEL_ERR_LIMIT = 7,       /* an image or file exceeds a size limit */
    MORSEL_ERR_NOMEM = 8,       /* an allocation failed */
    MORSEL_ERR_SELFTEST = 9     /* the embedded self-test did not reproduce Keras's output */
} morsel_status;

/* Every function that can fail fills one of these (when non-NULL) with a readable reason. */
typedef struct morsel_error {
    morsel_status status;
    char message[512];
} morsel_error;

MORSEL_API const char *morsel_status_name(morsel_status s);

typedef struct morsel_model morsel_model;
typedef struct morsel_context morsel_context;

/* ---- models ---------------------------------------------------------------------------- */

MORSEL_API morsel_status morsel_model_open_file(const char *path, morsel_model **out, morsel_error *err);
MORSEL_API morsel_status morsel_model_open_memory(const void *data, size_t size, morsel_model **out,
                                       morsel_error *err);
MORSEL_API void morsel_model_close(morsel_model *model);

/* Options for opening a model. Zero-initialise, then set struct_size = sizeof(the struct):
 * fields added later are read only when the caller's struct_size covers them. */
typedef struct morsel_open_options {
    size_t struct_size;
    /* Kernel set: NULL or "" picks the best this CPU runs (or $MORSEL_ISA when set); "scalar",
     * "avx2", "avx512" force one (MORSEL_ERR_UNSUPPORTED when this CPU or build lacks it).
     * For tests and benchmarks. */
    const char *isa;
} morsel_open_options;

MORSEL_API morsel_status morsel_model_open_file_ex(const char *path, const morsel_open_options *opt,
                                                   morsel_model **out, morsel_error *err);

typedef enum morsel_resize_filter {
    MORSEL_RESIZE_NEAREST = 0,
    MORSEL_RESIZE_BILINEAR = 1,
    MORSEL_RESIZE_BICUBIC = 2,
    MORSEL_RESIZE_LANCZOS = 3,
    MORSEL_RESIZE_BOX = 4
} morsel_resize_filter;

/* How pixels become the model's input: resize (and optionally centre-crop) to the input size,
 * reorder channels, then input = pixel(0..255) * scale[c] + offset[c]. */
typedef struct morsel_preprocess {
    morsel_resize_filter filter;
    int center_crop;   /* 0: stretch to the input size; 1: Pillow ImageOps.fit centre crop */
    int bgr;           /* 1: feed channels in BGR order */
    float scale[3];
    float offset[3];
} morsel_preprocess;

typedef struct morsel_model_info {
    int input_h, input_w, input_c;
    int n_outputs;          /* classes */
    int n_ops, n_tensors;
    int has_logits;         /* values before the final softmax/sigmoid: MORSEL_OUTPUT_LOGITS */
    int has_selftest;
    int output_kind;        /* 0 softmax probabilities, 1 sigmoids, 2 raw scores */
    uint64_t n_params;      /* float32 constants */
    uint64_t weights_bytes;
    uint64_t arena_bytes;   /* activations, planned once at load */
    uint64_t scratch_bytes; /* per-context kernel scratch (im2col) */
    uint64_t file_bytes;
    uint16_t version_major, version_minor;
    morsel_preprocess preprocess;
    const char *name, *source, *keras_version, *exporter_version, *source_format, *license;
    const char *isa;        /* kernel variant chosen for this CPU: "scalar", "avx2", ... */
} morsel_model_info;

MORSEL_API morsel_status morsel_model_get_info(const morsel_model *model, morsel_model_info *info);

/* Label of class i, or NULL when out of range / the model has no labels. */
MORSEL_API const char *morsel_model_label(const morsel_model *model, int i);

/* One op of the planned graph, for `morsel info`. */
typedef struct morsel_op_info {
    const char *type;        /* Morsel op name: "conv2d", "depthwise_conv2d", ... */
    const char *activation;  /* fused activation name: "linear", "relu6", ... */
    const char *name;        /* Keras layer name */
    const char *class_name;  /* Keras class name */
    int out_rank;
    int out_dims[4];
    uint64_t n_params;
    const char *kernel;      /* the microkernel chosen at load, e.g. "f32_dwconv3x3_s2_avx512" */
    uint64_t macs;           /* multiply-accumulates of one inference (conv, depthwise, dense) */
} morsel_op_info;

MORSEL_API morsel_status morsel_model_get_op(const morsel_model *model, int i, morsel_op_info *info);

/* ---- contexts and inference ------------------------------------------------------------- */

MORSEL_API morsel_status morsel_context_create(const morsel_model *model, morsel_context **out,
                                    morsel_error *err);
MORSEL_API void morsel_context_destroy(morsel_context *ctx);

/* ---- threads ------------------------------------------------------------------------------
 * Inference runs on the calling thread unless a context is given more. Morsel never starts a
 * thread on its own, and its pools sleep (no spinning) between runs. */
typedef struct morsel_pool morsel_pool;

/* A pool of n_threads (1..256) threads in total: the caller's plus n_threads - 1 workers. */
MORSEL_API morsel_status morsel_pool_create(int n_threads, morsel_pool **out, morsel_error *err);
/* Joins the workers. No context may still be using the pool. */
MORSEL_API void morsel_pool_destroy(morsel_pool *pool);

/* This context runs each inference on n_threads threads (1, the default: the caller's only;
 * n > 1: a private pool owned and destroyed by the context). */
MORSEL_API morsel_status morsel_context_set_threads(morsel_context *ctx, int n_threads,
                                                    morsel_error *err);
/* Share a caller-owned pool instead (NULL: back to one thread). The pool must outlive the
 * context's use of it. Contexts sharing a pool take turns on it, one inference at a time. */
MORSEL_API morsel_status morsel_context_set_pool(morsel_context *ctx, morsel_pool *pool,
                                                 morsel_error *err);

/* Per-op timing for profiling: when on, each run records every op's wall time. */
MORSEL_API morsel_status morsel_context_set_profiling(morsel_context *ctx, int on,
                                                      morsel_error *err);
/* ms[0..n) receives the time of ops 0..n-1 in the last profiled run (n <= info.n_ops). */
MORSEL_API morsel_status morsel_context_get_op_times(const morsel_context *ctx, double *ms, int n,
                                                     morsel_error *err);

typedef struct morsel_class {
    int index;
    const char *label;   /* points into the model; "" when the model has no labels */
    float probability;   /* the model output value for this class */
} morsel_class;

typedef struct morsel_timings {
    double decode_ms;     /* image decoding */
    double preprocess_ms; /* resize, crop, scaling */
    double inference_ms;  /* the network */
    double total_ms;
} morsel_timings;

/* Classify one image. Fills top[0..*n_top) with the k best classes, best first
 * (*n_top = min(k, classes)). timings may be NULL. */
MORSEL_API morsel_status morsel_classify_file(morsel_context *ctx, const char *path, int k,
                                   morsel_class *top, int *n_top, morsel_timings *timings,
                                   morsel_error *err);
MORSEL_API morsel_status morsel_classify_encoded(morsel_context *ctx, const void *bytes, size_t size, int k,
                                      morsel_class *top, int *n_top, morsel_timings *timings,
                                      morsel_error *err);
/* rgb: height rows of width*3 bytes, stride bytes apart (stride >= width*3). */
MORSEL_API morsel_status morsel_classify_rgb(morsel_context *ctx, const uint8_t *rgb, int width, int height,
                                  size_t stride, int k, morsel_class *top, int *n_top,
                                  morsel_timings *timings, morsel_error *err);

typedef enum morsel_output {
    MORSEL_OUTPUT_PROBS = 0,  /* the model's output tensor */
    MORSEL_OUTPUT_LOGITS = 1  /* before the final softmax/sigmoid (requires info.has_logits) */
} morsel_output;

/* Raw tensor in, tensor out: input is a batch of N preprocessed [H,W,C] float32 tensors
 * (n_in = N*H*W*C, N >= 1); output receives N outputs back to back (n_out = N * output size). */
MORSEL_API morsel_status morsel_run(morsel_context *ctx, const float *input, size_t n_in, morsel_output which,
                         float *output, size_t n_out, morsel_error *err);

/* Runs the embedded self-test vector; *max_abs_diff receives the largest difference from the
 * output Keras gave at export. Returns MORSEL_ERR_SELFTEST when it exceeds the stored tolerance,
 * MORSEL_ERR_UNSUPPORTED when the file has no self-test. */
MORSEL_API morsel_status morsel_selftest(morsel_context *ctx, float *max_abs_diff, morsel_error *err);

/* ---- images (also used by classify) ------------------------------------------------------ */

/* How classify_file / classify_encoded / morsel_decode_image decode. A zeroed struct gives the
 * defaults, which match Pillow's Image.open(f).convert('RGB') pixel for pixel. */
typedef struct morsel_decode_options {
    uint64_t max_encoded_bytes; /* 0: default 64 MiB */
    uint64_t max_pixels;        /* width*height of the stored image, 0: default 64 Mi pixels */
    /* 0 (default): ignore the EXIF orientation, exactly as PIL's Image.open does.
     * 1: apply it like ImageOps.exif_transpose (JPEG only: the APP1 Exif IFD0 Orientation tag in
     * either byte order, else an XMP tiff:Orientation, as Pillow's getexif() reads them; all 8
     * orientations). A malformed EXIF block is ignored. */
    int exif_orientation;
    /* 0 (default): full-size JPEG decoding. 1: big JPEGs are decoded at 1/2, 1/4 or 1/8 scale in
     * the DCT domain (libjpeg), the strongest reduction d with width/d and height/d still at
     * least the target (model input) size -- Pillow's Image.draft('RGB', size) rule. 2-5x faster
     * decode+resize on photos, but NOT the pixels of the plain Pillow pipeline, so probabilities
     * move (up to 2e-3 on the shipped model; it equals draft() + the same resize in Pillow). */
    int jpeg_fast_scale;
} morsel_decode_options;

/* Decoding options of this context's classify_file / classify_encoded (NULL: the defaults).
 * MORSEL_ERR_ARGUMENT when a flag is not 0 or 1. */
MORSEL_API morsel_status morsel_context_set_decode_options(morsel_context *ctx,
                                                           const morsel_decode_options *opt);

/* Overrides the model file's preprocessing for this context. */
MORSEL_API morsel_status morsel_context_set_preprocess(morsel_context *ctx, const morsel_preprocess *pp);

/* Decodes JPEG or PNG (detected by magic bytes) to 8-bit RGB as Pillow's convert('RGB') gives.
 * opt may be NULL (defaults). target_w x target_h is the size the image is meant for (the model
 * input); only opt->jpeg_fast_scale uses it, 0 x 0 disables the scaling. *width x *height is
 * the decoded size (after EXIF orientation and DCT scaling, when asked for).
 * *rgb is allocated with malloc and owned by the caller (free()). */
MORSEL_API morsel_status morsel_decode_image(const void *bytes, size_t size,
                                             const morsel_decode_options *opt, int target_w,
                                             int target_h, uint8_t **rgb, int *width, int *height,
                                             morsel_error *err);

/* Resize + crop + scale RGB pixels into the model input tensor (dst_h*dst_w*3 floats). */
MORSEL_API morsel_status morsel_preprocess_rgb(const uint8_t *rgb, int width, int height, size_t stride,
                                    const morsel_preprocess *pp, int dst_w, int dst_h, float *dst,
                                    morsel_error *err);

/* Names of resize filters and preprocessing presets, as the CLI's --resize / --preprocess and
 * the exporter accept them. */
/* "nearest", "bilinear", "bicubic", "lanczos", "box" -> *out; MORSEL_ERR_ARGUMENT (the message
 * lists the names) for anything else. */
MORSEL_API morsel_status morsel_resize_filter_parse(const char *name, morsel_resize_filter *out,
                                                    morsel_error *err);
/* The name morsel_resize_filter_parse accepts for f; NULL when f is not a filter. */
MORSEL_API const char *morsel_resize_filter_name(morsel_resize_filter f);
/* Sets pp->scale, pp->offset and pp->bgr to the exporter's preset (keeps filter, center_crop):
 *   unit  x / 255            tf     x / 127.5 - 1           raw  x
 *   caffe BGR, x - (103.939, 116.779, 123.68)             torch (x / 255 - mean) / std
 * MORSEL_ERR_ARGUMENT for another name (pp untouched). */
MORSEL_API morsel_status morsel_preprocess_preset(const char *name, morsel_preprocess *pp,
                                                  morsel_error *err);

#ifdef __cplusplus
}
#endif
#endif
