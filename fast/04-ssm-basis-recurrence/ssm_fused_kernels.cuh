// Chapter 4, fast backend: the fused readout kernel of eq:4.readout (ssm_attention.cu). Included by exactly one .cu file (a
// __global__ function has external linkage); design notes there. Kept free
// of host code so that the same source also runs in a CPU thread emulation.
// Equation labels refer to chapters/04-ssm-basis-recurrence.md.
#pragma once

#include "fast/04-ssm-basis-recurrence/ssm_device.cuh"

namespace idattn::fast::ssm_detail {

// ---- Fused readout (eq:4.readout, eq:3.5, eq:P9): pass 3 without writing the
// states. Block = (chunk j, batch-head b, mode group g); warp w owns the
// kModesPerWarp modes g * modes_per_block + w * kModesPerWarp + (0..3); lane owns
// channels c = lane + 32 i (i < CPL), so its slice of the state X_t (M, C) lives
// in registers for the whole chunk. Per token: the recurrence step, then, for a
// query token, a_m = sum_r xi(q)_r conj(U_mr) (a warp all-reduce: all channels
// of mode m are in one warp), the warp's partial Re(a_m Gamma_mc), Re(a_m eta_m)
// summed over its modes in registers, and the sum over the block's warps through
// shared memory (double-buffered: one __syncthreads per query token).
// The sum over all M modes is complete when one group covers M (direct store);
// otherwise every group atomically adds its partial sums into num / den
// (zeroed by the caller) and a small kernel divides.
// Dynamic shared memory: tile x (C + R) floats of staged channels and query
// features, then 2 x nwarps x (d + 1) floats of partial sums.
template <int CPL>
__global__ void __launch_bounds__(CPL <= 5 ? 512 : 256) fused_readout_kernel(
    const float2* __restrict__ lambda, const float2* __restrict__ bbar, int hp, Channels ch,
    const float* __restrict__ fq, const float2* __restrict__ h_in, float* __restrict__ num, float* __restrict__ den,
    float* __restrict__ o, int n, int nq, int M, int chunk, int tile, int atomic) {
    IDATTN_SSM_DYN_SMEM(smem);
    const int R = ch.ca, d = ch.cb, C = ch.count();
    const int j = blockIdx.x, b = blockIdx.y, g = blockIdx.z, nchunks = gridDim.x;
    const int nwarps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int offset = n - nq;
    const int c0 = j * chunk, c1 = min(n, c0 + chunk);
    if (c1 <= offset) return;  // no query in this chunk (uniform over the block)
    float* zs = smem;                      // tile x C
    float* qs = smem + tile * C;           // tile x R
    float* red = qs + tile * R;            // 2 x nwarps x (d + 1)
    const long long MC = (long long)M * C;
    const float2* lam = lambda + (long long)(b % hp) * M;
    const float2* bb = bbar + (long long)(b % hp) * M;

    float2 l[kModesPerWarp], bv[kModesPerWarp], x[kModesPerWarp][CPL];
#pragma unroll
    for (int q = 0; q < kModesPerWarp; ++q) {
        const int m = (g * nwarps + warp) * kModesPerWarp + q;
        const bool ok = m < M;  // modes past M stay zero (Lambda = Bbar = 0)
        l[q] = ok ? lam[m] : make_float2(0.f, 0.f);
        bv[q] = ok ? bb[m] : make_float2(0.f, 0.f);
#pragma unroll
        for (int i = 0; i < CPL; ++i) {
            const int c = lane + 32 * i;
            x[q][i] = (ok && c < C) ? h_in[((long long)b * nchunks + j) * MC + (long long)m * C + c]
                                    : make_float2(0.f, 0.f);
        }
    }
    int parity = 0;
    for (int t0 = c0; t0 < c1; t0 += tile) {
        const int len = min(tile, c1 - t0);
        __syncthreads();
        stage_channels(zs, ch, (long long)b * n + t0, len, C);
        for (int idx = threadIdx.x; idx < len * R; idx += blockDim.x) {
            const int k = idx / R, r = idx - k * R;
            const int i = t0 + k - offset;  // query index of token t0 + k
            qs[idx] = i >= 0 ? fq[((long long)b * nq + i) * R + r] : 0.f;
        }
        __syncthreads();
        for (int k = 0; k < len; ++k) {
            float zc[CPL];
#pragma unroll
            for (int i = 0; i < CPL; ++i) {
                const int c = lane + 32 * i;
                zc[i] = c < C ? zs[k * C + c] : 0.f;
            }
#pragma unroll
            for (int q = 0; q < kModesPerWarp; ++q)
#pragma unroll
                for (int i = 0; i < CPL; ++i) x[q][i] = step(l[q], x[q][i], bv[q], zc[i]);  // eq:P11
            const int t = t0 + k;
            if (t < offset) continue;  // uniform over the block: no query reads this state
            // a_m = sum_r xi(q)_r conj(U_mr)                                      eq:4.readout
            float ar[kModesPerWarp], ai[kModesPerWarp];
#pragma unroll
            for (int q = 0; q < kModesPerWarp; ++q) {
                ar[q] = 0.f;
                ai[q] = 0.f;
            }
#pragma unroll
            for (int i = 0; i < CPL; ++i) {
                const int c = lane + 32 * i;
                if (c < R) {
                    const float f = qs[k * R + c];
#pragma unroll
                    for (int q = 0; q < kModesPerWarp; ++q) {
                        ar[q] += f * x[q][i].x;
                        ai[q] -= f * x[q][i].y;
                    }
                }
            }
#pragma unroll
            for (int s = 16; s >= 1; s >>= 1)
#pragma unroll
                for (int q = 0; q < kModesPerWarp; ++q) {
                    ar[q] += __shfl_xor_sync(0xffffffffu, ar[q], s);
                    ai[q] += __shfl_xor_sync(0xffffffffu, ai[q], s);
                }
            // The warp's share of Re(a^T Gamma) and Re(a^T eta) (channels R .. R + d).   eq:3.5
            float* rw = red + (parity * nwarps + warp) * (d + 1);
#pragma unroll
            for (int i = 0; i < CPL; ++i) {
                const int c = lane + 32 * i;
                if (c >= R && c < C) {
                    float p = 0.f;
#pragma unroll
                    for (int q = 0; q < kModesPerWarp; ++q) p += ar[q] * x[q][i].x - ai[q] * x[q][i].y;
                    rw[c - R] = p;
                }
            }
            __syncthreads();
            const float* rr = red + parity * nwarps * (d + 1);
            const int qi = t - offset;
            for (int c = threadIdx.x; c < d; c += blockDim.x) {
                float sn = 0.f, sd = 0.f;
                for (int w = 0; w < nwarps; ++w) {
                    sn += rr[w * (d + 1) + c];
                    sd += rr[w * (d + 1) + d];
                }
                const long long oi = ((long long)b * nq + qi) * d + c;
                if (atomic) {
                    atomicAdd(&num[oi], sn);
                    if (c == 0) atomicAdd(&den[(long long)b * nq + qi], sd);
                } else {
                    if (num != nullptr) num[oi] = sn;
                    if (den != nullptr && c == 0) den[(long long)b * nq + qi] = sd;
                    if (o != nullptr) o[oi] = sn / sd;  // o = num / den       eq:P9
                }
            }
            parity ^= 1;
        }
    }
}

// o = num / den after the mode groups' atomic sums.
__global__ void divide_kernel(const float* __restrict__ num, const float* __restrict__ den, float* __restrict__ o,
                              long long rows, int d) {
    const long long gid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (gid < rows * d) o[gid] = num[gid] / den[gid / d];
}

}  // namespace idattn::fast::ssm_detail
