/* Add, multiply (with broadcast gates) and affine, NEON: kernels/x86/f32_eltwise_avx2.c with
 * 4 lanes and lane-wise tails. The references' arithmetic in their order (no fused
 * multiply-add in affine), so bit-identical to them. Activations other than the clamp family
 * run afterwards over the same range. */
#include "microkernels.h"
#include "neon_util.h"

static void finish(const mk_activation *a, float *y, size_t i0, size_t i1)
{
    if (a->code == MK_ACT_LINEAR || a->code == MK_ACT_RELU || a->code == MK_ACT_SOFTMAX)
        return;
#if defined(__aarch64__)
    mk_f32_act_neon(a, y, i0, i1);
#else
    mk_activation_ref(a, y + i0, i1 - i0, i1 - i0);
#endif
}

void mk_f32_add_neon(int n, const float *const *xs, const mk_activation *act, float *y,
                     size_t i0, size_t i1)
{
    nu_clamp e = nu_clamp_of(act);
    size_t i = i0;
    for (; i + 4 <= i1; i += 4) {
        float32x4_t s = vld1q_f32(xs[0] + i);
        for (int k = 1; k < n; k++)
            s = vaddq_f32(s, vld1q_f32(xs[k] + i));
        vst1q_f32(y + i, nu_apply(s, &e));
    }
    if (i < i1) {
        int m = (int)(i1 - i);
        float32x4_t s = nu_load_n(xs[0] + i, m);
        for (int k = 1; k < n; k++)
            s = vaddq_f32(s, nu_load_n(xs[k] + i, m));
        nu_store_n(y + i, nu_apply(s, &e), m);
    }
    finish(act, y, i0, i1);
}

static void mul_run(int n, const float *const *p, const nu_clamp *e, float *y, size_t len)
{
    size_t j = 0;
    for (; j + 4 <= len; j += 4) {
        float32x4_t s = vld1q_f32(p[0] + j);
        for (int k = 1; k < n; k++)
            s = vmulq_f32(s, vld1q_f32(p[k] + j));
        vst1q_f32(y + j, nu_apply(s, e));
    }
    if (j < len) {
        int m = (int)(len - j);
        float32x4_t s = nu_load_n(p[0] + j, m);
        for (int k = 1; k < n; k++)
            s = vmulq_f32(s, nu_load_n(p[k] + j, m));
        nu_store_n(y + j, nu_apply(s, e), m);
    }
}

/* Runs over which no broadcast input wraps: one row of C per run for a [C] gate. */
void mk_f32_multiply_neon(int n, const float *const *xs, const size_t *counts,
                          const mk_activation *act, float *y, size_t i0, size_t i1)
{
    nu_clamp e = nu_clamp_of(act);
    const float *p[8]; /* n <= 8 in the file format */
    for (size_t i = i0; i < i1;) {
        size_t run = i1 - i;
        for (int k = 0; k < n; k++) {
            size_t off = i % counts[k];
            p[k] = xs[k] + off;
            if (counts[k] - off < run)
                run = counts[k] - off;
        }
        mul_run(n, p, &e, y + i, run);
        i += run;
    }
    finish(act, y, i0, i1);
}

void mk_f32_affine_neon(int c, const float *x, const float *scale, const float *shift,
                        const mk_activation *act, float *y, size_t i0, size_t i1)
{
    nu_clamp e = nu_clamp_of(act);
    size_t cc = (size_t)c;
    for (size_t r = i0; r < i1; r += cc) {
        size_t len = i1 - r < cc ? i1 - r : cc, j = 0;
        for (; j + 4 <= len; j += 4) {
            float32x4_t v = vmulq_f32(vld1q_f32(x + r + j), vld1q_f32(scale + j));
            vst1q_f32(y + r + j, nu_apply(vaddq_f32(v, vld1q_f32(shift + j)), &e));
        }
        if (j < len) {
            int m = (int)(len - j);
            float32x4_t v = vmulq_f32(nu_load_n(x + r + j, m), nu_load_n(scale + j, m));
            nu_store_n(y + r + j, nu_apply(vaddq_f32(v, nu_load_n(shift + j, m)), &e), m);
        }
        if (act->code == MK_ACT_SOFTMAX && len == cc) {
#if defined(__aarch64__)
            mk_f32_softmax_neon(y + r, cc, 0, 1);
#else
            mk_activation_ref(act, y + r, cc, cc);
#endif
        }
    }
    finish(act, y, i0, i1);
}
