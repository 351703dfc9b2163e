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
 * Compiled at first use by streamvae.native (gcc -O3 -march=native -ffast-math -fopenmp); the
 * OpenMP runtime is the one torch already loaded (same soname), so rows are split over torch's
 * threads. Plain C, no torch headers: the Python side (native/clib.py) passes data pointers.
 * No random numbers here: the model's noise is always drawn by torch.randn with the caller's
 * generator, so both paths see the same draws.
 */
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

static inline float row_loglik(const float *l, const float *bias, const float *x, float *g, int64_t d)
{
    float lin[LANES], prod[LANES], logs[LANES];  /* x l - max(l, 0); products of (1 + exp(-|l|)) */
    for (int k = 0; k < LANES; ++k) { lin[k] = 0.f; prod[k] = 1.f; logs[k] = 0.f; }
    int64_t full = d - d % LANES, chunks = 0;
    for (int64_t j = 0; j < full; j += LANES) {
        if (g) {
#pragma omp simd
            for (int k = 0; k < LANES; ++k) {
                int64_t i = j + k;
                float v = l[i] + bias[i];
                float e = exp_nonpos(-fabsf(v));
                float inv = 1.f / (1.f + e);
                float sig = v >= 0.f ? inv : e * inv; /* sigmoid(v) */
                lin[k] += x[i] * v - fmaxf(v, 0.f);
                prod[k] *= 1.f + e;
                g[i] = x[i] - sig;
            }
        } else {
#pragma omp simd
            for (int k = 0; k < LANES; ++k) {
                int64_t i = j + k;
                float v = l[i] + bias[i];
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
        float v = l[i] + bias[i];
        float e = exp_nonpos(-fabsf(v));
        total += x[i] * v - fmaxf(v, 0.f) - log_pos(1.f + e);
        if (g) g[i] = x[i] - (v >= 0.f ? 1.f / (1.f + e) : e / (1.f + e));
    }
    return total;
}

/* out[r] = log p(x_{r % b} | l_r + bias) for r < rows; l has row stride ldl, x row stride ldx, grad
 * (written with the logits' layout, may equal l) ldl. bias has d entries. */
void bernoulli_loglik(const float *l, int64_t ldl, const float *bias, const float *x, int64_t ldx,
                      int64_t b, int64_t rows, int64_t d, float *out, float *grad, int nthreads)
{
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        out[r] = row_loglik(l + r * ldl, bias, x + (r % b) * ldx, grad ? grad + r * ldl : 0, d);
    }
}

/* Forward of a hidden layer after its matmul: out[r, i] = act(a[r, i] + bias[i]) for i < n and, when
 * ones is set, out[r, n] = 1 (the column that lets the next products carry the bias terms). kind: 0
 * identity, 1 tanh (|t| = (1 - e) / (1 + e), e = exp(-2|v|)), 2 relu. a and out may alias. */
void act_forward(const float *a, int64_t lda, const float *bias, float *out, int64_t ldo, int64_t rows,
                 int64_t n, int kind, int ones, int nthreads)
{
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const float *ar = a + r * lda;
        float *orow = out + r * ldo;
        if (kind == 1) {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) {
                float v = ar[i] + bias[i];
                float e = exp_nonpos(-2.f * fabsf(v));
                float t = (1.f - e) / (1.f + e);
                orow[i] = v < 0.f ? -t : t;
            }
        } else if (kind == 2) {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) orow[i] = fmaxf(ar[i] + bias[i], 0.f);
        } else {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) orow[i] = ar[i] + bias[i];
        }
        if (ones) orow[n] = 1.f;
    }
}

/* Backward of an activation, in place: g[r, i] *= s_r * act'(pre-activation), written with the
 * activation's output y: tanh' = 1 - y^2, relu' = [y > 0]. kind: 0 identity, 1 tanh, 2 relu.
 * scale (per row, nullable) is the upstream per-row factor. */
void act_backward(float *g, int64_t ldg, const float *y, int64_t ldy, const float *scale, int64_t rows,
                  int64_t n, int kind, int nthreads)
{
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        float *gr = g + r * ldg;
        const float *yr = y + r * ldy;
        float s = scale ? scale[r] : 1.f;
        if (kind == 1) {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) gr[i] *= s * (1.f - yr[i] * yr[i]);
        } else if (kind == 2) {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) gr[i] = yr[i] > 0.f ? gr[i] * s : 0.f;
        } else {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) gr[i] *= s;
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * bf16 variants (precision=bf16): the same passes over bfloat16 tensors (stored as uint16_t, the
 * upper half of an fp32), so that the decoder's large activations and logits move half the bytes.
 * Arithmetic is fp32 in registers; sums (the per-image likelihood) stay fp32; results are rounded
 * to bf16 (to nearest, ties to even) only where they are stored as bf16.
 */
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

static inline float row_loglik_bf16(const uint16_t *l, const float *bias, const float *x, uint16_t *g, int64_t d)
{
    float lin[LANES], prod[LANES], logs[LANES];
    for (int k = 0; k < LANES; ++k) { lin[k] = 0.f; prod[k] = 1.f; logs[k] = 0.f; }
    int64_t full = d - d % LANES, chunks = 0;
    for (int64_t j = 0; j < full; j += LANES) {
        if (g) {
#pragma omp simd
            for (int k = 0; k < LANES; ++k) {
                int64_t i = j + k;
                float v = bf16_load(l[i]) + bias[i];
                float e = exp_nonpos(-fabsf(v));
                float inv = 1.f / (1.f + e);
                float sig = v >= 0.f ? inv : e * inv;
                lin[k] += x[i] * v - fmaxf(v, 0.f);
                prod[k] *= 1.f + e;
                g[i] = bf16_store(x[i] - sig);
            }
        } else {
#pragma omp simd
            for (int k = 0; k < LANES; ++k) {
                int64_t i = j + k;
                float v = bf16_load(l[i]) + bias[i];
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
    for (int64_t i = full; i < d; ++i) {
        float v = bf16_load(l[i]) + bias[i];
        float e = exp_nonpos(-fabsf(v));
        total += x[i] * v - fmaxf(v, 0.f) - log_pos(1.f + e);
        if (g) g[i] = bf16_store(x[i] - (v >= 0.f ? 1.f / (1.f + e) : e / (1.f + e)));
    }
    return total;
}

/* bernoulli_loglik over bf16 logits l (grad, bf16, may equal l); bias, x and out are fp32. */
void bernoulli_loglik_bf16(const uint16_t *l, int64_t ldl, const float *bias, const float *x, int64_t ldx,
                           int64_t b, int64_t rows, int64_t d, float *out, uint16_t *grad, int nthreads)
{
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        out[r] = row_loglik_bf16(l + r * ldl, bias, x + (r % b) * ldx, grad ? grad + r * ldl : 0, d);
    }
}

/* act_forward over bf16 a and out (bias fp32). */
void act_forward_bf16(const uint16_t *a, int64_t lda, const float *bias, uint16_t *out, int64_t ldo,
                      int64_t rows, int64_t n, int kind, int ones, int nthreads)
{
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const uint16_t *ar = a + r * lda;
        uint16_t *orow = out + r * ldo;
        if (kind == 1) {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) {
                float v = bf16_load(ar[i]) + bias[i];
                float e = exp_nonpos(-2.f * fabsf(v));
                float t = (1.f - e) / (1.f + e);
                orow[i] = bf16_store(v < 0.f ? -t : t);
            }
        } else if (kind == 2) {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) orow[i] = bf16_store(fmaxf(bf16_load(ar[i]) + bias[i], 0.f));
        } else {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) orow[i] = bf16_store(bf16_load(ar[i]) + bias[i]);
        }
        if (ones) orow[n] = 0x3f80; /* 1.0 */
    }
}

/* act_backward over bf16 g (in place) and y; scale fp32. */
void act_backward_bf16(uint16_t *g, int64_t ldg, const uint16_t *y, int64_t ldy, const float *scale,
                       int64_t rows, int64_t n, int kind, int nthreads)
{
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        uint16_t *gr = g + r * ldg;
        const uint16_t *yr = y + r * ldy;
        float s = scale ? scale[r] : 1.f;
        if (kind == 1) {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) {
                float yv = bf16_load(yr[i]);
                gr[i] = bf16_store(bf16_load(gr[i]) * s * (1.f - yv * yv));
            }
        } else if (kind == 2) {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) gr[i] = bf16_load(yr[i]) > 0.f ? bf16_store(bf16_load(gr[i]) * s) : 0;
        } else {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) gr[i] = bf16_store(bf16_load(gr[i]) * s);
        }
    }
}
