// Chapter 1, fast backend: softmax attention (P1) as a tiled online-softmax
// forward kernel in float32, in the style of FlashAttention-2.
//
// Status: verified on a GPU (NVIDIA H100 and H200, sm_90, 2026-11-26): every test
// of tests/NN-*/fast_*.cpp passes there; compute-sanitizer memcheck, racecheck and
// synccheck are clean on the cases listed in bench/results/README.md. Not run on
// sm_80 (compiled only).
//
// What it optimises, and why
// --------------------------
// The reference forms the N_q x N matrix of logits S = Q K^T / sqrt(d), takes
// its row-wise softmax and multiplies by V: O(N^2) memory and O(N^2) memory
// traffic. Here the N_q x N matrix never exists. A thread block owns a tile of
// BLOCK_Q queries (kept in shared memory for the whole run) and walks over the
// keys in tiles of BLOCK_K rows of K and V, staged in shared memory. For each
// key tile it computes its BLOCK_Q x BLOCK_K slice of S, folds it into a running
// row maximum m, a running row sum l and an unnormalised output accumulator O
// (the online softmax, eq:1.online), and forgets it. Global memory traffic is
// O(N d) per query tile instead of O(N^2), and the only O(N^2) work left is
// arithmetic, which is what a GPU is good at.
//
// Inside a block the two products S = Q K^T and O += P V are small SGEMMs on
// shared memory, register-blocked like a SIMT SGEMM: a half-warp of 16 threads
// (a "row group") shares ROWS_PER_THREAD query rows; each thread owns
// ROWS_PER_THREAD x KEYS_PER_THREAD logits of S and ROWS_PER_THREAD x
// COLS_PER_THREAD outputs of O, and per float4 read from shared memory it does
// several fused multiply-adds (see "Arithmetic intensity" below). Because a
// query row lives inside one half-warp, the row max and row sum are warp
// shuffles, the row's scale factor exp(m_old - m_new) is already in the
// registers of every thread that owns part of that row of O, and P goes
// through shared memory with only a __syncwarp between writing and reading it.
//
// Tile sizes (per padded head dimension; the kernel is a template on them)
//   HEAD_DIM  64: BLOCK_Q 128, BLOCK_K 64, 256 threads, 8 x 4 logits and 8 x 4
//                 outputs per thread, 110,592 B shared memory: two blocks
//                 (16 warps) per H100 SM, one per A100 SM.
//   HEAD_DIM 128: BLOCK_Q 64, BLOCK_K 32, 128 threads, 8 x 2 logits and 8 x 8
//                 outputs per thread, 79,872 B shared memory: two blocks per
//                 SM on both. The 8 x 8 output tile is what a d = 128 row costs in
//                 registers; a larger BLOCK_Q would leave room for one block
//                 per SM only.
// ptxas (CUDA 13.0, sm_90; sm_80 alike): HEAD_DIM 64: 128 registers (the
// __launch_bounds__ cap for two 256-thread blocks), no spills, because the
// loop over the head dimension in Q K^T is kept rolled (QK_UNROLL = 1; fully
// unrolled it wants 168 registers and spills at 128). HEAD_DIM 128: 191
// (scalar loads) / 208 (float4) registers, no spills; 2 x 128 x 208 fits the
// 64K registers of an SM.
// Shared layouts: Q, K and V rows are padded to HEAD_DIM + 4 floats, so that the
// 16 different K rows (and the two Q rows) a warp reads with one float4 load
// fall into different banks; P rows are padded to BLOCK_K + 16 floats, so that
// the two row groups of a warp write P without bank conflicts.
//
// Arithmetic intensity: per 4 steps of the inner dimension a warp issues, for
// HEAD_DIM 64, 8 broadcast float4 loads of Q (one wavefront each) and 4 float4
// loads of K (two wavefronts each) for 128 FMA instructions, about 8 FMA
// instructions per shared-memory wavefront; an SM retires 4 warp-FMAs per
// wavefront, so the loop is bound by the FMA units rather than by shared memory.
//
// Numerics: exp2f with log2(e)/sqrt(d) folded into one scale of the logits;
// the running maximum keeps every exponent <= 0, so logits of size 1e3 stay
// finite (eq:1.shift); masked keys are -INFINITY and a row whose maximum so
// far is -INFINITY exponentiates against 0 instead, so exp(-inf - -inf) = NaN
// never happens. The order of the sums differs from the float64 reference;
// the tests bound the difference (derivation.md, "Precision and tolerances").
//
// Ragged sizes: any N_q, N >= 1 and any d in [1, 128]. d is zero-padded to the
// template's HEAD_DIM (64 for d <= 64, 128 otherwise) in shared memory, key rows
// past N are zero-filled and masked, query rows past N_q are computed on zeros
// and not stored. Rows are read with float4 when d % 4 == 0 and every pointer
// is 16-byte aligned, with scalar loads otherwise.
//
// Limits: d <= 128, float32 only, forward only, no dropout, no attention bias.
// Causal masking is bottom-right aligned (key j visible to query i iff
// j <= i + N - N_q, N_q <= N), as in the reference.
//
// Not done (yet): asynchronous copies (cp.async / TMA) to overlap the next K,V
// tile's load with this tile's arithmetic (two resident blocks per SM overlap
// one block's loads with the other's arithmetic instead); tensor cores (TF32 /
// 3xTF32), which would change the float32 rounding this chapter compares.
#include "fast/01-softmax-attention/softmax_attention.hpp"

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

// ---------------------------------------------------------------------------
// Tile geometry
// ---------------------------------------------------------------------------

template <int HEAD_DIM_, int BLOCK_Q_, int BLOCK_K_, int THREADS_, int MIN_BLOCKS_PER_SM_, int QK_UNROLL_>
struct TileConfig {
    static constexpr int HEAD_DIM = HEAD_DIM_;  // padded head dimension (d <= HEAD_DIM)
    static constexpr int BLOCK_Q = BLOCK_Q_;    // queries per thread block
    static constexpr int BLOCK_K = BLOCK_K_;    // keys per shared-memory tile
    static constexpr int THREADS = THREADS_;
    static constexpr int MIN_BLOCKS_PER_SM = MIN_BLOCKS_PER_SM_;  // for __launch_bounds__
    // Unroll factor of the loop over the head dimension in S = Q K^T. Full
    // unrolling lets the compiler hoist loads across steps, which costs
    // registers: at 128 registers (two 256-thread blocks per SM) the HEAD_DIM 64
    // kernel spills unless the loop stays rolled.
    static constexpr int QK_UNROLL = QK_UNROLL_;

    // A query row is shared by the 16 threads of a half-warp (a row group).
    static constexpr int ROW_GROUP = 16;
    static constexpr int ROW_GROUPS = THREADS / ROW_GROUP;
    // Thread (ty, tx) = (tid / 16, tid % 16) owns query rows ty + ROW_GROUPS * i,
    // keys tx + ROW_GROUP * j of each key tile, and output columns
    // 4 * tx + OUT_COL_STRIDE * g + e (e < 4): float4-contiguous per thread.
    static constexpr int ROWS_PER_THREAD = BLOCK_Q / ROW_GROUPS;
    static constexpr int KEYS_PER_THREAD = BLOCK_K / ROW_GROUP;
    static constexpr int COLS_PER_THREAD = HEAD_DIM / ROW_GROUP;
    static constexpr int OUT_COL_STRIDE = 4 * ROW_GROUP;  // 64 columns per float4 group
    static constexpr int OUT_GROUPS = COLS_PER_THREAD / 4;

    // Shared memory, in floats. Row strides are padded against bank conflicts:
    // QKV_STRIDE = 4 (mod 32) spreads 8 consecutive rows' float4s over all 32
    // banks; P_STRIDE = 16 (mod 32) puts the two row groups of a warp on
    // opposite halves of the banks.
    static constexpr int QKV_STRIDE = HEAD_DIM + 4;
    static constexpr int P_STRIDE = BLOCK_K + 16;
    static constexpr int Q_FLOATS = BLOCK_Q * QKV_STRIDE;
    static constexpr int KV_FLOATS = BLOCK_K * QKV_STRIDE;
    static constexpr int P_FLOATS = BLOCK_Q * P_STRIDE;
    static constexpr std::size_t SMEM_BYTES = sizeof(float) * (Q_FLOATS + 2 * KV_FLOATS + P_FLOATS);

    static_assert(THREADS % 32 == 0, "whole warps");
    static_assert(BLOCK_Q % ROW_GROUPS == 0, "every thread owns the same number of query rows");
    static_assert(BLOCK_K % ROW_GROUP == 0, "every thread owns the same number of keys");
    static_assert(BLOCK_K % 4 == 0, "P is read as float4 along the keys");
    static_assert(HEAD_DIM % OUT_COL_STRIDE == 0, "outputs come in float4 groups of 64 columns");
    static_assert(QKV_STRIDE % 32 == 4 && P_STRIDE % 32 == 16, "bank-conflict padding");
    static_assert((BLOCK_Q * HEAD_DIM / 4) % THREADS == 0 && (BLOCK_K * HEAD_DIM / 4) % THREADS == 0,
                  "tile loads divide evenly among the threads");
    static_assert(Q_FLOATS % 4 == 0 && KV_FLOATS % 4 == 0, "every shared array starts 16-byte aligned");
    // The A100 (sm_80) allows at most 163 KiB of dynamic shared memory per block.
    static_assert(SMEM_BYTES <= 163 * 1024, "fits one sm_80 block");
};

//                         HEAD_DIM BLOCK_Q BLOCK_K THREADS MIN_BLOCKS QK_UNROLL
using ConfigD64 = TileConfig<64, 128, 64, 256, 2, 1>;
using ConfigD128 = TileConfig<128, 64, 32, 128, 2, 32>;

constexpr double kLog2e = 1.4426950408889634074;

// ---------------------------------------------------------------------------
// Device helpers
// ---------------------------------------------------------------------------

// Reductions over the 16 lanes of a half-warp (xor offsets 8, 4, 2, 1 never
// cross from one half to the other). Every lane of the warp must call them.
__device__ __forceinline__ float half_warp_max(float x) {
    for (int offset = 8; offset > 0; offset /= 2) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
    return x;
}
__device__ __forceinline__ float half_warp_sum(float x) {
    for (int offset = 8; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
}

// Copies rows [0, ROWS) x columns [0, HEAD_DIM) of a tile into shared memory
// (row stride QKV_STRIDE). `src` is the tile's first row in global memory
// (row stride d). Rows >= rows_valid and columns >= d are written as zeros: the
// zero padding of d, and zero K/V rows past N (a masked key must meet a finite
// V row, since 0 * NaN = NaN).
template <class Cfg, int ROWS, bool VEC>
__device__ __forceinline__ void load_tile(float* __restrict__ dst, const float* __restrict__ src, int rows_valid,
                                          int d) {
    if constexpr (VEC) {  // d % 4 == 0 and src 16-byte aligned
        constexpr int VECS_PER_ROW = Cfg::HEAD_DIM / 4;
        constexpr int ITERS = ROWS * VECS_PER_ROW / Cfg::THREADS;
#pragma unroll
        for (int it = 0; it < ITERS; ++it) {
            const int idx = it * Cfg::THREADS + static_cast<int>(threadIdx.x);
            const int row = idx / VECS_PER_ROW;
            const int col = (idx % VECS_PER_ROW) * 4;
            float4 val = make_float4(0.f, 0.f, 0.f, 0.f);
            // col < d implies col + 3 < d because both are multiples of 4.
            if (row < rows_valid && col < d)
                val = __ldg(reinterpret_cast<const float4*>(src + static_cast<std::size_t>(row) * d + col));
            *reinterpret_cast<float4*>(dst + row * Cfg::QKV_STRIDE + col) = val;
        }
    } else {
        constexpr int ITERS = ROWS * Cfg::HEAD_DIM / Cfg::THREADS;
#pragma unroll 4
        for (int it = 0; it < ITERS; ++it) {
            const int idx = it * Cfg::THREADS + static_cast<int>(threadIdx.x);
            const int row = idx / Cfg::HEAD_DIM;
            const int col = idx % Cfg::HEAD_DIM;
            float val = 0.f;
            if (row < rows_valid && col < d) val = __ldg(src + static_cast<std::size_t>(row) * d + col);
            dst[row * Cfg::QKV_STRIDE + col] = val;
        }
    }
}

// ---------------------------------------------------------------------------
// The kernel. Grid: x = query tiles (heaviest causal tile first), y = the
// (batch, head) pairs. One block computes BLOCK_Q rows of O for one head.
// ---------------------------------------------------------------------------

template <class Cfg, bool VEC>
__global__ void __launch_bounds__(Cfg::THREADS, Cfg::MIN_BLOCKS_PER_SM)
    softmax_attention_kernel(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                             float* __restrict__ o, int nq, int n, int d, bool causal, float scale_log2) {
    constexpr int BQ = Cfg::BLOCK_Q;
    constexpr int BK = Cfg::BLOCK_K;
    constexpr int TM = Cfg::ROWS_PER_THREAD;
    constexpr int TN = Cfg::KEYS_PER_THREAD;
    constexpr int TD = Cfg::COLS_PER_THREAD;
    constexpr int RG = Cfg::ROW_GROUP;
    constexpr int NRG = Cfg::ROW_GROUPS;
    constexpr int STRIDE = Cfg::QKV_STRIDE;
    constexpr int PSTRIDE = Cfg::P_STRIDE;

    extern __shared__ float4 smem_f4[];  // declared float4 for 16-byte alignment
    float* const Qs = reinterpret_cast<float*>(smem_f4);
    float* const Ks = Qs + Cfg::Q_FLOATS;
    float* const Vs = Ks + Cfg::KV_FLOATS;
    float* const Ps = Vs + Cfg::KV_FLOATS;

    const int tx = static_cast<int>(threadIdx.x) % RG;  // position inside the row group
    const int ty = static_cast<int>(threadIdx.x) / RG;  // row group = half-warp

    // Heaviest causal query tile first, so that the long blocks start early.
    const int q0 = (static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x)) * BQ;
    const std::size_t head = blockIdx.y;
    q += head * static_cast<std::size_t>(nq) * d;
    o += head * static_cast<std::size_t>(nq) * d;
    k += head * static_cast<std::size_t>(n) * d;
    v += head * static_cast<std::size_t>(n) * d;

    // eq:1.causal: key j is visible to query i iff j <= i + (n - nq).
    const int causal_offset = n - nq;

    // Number of key tiles: all of them, or (causal) up to the last key the
    // block's last valid query sees. Tiles entirely above the diagonal are
    // never loaded.
    int num_k_tiles = (n + BK - 1) / BK;
    if (causal) {
        const int last_query = min(q0 + BQ, nq) - 1;
        num_k_tiles = (last_query + causal_offset) / BK + 1;  // last_query + causal_offset <= n - 1
    }

    load_tile<Cfg, BQ, VEC>(Qs, q + static_cast<std::size_t>(q0) * d, nq - q0, d);

    // Per owned query row: running max m (log2 units), this thread's part of
    // the running sum l (reduced over the row group at the end), and the
    // unnormalised output accumulator.
    float m_run[TM];
    float l_part[TM];
    float acc[TM][TD];
#pragma unroll
    for (int i = 0; i < TM; ++i) {
        m_run[i] = -INFINITY;
        l_part[i] = 0.f;
#pragma unroll
        for (int c = 0; c < TD; ++c) acc[i][c] = 0.f;
    }

    for (int kt = 0; kt < num_k_tiles; ++kt) {
        const int k0 = kt * BK;

        __syncthreads();  // every thread is done with the previous K, V (and Q is written, first time)
        load_tile<Cfg, BK, VEC>(Ks, k + static_cast<std::size_t>(k0) * d, n - k0, d);
        load_tile<Cfg, BK, VEC>(Vs, v + static_cast<std::size_t>(k0) * d, n - k0, d);
        __syncthreads();

        // ---- S = Q K^T for this thread's TM x TN logits (register-blocked) ----
        float s[TM][TN];
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
            for (int j = 0; j < TN; ++j) s[i][j] = 0.f;

#pragma unroll Cfg::QK_UNROLL
        for (int kk = 0; kk < Cfg::HEAD_DIM; kk += 4) {
            float4 kb[TN];
#pragma unroll
            for (int j = 0; j < TN; ++j)
                kb[j] = *reinterpret_cast<const float4*>(&Ks[(tx + RG * j) * STRIDE + kk]);
#pragma unroll
            for (int i = 0; i < TM; ++i) {
                const float4 qa = *reinterpret_cast<const float4*>(&Qs[(ty + NRG * i) * STRIDE + kk]);
#pragma unroll
                for (int j = 0; j < TN; ++j) {
                    s[i][j] = fmaf(qa.x, kb[j].x, s[i][j]);
                    s[i][j] = fmaf(qa.y, kb[j].y, s[i][j]);
                    s[i][j] = fmaf(qa.z, kb[j].z, s[i][j]);
                    s[i][j] = fmaf(qa.w, kb[j].w, s[i][j]);
                }
            }
        }

        // Logits in log2 units: s * log2(e) / sqrt(d), so that exp(x) = exp2f(x * log2 e).
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
            for (int j = 0; j < TN; ++j) s[i][j] *= scale_log2;

        // eq:1.causal: only tiles that hold keys past N, or (causal) keys past the
        // first query's diagonal, need the per-element mask.
        const bool tile_past_end = k0 + BK > n;
        const bool tile_on_diagonal = causal && (k0 + BK - 1 > q0 + causal_offset);
        if (tile_past_end || tile_on_diagonal) {
#pragma unroll
            for (int i = 0; i < TM; ++i) {
                const int query = q0 + ty + NRG * i;
#pragma unroll
                for (int j = 0; j < TN; ++j) {
                    const int key = k0 + tx + RG * j;
                    const bool visible = key < n && (!causal || key <= query + causal_offset);
                    if (!visible) s[i][j] = -INFINITY;
                }
            }
        }

        // ---- online softmax, eq:1.online ----
        // m_new = max(m, rowmax S); l = exp(m - m_new) l + sum exp(s - m_new);
        // o = exp(m - m_new) o + P V.
#pragma unroll
        for (int i = 0; i < TM; ++i) {
            float tile_max = s[i][0];
#pragma unroll
            for (int j = 1; j < TN; ++j) tile_max = fmaxf(tile_max, s[i][j]);
            tile_max = half_warp_max(tile_max);  // the whole row of this tile
            const float m_new = fmaxf(m_run[i], tile_max);
            // eq:1.shift: exponents are taken relative to the running max, so
            // every exponent is <= 0. A row with no visible key yet (m_new =
            // -inf) uses 0 instead: exp2(-inf - 0) = 0, never exp2(-inf + inf).
            const float m_base = (m_new == -INFINITY) ? 0.f : m_new;
            const float alpha = exp2f(m_run[i] - m_base);  // exp(m - m_new); 0 on the first visible tile
            float p_sum = 0.f;
#pragma unroll
            for (int j = 0; j < TN; ++j) {
                const float p = exp2f(s[i][j] - m_base);  // masked: exp2(-inf) = 0
                s[i][j] = p;
                p_sum += p;
            }
            l_part[i] = alpha * l_part[i] + p_sum;
            m_run[i] = m_new;
#pragma unroll
            for (int c = 0; c < TD; ++c) acc[i][c] *= alpha;
        }

        // P to shared memory. Row ty + NRG * i is written and read only by the
        // 16 threads of row group ty, one half-warp: __syncwarp suffices. (The
        // next write to Ps comes after the next iteration's __syncthreads.)
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
            for (int j = 0; j < TN; ++j) Ps[(ty + NRG * i) * PSTRIDE + tx + RG * j] = s[i][j];
        __syncwarp();

        // ---- O += P V for this thread's TM x TD outputs (eq:P1's numerator) ----
#pragma unroll 2
        for (int jj = 0; jj < BK; jj += 4) {
            float p[TM][4];
#pragma unroll
            for (int i = 0; i < TM; ++i) {
                const float4 p4 = *reinterpret_cast<const float4*>(&Ps[(ty + NRG * i) * PSTRIDE + jj]);
                p[i][0] = p4.x;
                p[i][1] = p4.y;
                p[i][2] = p4.z;
                p[i][3] = p4.w;
            }
#pragma unroll
            for (int t = 0; t < 4; ++t) {
#pragma unroll
                for (int g = 0; g < Cfg::OUT_GROUPS; ++g) {
                    const float4 vb =
                        *reinterpret_cast<const float4*>(&Vs[(jj + t) * STRIDE + Cfg::OUT_COL_STRIDE * g + 4 * tx]);
#pragma unroll
                    for (int i = 0; i < TM; ++i) {
                        acc[i][4 * g + 0] = fmaf(p[i][t], vb.x, acc[i][4 * g + 0]);
                        acc[i][4 * g + 1] = fmaf(p[i][t], vb.y, acc[i][4 * g + 1]);
                        acc[i][4 * g + 2] = fmaf(p[i][t], vb.z, acc[i][4 * g + 2]);
                        acc[i][4 * g + 3] = fmaf(p[i][t], vb.w, acc[i][4 * g + 3]);
                    }
                }
            }
        }
    }

    // ---- eq:1.normalise: o_i = (sum_j p_ij v_j) / l_i ----
    // eq:P1: o_i = sum_n K(q_i, k_n) v_n / sum_n' K(q_i, k_n'); both sums carry
    // the same factor exp(-m_i), which cancels in the quotient.
#pragma unroll
    for (int i = 0; i < TM; ++i) {
        // Every stored row has a visible key (key 0 at least); the key at the
        // row's final maximum contributes exp2(m - m) = 1, so l >= 1.
        const float l = half_warp_sum(l_part[i]);  // all lanes take part, stored row or not
        const int row = q0 + ty + NRG * i;
        if (row < nq) {
            float* const orow = o + static_cast<std::size_t>(row) * d;
#pragma unroll
            for (int g = 0; g < Cfg::OUT_GROUPS; ++g) {
                const int col = Cfg::OUT_COL_STRIDE * g + 4 * tx;
                const float4 r = make_float4(acc[i][4 * g + 0] / l, acc[i][4 * g + 1] / l, acc[i][4 * g + 2] / l,
                                             acc[i][4 * g + 3] / l);
                if constexpr (VEC) {
                    if (col < d) *reinterpret_cast<float4*>(orow + col) = r;
                } else {
                    if (col + 0 < d) orow[col + 0] = r.x;
                    if (col + 1 < d) orow[col + 1] = r.y;
                    if (col + 2 < d) orow[col + 2] = r.z;
                    if (col + 3 < d) orow[col + 3] = r.w;
                }
            }
        }
    }
}

// gridDim.y is limited to 65535: more (batch, head) pairs take several launches.
constexpr std::int64_t kMaxGridY = 65535;

template <class Cfg, bool VEC>
void launch(const float* q, const float* k, const float* v, float* o, std::int64_t bh, int nq, int n, int d,
            bool causal, cudaStream_t stream) {
    const auto kernel = softmax_attention_kernel<Cfg, VEC>;
    IDATTN_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(Cfg::SMEM_BYTES)));
    const float scale_log2 = static_cast<float>(kLog2e / std::sqrt(static_cast<double>(d)));
    const int q_tiles = (nq + Cfg::BLOCK_Q - 1) / Cfg::BLOCK_Q;
    const std::size_t q_head = static_cast<std::size_t>(nq) * d;
    const std::size_t kv_head = static_cast<std::size_t>(n) * d;
    for (std::int64_t h0 = 0; h0 < bh; h0 += kMaxGridY) {
        const auto heads = static_cast<unsigned>(std::min(kMaxGridY, bh - h0));
        const dim3 grid(static_cast<unsigned>(q_tiles), heads);
        const auto off = static_cast<std::size_t>(h0);
        kernel<<<grid, Cfg::THREADS, Cfg::SMEM_BYTES, stream>>>(q + off * q_head, k + off * kv_head,
                                                                 v + off * kv_head, o + off * q_head, nq, n, d,
                                                                 causal, scale_log2);
        IDATTN_CUDA_CHECK(cudaGetLastError());
    }
}

template <class Cfg>
void launch_for_alignment(const float* q, const float* k, const float* v, float* o, std::int64_t bh, int nq, int n,
                          int d, bool causal, cudaStream_t stream) {
    const auto aligned16 = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
    if (d % 4 == 0 && aligned16(q) && aligned16(k) && aligned16(v) && aligned16(o))
        launch<Cfg, true>(q, k, v, o, bh, nq, n, d, causal, stream);
    else
        launch<Cfg, false>(q, k, v, o, bh, nq, n, d, causal, stream);
}

std::vector<std::size_t> shape_of(const xt::xtensor<float, 4>& t) {
    return std::vector<std::size_t>(t.shape().begin(), t.shape().end());
}

}  // namespace

// The "fast" side of eq:1.1 (fast = reference), for both forms of eq:1.2
// (causal and not); eq:1.3 (huge logits stay finite) rests on the running-max
// shift in the kernel above.
void softmax_attention_device(const float* q, const float* k, const float* v, float* o, std::int64_t bh,
                              std::int64_t nq, std::int64_t n, std::int64_t d, bool causal, void* stream) {
    const std::string what = "softmax_attention_device";
    // The kernel indexes rows with int (and adds a tile size): keep well below INT_MAX.
    constexpr std::int64_t kMaxLength = INT_MAX / 2;
    if (q == nullptr || k == nullptr || v == nullptr || o == nullptr)
        throw Error(what + ": a null device pointer was passed for q, k, v or o");
    if (bh < 1 || nq < 1 || n < 1 || d < 1)
        throw Error(what + ": every size must be at least 1, got bh = " + std::to_string(bh) +
                    ", nq = " + std::to_string(nq) + ", n = " + std::to_string(n) + ", d = " + std::to_string(d));
    if (d > kSoftmaxMaxHeadDim)
        throw Error(what + ": head dimension d = " + std::to_string(d) + " is not supported; the kernel needs d <= " +
                    std::to_string(kSoftmaxMaxHeadDim));
    if (nq > kMaxLength || n > kMaxLength)
        throw Error(what + ": sequence lengths nq = " + std::to_string(nq) + ", n = " + std::to_string(n) +
                    " exceed the kernel's limit of " + std::to_string(kMaxLength));
    if (causal && nq > n)
        throw Error(what + ": causal attention needs nq <= n (bottom-right aligned mask), got nq = " +
                    std::to_string(nq) + " and n = " + std::to_string(n));

    const auto s = static_cast<cudaStream_t>(stream);
    const int nq_i = static_cast<int>(nq), n_i = static_cast<int>(n), d_i = static_cast<int>(d);
    if (d <= ConfigD64::HEAD_DIM)
        launch_for_alignment<ConfigD64>(q, k, v, o, bh, nq_i, n_i, d_i, causal, s);
    else
        launch_for_alignment<ConfigD128>(q, k, v, o, bh, nq_i, n_i, d_i, causal, s);
}

xt::xtensor<float, 4> softmax_attention(const xt::xtensor<float, 4>& q, const xt::xtensor<float, 4>& k,
                                        const xt::xtensor<float, 4>& v, bool causal) {
    const std::string what = "softmax_attention (fast)";
    const auto qs = shape_of(q), ks = shape_of(k), vs = shape_of(v);
    for (const auto& [name, shape] : {std::pair<const char*, const std::vector<std::size_t>&>{"q", qs},
                                      std::pair<const char*, const std::vector<std::size_t>&>{"k", ks},
                                      std::pair<const char*, const std::vector<std::size_t>&>{"v", vs}}) {
        for (std::size_t a = 0; a < shape.size(); ++a)
            if (shape[a] == 0)
                throw Error(what + ": " + name + " has shape " + shape_str(shape) + " with axis " + std::to_string(a) +
                            " of length 0; every axis must be at least 1");
    }
    if (ks[0] != qs[0] || ks[1] != qs[1] || ks[3] != qs[3])
        throw Error(what + ": k has shape " + shape_str(ks) + " but q has shape " + shape_str(qs) +
                    "; expected k of shape (B, H, N, d) = (" + std::to_string(qs[0]) + ", " + std::to_string(qs[1]) +
                    ", N, " + std::to_string(qs[3]) + ")");
    if (vs != ks)
        throw Error(what + ": v has shape " + shape_str(vs) + " but k has shape " + shape_str(ks) +
                    "; expected v of the same shape as k");
    if (qs[3] > static_cast<std::size_t>(kSoftmaxMaxHeadDim))
        throw Error(what + ": q has shape " + shape_str(qs) + " with head dimension d = " + std::to_string(qs[3]) +
                    "; the fast kernel supports d <= " + std::to_string(kSoftmaxMaxHeadDim));
    if (causal && qs[2] > ks[2])
        throw Error(what + ": causal attention needs N_q <= N, but q has shape " + shape_str(qs) + " (N_q = " +
                    std::to_string(qs[2]) + ") and k has shape " + shape_str(ks) + " (N = " + std::to_string(ks[2]) +
                    ")");

    const auto bh = static_cast<std::int64_t>(qs[0] * qs[1]);
    DeviceBuffer<float> dq(q.size()), dk(k.size()), dv(v.size()), dout(q.size());
    dq.copy_from_host(q.data());
    dk.copy_from_host(k.data());
    dv.copy_from_host(v.data());
    dout.fill_bytes(0xFF);  // NaN poison: an output the kernel fails to write shows up in the tests
    softmax_attention_device(dq.data(), dk.data(), dv.data(), dout.data(), bh, static_cast<std::int64_t>(qs[2]),
                             static_cast<std::int64_t>(ks[2]), static_cast<std::int64_t>(qs[3]), causal, nullptr);
    IDATTN_CUDA_CHECK(cudaDeviceSynchronize());  // reports an error raised while the kernel ran

    xt::xtensor<float, 4> out(q.shape());
    dout.copy_to_host(out.data());
    return out;
}

}  // namespace idattn::fast
