/* The validated, planned model: what the loader builds from a .morsel file (weights/FORMAT.md)
 * and what the runner executes. Everything here has been checked once at load, so the runner
 * and the kernels trust it. */
#ifndef MORSEL_MODEL_H
#define MORSEL_MODEL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "abi.h"
#include "error.h"
#include "file_io.h"
#include "isa.h"
#include "kernels.h"
#include "morsel.h"

#define MF_MAX_INPUTS 8
#define MF_NO_TENSOR 0xFFFFFFFFu
/* Hard ceiling on a context's activation arena + scratch whatever the caller allows: 4 GiB, or
 * half the address space where size_t has 32 bits (there (size_t)4 << 30 wraps to 0, which
 * refused every model on armhf). */
#define MF_MAX_ARENA_BYTES                                                                      \
    (SIZE_MAX / 2 < ((uint64_t)4 << 30) ? (size_t)(SIZE_MAX / 2) : (size_t)((uint64_t)4 << 30))

enum mf_op_type {
    MF_OP_CONV2D = 1,
    MF_OP_DEPTHWISE_CONV2D = 2,
    MF_OP_DENSE = 3,
    MF_OP_AFFINE = 4,
    MF_OP_ADD = 5,
    MF_OP_MULTIPLY = 6,
    MF_OP_GLOBAL_AVG_POOL = 7,
    MF_OP_AVG_POOL = 8,
    MF_OP_MAX_POOL = 9,
    MF_OP_PAD = 10,
    MF_OP_RESHAPE = 11,
    MF_OP_ACTIVATION = 12,
    MF_OP_CONCAT = 13,
    MF_OP_GLOBAL_MAX_POOL = 14,
    MF_OP_RESIZE = 15, /* format 1.1 */
    MF_OP_CROP = 16,   /* format 1.1 */
    MF_OP_GROUPED_CONV2D = 17,   /* format 1.2 */
    MF_OP_LAYER_NORM = 18,       /* format 1.2 */
    MF_OP_CONV2D_TRANSPOSE = 19, /* format 1.2 */
    MF_OP_COUNT_
};

typedef struct mf_tensor {
    const char *name;
    int is_const;
    uint32_t rank;
    uint32_t dims[4];
    size_t count;        /* elements */
    const float *data;   /* constants: in place inside the file image */
    size_t arena_offset; /* activations: byte offset in the context arena */
    int first_use, last_use; /* op indices, for the memory plan */
} mf_tensor;

struct mf_op_def;

/* The variant an op chose in prepare; which fields are set depends on the op. */
typedef struct mf_variant {
    mk_dwconv_fn dwconv;
    mk_gemm_fn gemm;
    mk_conv_fn conv;
    mk_wino2_fn wino2;   /* CONV2D by Winograd: tile rows x output channels, not pixels */
    mk_pool_range_fn pool;
    mk_gpool_fn gpool;
    mk_gsum_fn gsum;     /* GLOBAL_AVG_POOL: chunk sums, when the ISA has them */
    mk_add_fn add;
    mk_multiply_fn multiply;
    mk_affine_range_fn affine;
    mk_act_fn act;       /* the tail activation (tact), vector form; NULL: reference */
    mk_softmax_fn softmax;
    int gemm_nr, gemm_mr; /* panel width of the packed weights, rows per register tile */
} mf_variant;

/* Weights an op's prepare wants packed: fn(K, N, w, dst) writes `floats` floats. */
typedef struct mf_pack_request {
    mk_gemm_pack_fn fn;
    const float *w;
    int K, N;
    size_t floats;
} mf_pack_request;

typedef struct mf_op {
    uint32_t type;
    const struct mf_op_def *def;
    const char *name, *class_name;
    mk_activation act;
    uint32_t n_in;
    uint32_t in[MF_MAX_INPUTS];
    uint32_t out;
    int32_t iattr[12];
    float fattr[4];
    mk_window win;       /* conv/depthwise/pool geometry, derived at validation */
    size_t scratch;      /* floats of kernel scratch this op needs, per thread */
    uint64_t macs;       /* multiply-accumulates per inference */
    uint64_t work;       /* macs, or comparisons/taps for pools and resize: the budget unit */
    /* Chosen in prepare. */
    mf_variant v;
    mk_activation kact;  /* what the SIMD kernel fuses (LINEAR or the clamp family) */
    mk_activation tact;  /* what runs after it over the same range (LINEAR: nothing) */
    float *packed;       /* weights packed at load, inside the model's packed block */
    mf_pack_request pack; /* what prepare asked mf_pack_weights to pack (fn NULL: nothing) */
    size_t act_ch;       /* rows of the output's last axis, for a softmax tact */
    int serial;          /* runs whole on thread 0 (reference kernels, softmax) */
    /* Parts per thread when several run it (mf_execute): above 1, the op's work is cut into
     * threads x parts pieces that idle threads take from busy ones; 0 or 1, one static share
     * each (ops whose pieces would repeat work: the fused expand, im2col by columns, GEMMs
     * whose weights overflow L2, Winograd). */
    int parts;
    int folded;          /* merged into the op that reads it (a zero PAD, a fused expand): skipped */
    /* DEPTHWISE_CONV2D only: the pointwise conv whose output it reads, computed inside this op
     * band by band (mf_fuse_expand_dw), so that output never exists whole; NULL otherwise. */
    const struct mf_op *pre;
    int band_rows;       /* rows of pre's output held per band */
    /* DEPTHWISE_CONV2D only: the pointwise conv that alone reads its output, run on each band
     * of output rows while they are in cache (mf_fuse_dw_project); this op then writes that
     * conv's output (or its fused add's). proj_rows: output rows per band. NULL otherwise. */
    const struct mf_op *proj;
    int proj_rows;
    /* CONV2D only: the residual ADD this pointwise conv also computes, over each thread's rows
     * just written (mf_fuse_residual_add); it then writes the add's output, and post_skip is
     * the add's other input. NULL otherwise. */
    const struct mf_op *post;
    uint32_t post_skip;
    /* CONV2D only: the squeeze-and-excitation ops whose gated output it reads, computed inside
     * this op (mf_fuse_se): the reduce and excite GEMMs on se_in (the pooled [C]), then the
     * multiply of its input by that gate, se_band rows at a time. NULL otherwise. */
    const struct mf_op *se_mul, *se_reduce, *se_excite;
    uint32_t se_in;
    int se_band;
    /* ... and when se_in holds chunk sums rather than the mean, the pool that wrote them. */
    const struct mf_op *se_pool;
    /* GLOBAL_AVG_POOL only: above 0, the op writes `chunks` rows of channel sums in double
     * (fixed row chunks of its input, whichever thread runs each) for the SE conv that reads
     * it to finish the mean (mf_fuse_se). */
    int chunks;
    char kernel[48];     /* e.g. "f32_dwconv3x3_s2_avx512", for morsel info */
    double prepare_ms;   /* its prepare at load (mostly weight packing), for morsel bench */
} mf_op;

/* The phases of opening a model, timed once (morsel_model_info.load_*_ms, morsel bench). */
enum { MF_LOAD_READ, MF_LOAD_CRC, MF_LOAD_PARSE, MF_LOAD_CHECK, MF_LOAD_PREPARE, MF_LOAD_PLAN,
       MF_LOAD_PHASES_ };

struct morsel_model {
    /* References: the opener's and one per context; the last release frees the model. */
    int refs;             /* only through __atomic builtins */
    /* The file image: either our own mmap/malloc copy or the caller's buffer. */
    const uint8_t *base;
    size_t size;
    void *owned;          /* non-NULL when we must release `base` */
    int owned_is_mmap;

    uint16_t version_major, version_minor;
    mf_tensor *tensors;
    uint32_t n_tensors;
    mf_op *ops;
    uint32_t n_ops;
    uint32_t input, output, logits;
    uint32_t output_kind;
    const char **labels;
    uint32_t n_labels;
    morsel_preprocess preprocess;
    const char *name, *source, *keras_version, *exporter_version, *source_format, *license;

    /* SELFTEST section, when present. */
    const float *st_input, *st_output;
    float st_tolerance;

    uint64_t max_work, max_memory; /* budgets from morsel_open_options, resolved */
    int small_pages;      /* morsel_open_options.pages: the packed block in 4 KiB pages */
    uint64_t work;        /* sum of the ops' work */
    size_t arena_bytes;   /* planned at load */
    size_t scratch_floats; /* per thread */
    uint64_t n_params;
    mf_isa_kernels isa;
    void *packed_block;   /* every op's packed weights (mf_pack_weights), mapped_bytes long */
    size_t packed_mapped;
    double load_ms[MF_LOAD_PHASES_];
};

/* Parses and validates the file image (already in memory). Fills everything but the plan. */
morsel_status mf_parse(morsel_model *m, morsel_error *err);

/* Takes / drops a reference (context create / destroy, model close). */
void mf_model_retain(morsel_model *m);
void mf_model_release(morsel_model *m);

/* Computes and checks every op's output shape from its inputs and attributes. */
morsel_status mf_validate_ops(morsel_model *m, morsel_error *err);

/* Assigns arena offsets to activations by liveness; sets arena_bytes and scratch_floats. */
morsel_status mf_plan(morsel_model *m, morsel_error *err);

/* Chooses every op's kernel variant for m->isa and packs weights (after validation). */
morsel_status mf_prepare(morsel_model *m, morsel_error *err);

/* Packs what the prepares asked for (op->pack) into one block, op->packed pointing in it. */
morsel_status mf_pack_weights(morsel_model *m, morsel_error *err);
void mf_pack_free(morsel_model *m);

/* Merges each zero PAD that feeds only a conv/depthwise into that op's window. */
void mf_fold_pads(morsel_model *m);
/* After prepare, exact rewrites of the graph: a plain reshape read only by convs and dense
 * layers is folded (its readers read its input); a pointwise conv runs inside the depthwise
 * conv that alone reads its large output (MobileNetV2's expand -> depthwise); a residual add
 * runs inside the pointwise conv that feeds it. MORSEL_FUSION=0 in the environment turns them
 * off, for tests and benchmarks. */
void mf_fold_reshapes(morsel_model *m);
void mf_fuse_expand_dw(morsel_model *m);
void mf_fuse_residual_add(morsel_model *m);
void mf_fuse_se(morsel_model *m);
void mf_fuse_dw_project(morsel_model *m);
/* MORSEL_PARTS=N in the environment sets every split op's pieces per thread (mf_op.parts) to N,
 * 1 meaning a static split: for A/B runs. */
void mf_set_parts(morsel_model *m);

/* Thread ith of nth runs pieces of every op and waits for the op's other pieces before the next
 * (ggml's ith/nth scheme: one dispatch per inference, not per op); `barrier` carries the
 * mutex and condition those waits sleep on. `barrier` is NULL when nth == 1.
 * op_ms, when non-NULL, receives each op's wall time when nth == 1; when nth > 1, the
 * time (mf_now_ms) at which each op's last piece ended, written by the thread that ran it, and
 * mf_op_times_from_ends turns those into per-op times once every thread has returned;
 * claims holds nth + 1 rows of mf_claims_stride(m) counters, zero at the start of each
 * inference (NULL when nth == 1). */
struct mf_barrier;
void mf_execute(const morsel_model *m, uint8_t *arena, float *scratch, int ith, int nth,
                struct mf_barrier *barrier, atomic_uint *claims, double *op_ms);
size_t mf_claims_stride(const morsel_model *m);
/* op_ms from end times (as mf_execute leaves them for nth > 1) to per-op times, the first op
 * timed from `start`; folded ops keep 0. */
void mf_op_times_from_ends(const morsel_model *m, double start, double *op_ms);

const char *mf_op_type_name(uint32_t type);
const char *mf_activation_name(const mk_activation *a);

/* CLOCK_MONOTONIC in milliseconds. */
double mf_now_ms(void);

/* Keeps OpenBLAS from starting threads of its own (see blas.c). */
void mf_blas_single_thread(void);

/* zlib-compatible CRC-32, chainable: mf_crc32(mf_crc32(0, a), b) is the CRC of a then b. */
uint32_t mf_crc32(uint32_t crc, const uint8_t *p, size_t n);

#endif
