/* Fused Bernoulli log-likelihood rows for the decoder head of streamvae's MLP VAE.
 *
 * For logits l (R rows of D) and images x (B rows of D; row r of l belongs to image r % B):
 *
 *     log p(x | z_r) = sum_d x_d l_d - softplus(l_d)
 *                    = sum_d x_d l_d - max(l_d, 0) - log1p(exp(-|l_d|))
 *
 * One pass over the logits, 16 lanes at a time. The log1p terms are summed as logs of per-lane
 * products (each factor 1 + exp(-|l|) is in [1, 2], so a product of 96 stays a normal float): one
 * vectorised log per 16 x 96 logits, no horizontal reduction until the end of the row. With `grad` non-null it also writes
 * d log p / d l = x - sigmoid(l) over the logits (in place when grad == l), which is all the
 * backward pass needs.
 *
 * Also the hidden layers' bias + activation (act_forward) and their derivatives (act_backward).
 * Each pass is written once (the second half of this file) and compiled twice: for fp32 tensors and,
 * with the file including itself, for bf16 ones (the *_bf16 functions, precision=bf16).
 * Compiled at first use by streamvae.native (gcc -O3 -march=native -ffast-math -fopenmp); the
 * OpenMP runtime is the one torch already loaded (same soname), so rows are split over torch's
 * threads. Plain C, no torch headers: the Python side (native/clib.py) passes data pointers.
 * No random numbers here: the model's noise is always drawn by torch.randn with the caller's
 * generator, so both paths see the same draws.
 */
#ifndef STREAMVAE_PASS_BODY  /* first pass over this file: the shared helpers, then the body twice */
#define STREAMVAE_PASS_BODY
#include <math.h>
#include <stdint.h>

/* exp(v) for v <= 0, inlined so that the loops vectorise: exp(v) = 2^n exp(r), n = round(v / ln 2),
 * |r| <= ln 2 / 2, exp(r) by its degree-6 Taylor polynomial (relative error below 2e-7, about 1 ulp
 * of float). Below -87 the result is flushed to 0 (then 1 + exp(v) == 1 in float anyway). */
static inline float exp_nonpos(float v)
{
    v = fmaxf(v, -87.f);
    float n = rintf(v * 1.44269504088896341f);
    float r = fmaf(n, -0.693359375f, v);
    r = fmaf(n, 2.12194440e-4f, r);                /* r = v - n ln 2 in two steps (Cody-Waite) */
    float p = 1.f / 720.f;
    p = fmaf(p, r, 1.f / 120.f);
    p = fmaf(p, r, 1.f / 24.f);
    p = fmaf(p, r, 1.f / 6.f);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.f);
    p = fmaf(p, r, 1.f);
    union { float f; int32_t i; } scale;
    scale.i = ((int32_t)n + 127) << 23;            /* 2^n, n in [-126, 0] */
    return p * scale.f;
}

/* log(u) for a positive normal float u, inlined so that loops vectorise: u = 2^e m, m in [sqrt(1/2), sqrt(2)), and
 * log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, by its odd series to s^9 (error < 1e-9). */
static inline float log_pos(float u)
{
    union { float f; int32_t i; } v = {u};
    int32_t e = ((v.i >> 23) & 0xff) - 127;
    v.i = (v.i & 0x007fffff) | 0x3f800000;          /* m in [1, 2) */
    float m = v.f;
    int big = m > 1.41421356f;
    m = big ? 0.5f * m : m;
    e += big;
    float s = (m - 1.f) / (m + 1.f), s2 = s * s;
    float p = fmaf(s2, 1.f / 9.f, 1.f / 7.f);
    p = fmaf(s2, p, 1.f / 5.f);
    p = fmaf(s2, p, 1.f / 3.f);
    p = fmaf(s2, p, 1.f);
    return fmaf((float)e, 0.693147180559945f, 2.f * s * p);
}

#define LANES 16   /* independent partial sums and products per row (one AVX-512 vector) */
#define CHUNKS 96  /* products of at most 96 factors in [1, 2] per lane before taking their log */

/* bf16 (precision=bf16): tensors stored as uint16_t, the upper half of an fp32, so that the decoder's
 * large activations and logits move half the bytes. Arithmetic is fp32 in registers; sums (the
 * per-image likelihood) stay fp32; results are rounded to bf16 (to nearest, ties to even) only where
 * they are stored as bf16. fp32 loads and stores are the identity. */
static inline float bf16_load(uint16_t h)
{
    union { uint32_t i; float f; } v;
    v.i = (uint32_t)h << 16;
    return v.f;
}

static inline uint16_t bf16_store(float f)
{
    union { float f; uint32_t i; } v = {f};
    uint32_t u = v.i;
    u += 0x7fffu + ((u >> 16) & 1u);  /* round to nearest even (finite inputs) */
    return (uint16_t)(u >> 16);
}

static inline float f32_load(float v) { return v; }
static inline float f32_store(float v) { return v; }

/* The passes, once per element type: T the stored type, LOAD / STORE convert to and from fp32 in
 * registers, NAME(f) the function's name for this type. */
#define T float
#define LOAD f32_load
#define STORE f32_store
#define NAME(f) f
#include __FILE__
#undef T
#undef LOAD
#undef STORE
#undef NAME

#define T uint16_t
#define LOAD bf16_load
#define STORE bf16_store
#define NAME(f) f##_bf16
#include __FILE__

#else /* ------------------------------------------------------------------------------------------
 * The body, included once per type (see above). */

static inline float NAME(row_loglik)(const T *l, const float *bias, const float *x, T *g, int64_t d)
{
    float lin[LANES], prod[LANES], logs[LANES];  /* x l - max(l, 0); products of (1 + exp(-|l|)) */
    for (int k = 0; k < LANES; ++k) { lin[k] = 0.f; prod[k] = 1.f; logs[k] = 0.f; }
    int64_t full = d - d % LANES, chunks = 0;
    for (int64_t j = 0; j < full; j += LANES) {
        if (g) {
#pragma omp simd
            for (int k = 0; k < LANES; ++k) {
                int64_t i = j + k;
                float v = LOAD(l[i]) + bias[i];
                float e = exp_nonpos(-fabsf(v));
                float inv = 1.f / (1.f + e);
                float sig = v >= 0.f ? inv : e * inv; /* sigmoid(v) */
                lin[k] += x[i] * v - fmaxf(v, 0.f);
                prod[k] *= 1.f + e;
                g[i] = STORE(x[i] - sig);
            }
        } else {
#pragma omp simd
            for (int k = 0; k < LANES; ++k) {
                int64_t i = j + k;
                float v = LOAD(l[i]) + bias[i];
                lin[k] += x[i] * v - fmaxf(v, 0.f);
                prod[k] *= 1.f + exp_nonpos(-fabsf(v));
            }
        }
        if (++chunks == CHUNKS) {
#pragma omp simd
            for (int k = 0; k < LANES; ++k) { logs[k] += log_pos(prod[k]); prod[k] = 1.f; }
            chunks = 0;
        }
    }
    float total = 0.f;
#pragma omp simd reduction(+ : total)
    for (int k = 0; k < LANES; ++k) total += lin[k] - logs[k] - log_pos(prod[k]);
    for (int64_t i = full; i < d; ++i) {  /* the last d % LANES logits */
        float v = LOAD(l[i]) + bias[i];
        float e = exp_nonpos(-fabsf(v));
        total += x[i] * v - fmaxf(v, 0.f) - log_pos(1.f + e);
        if (g) g[i] = STORE(x[i] - (v >= 0.f ? 1.f / (1.f + e) : e / (1.f + e)));
    }
    return total;
}

/* out[r] = log p(x_{r % b} | l_r + bias) for r < rows; l has row stride ldl, x row stride ldx, grad
 * (written with the logits' layout, may equal l) ldl. bias, x and out are fp32; bias has d entries. */
void NAME(bernoulli_loglik)(const T *l, int64_t ldl, const float *bias, const float *x, int64_t ldx,
                            int64_t b, int64_t rows, int64_t d, float *out, T *grad, int nthreads)
{
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        out[r] = NAME(row_loglik)(l + r * ldl, bias, x + (r % b) * ldx, grad ? grad + r * ldl : 0, d);
    }
}

/* Forward of a hidden layer after its matmul: out[r, i] = act(a[r, i] + bias[i]) for i < n and, when
 * ones is set, out[r, n] = 1 (the column that lets the next products carry the bias terms). kind: 0
 * identity, 1 tanh (|t| = (1 - e) / (1 + e), e = exp(-2|v|)), 2 relu. a and out may alias; bias fp32. */
void NAME(act_forward)(const T *a, int64_t lda, const float *bias, T *out, int64_t ldo, int64_t rows,
                       int64_t n, int kind, int ones, int nthreads)
{
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const T *ar = a + r * lda;
        T *orow = out + r * ldo;
        if (kind == 1) {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) {
                float v = LOAD(ar[i]) + bias[i];
                float e = exp_nonpos(-2.f * fabsf(v));
                float t = (1.f - e) / (1.f + e);
                orow[i] = STORE(v < 0.f ? -t : t);
            }
        } else if (kind == 2) {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) orow[i] = STORE(fmaxf(LOAD(ar[i]) + bias[i], 0.f));
        } else {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) orow[i] = STORE(LOAD(ar[i]) + bias[i]);
        }
        if (ones) orow[n] = STORE(1.f);
    }
}

/* Backward of an activation, in place: g[r, i] *= s_r * act'(pre-activation), written with the
 * activation's output y: tanh' = 1 - y^2, relu' = [y > 0]. kind: 0 identity, 1 tanh, 2 relu.
 * scale (per row, fp32, nullable) is the upstream per-row factor. */
void NAME(act_backward)(T *g, int64_t ldg, const T *y, int64_t ldy, const float *scale, int64_t rows,
                        int64_t n, int kind, int nthreads)
{
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        T *gr = g + r * ldg;
        const T *yr = y + r * ldy;
        float s = scale ? scale[r] : 1.f;
        if (kind == 1) {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) {
                float yv = LOAD(yr[i]);
                gr[i] = STORE(LOAD(gr[i]) * (s * (1.f - yv * yv)));
            }
        } else if (kind == 2) {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) gr[i] = LOAD(yr[i]) > 0.f ? STORE(LOAD(gr[i]) * s) : 0;
        } else {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) gr[i] = STORE(LOAD(gr[i]) * s);
        }
    }
}

#endif
