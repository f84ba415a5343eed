// Chapter 3, fast backend: causal interdomain attention (eq:P9 over the
// prefix bases of eq:3.causal) through the effective weights of eq:3.4, with
// the LegS (eq:3.1) and DCT (eq:3.dct) prefix bases generated on the device,
// float32; and its host wrapper.
//
// What it optimises, and why
// --------------------------
// Query i at position p_i = i + N - Nq reads its own prefix projected
// on its own basis Phi^(i) = basis_matrix(b, M_i, p_i + 1) (the reference's
// convention; LegS M_i = M, Dct M_i = min(M, p_i + 1)). Every query has a
// different basis, so there is no shared projection to compute once. The
// kernel uses the effective-weights form of eq:3.4 instead of forming U^(i)
// per query (which would cost O(p_i M (R + d)) per query):
//     s_n = xi(q_i).xi(k_n)      (n <= p_i)
//     a_m = sum_n Phi^(i)[m][n] s_n                (= xi(q_i).u_m^(i))
//     w_n = sum_m a_m Phi^(i)[m][n]                (the effective weights)
//     o_i = sum_n w_n v_n / sum_n w_n
// Phi^(i) is generated on the fly in closed form, twice (once per pass), and
// never stored: LegS by the Legendre three-term recurrence and the exact
// integral int P_m = (P_{m+1} - P_{m-1}) / (2m+1) (eq:3.legs, eq:3.1); Dct by
// an exactly reduced integer angle and a short polynomial (eq:3.dct). One warp
// per query, four queries (consecutive, so of nearly equal cost) per block
// sharing K and V tiles of 128 tokens in shared memory; a lane owns 4
// consecutive tokens (the LegS interval endpoints are shared: 5 recurrences
// for 4 intervals). In pass 1 a lane holds its partial a_m for 32
// coefficients at a time and one reduce-scatter over the warp (31 shuffles
// for 32 sums, not 5 x 32) leaves lane L with the warp's total for
// coefficient L.
//
// Registers (ptxas, CUDA 13.0, sm_90): LegS 158 (__launch_bounds__: 3 blocks
// per SM), Dct 128 (4 blocks per SM); no spills.
//
// Cost per head: O(N^2 (R + c M + d)) with c ~ 10 flops per generated basis
// entry (two passes) - quadratic in N like softmax attention, with a larger
// constant. Chapter 4 removes the N^2: the LegS coefficients of every prefix
// follow from one recurrence (P2), O(N M (R + d)) in all.
//
// Numerics. Float32 inputs, outputs and sums, except the LegS generator: the
// interval integral is a difference of two values of Q_m = P_{m+1} - P_{m-1}
// at endpoints 2/t apart, which in float32 loses ~log2(t) bits of every
// basis entry (the reference computes the basis in float64 and rounds it
// once, also for naive32), so the recurrence and its products with s_n and
// a_m run in float64 (half rate on sm_80/sm_90) and are rounded once per
// coefficient or weight. The endpoints x = (2n - t) / t come from exact
// integers with one rounding. Dct: the angle pi m (2n+1) / (2t) is reduced to
// [0, pi/4] in integers (exact) before one rounding and a polynomial, so the
// basis entries are accurate to a few ulps for any m, n.
//
// Limits: R, d <= 128 (kInterdomainMaxDim); M <= 2048 (kInterdomainCausalMaxM:
// the coefficient vectors and recurrence tables live in shared memory);
// Nq <= N <= 2^24; only LegS and Dct have a causal closed form here (Gram
// needs a Stieltjes recurrence per prefix, Fourier a complex readout: both
// throw). Float32 only, forward only. The O(N^2) is by design (Chapter 4
// makes it O(N)).
#include "fast/03-interdomain-projection/interdomain.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fast/03-interdomain-projection/interdomain_internal.cuh"
#include "fast/common/cuda_check.cuh"
#include "core/error.hpp"

namespace idattn::fast {

using namespace interdomain_detail;

namespace {

// ===========================================================================
// Causal kernel: effective weights (eq:3.4) with the prefix basis generated
// in closed form. Grid: x = query groups of CAUSAL_WARPS (heaviest first),
// y = (batch, head) pairs. Warp w of a block owns one query.
// ===========================================================================

constexpr int kCausalWarps = 4;                          // queries per block
constexpr int kCausalThreads = 32 * kCausalWarps;
constexpr int kTokensPerLane = 4;                        // consecutive tokens per lane
constexpr int kCausalTile = 32 * kTokensPerLane;         // tokens per shared-memory tile
constexpr int kBasisLegS = 0;
constexpr int kBasisDct = 1;

// Shared-memory layout of the causal kernel, in floats (host and device agree).
struct CausalSmem {
    int tile_stride;  // K tile rows: r | 1 (odd: conflict-free strided rows); V tile rows: d
    int m_pad;        // M rounded up to 32 (whole reduce-scatter chunks)
    __host__ __device__ int tile_floats() const { return kCausalTile * tile_stride; }
    __host__ __device__ std::size_t bytes(int r) const {
        return sizeof(float) * (static_cast<std::size_t>(tile_floats()) + kCausalWarps * r +
                                kCausalWarps * kCausalTile + 4 * m_pad + kCausalWarps * m_pad);
    }
};

// Sums v[k] over the 32 lanes for 32 values k at once and returns, in lane L,
// the warp's total of v[L]: a butterfly where each step halves the values a
// lane keeps (31 shuffles in all, against 5 per value for 32 separate
// reductions). Every lane of the warp must call it.
template <int WIDTH>
__device__ __forceinline__ void reduce_scatter_step(float (&v)[32], int lane) {
    const bool upper = (lane & WIDTH) != 0;
#pragma unroll
    for (int k = 0; k < WIDTH; ++k) {
        const float send = upper ? v[k] : v[k + WIDTH];
        const float keep = upper ? v[k + WIDTH] : v[k];
        v[k] = keep + __shfl_xor_sync(0xffffffffu, send, WIDTH);
    }
}
__device__ __forceinline__ float warp_reduce_scatter32(float (&v)[32], int lane) {
    reduce_scatter_step<16>(v, lane);  // lane keeps v[16 b4 + k], k < 16, summed over lane pairs
    reduce_scatter_step<8>(v, lane);
    reduce_scatter_step<4>(v, lane);
    reduce_scatter_step<2>(v, lane);
    reduce_scatter_step<1>(v, lane);   // v[0] = sum over the warp of v[lane]
    return v[0];
}

// The prefix basis of one query at the kTokensPerLane consecutive tokens
// nb, nb+1, ... of one lane, one basis function m at a time (call step() with
// m = 0, 1, 2, ... in order). Tokens at or past t give 0.
template <int BASIS>
struct PrefixBasis;

// eq:3.legs eq:3.1: Phi[m][n] = int_n^{n+1} phi_m^{(t)}(s) ds, phi_m^{(t)}(s) = sqrt((2m+1)/t)
// P_m(2s/t - 1); with x = 2s/t - 1 and int P_m = (P_{m+1} - P_{m-1}) / (2m+1):
//   Phi[m][n] = sqrt(t / (2m+1)) / 2 * (Q_m(x_{n+1}) - Q_m(x_n)),  Q_m = P_{m+1} - P_{m-1},
// x_k = (2k - t) / t, P_{-1} = 0 (so Q_0 = P_1 = x). Legendre by the three-term
// recurrence P_{m+1} = ((2m+1) x P_m - m P_{m-1}) / (m+1) = alpha_m x P_m - beta_m P_{m-1},
// beta_m = m/(m+1), alpha_m = 1 + beta_m, c_m = 1 / (2 sqrt(2m+1)) (tables in
// shared memory). The lane's 4 intervals share endpoints: 5 recurrences.
// Endpoints past t are clamped to t (x = 1): a zero-length interval, so tokens
// past the prefix weigh 0 and the Legendre values stay in [-1, 1].
// Float64: Q_m(x_{n+1}) - Q_m(x_n) subtracts two O(1) values to get an
// O(m / t) one, so float32 would lose ~log2(t) bits of every entry (measured:
// relative error 1e-5 at t = 1025, against 3e-8 for the rounded exact basis
// the reference hands to naive32). sm_80/sm_90 run float64 at half the float32
// rate, and the products with s_n and a_m stay in float64 until one rounding
// per coefficient (pass 1) or per token (pass 2).
template <>
struct PrefixBasis<kBasisLegS> {
    using Real = double;
    double x[kTokensPerLane + 1];
    double p_prev[kTokensPerLane + 1];  // P_{m-1}
    double p_cur[kTokensPerLane + 1];   // P_m
    double sqrt_t;
    const double* beta;
    const double* c;

    __device__ __forceinline__ PrefixBasis(int nb, int t, const double* coef, int m_pad) {
        const double td = static_cast<double>(t);
#pragma unroll
        for (int k = 0; k <= kTokensPerLane; ++k) {
            const int e = min(nb + k, t);
            x[k] = static_cast<double>(2 * e - t) / td;  // exact integers, one rounding
            p_prev[k] = 0.0;
            p_cur[k] = 1.0;
        }
        sqrt_t = sqrt(td);
        beta = coef;
        c = coef + m_pad;
    }
    __device__ __forceinline__ void step(int m, double (&phi)[kTokensPerLane]) {
        const double bm = beta[m], am = 1.0 + bm, scale = sqrt_t * c[m];
        double q[kTokensPerLane + 1];
#pragma unroll
        for (int k = 0; k <= kTokensPerLane; ++k) {
            const double p_next = fma(am * x[k], p_cur[k], -bm * p_prev[k]);  // P_{m+1}
            q[k] = p_next - p_prev[k];                                        // Q_m
            p_prev[k] = p_cur[k];
            p_cur[k] = p_next;
        }
#pragma unroll
        for (int j = 0; j < kTokensPerLane; ++j) phi[j] = scale * (q[j + 1] - q[j]);
    }
};

// cos(pi k / (2t)) for an integer k in [0, 4t) (one period): the reduction to
// an angle in [0, pi/4] is exact integer arithmetic (cos is even about pi,
// odd about pi/2, and cos(pi/2 - x) = sin x), so only the final angle
// x = pi kk / (2t) is rounded (a few ulps) before a Taylor polynomial whose
// truncation error on [0, pi/4] is below 2e-9.
__device__ __forceinline__ float cos_pi_ratio(int k, int t, float pi_over_two_t) {
    if (k > 2 * t) k = 4 * t - k;  // [0, 2t]: angle in [0, pi]
    float sign = 1.f;
    if (k > t) {                   // angle in (pi/2, pi]: cos = -cos(pi - angle)
        k = 2 * t - k;
        sign = -1.f;
    }
    const bool use_sin = 2 * k > t;  // angle in (pi/4, pi/2]: cos = sin(pi/2 - angle)
    const int kk = use_sin ? t - k : k;
    const float x = static_cast<float>(kk) * pi_over_two_t;  // in [0, pi/4]
    const float x2 = x * x;
    float r;
    if (use_sin) {  // sin x = x (1 - x^2/3! + x^4/5! - x^6/7! + x^8/9!)
        r = fmaf(x2, 2.7557319e-6f, -1.9841270e-4f);
        r = fmaf(x2, r, 8.3333333e-3f);
        r = fmaf(x2, r, -1.6666667e-1f);
        r = fmaf(x2 * r, x, x);
    } else {  // cos x = 1 - x^2/2! + x^4/4! - x^6/6! + x^8/8! - x^10/10!
        r = fmaf(x2, -2.7557319e-7f, 2.4801587e-5f);
        r = fmaf(x2, r, -1.3888889e-3f);
        r = fmaf(x2, r, 4.1666667e-2f);
        r = fmaf(x2, r, -0.5f);
        r = fmaf(x2, r, 1.f);
    }
    return sign * r;
}

// eq:3.dct, DCT-II rows on t points: Phi[m][n] = s_m sqrt(2/t) cos(pi m (2n+1) / (2t)),
// s_0 = 1/sqrt(2). The angle's numerator k = m (2n+1) is kept modulo 4t (one
// period) in integers and reduced exactly (cos_pi_ratio): the basis entries
// are accurate to a few ulps for every m and n (a float angle pi m (2n+1) / 2t
// would carry an absolute error of order m n / t ulps).
template <>
struct PrefixBasis<kBasisDct> {
    using Real = float;
    int k[kTokensPerLane];
    int step_k[kTokensPerLane];
    float live[kTokensPerLane];  // 1 inside the prefix, 0 past it
    int t;
    float pi_over_two_t, scale0, scale;

    __device__ __forceinline__ PrefixBasis(int nb, int t_, const double*, int) : t(t_) {
#pragma unroll
        for (int j = 0; j < kTokensPerLane; ++j) {
            const bool inside = nb + j < t;
            live[j] = inside ? 1.f : 0.f;
            k[j] = 0;
            step_k[j] = inside ? 2 * (nb + j) + 1 : 0;  // < 2t <= 4t
        }
        const float tf = static_cast<float>(t);
        pi_over_two_t = 3.14159265358979f / (2.f * tf);
        scale0 = sqrtf(1.f / tf);
        scale = sqrtf(2.f / tf);
    }
    __device__ __forceinline__ void step(int m, float (&phi)[kTokensPerLane]) {
        const float s = (m == 0) ? scale0 : scale;
#pragma unroll
        for (int j = 0; j < kTokensPerLane; ++j) {
            phi[j] = (s * live[j]) * cos_pi_ratio(k[j], t, pi_over_two_t);
            k[j] += step_k[j];  // k for m + 1, modulo 4t
            if (k[j] >= 4 * t) k[j] -= 4 * t;
        }
    }
};

// Copies rows [0, rows_valid) of a row-major (., cols) tile into shared memory
// (row stride `stride`), zero rows up to kCausalTile. Coalesced: consecutive
// threads read consecutive floats of the contiguous tile.
__device__ __forceinline__ void load_rows(float* __restrict__ dst, const float* __restrict__ src, int rows_valid,
                                          int cols, int stride) {
    const int total = kCausalTile * cols;
    const int valid = rows_valid * cols;
    for (int idx = static_cast<int>(threadIdx.x); idx < total; idx += kCausalThreads) {
        const int row = idx / cols;
        const int col = idx - row * cols;
        dst[row * stride + col] = (idx < valid) ? __ldg(src + idx) : 0.f;
    }
}

template <int BASIS>
__global__ void __launch_bounds__(kCausalThreads, BASIS == kBasisLegS ? 3 : 4)
    causal_kernel(const float* __restrict__ fq, const float* __restrict__ fk, const float* __restrict__ v,
                  float* __restrict__ o, int nq, int n, int m, int r, int d, CausalSmem lay) {
    extern __shared__ float4 smem_f4[];
    float* const tile = reinterpret_cast<float*>(smem_f4);      // K tile (pass 1), V tile (pass 2)
    float* const fqs = tile + lay.tile_floats();                // (warps, r): the block's query features
    float* const sw = fqs + kCausalWarps * r;                   // (warps, tile): s_n (pass 1), w_n (pass 2)
    // LegS tables beta_m, c_m in float64 (2 x m_pad doubles; the offset is even, so 8-byte aligned)
    double* const coef = reinterpret_cast<double*>(sw + kCausalWarps * kCausalTile);
    float* const as = reinterpret_cast<float*>(coef + 2 * lay.m_pad);  // (warps, m_pad): a_m of each query

    const int tid = static_cast<int>(threadIdx.x);
    const int warp = tid / 32;
    const int lane = tid % 32;
    const int m_pad = lay.m_pad;

    // Heaviest query group first (longest prefixes), so that long blocks start early.
    const int group = static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x);
    const int i = group * kCausalWarps + warp;  // this warp's query
    const bool valid = i < nq;
    const int t = valid ? i + (n - nq) + 1 : 0;  // eq:3.causal: prefix length p_i + 1 (tokens 0..p_i)
    const int last_query = min(group * kCausalWarps + kCausalWarps, nq) - 1;
    const int t_block = last_query + (n - nq) + 1;  // the block's longest prefix
    const int m_i = (BASIS == kBasisDct) ? min(m, t) : m;  // eq:3.causal: M_i (Dct: min(M, p_i + 1))
    const int chunks = (m_i + 31) / 32;
    using Real = typename PrefixBasis<BASIS>::Real;  // the generator's arithmetic

    const std::size_t head = blockIdx.y;
    fq += head * static_cast<std::size_t>(nq) * r;
    o += head * static_cast<std::size_t>(nq) * d;
    fk += head * static_cast<std::size_t>(n) * r;
    v += head * static_cast<std::size_t>(n) * d;

    // ---- set-up: recurrence tables, query features, a = 0 ----
    if (BASIS == kBasisLegS) {
        for (int k = tid; k < m_pad; k += kCausalThreads) {
            const double kd = static_cast<double>(k);
            coef[k] = kd / (kd + 1.0);                      // beta_m = m / (m+1); alpha_m = 1 + beta_m
            coef[m_pad + k] = 0.5 / sqrt(2.0 * kd + 1.0);   // c_m
        }
    }
    for (int c = lane; c < r; c += 32)
        fqs[warp * r + c] = valid ? __ldg(fq + static_cast<std::size_t>(i) * r + c) : 0.f;
    for (int k = lane; k < m_pad; k += 32) as[warp * m_pad + k] = 0.f;
    __syncthreads();

    float* const my_sw = sw + warp * kCausalTile;
    float* const my_a = as + warp * m_pad;
    const float* const my_fq = fqs + warp * r;
    const int ks = lay.tile_stride;  // K rows (odd stride)

    // ---- pass 1, eq:3.4: a_m = sum_{n <= p_i} Phi^(i)[m][n] s_n, s_n = xi(q_i).xi(k_n) ----
    for (int n0 = 0; n0 < t_block; n0 += kCausalTile) {
        __syncthreads();  // every warp is done with the previous tile
        load_rows(tile, fk + static_cast<std::size_t>(n0) * r, min(kCausalTile, t_block - n0), r, ks);
        __syncthreads();
        if (n0 < t) {  // warp-uniform
            // s_n with lane-interleaved rows (odd stride: conflict-free), masked past the prefix.
#pragma unroll
            for (int j = 0; j < kTokensPerLane; ++j) {
                const int row = lane + 32 * j;
                const float* const krow = tile + row * ks;
                float s = 0.f;
                for (int c = 0; c < r; ++c) s = fmaf(my_fq[c], krow[c], s);
                my_sw[row] = (n0 + row < t) ? s : 0.f;
            }
            __syncwarp();
            // The lane's consecutive tokens n0 + 4 lane + j.
            const int nb = n0 + kTokensPerLane * lane;
            Real s[kTokensPerLane];
#pragma unroll
            for (int j = 0; j < kTokensPerLane; ++j) s[j] = static_cast<Real>(my_sw[kTokensPerLane * lane + j]);
            PrefixBasis<BASIS> basis(nb, t, coef, m_pad);
            for (int ch = 0; ch < chunks; ++ch) {
                float part[32];
#pragma unroll
                for (int kk = 0; kk < 32; ++kk) {
                    Real phi[kTokensPerLane];
                    basis.step(ch * 32 + kk, phi);
                    Real acc = 0;
#pragma unroll
                    for (int j = 0; j < kTokensPerLane; ++j) acc = fma(phi[j], s[j], acc);
                    part[kk] = static_cast<float>(acc);
                }
                const float total = warp_reduce_scatter32(part, lane);
                const int mm = ch * 32 + lane;
                if (mm < m_i) my_a[mm] += total;  // lane mm's own entry: no race
            }
            __syncwarp();  // my_sw is rewritten by the next tile
        }
    }

    // ---- pass 2, eq:3.4: w_n = sum_m a_m Phi^(i)[m][n]; o_i = sum_n w_n v_n / sum_n w_n ----
    constexpr int kMaxColsPerLane = static_cast<int>((kInterdomainMaxDim + 31) / 32);
    float acc[kMaxColsPerLane];
#pragma unroll
    for (int k = 0; k < kMaxColsPerLane; ++k) acc[k] = 0.f;
    float den = 0.f;
    for (int n0 = 0; n0 < t_block; n0 += kCausalTile) {
        __syncthreads();
        load_rows(tile, v + static_cast<std::size_t>(n0) * d, min(kCausalTile, t_block - n0), d, d);
        __syncthreads();
        if (n0 < t) {
            const int nb = n0 + kTokensPerLane * lane;
            Real w[kTokensPerLane];
#pragma unroll
            for (int j = 0; j < kTokensPerLane; ++j) w[j] = 0;
            PrefixBasis<BASIS> basis(nb, t, coef, m_pad);
#pragma unroll 4
            for (int mm = 0; mm < m_i; ++mm) {
                Real phi[kTokensPerLane];
                basis.step(mm, phi);
                const Real am = static_cast<Real>(my_a[mm]);  // broadcast
#pragma unroll
                for (int j = 0; j < kTokensPerLane; ++j) w[j] = fma(am, phi[j], w[j]);
            }
#pragma unroll
            for (int j = 0; j < kTokensPerLane; ++j) my_sw[kTokensPerLane * lane + j] = static_cast<float>(w[j]);
            __syncwarp();
            // eq:P9 through the weights: every lane walks the tile's rows for its columns.
            // Summed tile by tile (a float32 partial over at most kCausalTile rows,
            // then added to the running total): one serial sum over the whole
            // prefix would grow its rounding error with t (measured on an H100:
            // 103% of the pass-rule threshold at t = 1025, M = 300, Dct).
            const int rows = min(kCausalTile, t - n0);
            float tile_acc[kMaxColsPerLane];
#pragma unroll
            for (int k = 0; k < kMaxColsPerLane; ++k) tile_acc[k] = 0.f;
            float tile_den = 0.f;
            for (int row = 0; row < rows; ++row) {
                const float wr = my_sw[row];
                tile_den += wr;
                const float* const vrow = tile + row * d;
#pragma unroll
                for (int k = 0; k < kMaxColsPerLane; ++k) {
                    const int c = lane + 32 * k;
                    if (c < d) tile_acc[k] = fmaf(wr, vrow[c], tile_acc[k]);
                }
            }
            den += tile_den;
#pragma unroll
            for (int k = 0; k < kMaxColsPerLane; ++k) acc[k] += tile_acc[k];
            __syncwarp();
        }
    }
    if (valid) {
        float* const orow = o + static_cast<std::size_t>(i) * d;
#pragma unroll
        for (int k = 0; k < kMaxColsPerLane; ++k) {
            const int c = lane + 32 * k;
            if (c < d) orow[c] = acc[k] / den;
        }
    }
}

// ===========================================================================
// Host side
// ===========================================================================

// The causal generators turn integer positions and angles (< 2^25) into floats exactly.
constexpr std::int64_t kCausalMaxLength = std::int64_t{1} << 24;

}  // namespace

// eq:P9 causal via eq:3.4, with the prefix basis of eq:3.causal: eq:3.1 (LegS) or eq:3.dct (Dct).
void interdomain_causal_device(ref::Basis b, std::int64_t m, const float* fq, const float* fk, const float* v,
                               float* o, std::int64_t bh, std::int64_t nq, std::int64_t n, std::int64_t r,
                               std::int64_t d, void* stream) {
    const std::string what = "interdomain_causal_device";
    if (b != ref::Basis::LegS && b != ref::Basis::Dct)
        throw Error(what + ": basis '" + ref::basis_name(b) +
                    "' has no causal fast kernel; the device generates the prefix bases of 'legs' and 'dct' only");
    if (fq == nullptr || fk == nullptr || v == nullptr || o == nullptr)
        throw Error(what + ": a null device pointer was passed for fq, fk, v or o");
    check_sizes(what, bh, nq, n, m, r, d);
    if (m > kInterdomainCausalMaxM)
        throw Error(what + ": M = " + std::to_string(m) + " basis functions exceed the causal kernel's limit of " +
                    std::to_string(kInterdomainCausalMaxM));
    if (n > kCausalMaxLength)
        throw Error(what + ": n = " + std::to_string(n) + " tokens exceed the causal kernel's limit of " +
                    std::to_string(kCausalMaxLength) + " (its basis angles are integers converted exactly to float)");
    if (nq > n)
        throw Error(what + ": causal attention needs nq <= n (query i sits at position i + n - nq), got nq = " +
                    std::to_string(nq) + " and n = " + std::to_string(n));
    if (b == ref::Basis::Dct && m > n)
        throw Error(what + ": M = " + std::to_string(m) + " functions cannot be orthonormal on N = " +
                    std::to_string(n) + " points (dct needs M <= N)");

    const auto s = static_cast<cudaStream_t>(stream);
    CausalSmem lay{};
    lay.tile_stride = std::max(static_cast<int>(r) | 1, static_cast<int>(d));
    lay.m_pad = static_cast<int>((m + 31) / 32 * 32);
    const std::size_t smem = lay.bytes(static_cast<int>(r));
    const auto kernel = (b == ref::Basis::LegS) ? causal_kernel<kBasisLegS> : causal_kernel<kBasisDct>;
    IDATTN_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    const int groups = static_cast<int>((nq + kCausalWarps - 1) / kCausalWarps);
    for (std::int64_t h0 = 0; h0 < bh; h0 += kMaxGridY) {
        const auto heads = static_cast<unsigned>(std::min(kMaxGridY, bh - h0));
        const auto off = static_cast<std::size_t>(h0);
        kernel<<<dim3(static_cast<unsigned>(groups), heads), kCausalThreads, smem, s>>>(
            fq + off * nq * r, fk + off * n * r, v + off * n * d, o + off * nq * d, static_cast<int>(nq),
            static_cast<int>(n), static_cast<int>(m), static_cast<int>(r), static_cast<int>(d), lay);
        IDATTN_CUDA_CHECK(cudaGetLastError());
    }
}

xt::xtensor<float, 4> interdomain_attention_causal(ref::Basis b, std::size_t M, const xt::xtensor<float, 4>& fq,
                                                   const xt::xtensor<float, 4>& fk, const xt::xtensor<float, 4>& v) {
    const std::string what = "interdomain_attention_causal (fast)";
    if (b != ref::Basis::LegS && b != ref::Basis::Dct)
        throw Error(what + ": basis '" + ref::basis_name(b) +
                    "' has no causal fast kernel; the device generates the prefix bases of 'legs' and 'dct' only");
    const auto qs = shape_of(fq), ks = shape_of(fk), vs = shape_of(v);
    check_host_shapes(what, qs, ks, vs);
    if (qs[2] > ks[2])
        throw Error(what + ": causal attention needs N_q <= N, but fq has shape " + shape_str(qs) + " (N_q = " +
                    std::to_string(qs[2]) + ") and fk has shape " + shape_str(ks) + " (N = " + std::to_string(ks[2]) +
                    ")");
    ref::check_basis_size(what, b, M, ks[2]);
    if (M > static_cast<std::size_t>(kInterdomainCausalMaxM))
        throw Error(what + ": M = " + std::to_string(M) + " basis functions exceed the causal kernel's limit of " +
                    std::to_string(kInterdomainCausalMaxM));

    const std::size_t B = qs[0], H = qs[1], NQ = qs[2], R = qs[3], N = ks[2], D = vs[3];
    DeviceBuffer<float> dq(fq.size()), dk(fk.size()), dv(v.size()), dout(B * H * NQ * D);
    dq.copy_from_host(fq.data());
    dk.copy_from_host(fk.data());
    dv.copy_from_host(v.data());
    dout.fill_bytes(0xFF);  // NaN poison
    interdomain_causal_device(b, static_cast<std::int64_t>(M), dq.data(), dk.data(), dv.data(), dout.data(),
                              static_cast<std::int64_t>(B * H), static_cast<std::int64_t>(NQ),
                              static_cast<std::int64_t>(N), static_cast<std::int64_t>(R),
                              static_cast<std::int64_t>(D), nullptr);
    IDATTN_CUDA_CHECK(cudaDeviceSynchronize());

    xt::xtensor<float, 4> out = xt::empty<float>({B, H, NQ, D});
    dout.copy_to_host(out.data());
    return out;
}

}  // namespace idattn::fast
