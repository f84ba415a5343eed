// Chapter 4, fast backend: the kernels of the chunked scan, passes 1-3 of eq:4.chunk (ssm_scan.cu). Included by exactly one .cu file (a
// __global__ function has external linkage); design notes there. Kept free
// of host code so that the same source also runs in a CPU thread emulation.
// Equation labels refer to chapters/04-ssm-basis-recurrence.md.
#pragma once

#include "fast/04-ssm-basis-recurrence/ssm_device.cuh"

namespace idattn::fast::ssm_detail {

// ---- Pass 1 (eq:4.chunk): the chunk-local end state from zero, one chunk per
// blockIdx.x, batch-head blockIdx.y, state entries (m, c) sliced by blockIdx.z:
// S_j = sum_{c0 <= n < c1} Lambda^(c1-1-n) Bbar z_n, by Horner's rule within the chunk.
// s_out (bh, nchunks, M, C).
__global__ void __launch_bounds__(kScanThreads) chunk_sums_kernel(const float2* __restrict__ lambda,
                                                                  const float2* __restrict__ bbar, int hp,
                                                                  Channels ch, float2* __restrict__ s_out, int n,
                                                                  int M, int chunk, int tile) {
    IDATTN_SSM_DYN_SMEM(zs);
    const int C = ch.count();
    const int j = blockIdx.x, b = blockIdx.y, nchunks = gridDim.x;
    const long long MC = (long long)M * C;
    const int c0 = j * chunk, c1 = min(n, c0 + chunk);
    const float2* lam = lambda + (long long)(b % hp) * M;
    const float2* bb = bbar + (long long)(b % hp) * M;
    float2 l[kScanPerThread], bv[kScanPerThread], acc[kScanPerThread];
    int cc[kScanPerThread];
    long long idx[kScanPerThread];
#pragma unroll
    for (int e = 0; e < kScanPerThread; ++e) {
        idx[e] = (long long)blockIdx.z * kScanThreads * kScanPerThread + e * kScanThreads + threadIdx.x;
        const bool ok = idx[e] < MC;
        const int m = ok ? int(idx[e] / C) : 0;
        cc[e] = ok ? int(idx[e] - (long long)m * C) : 0;
        l[e] = ok ? lam[m] : make_float2(0.f, 0.f);
        bv[e] = ok ? bb[m] : make_float2(0.f, 0.f);
        acc[e] = make_float2(0.f, 0.f);
    }
    for (int t0 = c0; t0 < c1; t0 += tile) {
        const int len = min(tile, c1 - t0);
        __syncthreads();
        stage_channels(zs, ch, (long long)b * n + t0, len, C);
        __syncthreads();
        for (int k = 0; k < len; ++k)
#pragma unroll
            for (int e = 0; e < kScanPerThread; ++e) acc[e] = step(l[e], acc[e], bv[e], zs[k * C + cc[e]]);
    }
#pragma unroll
    for (int e = 0; e < kScanPerThread; ++e)
        if (idx[e] < MC) s_out[((long long)b * nchunks + j) * MC + idx[e]] = acc[e];
}

// ---- Pass 2 (eq:4.chunk): serial over the chunk boundaries, parallel over
// (batch-head, m, c): H_0 = 0, H_{j+1} = Lambda^K H_j + S_j. Overwrites S_j with
// H_j, the state entering chunk j. Lambda^K by cpow_int (float64 powering).
__global__ void __launch_bounds__(kScanThreads) chunk_carry_kernel(const float2* __restrict__ lambda, int hp,
                                                                   float2* __restrict__ s_io, int bh, int M, int C,
                                                                   int nchunks, int chunk) {
    const long long MC = (long long)M * C;
    const long long gid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (gid >= (long long)bh * MC) return;
    const int b = int(gid / MC);
    const long long e = gid - (long long)b * MC;
    const int m = int(e / C);
    const float2 lk = cpow_int(lambda[(long long)(b % hp) * M + m], chunk);
    float2 h = make_float2(0.f, 0.f);
    float2* p = s_io + (long long)b * nchunks * MC + e;
    for (int j = 0; j < nchunks; ++j) {
        const float2 s = p[(long long)j * MC];
        p[(long long)j * MC] = h;
        const float2 nh = cmul(lk, h);
        h = make_float2(nh.x + s.x, nh.y + s.y);
    }
}

// ---- Pass 3 (eq:4.chunk), materialising: every state of chunk j, walking the
// recurrence from the entering state H_j: x_t = Lambda x_{t-1} + Bbar z_t with
// x_{c0-1} = H_j, i.e. x_t = Lambda^(t-c0+1) H_j + sum_{c0<=n<=t} Lambda^(t-n) Bbar z_n.
// x (bh, n, M, C); consecutive threads write consecutive (m, c): coalesced.
__global__ void __launch_bounds__(kScanThreads) chunk_states_kernel(const float2* __restrict__ lambda,
                                                                    const float2* __restrict__ bbar, int hp,
                                                                    Channels ch, const float2* __restrict__ h_in,
                                                                    float2* __restrict__ x, int n, int M, int chunk,
                                                                    int tile) {
    IDATTN_SSM_DYN_SMEM(zs);
    const int C = ch.count();
    const int j = blockIdx.x, b = blockIdx.y, nchunks = gridDim.x;
    const long long MC = (long long)M * C;
    const int c0 = j * chunk, c1 = min(n, c0 + chunk);
    const float2* lam = lambda + (long long)(b % hp) * M;
    const float2* bb = bbar + (long long)(b % hp) * M;
    float2 l[kScanPerThread], bv[kScanPerThread], acc[kScanPerThread];
    int cc[kScanPerThread];
    long long idx[kScanPerThread];
#pragma unroll
    for (int e = 0; e < kScanPerThread; ++e) {
        idx[e] = (long long)blockIdx.z * kScanThreads * kScanPerThread + e * kScanThreads + threadIdx.x;
        const bool ok = idx[e] < MC;
        const int m = ok ? int(idx[e] / C) : 0;
        cc[e] = ok ? int(idx[e] - (long long)m * C) : 0;
        l[e] = ok ? lam[m] : make_float2(0.f, 0.f);
        bv[e] = ok ? bb[m] : make_float2(0.f, 0.f);
        acc[e] = ok ? h_in[((long long)b * nchunks + j) * MC + idx[e]] : make_float2(0.f, 0.f);
    }
    float2* xb = x + (long long)b * n * MC;
    for (int t0 = c0; t0 < c1; t0 += tile) {
        const int len = min(tile, c1 - t0);
        __syncthreads();
        stage_channels(zs, ch, (long long)b * n + t0, len, C);
        __syncthreads();
        for (int k = 0; k < len; ++k) {
            float2* xt = xb + (long long)(t0 + k) * MC;
#pragma unroll
            for (int e = 0; e < kScanPerThread; ++e) {
                acc[e] = step(l[e], acc[e], bv[e], zs[k * C + cc[e]]);
                if (idx[e] < MC) xt[idx[e]] = acc[e];
            }
        }
    }
}

}  // namespace idattn::fast::ssm_detail
