/* Fused Bernoulli log-likelihood rows for the decoder head of streamvae's MLP VAE.
 *
 * For logits l (R rows of D) and images x (B rows of D; row r of l belongs to image r % B):
 *
 *     log p(x | z_r) = sum_d x_d l_d - softplus(l_d)
 *                    = sum_d x_d l_d - max(l_d, 0) - log1p(exp(-|l_d|))
 *
 * One pass over the logits while they are still in cache. The log1p terms are summed as the log of
 * products of GROUP factors (each factor 1 + exp(-|l|) is in [1, 2], so a product of 64 stays a
 * normal float): one log per 64 logits. With `grad` non-null the kernel also writes
 * d log p / d l = x - sigmoid(l) over the logits (in place when grad == l), which is all the
 * backward pass needs.
 *
 * Compiled at first use by streamvae.kernels (gcc -O3 -march=native -ffast-math -fopenmp); the
 * OpenMP runtime is the one torch already loaded (same soname), so rows are split over torch's
 * threads. Plain C, no torch headers: the Python side passes data pointers.
 */
#include <math.h>
#include <stdint.h>

#define GROUP 64

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

static inline float row_loglik(const float *l, const float *x, float *g, int64_t d)
{
    float lin = 0.f;   /* sum x l - max(l, 0) */
    float logs = 0.f;  /* sum of logs of products of (1 + exp(-|l|)) */
    int64_t j = 0;
    for (; j < d; j += GROUP) {
        int64_t end = j + GROUP < d ? j + GROUP : d;
        float prod = 1.f;
        if (g) {
#pragma omp simd reduction(+ : lin) reduction(* : prod)
            for (int64_t i = j; i < end; ++i) {
                float v = l[i];
                float e = exp_nonpos(-fabsf(v));
                float inv = 1.f / (1.f + e);
                float sig = v >= 0.f ? inv : e * inv; /* sigmoid(v) */
                lin += x[i] * v - fmaxf(v, 0.f);
                prod *= 1.f + e;
                g[i] = x[i] - sig;
            }
        } else {
#pragma omp simd reduction(+ : lin) reduction(* : prod)
            for (int64_t i = j; i < end; ++i) {
                float v = l[i];
                lin += x[i] * v - fmaxf(v, 0.f);
                prod *= 1.f + exp_nonpos(-fabsf(v));
            }
        }
        logs += logf(prod);
    }
    return lin - logs;
}

/* out[r] = log p(x_{r % b} | l_r) for r < rows; l has row stride ldl, x row stride ldx, grad ldl. */
void bernoulli_loglik(const float *l, int64_t ldl, const float *x, int64_t ldx, int64_t b,
                      int64_t rows, int64_t d, float *out, float *grad, int nthreads)
{
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        out[r] = row_loglik(l + r * ldl, x + (r % b) * ldx, grad ? grad + r * ldl : 0, d);
    }
}
