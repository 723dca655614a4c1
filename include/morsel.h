/* Morsel: run Keras-trained CNN image classifiers from one flat .morsel file.
 *
 * Thread-safety contract: a morsel_model is immutable after morsel_model_open_*() and may be
 * shared by any number of threads. Each thread that runs inference owns its own
 * morsel_context (activation arena + scratch). A context must not be used by two threads at
 * once. No function keeps global state; none calls exit() or abort() on bad input.
 *
 * Lifetimes: a model is reference-counted. morsel_model_open_*() gives the caller one reference
 * and morsel_context_create() takes another, so morsel_model_close() may come before the
 * contexts are destroyed: the model is freed when the last of them goes (from any thread).
 *
 * Memory: the caller owns every buffer it passes in. morsel_model_open_memory() copies the
 * buffer; morsel_model_open_memory_ex(..., MORSEL_MEMORY_BORROW, ...) uses it in place instead.
 * Inference on a context allocates nothing; decoding an encoded image reuses a per-context
 * pixel buffer that grows only when a larger image arrives.
 *
 * ABI: public structs the caller allocates begin with `size_t struct_size`, which the caller
 * sets to sizeof(the struct) (or initialises with the MORSEL_*_INIT macro). The library reads
 * and writes only the fields that size covers, so fields added at the end in later versions do
 * not break programs built against this header (README.md, "Versions and ABI").
 */
#ifndef MORSEL_H
#define MORSEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MORSEL_VERSION_MAJOR 0
#define MORSEL_VERSION_MINOR 3
#define MORSEL_VERSION_PATCH 0
#define MORSEL_VERSION_STRING "0.3.0"
/* major * 10000 + minor * 100 + patch: compare with morsel_version_number() at run time. */
#define MORSEL_VERSION_NUMBER \
    (MORSEL_VERSION_MAJOR * 10000 + MORSEL_VERSION_MINOR * 100 + MORSEL_VERSION_PATCH)

/* MORSEL_*_INIT: a struct with struct_size set and every other field zero. */
#ifdef __cplusplus
#define MORSEL_STRUCT_INIT_(T) {sizeof(T)}
#else
#define MORSEL_STRUCT_INIT_(T) {.struct_size = sizeof(T)}
#endif

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

/* The version of the library actually loaded ("0.3.0" / MORSEL_VERSION_NUMBER of its build),
 * which may be newer than the header a program was compiled with. */
MORSEL_API const char *morsel_version(void);
MORSEL_API int morsel_version_number(void);

typedef struct morsel_model morsel_model;
typedef struct morsel_context morsel_context;

/* ---- models ---------------------------------------------------------------------------- */

/* Anything but a regular file (directory, FIFO, device) is refused without blocking. */
MORSEL_API morsel_status morsel_model_open_file(const char *path, morsel_model **out, morsel_error *err);
/* Copies data (size bytes): the caller may free it as soon as this returns. */
MORSEL_API morsel_status morsel_model_open_memory(const void *data, size_t size, morsel_model **out,
                                       morsel_error *err);
/* Drops the caller's reference; the model lives on while contexts created from it exist. */
MORSEL_API void morsel_model_close(morsel_model *model);

/* Options for opening a model. Zero-initialise, then set struct_size = sizeof(the struct):
 * fields added later are read only when the caller's struct_size covers them. */
typedef struct morsel_open_options {
    size_t struct_size;
    /* Kernel set: NULL or "" picks the best this CPU runs (or $MORSEL_ISA when set); "scalar",
     * "avx2", "avx512" force one (MORSEL_ERR_UNSUPPORTED when this CPU or build lacks it).
     * For tests and benchmarks. */
    const char *isa;
    /* Compute budget: multiply-accumulates plus pooling/resize work of one inference, summed
     * over the ops at load. 0: the default, 100 G (VGG16 at 224 needs 15.5 G, NASNetLarge at
     * 331 about 24 G). A file over it is refused with MORSEL_ERR_LIMIT. */
    uint64_t max_work;
    /* Memory budget of one context: activation arena + kernel scratch of one thread (each
     * extra thread adds its scratch). 0: the default, 1 GiB. MORSEL_ERR_LIMIT when over. */
    uint64_t max_memory_bytes;
    /* The pages the packed weights (most of a model's memory) live in, MORSEL_PAGES_*: HUGE
     * (0, the default) 2 MiB transparent huge pages where the kernel allows them, which every
     * inference streams faster (ResNet50V2 at 1 thread: 6 % faster than on 4 KiB pages), but
     * which on a VM whose host takes back free memory can cost several ms per MB to fault in
     * (ResNet50V2: 100-730 ms to load); SMALL ordinary 4 KiB pages, a steady few tenths of a
     * ms per MB. For a long-lived model, HUGE; for one-shot use, SMALL (the CLI's classify:
     * Xception end to end 490-650 -> 210-260 ms). */
    int pages;
} morsel_open_options;

#define MORSEL_PAGES_HUGE 0
#define MORSEL_PAGES_SMALL 1

#define MORSEL_DEFAULT_MAX_WORK 100000000000ull
#define MORSEL_DEFAULT_MAX_MEMORY_BYTES (1ull << 30)

MORSEL_API morsel_status morsel_model_open_file_ex(const char *path, const morsel_open_options *opt,
                                                   morsel_model **out, morsel_error *err);

/* How open_memory_ex treats the buffer, in the spirit of sqlite's SQLITE_TRANSIENT/STATIC:
 * COPY: the library copies it (the caller may free it at once).
 * BORROW: the library reads it in place for the model's whole life (until the last context
 * is destroyed), so it must stay valid and unchanged until then; it must be 64-byte aligned
 * (weights are read in place as floats), else MORSEL_ERR_ARGUMENT. */
#define MORSEL_MEMORY_COPY 0
#define MORSEL_MEMORY_BORROW 1
MORSEL_API morsel_status morsel_model_open_memory_ex(const void *data, size_t size, int mode,
                                                     const morsel_open_options *opt,
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
    size_t struct_size; /* sizeof(morsel_preprocess) */
    morsel_resize_filter filter;
    int center_crop;   /* 0: stretch to the input size; 1: Pillow ImageOps.fit centre crop */
    int bgr;           /* 1: feed channels in BGR order */
    float scale[3];
    float offset[3];
} morsel_preprocess;
#define MORSEL_PREPROCESS_INIT MORSEL_STRUCT_INIT_(morsel_preprocess)

typedef struct morsel_model_info {
    size_t struct_size;     /* sizeof(morsel_model_info) */
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
    uint64_t work;          /* what the compute budget counts (morsel_open_options.max_work) */
    /* Where opening this model spent its time, ms: reading or mapping the file, the checksums
     * (with the page faults that first touch the mapped file), parsing the records, checking
     * the graph, choosing kernels and packing weights, planning the arena. */
    double load_read_ms, load_crc_ms, load_parse_ms, load_check_ms, load_prepare_ms,
        load_plan_ms;
} morsel_model_info;
#define MORSEL_MODEL_INFO_INIT MORSEL_STRUCT_INIT_(morsel_model_info)

MORSEL_API morsel_status morsel_model_get_info(const morsel_model *model, morsel_model_info *info,
                                               morsel_error *err);

/* Label of class i, or NULL when out of range / the model has no labels. */
MORSEL_API const char *morsel_model_label(const morsel_model *model, int i);

/* One op of the planned graph, for `morsel info`. */
typedef struct morsel_op_info {
    size_t struct_size;      /* sizeof(morsel_op_info) */
    const char *type;        /* Morsel op name: "conv2d", "depthwise_conv2d", ... */
    const char *activation;  /* fused activation name: "linear", "relu6", ... */
    const char *name;        /* Keras layer name */
    const char *class_name;  /* Keras class name */
    int out_rank;
    int out_dims[4];
    uint64_t n_params;
    const char *kernel;      /* the microkernel chosen at load, e.g. "f32_dwconv3x3_s2_avx512" */
    uint64_t macs;           /* multiply-accumulates of one inference (conv, depthwise, dense) */
    uint64_t work;           /* macs, or the comparisons/taps of a pool or resize: the budget */
    double prepare_ms;       /* its kernel choice and weight packing at load */
} morsel_op_info;
#define MORSEL_OP_INFO_INIT MORSEL_STRUCT_INIT_(morsel_op_info)

MORSEL_API morsel_status morsel_model_get_op(const morsel_model *model, int i, morsel_op_info *info,
                                             morsel_error *err);

/* ---- contexts and inference ------------------------------------------------------------- */

/* The context holds a reference to the model (see Lifetimes above). */
MORSEL_API morsel_status morsel_context_create(const morsel_model *model, morsel_context **out,
                                    morsel_error *err);
/* Also drops the context's model reference (freeing the model if it was the last). */
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

/* Per-op timing for profiling: when on, each run records every op's wall time: from the end
 * of the op before it to the end of its last piece, whichever thread ran that. With several
 * threads, the first op's time also counts the input copy and the threads' start. */
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
    size_t struct_size;   /* sizeof(morsel_timings) */
    double decode_ms;     /* image decoding */
    double preprocess_ms; /* resize, crop, scaling */
    double inference_ms;  /* the network */
    double total_ms;
} morsel_timings;
#define MORSEL_TIMINGS_INIT MORSEL_STRUCT_INIT_(morsel_timings)

/* Classify one image. Fills top[0..*n_top) with the k best classes, best first
 * (*n_top = min(k, classes)). timings may be NULL (else its struct_size must be set).
 * classify_file refuses anything but a regular file, without blocking on a FIFO. */
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
 * (n_in = N*H*W*C, N >= 1); output receives N outputs back to back (n_out = N * output size).
 * A NaN or infinite input value is refused (MORSEL_ERR_ARGUMENT, naming its index) before
 * anything runs: max-pooling and ReLU would otherwise hide it in some outputs and not others. */
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
    size_t struct_size;         /* sizeof(morsel_decode_options) */
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
    /* Budgets against hostile images, both MORSEL_ERR_LIMIT when exceeded (0: the default).
     * max_decode_work: JPEG entropy-decoding work in pixel-scans, the stored width*height times
     * the scans read so far -- a progressive JPEG makes one pass over the whole image per scan
     * (encoders write about 10; a crafted file can hold thousands). Default 2 Gi: 32 scans of a
     * 64 Mpx image, 200 of a 10 Mpx photo. Checked as each scan starts, so decoding stops
     * there. (A JPEG with more than 1000 scans is refused whatever the budget.)
     * max_decode_memory: bytes one decode may hold: the decoded RGB, the codec's whole-image
     * buffers (a progressive JPEG's coefficients, an interlaced PNG's raw rows) and its row
     * buffers. Default 512 MiB. Set it to (memory limit) / (decoding workers) in a server. */
    uint64_t max_decode_work;
    uint64_t max_decode_memory;
} morsel_decode_options;
#define MORSEL_DECODE_OPTIONS_INIT MORSEL_STRUCT_INIT_(morsel_decode_options)

/* Decoding options of this context's classify_file / classify_encoded (NULL: the defaults).
 * MORSEL_ERR_ARGUMENT when a flag is not 0 or 1. */
MORSEL_API morsel_status morsel_context_set_decode_options(morsel_context *ctx,
                                                           const morsel_decode_options *opt,
                                                           morsel_error *err);

/* Overrides the model file's preprocessing for this context; NULL restores the model's own.
 * MORSEL_ERR_ARGUMENT (context unchanged) for a filter outside the enum, center_crop or bgr
 * other than 0/1, or a non-finite scale/offset. */
MORSEL_API morsel_status morsel_context_set_preprocess(morsel_context *ctx, const morsel_preprocess *pp,
                                                       morsel_error *err);

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
