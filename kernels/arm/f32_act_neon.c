/* Activations and softmax, NEON (AArch64 only: the range reduction needs FRINTN and softmax's
 * sum FCVTL to double; on ARMv7 these ops run the scalar reference). The algorithms are those
 * of kernels/x86/f32_act_avx2.c, 4 floats a vector: e^x as 2^n e^r with r = x - n ln2 in two
 * parts and a degree-7 polynomial for expm1(r); 2^n built in the exponent field, in two
 * factors where the result may be subnormal; erfc from a fitted rational form. The tests hold
 * them to 4 ulps of glibc (GELU 8). Clamp-family comparisons are the reference's. */
#if defined(__aarch64__)
#include <math.h>

#include "microkernels.h"
#include "neon_util.h"

#define LN2_HI 0.693147182f
#define LN2_LO -1.90465421e-09f
#define LOG2E 1.44269502f

typedef float32x4_t vf;

static inline vf splat(float v)
{
    return vdupq_n_f32(v);
}

static inline vf or_sign(vf x, vf s) /* x with the sign bits of s or'ed in */
{
    return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(x),
                                           vandq_u32(vreinterpretq_u32_f32(s),
                                                     vdupq_n_u32(0x80000000u))));
}

static inline vf neg_abs(vf x)
{
    return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u)));
}

static inline vf pow2i(int32x4_t n)
{
    return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n, vdupq_n_s32(127)), 23));
}

static inline vf expm1_poly(vf r)
{
    vf q = splat(1.0f / 5040.0f);
    q = vfmaq_f32(splat(1.0f / 720.0f), q, r);
    q = vfmaq_f32(splat(1.0f / 120.0f), q, r);
    q = vfmaq_f32(splat(1.0f / 24.0f), q, r);
    q = vfmaq_f32(splat(1.0f / 6.0f), q, r);
    q = vfmaq_f32(splat(0.5f), q, r);
    return vfmaq_f32(r, q, vmulq_f32(r, r));
}

static inline vf reduce(vf x, vf *n)
{
    *n = vrndnq_f32(vmulq_f32(x, splat(LOG2E)));
    vf r = vfmsq_f32(x, *n, splat(LN2_HI));
    return vfmsq_f32(r, *n, splat(LN2_LO));
}

/* e^x for x <= 0 (NaN stays NaN through the polynomial). */
static inline vf exp_neg(vf x)
{
    vf n, r = reduce(vmaxq_f32(splat(-104.0f), x), &n);
    int32x4_t ni = vcvtq_s32_f32(n), n1 = vshrq_n_s32(ni, 1);
    vf p = vaddq_f32(splat(1.0f), expm1_poly(r));
    return vmulq_f32(vmulq_f32(p, pow2i(n1)), pow2i(vsubq_s32(ni, n1)));
}

static inline vf expm1_neg(vf x)
{
    vf xc = vminq_f32(splat(0.0f), vmaxq_f32(splat(-30.0f), x));
    vf n, r = reduce(xc, &n);
    vf s = pow2i(vcvtq_s32_f32(n));
    vf y = vfmaq_f32(vsubq_f32(s, splat(1.0f)), s, expm1_poly(r));
    return or_sign(y, x); /* -0 stays -0 */
}

static inline vf relu(vf x, const mk_activation *a)
{
    nu_clamp c = nu_clamp_of(a);
    return nu_apply(x, &c);
}

static inline vf sigmoid(vf x, const mk_activation *a)
{
    (void)a;
    vf e = exp_neg(neg_abs(x));
    vf num = vbslq_f32(vcltq_f32(x, splat(0.0f)), e, splat(1.0f));
    return vdivq_f32(num, vaddq_f32(splat(1.0f), e));
}

static inline vf swish(vf x, const mk_activation *a)
{
    (void)a;
    vf e = exp_neg(neg_abs(x));
    vf num = vbslq_f32(vcltq_f32(x, splat(0.0f)), vmulq_f32(x, e), x);
    return vdivq_f32(num, vaddq_f32(splat(1.0f), e));
}

static inline vf tanh_(vf x, const mk_activation *a)
{
    (void)a;
    vf t = expm1_neg(vmulq_f32(neg_abs(x), splat(2.0f)));
    vf y = vdivq_f32(vsubq_f32(splat(0.0f), t), vaddq_f32(splat(2.0f), t));
    return or_sign(y, x);
}

static inline vf elu(vf x, const mk_activation *a)
{
    return vbslq_f32(vcgtq_f32(x, splat(0.0f)), x, vmulq_f32(splat(a->alpha), expm1_neg(x)));
}

static inline vf hard_sigmoid(vf x, const mk_activation *a)
{
    (void)a;
    vf v = nu_below(nu_pos(vaddq_f32(x, splat(3.0f))), splat(6.0f));
    return vdivq_f32(v, splat(6.0f));
}

static inline vf hard_sigmoid_k2(vf x, const mk_activation *a)
{
    (void)a;
    vf v = vaddq_f32(vmulq_f32(splat(0.2f), x), splat(0.5f));
    return nu_below(nu_pos(v), splat(1.0f));
}

static inline vf erfc_pos(vf a)
{
    static const float c[11] = {2.605343610e-02f,  -2.002211809e-01f, 6.165238619e-01f,
                                -9.318976998e-01f, 6.525125504e-01f,  -2.329096943e-01f,
                                2.777037323e-01f,  2.253834158e-01f,  2.849701047e-01f,
                                2.818741202e-01f,  7.362971246e-06f};
    a = vminq_f32(splat(11.0f), a);
    vf t = vdivq_f32(splat(1.0f), vfmaq_f32(splat(1.0f), a, splat(0.5f)));
    vf g = splat(c[0]);
    for (int i = 1; i < 11; i++)
        g = vfmaq_f32(splat(c[i]), g, t);
    vf p = vmulq_f32(a, a), e = vnegq_f32(vfmsq_f32(p, a, a)); /* a*a - p, exactly */
    return vmulq_f32(exp_neg(vsubq_f32(splat(0.0f), p)), vfmsq_f32(g, g, e));
}

static inline vf gelu(vf x, const mk_activation *a)
{
    (void)a;
    vf z = vmulq_f32(vsubq_f32(splat(0.0f), x), splat(0.70710678118654752f));
    vf ec = erfc_pos(vabsq_f32(z));
    ec = vbslq_f32(vcltq_f32(z, splat(0.0f)), vsubq_f32(splat(2.0f), ec), ec);
    return vmulq_f32(vmulq_f32(splat(0.5f), x), ec);
}

#define MAP(fn)                                                                                 \
    do {                                                                                        \
        size_t i = i0;                                                                          \
        for (; i + 4 <= i1; i += 4)                                                             \
            vst1q_f32(x + i, fn(vld1q_f32(x + i), a));                                          \
        if (i < i1)                                                                             \
            nu_store_n(x + i, fn(nu_load_n(x + i, (int)(i1 - i)), a), (int)(i1 - i));           \
    } while (0)

void mk_f32_act_neon(const mk_activation *a, float *x, size_t i0, size_t i1)
{
    switch (a->code) {
    case MK_ACT_RELU: MAP(relu); return;
    case MK_ACT_SIGMOID: MAP(sigmoid); return;
    case MK_ACT_TANH: MAP(tanh_); return;
    case MK_ACT_SWISH: MAP(swish); return;
    case MK_ACT_ELU: MAP(elu); return;
    case MK_ACT_HARD_SIGMOID: MAP(hard_sigmoid); return;
    case MK_ACT_HARD_SIGMOID_K2: MAP(hard_sigmoid_k2); return;
    case MK_ACT_GELU: MAP(gelu); return;
    default: return;
    }
}

/* As the reference: row max, exps summed in double, one scale by the rounded reciprocal. */
void mk_f32_softmax_neon(float *x, size_t ch, size_t r0, size_t r1)
{
    size_t body = ch & ~(size_t)3;
    int tail = (int)(ch - body);
    for (size_t r = r0; r < r1; r++) {
        float *row = x + r * ch;
        float mx = row[0];
        if (body) {
            vf vm = vld1q_f32(row);
            for (size_t i = 4; i < body; i += 4)
                vm = nu_max_ref(vld1q_f32(row + i), vm);
            mx = vmaxvq_f32(vm);
        }
        for (size_t i = body; i < ch; i++)
            mx = row[i] > mx ? row[i] : mx;
        vf vmx = splat(mx);
        float64x2_t s = vdupq_n_f64(0.0);
        for (size_t i = 0; i < body; i += 4) {
            vf e = exp_neg(vsubq_f32(vld1q_f32(row + i), vmx));
            vst1q_f32(row + i, e);
            s = vaddq_f64(s, vcvt_f64_f32(vget_low_f32(e)));
            s = vaddq_f64(s, vcvt_high_f64_f32(e));
        }
        double sum = vaddvq_f64(s);
        if (tail) {
            float t[4];
            vst1q_f32(t, exp_neg(vsubq_f32(nu_load_n(row + body, tail), vmx)));
            for (int i = 0; i < tail; i++) {
                row[body + (size_t)i] = t[i];
                sum += (double)t[i];
            }
        }
        vf inv = splat((float)(1.0 / sum));
        for (size_t i = 0; i < body; i += 4)
            vst1q_f32(row + i, vmulq_f32(vld1q_f32(row + i), inv));
        if (tail)
            nu_store_n(row + body, vmulq_f32(nu_load_n(row + body, tail), inv), tail);
    }
}
#endif
