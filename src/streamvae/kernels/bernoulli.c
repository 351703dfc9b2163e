/* Fused Bernoulli log-likelihood rows for the decoder head of streamvae's MLP VAE.
 *
 * For logits l (R rows of D) and images x (B rows of D; row r of l belongs to image r % B):
 *
 *     log p(x | z_r) = sum_d x_d l_d - softplus(l_d)
 *                    = sum_d x_d l_d - max(l_d, 0) - log1p(exp(-|l_d|))
 *
 * One pass over the logits, 16 lanes at a time. The log1p terms are summed as logs of per-lane
 * products (each factor 1 + exp(-|l|) is in [1, 2], so a product of 96 stays a normal float): one
 * vectorised log per 16 x 96 logits, no horizontal reduction until the end of the row. With `grad` non-null the kernel also writes
 * d log p / d l = x - sigmoid(l) over the logits (in place when grad == l), which is all the
 * backward pass needs.
 *
 * Compiled at first use by streamvae.kernels (gcc -O3 -march=native -ffast-math -fopenmp); the
 * OpenMP runtime is the one torch already loaded (same soname), so rows are split over torch's
 * threads. Plain C, no torch headers: the Python side passes data pointers.
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

/* Standard normal draws from Philox4x32-10 (Salmon et al., SC 2011), a counter-based generator:
 * draw i of a call is a pure function of (key, i), so the work splits over threads and vectors and
 * the result does not depend on the thread count. Four 32-bit words per counter give two
 * Box-Muller pairs; u = (w >> 8 + 1) / 2^24 is in (0, 1], so log(u) is finite. The key comes from
 * the caller's seeded torch generator (one 64-bit draw per call). */
/* One Philox4x32-10 block: counter (ctr, 0x243F6A88, 0x85A308D3), 64-bit key -> four words. */
#define PHILOX_ROUNDS(ctr, key, c0, c1, c2, c3)                                                    \
    uint32_t c0 = (uint32_t)(ctr), c1 = (uint32_t)((ctr) >> 32), c2 = 0x243F6A88u, c3 = 0x85A308D3u;  \
    {                                                                                               \
        uint32_t k0 = (uint32_t)(key), k1 = (uint32_t)((key) >> 32);                                \
        for (int round = 0; round < 10; ++round) {                                                  \
            uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;             \
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;     \
            c1 = (uint32_t)p1;                                                                      \
            c3 = (uint32_t)p0;                                                                      \
            c0 = n0;                                                                                \
            c2 = n2;                                                                                \
            k0 += 0x9E3779B9u;                                                                      \
            k1 += 0xBB67AE85u;                                                                      \
        }                                                                                           \
    }

/* cos(2 pi v), sin(2 pi v) for v in [0, 1]: quadrant q = rint(4 v), a = (4 v - q) pi / 2 in
 * [-pi/4, pi/4], Taylor polynomials (error < 2e-9), then a rotation by q quarter turns. */
static inline void sincos_turn(float v, float *c_out, float *s_out)
{
    float v4 = 4.f * v;
    float q = rintf(v4);
    float a = (v4 - q) * 1.57079632679489662f, a2 = a * a;
    float s = fmaf(a2, -1.f / 362880.f, 1.f / 5040.f);
    s = fmaf(a2, s, -1.f / 120.f);
    s = fmaf(a2, s, 1.f / 6.f);
    s = a - a * a2 * s;  /* a - a^3/6 + a^5/120 - a^7/5040 + a^9/362880 */
    float c = fmaf(a2, 1.f / 40320.f, -1.f / 720.f);
    c = fmaf(a2, c, 1.f / 24.f);
    c = fmaf(a2, c, -0.5f);
    c = fmaf(a2, c, 1.f);
    int qi = (int)q & 3;
    float cs = (qi == 0) ? c : (qi == 1) ? -s : (qi == 2) ? -c : s;
    float sn = (qi == 0) ? s : (qi == 1) ? c : (qi == 2) ? -s : -c;
    *c_out = cs;
    *s_out = sn;
}

#define PHILOX_BLOCK 512

/* Philox4x32-10 with counters i = 0 .. q - 1 (q = ceil(n / 4)) and the 64-bit key. Counters go in
 * blocks of PHILOX_BLOCK (m counters in a block starting at output 4 b): words (w0, w1) and
 * (w2, w3) of each counter are two Box-Muller pairs, radius from w0/w2 and angle from w1/w3; the
 * block's 2m cosines fill its outputs [0, 2m) and the 2m sines [2m, 4m) (the last block keeps
 * what fits in n). The mapping depends on n and the key only, not on the thread count. Two
 * vectorised loops per block: integer rounds, then the transform (inlined log and sincos). */
void philox_normal(float *out, int64_t n, uint64_t key, int nthreads)
{
    int64_t q = (n + 3) / 4;
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t blk = 0; blk < q; blk += PHILOX_BLOCK) {
        uint32_t w[4 * PHILOX_BLOCK];
        float z[4 * PHILOX_BLOCK];
        int64_t m = blk + PHILOX_BLOCK < q ? PHILOX_BLOCK : q - blk;
#pragma omp simd
        for (int64_t i = 0; i < m; ++i) {
            PHILOX_ROUNDS((uint64_t)(blk + i), key, c0, c1, c2, c3)
            w[i] = c0; w[PHILOX_BLOCK + i] = c1; w[2 * PHILOX_BLOCK + i] = c2; w[3 * PHILOX_BLOCK + i] = c3;
        }
        const float inv = 1.f / 16777216.f;
#pragma omp simd
        for (int64_t j = 0; j < 2 * m; ++j) {
            int64_t i = j < m ? j : j - m, row = j < m ? 0 : 2 * PHILOX_BLOCK;
            float r = sqrtf(-2.f * log_pos(((float)(w[row + i] >> 8) + 1.f) * inv));
            float c, s;
            sincos_turn((float)(w[row + PHILOX_BLOCK + i] >> 8) * inv, &c, &s);
            z[j] = r * c;
            z[2 * m + j] = r * s;
        }
        int64_t base = 4 * blk, cnt = 4 * m < n - base ? 4 * m : n - base;
        for (int64_t k = 0; k < cnt; ++k) out[base + k] = z[k];
    }
}
