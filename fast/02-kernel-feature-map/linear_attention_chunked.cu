// Chapter 2, fast backend: linear attention (eq:P4) in the chunked form
// (eq:2.chunk), float32, on the features of feature_map.cu, and its host
// wrappers.
//
// What it optimises, and why
// --------------------------
// Chunked linear attention (eq:2.chunk), three passes over chunks of K keys
// per head, after the features of q and k (feature_map.cu's kernel; the
// queries' constants are dropped, eq:2.stab) and the per-sequence key constant
// c* = max_n c_n (one block per head turns c_n into the key weights
// exp(c_n - c*)):
//   pass 1  every chunk's local state, S_c = F_k,c^T V_c and z_c = F_k,c^T 1
//           (R_f x (d + 1) per chunk and head), all chunks in parallel
//           (eq:2.recurrence summed over one chunk). One block per 64 rows of
//           S_c, register-blocked (4 x d/16 entries per thread), keys in
//           tiles of 32 through shared memory.
//   pass 2  an exclusive prefix sum over the chunks, in place: slot j then
//           holds the state of all keys before chunk j, slot n_chunks the
//           total (the non-causal state). One thread per state entry and
//           head, sequential over the chunks, coalesced across entries.
//   pass 3  per chunk and tile of 64 queries: num = F_q [S_<j | z_<j] (the
//           read of the state, eq:P4 / eq:2.recurrence) plus the masked
//           intra-chunk product mask(F_q F_k^T) [V | 1] (eq:2.chunk, the
//           causal mask of eq:1.causal), then o = num / den. The intra-chunk
//           64 x 64 slices of F_q F_k^T are register-blocked like the
//           Chapter 1 kernel (float4 loads along the feature axis) and pass
//           through shared memory to multiply [V | 1]. Non-causal: every
//           query reads the total state only.
// No N x N matrix exists; the state costs R_f (d + 1) floats per chunk and
// head. Work per head: 2 N R_f (d + 1) (pass 1) + 2 Nq R_f (d + 1) (state
// read) + about Nq K (R_f + d + 1) (causal intra-chunk products), linear in N
// for a fixed K. The chunk size trades the O(N K) intra-chunk work against
// the O((N / K) R_f d) traffic of the chunk states.
//
// Registers (ptxas, CUDA 13.0), no spills anywhere: pass 3 128 (d <= 64, two
// blocks per SM, 65 KB shared each) and 168 on sm_90 / 204 on sm_80 (d <= 128,
// one block per SM, 90 KB shared); pass 1 70 / 128.
//
// Blocked summation: every long reduction (over R_f features in the state read
// and in F_q F_k^T, over the keys of a tile in pass 1 and in A [V | 1]) is
// summed per shared-memory tile from zero and added to the running total once,
// so that the rounding of many small terms does not happen at the scale of the
// total (taylor's leading feature 1 next to d + d^2 small ones made a plain
// running sum 3-5x less accurate than naive32's BLAS products).
//
// Numerics: float32 throughout (no fast-math intrinsics); the formulas are
// those of the reference, evaluated in the same order up to the summation
// order of the dot products; the key weights exp(c_n - c*) multiply
// F_q F_k^T after the product (the reference scales F_k first). The tests
// bound the difference with the project's rule against
// naive32 = the reference templates in float (derivation.md, "Precision and
// tolerances"). Like every per-sequence constant (chapter 2.6), a causal prefix
// whose keys all lie far (~87 in float32) below the sequence's largest key
// constant underflows to 0 / 0; the streaming form (eq:2.stream) has no such
// weakness but is sequential.
//
// Ragged sizes: any N, Nq >= 1, any R >= 1, d <= 128 (v's columns are padded
// to 64 or 128 in shared memory), any chunk >= 1 (chunk >= N is the quadratic
// form, chunk = 1 the recurrence). Rows, keys and features past the ends are
// zero-filled in shared memory and not stored.
//
// Not done (yet): fusing the feature map into passes 1 and 3 (the N x R_f
// features of q and k go through global memory once); tensor cores (TF32)
// for the products, which would change the float32 rounding this chapter
// compares; pass 3 reloads its F_q tile for every key tile of the chunk (from
// L2) instead of keeping all R_f features in shared memory.
#include "fast/02-kernel-feature-map/feature_map.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fast/02-kernel-feature-map/feature_map_internal.cuh"
#include "fast/common/cuda_check.cuh"
#include "core/error.hpp"
#include "core/validate.hpp"

namespace idattn::fast {

using namespace feature_map_detail;

namespace {

// ---- Key weights: one constant per sequence -----------------------------------
// In place, per head: c_n -> exp(c_n - c*), c* = max_n c_n.                       eq:2.stab
__global__ void __launch_bounds__(kThreads) key_weights_kernel(float* __restrict__ ck, int n) {
    extern __shared__ float4 smem_f4[];
    float* const red = reinterpret_cast<float*>(smem_f4);
    float* const c = ck + static_cast<long long>(blockIdx.x) * n;
    float mx = -INFINITY;
    for (int j = static_cast<int>(threadIdx.x); j < n; j += kThreads) mx = fmaxf(mx, c[j]);
    red[threadIdx.x] = mx;
    __syncthreads();
    for (int half = kThreads / 2; half > 0; half /= 2) {
        if (static_cast<int>(threadIdx.x) < half) red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + half]);
        __syncthreads();
    }
    const float c_star = red[0];
    for (int j = static_cast<int>(threadIdx.x); j < n; j += kThreads) c[j] = expf(c[j] - c_star);
}

// ---- Pass 1: the local state of every chunk ------------------------------------

constexpr int PASS1_ROWS = 64;  // feature rows r of S_c per block: ty + 16 i, i < 4
constexpr int PASS1_KEYS = 32;  // keys per shared-memory tile
constexpr int PASS1_TM = PASS1_ROWS / kRowGroups;

template <int DP>  // padded head dimension, 64 or 128
struct StateTile {
    static constexpr int V_STRIDE = DP + 4;
    static constexpr int TD = DP / kRowGroup;  // output columns per thread: 4 tx + 64 g + e
    static constexpr int G = DP / 64;
    static constexpr std::size_t SMEM_BYTES = sizeof(float) * (PASS1_KEYS * PASS1_ROWS + PASS1_KEYS * V_STRIDE);
};

// states: (bh, n_chunks + 1, R_f * (d + 1)); slot j = [S_j (R_f x d, row-major) | z_j (R_f)].
// S_c = sum_{n in C} w_n f_k,n v_n^T, z_c = sum_{n in C} w_n f_k,n.     eq:2.chunk eq:2.recurrence
template <int DP>
__global__ void __launch_bounds__(kThreads)
    chunk_state_kernel(const float* __restrict__ fk, const float* __restrict__ wk, const float* __restrict__ v,
                       float* __restrict__ states, int n, int d, int rf, int chunk, int n_chunks, int r_tiles) {
    using T = StateTile<DP>;
    extern __shared__ float4 smem_f4[];
    float* const Fs = reinterpret_cast<float*>(smem_f4);  // [PASS1_KEYS][PASS1_ROWS]
    float* const Vs = Fs + PASS1_KEYS * PASS1_ROWS;             // [PASS1_KEYS][V_STRIDE]

    const int tx = static_cast<int>(threadIdx.x) % kRowGroup;
    const int ty = static_cast<int>(threadIdx.x) / kRowGroup;
    const long long head = blockIdx.y;
    const int rt = static_cast<int>(blockIdx.x) % r_tiles;
    const int cj = static_cast<int>(blockIdx.x) / r_tiles;
    const int r0 = rt * PASS1_ROWS;
    const int k0 = cj * chunk;
    const int k1 = min(n, k0 + chunk);
    fk += head * n * rf;
    wk += head * n;
    v += head * n * d;
    const long long slot = static_cast<long long>(rf) * (d + 1);
    float* const st = states + (head * (n_chunks + 1) + cj) * slot;

    float acc[PASS1_TM][T::TD];
    float zacc[PASS1_TM];
#pragma unroll
    for (int i = 0; i < PASS1_TM; ++i) {
        zacc[i] = 0.f;
#pragma unroll
        for (int e = 0; e < T::TD; ++e) acc[i][e] = 0.f;
    }

    for (int kt = k0; kt < k1; kt += PASS1_KEYS) {
        __syncthreads();
        for (int idx = static_cast<int>(threadIdx.x); idx < PASS1_KEYS * PASS1_ROWS; idx += kThreads) {
            const int kk = idx / PASS1_ROWS, rr = idx % PASS1_ROWS;
            const int key = kt + kk;
            float val = 0.f;
            // The key's features times its weight exp(c_n - c*).                          eq:2.stab
            if (key < k1 && r0 + rr < rf) val = fk[static_cast<long long>(key) * rf + r0 + rr] * wk[key];
            Fs[kk * PASS1_ROWS + rr] = val;
        }
        for (int idx = static_cast<int>(threadIdx.x); idx < PASS1_KEYS * DP; idx += kThreads) {
            const int kk = idx / DP, col = idx % DP;
            const int key = kt + kk;
            float val = 0.f;
            if (key < k1 && col < d) val = v[static_cast<long long>(key) * d + col];
            Vs[kk * T::V_STRIDE + col] = val;
        }
        __syncthreads();
        // This tile's sums start from zero and join the totals once (blocked
        // summation: long chunks do not round every key at the total's scale).
        float part[PASS1_TM][T::TD];
        float zpart[PASS1_TM];
#pragma unroll
        for (int i = 0; i < PASS1_TM; ++i) {
            zpart[i] = 0.f;
#pragma unroll
            for (int e = 0; e < T::TD; ++e) part[i][e] = 0.f;
        }
        for (int kk = 0; kk < PASS1_KEYS; ++kk) {
            float fr[PASS1_TM];
#pragma unroll
            for (int i = 0; i < PASS1_TM; ++i) fr[i] = Fs[kk * PASS1_ROWS + ty + kRowGroups * i];
#pragma unroll
            for (int g = 0; g < T::G; ++g) {
                const float4 vb = *reinterpret_cast<const float4*>(&Vs[kk * T::V_STRIDE + 64 * g + 4 * tx]);
#pragma unroll
                for (int i = 0; i < PASS1_TM; ++i) {
                    // S += xi(k_n) v_n^T                                                    eq:2.recurrence
                    part[i][4 * g + 0] = fmaf(fr[i], vb.x, part[i][4 * g + 0]);
                    part[i][4 * g + 1] = fmaf(fr[i], vb.y, part[i][4 * g + 1]);
                    part[i][4 * g + 2] = fmaf(fr[i], vb.z, part[i][4 * g + 2]);
                    part[i][4 * g + 3] = fmaf(fr[i], vb.w, part[i][4 * g + 3]);
                }
            }
#pragma unroll
            for (int i = 0; i < PASS1_TM; ++i) zpart[i] += fr[i];  // z += xi(k_n)              eq:2.recurrence
        }
#pragma unroll
        for (int i = 0; i < PASS1_TM; ++i) {
            zacc[i] += zpart[i];
#pragma unroll
            for (int e = 0; e < T::TD; ++e) acc[i][e] += part[i][e];
        }
    }

#pragma unroll
    for (int i = 0; i < PASS1_TM; ++i) {
        const int r = r0 + ty + kRowGroups * i;
        if (r >= rf) continue;
#pragma unroll
        for (int g = 0; g < T::G; ++g)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int col = 64 * g + 4 * tx + e;
                if (col < d) st[static_cast<long long>(r) * d + col] = acc[i][4 * g + e];
            }
        if (tx == 0) st[static_cast<long long>(rf) * d + r] = zacc[i];
    }
}

// ---- Pass 2: exclusive prefix sum over the chunks --------------------------------
// Slot j <- sum of the chunks before j (S_<j, z_<j); slot n_chunks <- the total.   eq:2.chunk
__global__ void __launch_bounds__(kThreads)
    chunk_scan_kernel(float* __restrict__ states, long long bh, int n_chunks, long long slot) {
    const long long total = bh * slot;
    for (long long idx = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
         idx += static_cast<long long>(gridDim.x) * blockDim.x) {
        const long long head = idx / slot, e = idx - head * slot;
        float* const p = states + head * (n_chunks + 1) * slot + e;
        float run = 0.f;
        for (int j = 0; j < n_chunks; ++j) {
            const float t = p[j * slot];
            p[j * slot] = run;
            run += t;  // S += F_k,c^T V_c, z += F_k,c^T 1, chunk after chunk               eq:2.recurrence
        }
        p[n_chunks * slot] = run;
    }
}

// ---- Pass 3: state read plus masked intra-chunk product ---------------------------

constexpr int PASS3_BQ = 64;                    // queries per block: ty + 16 i, i < 4
constexpr int PASS3_BK = 64;                    // keys per intra-chunk tile: tx + 16 j, j < 4
constexpr int PASS3_RT = 32;                    // feature tile
constexpr int PASS3_FSTRIDE = PASS3_RT + 4;        // = 4 (mod 32): float4 reads of 16 rows hit distinct banks
constexpr int PASS3_ASTRIDE = PASS3_BK + 16;       // = 16 (mod 32): the two row groups of a warp on opposite banks
constexpr int PASS3_TM = PASS3_BQ / kRowGroups;    // 4
constexpr int PASS3_TN = PASS3_BK / kRowGroup;     // 4

template <int DP>
struct OutTile {
    // __launch_bounds__'s minimum blocks per SM. DP 64: none asked (ptxas settles
    // at 128 registers without spills, two blocks per SM; asking for 2 makes it
    // spill 4 bytes on sm_90). DP 128: the 4 x 8 outputs plus their per-tile
    // partial sums need more than 128 registers (ptxas spills at 128), so one
    // block per SM (168 registers on sm_90, 204 on sm_80, no spills).
    static constexpr int MIN_BLOCKS = DP == 64 ? 0 : 1;
    static constexpr int V_STRIDE = DP + 4;
    static constexpr int TD = DP / kRowGroup;
    static constexpr int G = DP / 64;
    static constexpr int Q_FLOATS = PASS3_BQ * PASS3_FSTRIDE;
    static constexpr int K_FLOATS = PASS3_BK * PASS3_FSTRIDE;
    static constexpr int S_FLOATS = PASS3_RT * V_STRIDE;
    static constexpr int Z_FLOATS = PASS3_RT;
    static constexpr int A_FLOATS = PASS3_BQ * PASS3_ASTRIDE;
    static constexpr int V_FLOATS = PASS3_BK * V_STRIDE;
    static constexpr std::size_t SMEM_BYTES =
        sizeof(float) * (Q_FLOATS + K_FLOATS + S_FLOATS + Z_FLOATS + A_FLOATS + V_FLOATS);
    static_assert(Q_FLOATS % 4 == 0 && K_FLOATS % 4 == 0 && S_FLOATS % 4 == 0 && Z_FLOATS % 4 == 0 &&
                      A_FLOATS % 4 == 0,
                  "every shared array starts 16-byte aligned");
    static_assert(SMEM_BYTES <= 163 * 1024, "fits one sm_80 block");
};

// Rows of F_q for the tile into Qs (zero rows where there is no query), features [f0, f0 + PASS3_RT).
__device__ __forceinline__ void load_query_features(float* __restrict__ Qs, const float* __restrict__ fq,
                                                    long long q_first, int q_valid_lo, int q_valid_hi, int rf,
                                                    int f0) {
    for (int idx = static_cast<int>(threadIdx.x); idx < PASS3_BQ * PASS3_RT; idx += kThreads) {
        const int row = idx / PASS3_RT, col = idx % PASS3_RT;
        float val = 0.f;
        if (row >= q_valid_lo && row < q_valid_hi && f0 + col < rf) val = fq[(q_first + row) * rf + f0 + col];
        Qs[row * PASS3_FSTRIDE + col] = val;
    }
}

// o (bh, nq, d). Causal: block x = chunk * tiles_per_chunk + sub-tile; the block's
// rows are the key positions p0 .. p0 + 63 of its chunk, query i = p - (n - nq).
// Non-causal: block x = tile of 64 queries, which read the total state only.
template <int DP>
__global__ void __launch_bounds__(kThreads, OutTile<DP>::MIN_BLOCKS)
    chunk_output_kernel(const float* __restrict__ fq, const float* __restrict__ fk, const float* __restrict__ wk,
                        const float* __restrict__ v, const float* __restrict__ states, float* __restrict__ o,
                        int nq, int n, int d, int rf, int chunk, int n_chunks, int tiles_per_chunk, bool causal) {
    using T = OutTile<DP>;
    extern __shared__ float4 smem_f4[];
    float* const Qs = reinterpret_cast<float*>(smem_f4);
    float* const Ks = Qs + T::Q_FLOATS;
    float* const Ss = Ks + T::K_FLOATS;
    float* const Zs = Ss + T::S_FLOATS;
    float* const As = Zs + T::Z_FLOATS;
    float* const Vs = As + T::A_FLOATS;

    const int tx = static_cast<int>(threadIdx.x) % kRowGroup;
    const int ty = static_cast<int>(threadIdx.x) / kRowGroup;
    const long long head = blockIdx.y;
    const int offset = n - nq;  // eq:1.causal: query i sits at position i + n - nq

    // Block row `row` holds query q_first + row for row in [lo, hi).
    int cj, p0 = 0, lo, hi;
    long long q_first;
    if (causal) {
        cj = static_cast<int>(blockIdx.x) / tiles_per_chunk;
        const int sub = static_cast<int>(blockIdx.x) % tiles_per_chunk;
        p0 = cj * chunk + sub * PASS3_BQ;
        const int p_end = min(min(cj * chunk + chunk, n), p0 + PASS3_BQ);  // positions [p0, p_end)
        if (p0 >= p_end || p_end <= offset) return;                   // no query here (whole block)
        lo = max(0, offset - p0);
        hi = p_end - p0;
        q_first = static_cast<long long>(p0) - offset;
    } else {
        cj = n_chunks;  // the total state
        q_first = static_cast<long long>(blockIdx.x) * PASS3_BQ;
        lo = 0;
        hi = static_cast<int>(min(static_cast<long long>(PASS3_BQ), nq - q_first));
    }
    fq += head * nq * rf;
    fk += head * n * rf;
    wk += head * n;
    v += head * n * d;
    o += head * nq * d;
    const long long slot = static_cast<long long>(rf) * (d + 1);
    const float* const st = states + (head * (n_chunks + 1) + cj) * slot;

    float num[PASS3_TM][T::TD];
    float den[PASS3_TM];
#pragma unroll
    for (int i = 0; i < PASS3_TM; ++i) {
        den[i] = 0.f;
#pragma unroll
        for (int e = 0; e < T::TD; ++e) num[i][e] = 0.f;
    }

    // ---- inter-chunk: num = f_q^T S_<j, den = f_q^T z_<j (the read of the state)   eq:2.chunk eq:P4
    for (int f0 = 0; f0 < rf; f0 += PASS3_RT) {
        __syncthreads();
        load_query_features(Qs, fq, q_first, lo, hi, rf, f0);
        for (int idx = static_cast<int>(threadIdx.x); idx < PASS3_RT * DP; idx += kThreads) {
            const int rr = idx / DP, col = idx % DP;
            float val = 0.f;
            if (f0 + rr < rf && col < d) val = st[static_cast<long long>(f0 + rr) * d + col];
            Ss[rr * T::V_STRIDE + col] = val;
        }
        for (int idx = static_cast<int>(threadIdx.x); idx < PASS3_RT; idx += kThreads)
            Zs[idx] = f0 + idx < rf ? st[static_cast<long long>(rf) * d + f0 + idx] : 0.f;
        __syncthreads();
        // Blocked summation: this feature tile's sums start from zero and join
        // num, den once (taylor's R_f = 1 + d + d^2 terms would otherwise all be
        // rounded at the scale of the leading 1).
        float part[PASS3_TM][T::TD];
        float dpart[PASS3_TM];
#pragma unroll
        for (int i = 0; i < PASS3_TM; ++i) {
            dpart[i] = 0.f;
#pragma unroll
            for (int e = 0; e < T::TD; ++e) part[i][e] = 0.f;
        }
        for (int kk = 0; kk < PASS3_RT; kk += 4) {
            const float4 z4 = *reinterpret_cast<const float4*>(&Zs[kk]);
            float4 qa[PASS3_TM];
#pragma unroll
            for (int i = 0; i < PASS3_TM; ++i)
                qa[i] = *reinterpret_cast<const float4*>(&Qs[(ty + kRowGroups * i) * PASS3_FSTRIDE + kk]);
#pragma unroll
            for (int i = 0; i < PASS3_TM; ++i) {
                dpart[i] = fmaf(qa[i].x, z4.x, dpart[i]);
                dpart[i] = fmaf(qa[i].y, z4.y, dpart[i]);
                dpart[i] = fmaf(qa[i].z, z4.z, dpart[i]);
                dpart[i] = fmaf(qa[i].w, z4.w, dpart[i]);
            }
#pragma unroll
            for (int t = 0; t < 4; ++t) {
#pragma unroll
                for (int g = 0; g < T::G; ++g) {
                    const float4 sb =
                        *reinterpret_cast<const float4*>(&Ss[(kk + t) * T::V_STRIDE + 64 * g + 4 * tx]);
#pragma unroll
                    for (int i = 0; i < PASS3_TM; ++i) {
                        const float qv = t == 0 ? qa[i].x : t == 1 ? qa[i].y : t == 2 ? qa[i].z : qa[i].w;
                        part[i][4 * g + 0] = fmaf(qv, sb.x, part[i][4 * g + 0]);
                        part[i][4 * g + 1] = fmaf(qv, sb.y, part[i][4 * g + 1]);
                        part[i][4 * g + 2] = fmaf(qv, sb.z, part[i][4 * g + 2]);
                        part[i][4 * g + 3] = fmaf(qv, sb.w, part[i][4 * g + 3]);
                    }
                }
            }
        }
#pragma unroll
        for (int i = 0; i < PASS3_TM; ++i) {
            den[i] += dpart[i];
#pragma unroll
            for (int e = 0; e < T::TD; ++e) num[i][e] += part[i][e];
        }
    }

    if (causal) {
        // ---- intra-chunk: keys of this chunk up to the block's last query position,
        // sum_{n in C_j, n <= p(i)} (xi(q_i)^T xi(k_n)) [v_n | 1]                       eq:2.chunk
        const int k_begin = cj * chunk;
        const int k_end = p0 + hi;  // one past the last query position of the block
        for (int kt = k_begin; kt < k_end; kt += PASS3_BK) {
            float a[PASS3_TM][PASS3_TN];
#pragma unroll
            for (int i = 0; i < PASS3_TM; ++i)
#pragma unroll
                for (int j = 0; j < PASS3_TN; ++j) a[i][j] = 0.f;
            for (int f0 = 0; f0 < rf; f0 += PASS3_RT) {
                __syncthreads();
                load_query_features(Qs, fq, q_first, lo, hi, rf, f0);
                for (int idx = static_cast<int>(threadIdx.x); idx < PASS3_BK * PASS3_RT; idx += kThreads) {
                    const int kr = idx / PASS3_RT, col = idx % PASS3_RT;
                    const int key = kt + kr;
                    float val = 0.f;
                    if (key < k_end && f0 + col < rf) val = fk[static_cast<long long>(key) * rf + f0 + col];
                    Ks[kr * PASS3_FSTRIDE + col] = val;
                }
                __syncthreads();
                float ap[PASS3_TM][PASS3_TN];  // this feature tile's part of A (blocked summation)
#pragma unroll
                for (int i = 0; i < PASS3_TM; ++i)
#pragma unroll
                    for (int j = 0; j < PASS3_TN; ++j) ap[i][j] = 0.f;
                for (int kk = 0; kk < PASS3_RT; kk += 4) {
                    float4 kb[PASS3_TN];
#pragma unroll
                    for (int j = 0; j < PASS3_TN; ++j)
                        kb[j] = *reinterpret_cast<const float4*>(&Ks[(tx + kRowGroup * j) * PASS3_FSTRIDE + kk]);
#pragma unroll
                    for (int i = 0; i < PASS3_TM; ++i) {
                        const float4 qa =
                            *reinterpret_cast<const float4*>(&Qs[(ty + kRowGroups * i) * PASS3_FSTRIDE + kk]);
#pragma unroll
                        for (int j = 0; j < PASS3_TN; ++j) {
                            // A_in = xi(q_i)^T xi(k_n)                                           eq:P3
                            ap[i][j] = fmaf(qa.x, kb[j].x, ap[i][j]);
                            ap[i][j] = fmaf(qa.y, kb[j].y, ap[i][j]);
                            ap[i][j] = fmaf(qa.z, kb[j].z, ap[i][j]);
                            ap[i][j] = fmaf(qa.w, kb[j].w, ap[i][j]);
                        }
                    }
                }
#pragma unroll
                for (int i = 0; i < PASS3_TM; ++i)
#pragma unroll
                    for (int j = 0; j < PASS3_TN; ++j) a[i][j] += ap[i][j];
            }
            // Key weights exp(c_n - c*) (eq:2.stab) and the causal mask n <= p(i) (eq:1.causal).
            float wkey[PASS3_TN];
#pragma unroll
            for (int j = 0; j < PASS3_TN; ++j) {
                const int key = kt + tx + kRowGroup * j;
                wkey[j] = key < k_end ? wk[key] : 0.f;
            }
#pragma unroll
            for (int i = 0; i < PASS3_TM; ++i) {
                const int pos = p0 + ty + kRowGroups * i;
#pragma unroll
                for (int j = 0; j < PASS3_TN; ++j) {
                    const int key = kt + tx + kRowGroup * j;
                    As[(ty + kRowGroups * i) * PASS3_ASTRIDE + tx + kRowGroup * j] = key <= pos ? a[i][j] * wkey[j] : 0.f;
                }
            }
            for (int idx = static_cast<int>(threadIdx.x); idx < PASS3_BK * DP; idx += kThreads) {
                const int kr = idx / DP, col = idx % DP;
                const int key = kt + kr;
                float val = 0.f;
                if (key < k_end && col < d) val = v[static_cast<long long>(key) * d + col];
                Vs[kr * T::V_STRIDE + col] = val;
            }
            __syncthreads();
            // num += A [V], den += A 1, this key tile summed apart first            eq:2.chunk eq:P4
            float part[PASS3_TM][T::TD];
            float dpart[PASS3_TM];
#pragma unroll
            for (int i = 0; i < PASS3_TM; ++i) {
                dpart[i] = 0.f;
#pragma unroll
                for (int e = 0; e < T::TD; ++e) part[i][e] = 0.f;
            }
            for (int jj = 0; jj < PASS3_BK; jj += 4) {
                float4 ap[PASS3_TM];
#pragma unroll
                for (int i = 0; i < PASS3_TM; ++i)
                    ap[i] = *reinterpret_cast<const float4*>(&As[(ty + kRowGroups * i) * PASS3_ASTRIDE + jj]);
#pragma unroll
                for (int i = 0; i < PASS3_TM; ++i) dpart[i] += (ap[i].x + ap[i].y) + (ap[i].z + ap[i].w);
#pragma unroll
                for (int t = 0; t < 4; ++t) {
#pragma unroll
                    for (int g = 0; g < T::G; ++g) {
                        const float4 vb =
                            *reinterpret_cast<const float4*>(&Vs[(jj + t) * T::V_STRIDE + 64 * g + 4 * tx]);
#pragma unroll
                        for (int i = 0; i < PASS3_TM; ++i) {
                            const float av = t == 0 ? ap[i].x : t == 1 ? ap[i].y : t == 2 ? ap[i].z : ap[i].w;
                            part[i][4 * g + 0] = fmaf(av, vb.x, part[i][4 * g + 0]);
                            part[i][4 * g + 1] = fmaf(av, vb.y, part[i][4 * g + 1]);
                            part[i][4 * g + 2] = fmaf(av, vb.z, part[i][4 * g + 2]);
                            part[i][4 * g + 3] = fmaf(av, vb.w, part[i][4 * g + 3]);
                        }
                    }
                }
            }
#pragma unroll
            for (int i = 0; i < PASS3_TM; ++i) {
                den[i] += dpart[i];
#pragma unroll
                for (int e = 0; e < T::TD; ++e) num[i][e] += part[i][e];
            }
        }
    }

    // o_i = num_i / den_i                                                                   eq:P4
#pragma unroll
    for (int i = 0; i < PASS3_TM; ++i) {
        const int row = ty + kRowGroups * i;
        if (row < lo || row >= hi) continue;
        float* const orow = o + (q_first + row) * d;
#pragma unroll
        for (int g = 0; g < T::G; ++g)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int col = 64 * g + 4 * tx + e;
                if (col < d) orow[col] = num[i][4 * g + e] / den[i];
            }
    }
}

// ---------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------

// gridDim.y is limited to 65535: more heads take several launches.
constexpr long long kMaxGridY = 65535;

struct Layout {
    std::int64_t rf, chunk, n_chunks;
    std::size_t fq, fk, ck, states;  // element offsets (16-byte aligned)
    std::size_t floats;
};

std::size_t round4(std::size_t x) { return (x + 3) / 4 * 4; }

Layout layout_of(ref::FeatureMap map, std::int64_t bh, std::int64_t nq, std::int64_t n, std::int64_t d,
                 std::int64_t m, std::int64_t chunk) {
    Layout l{};
    l.rf = rf_of(map, m, d);
    l.chunk = std::min(chunk, n);  // chunk >= n is one chunk: the quadratic form
    l.n_chunks = (n + l.chunk - 1) / l.chunk;
    const auto ubh = static_cast<std::size_t>(bh);
    l.fq = 0;
    l.fk = round4(ubh * static_cast<std::size_t>(nq) * static_cast<std::size_t>(l.rf));
    l.ck = l.fk + round4(ubh * static_cast<std::size_t>(n) * static_cast<std::size_t>(l.rf));
    l.states = l.ck + round4(ubh * static_cast<std::size_t>(n));
    l.floats = l.states + ubh * static_cast<std::size_t>(l.n_chunks + 1) * static_cast<std::size_t>(l.rf) *
                              static_cast<std::size_t>(d + 1);
    return l;
}

template <int DP>
void launch_linear_passes(const float* fq, const float* fk, const float* wk, const float* v, float* states, float* o,
                          std::int64_t bh, int nq, int n, int d, int rf, int chunk, int n_chunks, bool causal,
                          cudaStream_t stream) {
    const auto p1 = chunk_state_kernel<DP>;
    const auto p3 = chunk_output_kernel<DP>;
    IDATTN_CUDA_CHECK(cudaFuncSetAttribute(p1, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(StateTile<DP>::SMEM_BYTES)));
    IDATTN_CUDA_CHECK(cudaFuncSetAttribute(p3, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(OutTile<DP>::SMEM_BYTES)));
    const int r_tiles = (rf + PASS1_ROWS - 1) / PASS1_ROWS;
    const long long slot = static_cast<long long>(rf) * (d + 1);
    const int tiles_per_chunk = (chunk + PASS3_BQ - 1) / PASS3_BQ;
    const long long p3_blocks = causal ? static_cast<long long>(n_chunks) * tiles_per_chunk : (nq + PASS3_BQ - 1) / PASS3_BQ;
    if (static_cast<long long>(r_tiles) * n_chunks > INT_MAX || p3_blocks > INT_MAX)
        throw Error("chunked_linear_attention_device: too many chunks (" + std::to_string(n_chunks) +
                    ") for one launch; use a larger chunk");
    for (std::int64_t h0 = 0; h0 < bh; h0 += kMaxGridY) {
        const auto heads = static_cast<unsigned>(std::min<long long>(kMaxGridY, bh - h0));
        const auto off = static_cast<std::size_t>(h0);
        const float* fq_h = fq + off * static_cast<std::size_t>(nq) * rf;
        const float* fk_h = fk + off * static_cast<std::size_t>(n) * rf;
        const float* wk_h = wk + off * static_cast<std::size_t>(n);
        const float* v_h = v + off * static_cast<std::size_t>(n) * d;
        float* st_h = states + off * static_cast<std::size_t>(n_chunks + 1) * static_cast<std::size_t>(slot);
        float* o_h = o + off * static_cast<std::size_t>(nq) * d;
        // pass 1: local chunk states                                                    eq:2.chunk
        p1<<<dim3(static_cast<unsigned>(r_tiles * n_chunks), heads), kThreads, StateTile<DP>::SMEM_BYTES, stream>>>(
            fk_h, wk_h, v_h, st_h, n, d, rf, chunk, n_chunks, r_tiles);
        IDATTN_CUDA_CHECK(cudaGetLastError());
        // pass 2: exclusive prefix over chunks                                           eq:2.recurrence
        const long long entries = static_cast<long long>(heads) * slot;
        const long long scan_blocks = std::min<long long>((entries + kThreads - 1) / kThreads, 65536LL * 8);
        chunk_scan_kernel<<<static_cast<unsigned>(scan_blocks), kThreads, 0, stream>>>(st_h, heads, n_chunks, slot);
        IDATTN_CUDA_CHECK(cudaGetLastError());
        // pass 3: state read + masked intra-chunk product, o = num / den                  eq:2.chunk eq:P4
        p3<<<dim3(static_cast<unsigned>(p3_blocks), heads), kThreads, OutTile<DP>::SMEM_BYTES, stream>>>(
            fq_h, fk_h, wk_h, v_h, st_h, o_h, nq, n, d, rf, chunk, n_chunks, tiles_per_chunk, causal);
        IDATTN_CUDA_CHECK(cudaGetLastError());
    }
}

}  // namespace

// ---- Device entry points ----------------------------------------------------------

std::size_t chunked_linear_attention_workspace_bytes(ref::FeatureMap map, std::int64_t bh, std::int64_t nq,
                                                     std::int64_t n, std::int64_t d, std::int64_t m,
                                                     std::int64_t chunk) {
    if (bh < 1 || nq < 1 || n < 1 || d < 1 || chunk < 1 || m < 0)
        throw Error("chunked_linear_attention_workspace_bytes: every size must be at least 1 (R >= 0), got bh = " +
                    std::to_string(bh) + ", nq = " + std::to_string(nq) + ", n = " + std::to_string(n) +
                    ", d = " + std::to_string(d) + ", R = " + std::to_string(m) + ", chunk = " + std::to_string(chunk));
    return sizeof(float) * layout_of(map, bh, nq, n, d, m, chunk).floats;
}

void chunked_linear_attention_device(ref::FeatureMap map, const float* q, const float* k, const float* v,
                                     const float* w, float* o, std::int64_t bh, std::int64_t nq, std::int64_t n,
                                     std::int64_t d, std::int64_t m, bool causal, std::int64_t chunk,
                                     void* workspace, void* stream) {
    const std::string what = "chunked_linear_attention_device";
    if (q == nullptr || k == nullptr || v == nullptr || o == nullptr)
        throw Error(what + ": a null device pointer was passed for q, k, v or o");
    if (bh < 1 || nq < 1 || n < 1 || d < 1)
        throw Error(what + ": every size must be at least 1, got bh = " + std::to_string(bh) + ", nq = " +
                    std::to_string(nq) + ", n = " + std::to_string(n) + ", d = " + std::to_string(d));
    if (d > kLinearMaxHeadDim)
        throw Error(what + ": head dimension d = " + std::to_string(d) + " is not supported; the kernel needs d <= " +
                    std::to_string(kLinearMaxHeadDim));
    if (chunk < 1) throw Error(what + ": the chunk size must be at least 1, got " + std::to_string(chunk));
    constexpr std::int64_t kMaxLength = INT_MAX / 2;
    if (nq > kMaxLength || n > kMaxLength)
        throw Error(what + ": sequence lengths nq = " + std::to_string(nq) + ", n = " + std::to_string(n) +
                    " exceed the kernel's limit of " + std::to_string(kMaxLength));
    if (causal && nq > n)
        throw Error(what + ": causal attention needs nq <= n (queries are the last nq of n positions), got nq = " +
                    std::to_string(nq) + " and n = " + std::to_string(n));
    check_feature_args(what, map, q, w, bh * nq, d, m);
    const Layout l = layout_of(map, bh, nq, n, d, m, chunk);
    if (l.rf * (d + 1) > INT_MAX / 4)
        throw Error(what + ": the state R_f x (d + 1) = " + std::to_string(l.rf) + " x " + std::to_string(d + 1) +
                    " exceeds the kernel's index range");
    if (workspace != nullptr && reinterpret_cast<std::uintptr_t>(workspace) % 16 != 0)
        throw Error(what + ": the workspace must be 16-byte aligned");

    DeviceBuffer<float> owned;
    float* ws = static_cast<float*>(workspace);
    if (ws == nullptr) {
        owned = DeviceBuffer<float>(l.floats);
        ws = owned.data();
    }
    const auto s = static_cast<cudaStream_t>(stream);
    float* const fq = ws + l.fq;
    float* const fk = ws + l.fk;
    float* const ck = ws + l.ck;
    float* const states = ws + l.states;

    // Features: the queries' own constants are dropped (they cancel in eq:P4), the
    // keys' are kept and turned into weights exp(c_n - c*), one c* per head.          eq:2.stab
    launch_features(map, q, w, fq, nullptr, bh * nq, d, m, true, s);
    launch_features(map, k, w, fk, ck, bh * n, d, m, true, s);
    for (std::int64_t h0 = 0; h0 < bh; h0 += INT_MAX / 2) {
        const auto heads = static_cast<unsigned>(std::min<std::int64_t>(INT_MAX / 2, bh - h0));
        key_weights_kernel<<<heads, kThreads, kThreads * sizeof(float), s>>>(ck + h0 * n, static_cast<int>(n));
        IDATTN_CUDA_CHECK(cudaGetLastError());
    }
    const int nq_i = static_cast<int>(nq), n_i = static_cast<int>(n), d_i = static_cast<int>(d);
    const int rf_i = static_cast<int>(l.rf), chunk_i = static_cast<int>(l.chunk), nc_i = static_cast<int>(l.n_chunks);
    if (d <= 64)
        launch_linear_passes<64>(fq, fk, ck, v, states, o, bh, nq_i, n_i, d_i, rf_i, chunk_i, nc_i, causal, s);
    else
        launch_linear_passes<128>(fq, fk, ck, v, states, o, bh, nq_i, n_i, d_i, rf_i, chunk_i, nc_i, causal, s);
    if (workspace == nullptr) IDATTN_CUDA_CHECK(cudaStreamSynchronize(s));  // before `owned` is freed
}

// ---- Host convenience -----------------------------------------------------------

xt::xtensor<float, 4> chunked_linear_attention(ref::FeatureMap map, const xt::xtensor<float, 4>& q,
                                               const xt::xtensor<float, 4>& k, const xt::xtensor<float, 4>& v,
                                               const xt::xtensor<float, 2>& w, bool causal, std::size_t chunk) {
    const std::string what = "chunked_linear_attention (fast)";
    const auto qs = shape_of(q), ks = shape_of(k), vs = shape_of(v);
    require_nonempty(what, "q", qs);
    require_nonempty(what, "k", ks);
    require_nonempty(what, "v", vs);
    if (ks[0] != qs[0] || ks[1] != qs[1] || ks[3] != qs[3])
        throw Error(what + ": k has shape " + shape_str(ks) + " but q has shape " + shape_str(qs) +
                    "; expected k of shape (B, H, N, d) = (" + std::to_string(qs[0]) + ", " + std::to_string(qs[1]) +
                    ", N, " + std::to_string(qs[3]) + ")");
    if (vs != ks)
        throw Error(what + ": v has shape " + shape_str(vs) + " but k has shape " + shape_str(ks) +
                    "; expected v of the same shape as k");
    if (qs[3] > static_cast<std::size_t>(kLinearMaxHeadDim))
        throw Error(what + ": q has shape " + shape_str(qs) + " with head dimension d = " + std::to_string(qs[3]) +
                    "; the fast kernel supports d <= " + std::to_string(kLinearMaxHeadDim));
    if (causal && qs[2] > ks[2])
        throw Error(what + ": causal attention needs N_q <= N, but q has shape " + shape_str(qs) + " (N_q = " +
                    std::to_string(qs[2]) + ") and k has shape " + shape_str(ks) + " (N = " + std::to_string(ks[2]) +
                    ")");
    if (chunk == 0) throw Error(what + ": the chunk size must be at least 1, got 0");
    ref::check_feature_inputs(what, map, {ks[2], ks[3]}, shape_of(w));

    const std::int64_t m = frequencies(map, w);
    const auto bh = static_cast<std::int64_t>(qs[0] * qs[1]);
    const auto chunk64 = static_cast<std::int64_t>(std::min<std::size_t>(chunk, ks[2]));
    DeviceBuffer<float> dq(q.size()), dk(k.size()), dv(v.size()), dw(ref::is_random(map) ? w.size() : 0),
        dout(q.size());
    dq.copy_from_host(q.data());
    dk.copy_from_host(k.data());
    dv.copy_from_host(v.data());
    if (ref::is_random(map)) dw.copy_from_host(w.data());
    dout.fill_bytes(0xFF);  // NaN poison: an output the kernel fails to write shows up in the tests
    chunked_linear_attention_device(map, dq.data(), dk.data(), dv.data(), dw.data(), dout.data(), bh,
                                    static_cast<std::int64_t>(qs[2]), static_cast<std::int64_t>(ks[2]),
                                    static_cast<std::int64_t>(qs[3]), m, causal, chunk64, nullptr, nullptr);
    IDATTN_CUDA_CHECK(cudaDeviceSynchronize());  // reports an error raised while the kernels ran
    xt::xtensor<float, 4> out(q.shape());
    dout.copy_to_host(out.data());
    return out;
}

}  // namespace idattn::fast
