// Chapter 3, fast backend: interdomain attention (P9) in float32, non-causal
// (projection + fused readout) and causal (effective weights, prefix basis
// generated on the device).
//
// Status: verified on a GPU (NVIDIA H100 and H200, sm_90, 2026-11-26): every test
// of tests/NN-*/fast_*.cpp passes there; compute-sanitizer memcheck, racecheck and
// synccheck are clean on the cases listed in bench/results/README.md. Not run on
// sm_80 (compiled only).
//
// What it optimises, and why
// --------------------------
// Non-causal. The reference forms the projections U = Phi F_k (M x R),
// Gamma = Phi V (M x d), eta = Phi 1 (eq:P6) and then the (Nq x M) matrix
// A = F_q U^T, the products A Gamma and A eta, and their quotient (eq:P9).
//  * The projection is a plain GEMM per head, Phi (M x N) times [F_k | V]
//    (N x (R + d)), with one Phi shared by every head: exactly what cuBLAS's
//    strided-batched SGEMM does best (it picks a tuned, register- and
//    shared-memory-blocked kernel for each shape; a hand-written kernel would
//    only reproduce it). Stride 0 for Phi shares it across the batch. eta = Phi 1
//    does not depend on the head: it is computed once, by a row-sum kernel.
//  * The readout is two chained products, (F_q U^T) [Gamma | eta]. cuBLAS would
//    write the (Nq x M) matrix A to global memory and read it back. The fused
//    kernel below keeps it on chip, in the style of the Chapter 1 kernel
//    (FlashAttention without the softmax): a thread block owns BLOCK_Q query
//    rows of F_q (shared memory, for the whole run) and walks over M in tiles
//    of BLOCK_M rows of U, Gamma and eta staged in shared memory; per tile it
//    forms its BLOCK_Q x BLOCK_M slice of A in registers (register-blocked like
//    a SIMT SGEMM: each thread owns ROWS x COEFS entries), folds A eta into a
//    per-row denominator, passes the slice through shared memory (a half-warp
//    owns a row, so __syncwarp suffices) and accumulates A Gamma into
//    registers. Global traffic: O((Nq + M)(R + d)) per head instead of
//    O(Nq M) more for A. Work: 2 Nq M (R + d + 1) flops per head.
//
// Causal. Query i at position p_i = i + N - Nq reads its own prefix projected
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
// sharing K and V tiles of
// 128 tokens in shared memory; a lane owns 4 consecutive tokens (the LegS
// interval endpoints are shared: 5 recurrences for 4 intervals). In pass 1 a
// lane holds its partial a_m for 32 coefficients at a time and one
// reduce-scatter over the warp (31 shuffles for 32 sums, not 5 x 32) leaves
// lane L with the warp's total for coefficient L.
// Registers (ptxas, CUDA 13.0, sm_90): readout 128 (R, d <= 64: 256 threads,
// two blocks per SM, the loop over R kept rolled) and 124-211 (the 128-thread
// configurations); causal LegS 158 (__launch_bounds__: 3 blocks per SM), Dct
// 128 (4 blocks per SM); no spills anywhere.
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
// integers with one rounding. Dct:
// the angle pi m (2n+1) / (2t) is reduced to [0, pi/4] in integers (exact)
// before one rounding and a polynomial, so the basis entries are accurate to
// a few ulps for any m, n. Non-causal: the caller's Phi is used as given.
//
// Ragged sizes: any Nq, N, M >= 1; R, d in [1, 128]. The readout pads R and d
// to 64 or 128 in shared memory (zero columns), rows past Nq / M are zero and
// not stored. Float4 loads when R % 4 == 0, d % 4 == 0 and the pointers are
// 16-byte aligned, scalar loads otherwise.
//
// Limits: R, d <= 128 (kInterdomainMaxDim); causal M <= 2048
// (kInterdomainCausalMaxM: the coefficient vectors and recurrence tables live
// in shared memory), causal needs Nq <= N <= 2^24, and only LegS and Dct have
// a causal closed form here (Gram needs a Stieltjes recurrence per prefix,
// Fourier a complex readout: both throw). Non-causal takes any real basis
// matrix. Float32 only, forward only.
//
// Not done (yet): tensor cores (TF32) for the readout and the projection
// (cuBLAS is kept in the default math mode, which does not use TF32 for
// SGEMM, so the float32 rounding the tests compare stays plain); the causal
// kernel's O(N^2) is by design (Chapter 4 makes it O(N)).
#include "fast/03-interdomain-projection/interdomain.hpp"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fast/common/cuda_check.cuh"
#include "core/error.hpp"

namespace idattn::fast {

namespace {

// ===========================================================================
// Readout kernel (non-causal): tile geometry
// ===========================================================================

template <int RP_, int DP_, int BLOCK_Q_, int BLOCK_M_, int THREADS_, int MIN_BLOCKS_PER_SM_, int A_UNROLL_>
struct ReadoutConfig {
    static constexpr int RP = RP_;            // padded feature dimension (R <= RP)
    static constexpr int DP = DP_;            // padded value dimension (d <= DP)
    static constexpr int BLOCK_Q = BLOCK_Q_;  // queries per thread block
    static constexpr int BLOCK_M = BLOCK_M_;  // basis coefficients per shared-memory tile
    static constexpr int THREADS = THREADS_;
    static constexpr int MIN_BLOCKS_PER_SM = MIN_BLOCKS_PER_SM_;
    // Unroll factor of the loop over R in A = F_q U^T: unrolled, the compiler
    // hoists loads across steps, which costs registers; the 256-thread
    // configuration (128 registers for two blocks per SM) spills unless it stays rolled.
    static constexpr int A_UNROLL = A_UNROLL_;

    // A query row is shared by the 16 threads of a half-warp (a row group).
    // Thread (ty, tx) = (tid / 16, tid % 16) owns query rows ty + ROW_GROUPS * i,
    // coefficients tx + ROW_GROUP * j of each M tile, and output columns
    // 4 * tx + OUT_COL_STRIDE * g + e (e < 4).
    static constexpr int ROW_GROUP = 16;
    static constexpr int ROW_GROUPS = THREADS / ROW_GROUP;
    static constexpr int ROWS_PER_THREAD = BLOCK_Q / ROW_GROUPS;
    static constexpr int COEFS_PER_THREAD = BLOCK_M / ROW_GROUP;
    static constexpr int COLS_PER_THREAD = DP / ROW_GROUP;
    static constexpr int OUT_COL_STRIDE = 4 * ROW_GROUP;
    static constexpr int OUT_GROUPS = COLS_PER_THREAD / 4;

    // Shared memory, in floats; row strides padded against bank conflicts
    // (4 mod 32 for float4 rows, 16 mod 32 for the A slice).
    static constexpr int F_STRIDE = RP + 4;  // F_q and U rows
    static constexpr int G_STRIDE = DP + 4;  // Gamma rows
    static constexpr int A_STRIDE = BLOCK_M + 16;
    static constexpr int F_FLOATS = BLOCK_Q * F_STRIDE;
    static constexpr int U_FLOATS = BLOCK_M * F_STRIDE;
    static constexpr int G_FLOATS = BLOCK_M * G_STRIDE;
    static constexpr int E_FLOATS = BLOCK_M;
    static constexpr int A_FLOATS = BLOCK_Q * A_STRIDE;
    static constexpr std::size_t SMEM_BYTES = sizeof(float) * (F_FLOATS + U_FLOATS + G_FLOATS + E_FLOATS + A_FLOATS);

    static_assert(THREADS % 32 == 0 && THREADS >= BLOCK_M, "whole warps; one thread per eta entry of a tile");
    static_assert(BLOCK_Q % ROW_GROUPS == 0 && BLOCK_M % ROW_GROUP == 0, "even ownership");
    static_assert(BLOCK_M % 4 == 0 && RP % 4 == 0, "float4 steps");
    static_assert(DP % OUT_COL_STRIDE == 0, "outputs come in float4 groups of 64 columns");
    static_assert(F_STRIDE % 32 == 4 && G_STRIDE % 32 == 4 && A_STRIDE % 32 == 16, "bank-conflict padding");
    static_assert((BLOCK_M * RP / 4) % THREADS == 0 && (BLOCK_M * DP / 4) % THREADS == 0 &&
                      (BLOCK_Q * RP / 4) % THREADS == 0,
                  "tile loads divide evenly among the threads");
    static_assert(F_FLOATS % 4 == 0 && U_FLOATS % 4 == 0 && G_FLOATS % 4 == 0 && E_FLOATS % 4 == 0,
                  "every shared array starts 16-byte aligned");
    static_assert(SMEM_BYTES <= 163 * 1024, "fits one sm_80 block");
};

//                                  RP   DP BLOCK_Q BLOCK_M THREADS MIN_BLOCKS A_UNROLL
using ReadoutR64D64 = ReadoutConfig<64, 64, 128, 64, 256, 2, 1>;  // 110,848 B: two blocks per H100 SM
using ReadoutR128D64 = ReadoutConfig<128, 64, 64, 32, 128, 2, 2>;
using ReadoutR64D128 = ReadoutConfig<64, 128, 64, 32, 128, 2, 2>;
using ReadoutR128D128 = ReadoutConfig<128, 128, 64, 32, 128, 2, 2>;  // 80,000 B

// Reductions over the 16 lanes of a half-warp (xor offsets 8..1 stay inside a half).
__device__ __forceinline__ float half_warp_sum(float x) {
    for (int offset = 8; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
}

// Copies rows [0, ROWS) x columns [0, COLS) of a row-major tile (row stride
// `ld` in global memory) into shared memory (row stride STRIDE). Rows >=
// rows_valid and columns >= cols_valid are written as zeros (the padding of R
// and d, and the rows past Nq or M). VEC: cols_valid % 4 == 0, ld % 4 == 0 and
// src 16-byte aligned.
template <int ROWS, int COLS, int STRIDE, int THREADS, bool VEC>
__device__ __forceinline__ void load_tile(float* __restrict__ dst, const float* __restrict__ src, int rows_valid,
                                          int cols_valid, int ld) {
    if constexpr (VEC) {
        constexpr int VECS_PER_ROW = COLS / 4;
        constexpr int ITERS = ROWS * VECS_PER_ROW / THREADS;
#pragma unroll
        for (int it = 0; it < ITERS; ++it) {
            const int idx = it * THREADS + static_cast<int>(threadIdx.x);
            const int row = idx / VECS_PER_ROW;
            const int col = (idx % VECS_PER_ROW) * 4;
            float4 val = make_float4(0.f, 0.f, 0.f, 0.f);
            if (row < rows_valid && col < cols_valid)  // col + 3 < cols_valid: both multiples of 4
                val = __ldg(reinterpret_cast<const float4*>(src + static_cast<std::size_t>(row) * ld + col));
            *reinterpret_cast<float4*>(dst + row * STRIDE + col) = val;
        }
    } else {
        constexpr int ITERS = ROWS * COLS / THREADS;
#pragma unroll 4
        for (int it = 0; it < ITERS; ++it) {
            const int idx = it * THREADS + static_cast<int>(threadIdx.x);
            const int row = idx / COLS;
            const int col = idx % COLS;
            float val = 0.f;
            if (row < rows_valid && col < cols_valid) val = __ldg(src + static_cast<std::size_t>(row) * ld + col);
            dst[row * STRIDE + col] = val;
        }
    }
}

// ===========================================================================
// Readout kernel. Grid: x = query tiles, y = (batch, head) pairs. One block
// computes BLOCK_Q rows of O for one head: eq:P8 row by row, eq:P9 as a whole.
// ===========================================================================

template <class Cfg, bool VEC>
__global__ void __launch_bounds__(Cfg::THREADS, Cfg::MIN_BLOCKS_PER_SM)
    readout_kernel(const float* __restrict__ fq, const float* __restrict__ u, const float* __restrict__ gamma,
                   const float* __restrict__ eta, float* __restrict__ o, int nq, int m, int r, int d) {
    constexpr int BQ = Cfg::BLOCK_Q;
    constexpr int BM = Cfg::BLOCK_M;
    constexpr int TM = Cfg::ROWS_PER_THREAD;
    constexpr int TN = Cfg::COEFS_PER_THREAD;
    constexpr int TD = Cfg::COLS_PER_THREAD;
    constexpr int RG = Cfg::ROW_GROUP;
    constexpr int NRG = Cfg::ROW_GROUPS;
    constexpr int FS = Cfg::F_STRIDE;
    constexpr int GS = Cfg::G_STRIDE;
    constexpr int AS = Cfg::A_STRIDE;

    extern __shared__ float4 smem_f4[];  // declared float4 for 16-byte alignment
    float* const Fs = reinterpret_cast<float*>(smem_f4);
    float* const Us = Fs + Cfg::F_FLOATS;
    float* const Gs = Us + Cfg::U_FLOATS;
    float* const Es = Gs + Cfg::G_FLOATS;
    float* const As = Es + Cfg::E_FLOATS;

    const int tid = static_cast<int>(threadIdx.x);
    const int tx = tid % RG;
    const int ty = tid / RG;
    const int q0 = static_cast<int>(blockIdx.x) * BQ;
    const std::size_t head = blockIdx.y;
    fq += head * static_cast<std::size_t>(nq) * r;
    o += head * static_cast<std::size_t>(nq) * d;
    u += head * static_cast<std::size_t>(m) * r;
    gamma += head * static_cast<std::size_t>(m) * d;

    const int r4 = (r + 3) & ~3;  // inner dimension rounded up to a float4 step (the padding is zero)

    load_tile<BQ, Cfg::RP, FS, Cfg::THREADS, VEC>(Fs, fq + static_cast<std::size_t>(q0) * r, nq - q0, r, r);

    float acc[TM][TD];  // numerators sum_m a_im gamma_m (eq:P8), this thread's columns
    float den[TM];      // this thread's part of sum_m a_im eta_m
#pragma unroll
    for (int i = 0; i < TM; ++i) {
        den[i] = 0.f;
#pragma unroll
        for (int c = 0; c < TD; ++c) acc[i][c] = 0.f;
    }

    const int num_m_tiles = (m + BM - 1) / BM;
    for (int mt = 0; mt < num_m_tiles; ++mt) {
        const int m0 = mt * BM;
        __syncthreads();  // everyone is done with the previous tile (and F_q is written, first time)
        load_tile<BM, Cfg::RP, FS, Cfg::THREADS, VEC>(Us, u + static_cast<std::size_t>(m0) * r, m - m0, r, r);
        load_tile<BM, Cfg::DP, GS, Cfg::THREADS, VEC>(Gs, gamma + static_cast<std::size_t>(m0) * d, m - m0, d, d);
        if (tid < BM) Es[tid] = (m0 + tid < m) ? __ldg(eta + m0 + tid) : 0.f;
        __syncthreads();

        // ---- eq:P8: a_im = xi(q_i)^T u_m for this thread's TM x TN coefficients ----
        float a[TM][TN];
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
            for (int j = 0; j < TN; ++j) a[i][j] = 0.f;
#pragma unroll Cfg::A_UNROLL
        for (int kk = 0; kk < r4; kk += 4) {
            float4 ub[TN];
#pragma unroll
            for (int j = 0; j < TN; ++j) ub[j] = *reinterpret_cast<const float4*>(&Us[(tx + RG * j) * FS + kk]);
#pragma unroll
            for (int i = 0; i < TM; ++i) {
                const float4 fa = *reinterpret_cast<const float4*>(&Fs[(ty + NRG * i) * FS + kk]);
#pragma unroll
                for (int j = 0; j < TN; ++j) {
                    a[i][j] = fmaf(fa.x, ub[j].x, a[i][j]);
                    a[i][j] = fmaf(fa.y, ub[j].y, a[i][j]);
                    a[i][j] = fmaf(fa.z, ub[j].z, a[i][j]);
                    a[i][j] = fmaf(fa.w, ub[j].w, a[i][j]);
                }
            }
        }

        // ---- eq:P8 denominator: sum_m a_im eta_m (eta is zero past M) ----
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
            for (int j = 0; j < TN; ++j) den[i] = fmaf(a[i][j], Es[tx + RG * j], den[i]);

        // The A slice to shared memory. Row ty + NRG * i is written and read only
        // by row group ty, one half-warp: __syncwarp suffices (the next write
        // comes after the next tile's __syncthreads).
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
            for (int j = 0; j < TN; ++j) As[(ty + NRG * i) * AS + tx + RG * j] = a[i][j];
        __syncwarp();

        // ---- eq:P8 numerator: sum_m a_im gamma_m (eq:P9: A Gamma) ----
#pragma unroll 2
        for (int jj = 0; jj < BM; jj += 4) {
            float p[TM][4];
#pragma unroll
            for (int i = 0; i < TM; ++i) {
                const float4 p4 = *reinterpret_cast<const float4*>(&As[(ty + NRG * i) * AS + jj]);
                p[i][0] = p4.x;
                p[i][1] = p4.y;
                p[i][2] = p4.z;
                p[i][3] = p4.w;
            }
#pragma unroll
            for (int t = 0; t < 4; ++t) {
#pragma unroll
                for (int g = 0; g < Cfg::OUT_GROUPS; ++g) {
                    const float4 gb =
                        *reinterpret_cast<const float4*>(&Gs[(jj + t) * GS + Cfg::OUT_COL_STRIDE * g + 4 * tx]);
#pragma unroll
                    for (int i = 0; i < TM; ++i) {
                        acc[i][4 * g + 0] = fmaf(p[i][t], gb.x, acc[i][4 * g + 0]);
                        acc[i][4 * g + 1] = fmaf(p[i][t], gb.y, acc[i][4 * g + 1]);
                        acc[i][4 * g + 2] = fmaf(p[i][t], gb.z, acc[i][4 * g + 2]);
                        acc[i][4 * g + 3] = fmaf(p[i][t], gb.w, acc[i][4 * g + 3]);
                    }
                }
            }
        }
    }

    // ---- eq:P9: O = F_q U^T Gamma / (F_q U^T eta), row by row ----
#pragma unroll
    for (int i = 0; i < TM; ++i) {
        const float l = half_warp_sum(den[i]);  // all lanes take part, stored row or not
        const int row = q0 + ty + NRG * i;
        if (row < nq) {
            float* const orow = o + static_cast<std::size_t>(row) * d;
#pragma unroll
            for (int g = 0; g < Cfg::OUT_GROUPS; ++g) {
                const int col = Cfg::OUT_COL_STRIDE * g + 4 * tx;
                const float4 res = make_float4(acc[i][4 * g + 0] / l, acc[i][4 * g + 1] / l, acc[i][4 * g + 2] / l,
                                               acc[i][4 * g + 3] / l);
                if constexpr (VEC) {
                    if (col < d) *reinterpret_cast<float4*>(orow + col) = res;
                } else {
                    if (col + 0 < d) orow[col + 0] = res.x;
                    if (col + 1 < d) orow[col + 1] = res.y;
                    if (col + 2 < d) orow[col + 2] = res.z;
                    if (col + 3 < d) orow[col + 3] = res.w;
                }
            }
        }
    }
}

// eq:P6 eq:3.eta, the eta column of the projection: eta_m = sum_n Phi[m][n], one block
// per row (grid-stride over the rows).
constexpr int kRowSumThreads = 256;
__global__ void __launch_bounds__(kRowSumThreads) row_sum_kernel(const float* __restrict__ phi,
                                                                 float* __restrict__ eta, int m, int n) {
    __shared__ float warp_sums[kRowSumThreads / 32];
    for (int row = static_cast<int>(blockIdx.x); row < m; row += static_cast<int>(gridDim.x)) {
        const float* const p = phi + static_cast<std::size_t>(row) * n;
        float s = 0.f;
        for (int k = static_cast<int>(threadIdx.x); k < n; k += kRowSumThreads) s += __ldg(p + k);
        for (int offset = 16; offset > 0; offset /= 2) s += __shfl_xor_sync(0xffffffffu, s, offset);
        if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = s;
        __syncthreads();
        if (threadIdx.x == 0) {
            float total = 0.f;
            for (int w = 0; w < kRowSumThreads / 32; ++w) total += warp_sums[w];
            eta[row] = total;
        }
        __syncthreads();
    }
}

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

// gridDim.y is limited to 65535: more (batch, head) pairs take several launches.
constexpr std::int64_t kMaxGridY = 65535;

template <class Cfg, bool VEC>
void launch_readout(const float* fq, const float* u, const float* gamma, const float* eta, float* o, std::int64_t bh,
                    int nq, int m, int r, int d, cudaStream_t stream) {
    const auto kernel = readout_kernel<Cfg, VEC>;
    IDATTN_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(Cfg::SMEM_BYTES)));
    const int q_tiles = (nq + Cfg::BLOCK_Q - 1) / Cfg::BLOCK_Q;
    for (std::int64_t h0 = 0; h0 < bh; h0 += kMaxGridY) {
        const auto heads = static_cast<unsigned>(std::min(kMaxGridY, bh - h0));
        const auto off = static_cast<std::size_t>(h0);
        kernel<<<dim3(static_cast<unsigned>(q_tiles), heads), Cfg::THREADS, Cfg::SMEM_BYTES, stream>>>(
            fq + off * nq * r, u + off * m * r, gamma + off * m * d, eta, o + off * nq * d, nq, m, r, d);
        IDATTN_CUDA_CHECK(cudaGetLastError());
    }
}

template <class Cfg>
void launch_readout_for_alignment(const float* fq, const float* u, const float* gamma, const float* eta, float* o,
                                  std::int64_t bh, int nq, int m, int r, int d, cudaStream_t stream) {
    const auto aligned16 = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
    if (r % 4 == 0 && d % 4 == 0 && aligned16(fq) && aligned16(u) && aligned16(gamma) && aligned16(o))
        launch_readout<Cfg, true>(fq, u, gamma, eta, o, bh, nq, m, r, d, stream);
    else
        launch_readout<Cfg, false>(fq, u, gamma, eta, o, bh, nq, m, r, d, stream);
}

// One cuBLAS handle per host thread and device, created on first use and kept
// (creating a handle costs far more than a small GEMM). Destroyed at thread exit.
cublasHandle_t cublas_handle() {
    struct Handles {
        std::vector<cublasHandle_t> per_device;
        ~Handles() {
            for (cublasHandle_t h : per_device)
                if (h != nullptr) (void)cublasDestroy(h);  // a destructor must not throw
        }
    };
    thread_local Handles handles;
    int dev = 0;
    IDATTN_CUDA_CHECK(cudaGetDevice(&dev));
    if (handles.per_device.size() <= static_cast<std::size_t>(dev)) handles.per_device.resize(dev + 1, nullptr);
    cublasHandle_t& h = handles.per_device[static_cast<std::size_t>(dev)];
    if (h == nullptr) {
        IDATTN_CUBLAS_CHECK(cublasCreate(&h));
        // Plain float32 arithmetic: no TF32 tensor-core shortcut (which would
        // change the rounding the tests compare against naive32).
        IDATTN_CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
    }
    return h;
}

std::vector<std::size_t> shape_of(const xt::xtensor<float, 4>& t) {
    return std::vector<std::size_t>(t.shape().begin(), t.shape().end());
}

// The kernels index rows with int (plus a tile size): keep well below INT_MAX.
constexpr std::int64_t kMaxLength = INT_MAX / 8;
// The causal generators turn integer positions and angles (< 2^25) into floats exactly.
constexpr std::int64_t kCausalMaxLength = std::int64_t{1} << 24;

void check_sizes(const std::string& what, std::int64_t bh, std::int64_t nq, std::int64_t n, std::int64_t m,
                 std::int64_t r, std::int64_t d) {
    if (bh < 1 || nq < 1 || n < 1 || m < 1 || r < 1 || d < 1)
        throw Error(what + ": every size must be at least 1, got bh = " + std::to_string(bh) + ", nq = " +
                    std::to_string(nq) + ", n = " + std::to_string(n) + ", M = " + std::to_string(m) + ", R = " +
                    std::to_string(r) + ", d = " + std::to_string(d));
    if (r > kInterdomainMaxDim || d > kInterdomainMaxDim)
        throw Error(what + ": feature dimension R = " + std::to_string(r) + " and value dimension d = " +
                    std::to_string(d) + " must both be <= " + std::to_string(kInterdomainMaxDim) +
                    " (the kernels' limit)");
    if (nq > kMaxLength || n > kMaxLength || m > kMaxLength)
        throw Error(what + ": sizes nq = " + std::to_string(nq) + ", n = " + std::to_string(n) + ", M = " +
                    std::to_string(m) + " exceed the kernels' limit of " + std::to_string(kMaxLength));
}

}  // namespace

// eq:P6: [U | Gamma | eta] = Phi [F_k | V | 1], every head.
void interdomain_project_device(const float* phi, const float* fk, const float* v, float* u, float* gamma,
                                float* eta, std::int64_t bh, std::int64_t n, std::int64_t m, std::int64_t r,
                                std::int64_t d, void* stream) {
    const std::string what = "interdomain_project_device";
    if (phi == nullptr || fk == nullptr || v == nullptr || u == nullptr || gamma == nullptr || eta == nullptr)
        throw Error(what + ": a null device pointer was passed for phi, fk, v, u, gamma or eta");
    check_sizes(what, bh, 1, n, m, r, d);
    if (bh > INT_MAX) throw Error(what + ": bh = " + std::to_string(bh) + " heads exceed cuBLAS's batch limit");
    const auto s = static_cast<cudaStream_t>(stream);
    cublasHandle_t h = cublas_handle();
    IDATTN_CUBLAS_CHECK(cublasSetStream(h, s));

    // cuBLAS is column-major. A row-major (rows x cols) array with row stride
    // ld is, read column-major, its transpose (cols x rows) with leading
    // dimension ld. We want row-major U (M x R) = Phi (M x N) F_k (N x R); its
    // column-major view is U^T (R x M) = F_k^T (R x N) Phi^T (N x M), and F_k^T
    // and Phi^T are exactly the column-major views of the row-major F_k
    // (ld R) and Phi (ld N). So: C = A B with A = fk (R x N, lda R), B = phi
    // (N x M, ldb N), C = u (R x M, ldc R), no transposes at all. Phi has batch
    // stride 0: one basis for every head.
    const float one = 1.f, zero = 0.f;
    const int ni = static_cast<int>(n), mi = static_cast<int>(m), ri = static_cast<int>(r), di = static_cast<int>(d);
    const int batch = static_cast<int>(bh);
    IDATTN_CUBLAS_CHECK(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, ri, mi, ni, &one, fk, ri,
                                                  static_cast<long long>(n) * r, phi, ni, 0, &zero, u, ri,
                                                  static_cast<long long>(m) * r, batch));
    // Gamma (M x d) = Phi V: the same with d columns.
    IDATTN_CUBLAS_CHECK(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, di, mi, ni, &one, v, di,
                                                  static_cast<long long>(n) * d, phi, ni, 0, &zero, gamma, di,
                                                  static_cast<long long>(m) * d, batch));
    // eta = Phi 1, shared by the heads.
    const int blocks = static_cast<int>(std::min<std::int64_t>(m, 65535));
    row_sum_kernel<<<blocks, kRowSumThreads, 0, s>>>(phi, eta, mi, ni);
    IDATTN_CUDA_CHECK(cudaGetLastError());
}

// eq:P8 / eq:P9: o = F_q U^T Gamma / (F_q U^T eta), every head.
void interdomain_readout_device(const float* fq, const float* u, const float* gamma, const float* eta, float* o,
                                std::int64_t bh, std::int64_t nq, std::int64_t m, std::int64_t r, std::int64_t d,
                                void* stream) {
    const std::string what = "interdomain_readout_device";
    if (fq == nullptr || u == nullptr || gamma == nullptr || eta == nullptr || o == nullptr)
        throw Error(what + ": a null device pointer was passed for fq, u, gamma, eta or o");
    check_sizes(what, bh, nq, 1, m, r, d);
    const auto s = static_cast<cudaStream_t>(stream);
    const int nqi = static_cast<int>(nq), mi = static_cast<int>(m), ri = static_cast<int>(r), di = static_cast<int>(d);
    if (r <= 64 && d <= 64)
        launch_readout_for_alignment<ReadoutR64D64>(fq, u, gamma, eta, o, bh, nqi, mi, ri, di, s);
    else if (d <= 64)
        launch_readout_for_alignment<ReadoutR128D64>(fq, u, gamma, eta, o, bh, nqi, mi, ri, di, s);
    else if (r <= 64)
        launch_readout_for_alignment<ReadoutR64D128>(fq, u, gamma, eta, o, bh, nqi, mi, ri, di, s);
    else
        launch_readout_for_alignment<ReadoutR128D128>(fq, u, gamma, eta, o, bh, nqi, mi, ri, di, s);
}

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

namespace {

// Shapes of the host entry points: fq (B, H, Nq, R), fk (B, H, N, R), v (B, H, N, d).
void check_host_shapes(const std::string& what, const std::vector<std::size_t>& qs, const std::vector<std::size_t>& ks,
                       const std::vector<std::size_t>& vs) {
    for (const auto& [name, shape] : {std::pair<const char*, const std::vector<std::size_t>&>{"fq", qs},
                                      std::pair<const char*, const std::vector<std::size_t>&>{"fk", ks},
                                      std::pair<const char*, const std::vector<std::size_t>&>{"v", vs}}) {
        for (std::size_t a = 0; a < shape.size(); ++a)
            if (shape[a] == 0)
                throw Error(what + ": " + name + " has shape " + shape_str(shape) + " with axis " + std::to_string(a) +
                            " of length 0; every axis must be at least 1");
    }
    if (ks[0] != qs[0] || ks[1] != qs[1] || ks[3] != qs[3])
        throw Error(what + ": fk has shape " + shape_str(ks) + " but fq has shape " + shape_str(qs) +
                    "; expected fk of shape (B, H, N, R) = (" + std::to_string(qs[0]) + ", " + std::to_string(qs[1]) +
                    ", N, " + std::to_string(qs[3]) + ")");
    if (vs[0] != ks[0] || vs[1] != ks[1] || vs[2] != ks[2])
        throw Error(what + ": v has shape " + shape_str(vs) + " but fk has shape " + shape_str(ks) +
                    "; expected v of shape (B, H, N, d) = (" + std::to_string(ks[0]) + ", " + std::to_string(ks[1]) +
                    ", " + std::to_string(ks[2]) + ", d)");
    if (qs[3] > static_cast<std::size_t>(kInterdomainMaxDim) || vs[3] > static_cast<std::size_t>(kInterdomainMaxDim))
        throw Error(what + ": fq has shape " + shape_str(qs) + " and v has shape " + shape_str(vs) +
                    "; the fast kernels support R <= " + std::to_string(kInterdomainMaxDim) + " and d <= " +
                    std::to_string(kInterdomainMaxDim));
}

}  // namespace

xt::xtensor<float, 4> interdomain_attention(const xt::xtensor<float, 2>& phi, const xt::xtensor<float, 4>& fq,
                                            const xt::xtensor<float, 4>& fk, const xt::xtensor<float, 4>& v) {
    const std::string what = "interdomain_attention (fast)";
    const auto qs = shape_of(fq), ks = shape_of(fk), vs = shape_of(v);
    check_host_shapes(what, qs, ks, vs);
    const std::vector<std::size_t> ps(phi.shape().begin(), phi.shape().end());
    if (ps[0] == 0 || ps[1] != ks[2])
        throw Error(what + ": phi has shape " + shape_str(ps) + " but fk has shape " + shape_str(ks) +
                    "; expected phi of shape (M, N) = (M, " + std::to_string(ks[2]) + ") with M >= 1");

    const std::size_t B = qs[0], H = qs[1], NQ = qs[2], R = qs[3], N = ks[2], D = vs[3], M = ps[0];
    const auto bh = static_cast<std::int64_t>(B * H);
    DeviceBuffer<float> dphi(phi.size()), dq(fq.size()), dk(fk.size()), dv(v.size());
    DeviceBuffer<float> du(B * H * M * R), dg(B * H * M * D), de(M), dout(B * H * NQ * D);
    dphi.copy_from_host(phi.data());
    dq.copy_from_host(fq.data());
    dk.copy_from_host(fk.data());
    dv.copy_from_host(v.data());
    // NaN poison: an element a kernel fails to write shows up in the tests.
    du.fill_bytes(0xFF);
    dg.fill_bytes(0xFF);
    de.fill_bytes(0xFF);
    dout.fill_bytes(0xFF);
    interdomain_project_device(dphi.data(), dk.data(), dv.data(), du.data(), dg.data(), de.data(), bh,
                               static_cast<std::int64_t>(N), static_cast<std::int64_t>(M),
                               static_cast<std::int64_t>(R), static_cast<std::int64_t>(D), nullptr);
    interdomain_readout_device(dq.data(), du.data(), dg.data(), de.data(), dout.data(), bh,
                               static_cast<std::int64_t>(NQ), static_cast<std::int64_t>(M),
                               static_cast<std::int64_t>(R), static_cast<std::int64_t>(D), nullptr);
    IDATTN_CUDA_CHECK(cudaDeviceSynchronize());  // reports an error raised while a kernel ran

    xt::xtensor<float, 4> out = xt::empty<float>({B, H, NQ, D});
    dout.copy_to_host(out.data());
    return out;
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
