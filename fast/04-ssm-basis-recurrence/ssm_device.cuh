// Chapter 4, fast backend: device helpers shared by the kernels of this
// folder (inline, so any number of .cu files may include this). The kernels
// are in ssm_scan_kernels.cuh (included by ssm_scan.cu only) and
// ssm_fused_kernels.cuh (ssm_attention.cu only). Kept free of host code so
// that the same source also runs in a CPU thread emulation.
// Equation labels refer to chapters/04-ssm-basis-recurrence.md.
#pragma once

#ifndef IDATTN_SSM_EMULATION
#include <cuda_runtime.h>
#define IDATTN_SSM_DYN_SMEM(name) extern __shared__ float name[]
#endif

namespace idattn::fast::ssm_detail {

// Threads per block of the scan passes, and state entries (m, c) per thread.
constexpr int kScanThreads = 256;
constexpr int kScanPerThread = 4;
// Shared-memory budget (floats) for a staged tile of input channels.
constexpr int kTileFloats = 8192;
// Fused readout: modes per warp (one lane owns channels lane, lane + 32, ...).
constexpr int kModesPerWarp = 4;

// The C input channels of token t of batch-head b, read without forming z:
// [a (ca channels) | b (cb channels) | ones (0 or 1 channel)]. The scan uses
// a = z, cb = 0, ones = 0; the attention a = fk, b = v, ones = 1 (eq:4.channels).
struct Channels {
    const float* a;
    const float* b;
    int ca, cb, ones;
    __host__ __device__ __forceinline__ int count() const { return ca + cb + ones; }
    __device__ __forceinline__ float at(long long row, int c) const {
        if (c < ca) return a[row * ca + c];
        if (c < ca + cb) return b[row * cb + (c - ca)];
        return 1.0f;
    }
};

__device__ __forceinline__ float2 cmul(float2 x, float2 y) {
    return make_float2(x.x * y.x - x.y * y.y, x.x * y.y + x.y * y.x);
}
// x = l x + bz (bz real input times the complex Bbar): one step of eq:P11.
__device__ __forceinline__ float2 step(float2 l, float2 x, float2 b, float z) {
    return make_float2(l.x * x.x - l.y * x.y + b.x * z, l.x * x.y + l.y * x.x + b.y * z);
}

// Lambda^k by binary powering in float64, rounded once to float32. The float32
// alternatives both lose ~k ulps: exp(k log Lambda) multiplies the rounding of
// log Lambda (up to pi * eps absolute in the phase) by k, and repeated
// squaring in float32 doubles the relative error at every squaring. In float64
// the error is ~2 log2(k) * 1e-16, far below one float32 rounding, and the cost
// (one power per (head, mode, chunk length)) is negligible.
__device__ __forceinline__ float2 cpow_int(float2 l, long long k) {
    double rr = 1.0, ri = 0.0, br = l.x, bi = l.y;
    while (k > 0) {
        if (k & 1) {
            const double t = rr * br - ri * bi;
            ri = rr * bi + ri * br;
            rr = t;
        }
        const double t = br * br - bi * bi;
        bi = 2.0 * br * bi;
        br = t;
        k >>= 1;
    }
    return make_float2(float(rr), float(ri));
}

// Stage tokens [t0, t0 + len) of the channels of batch-head b into zs (len x C).
__device__ __forceinline__ void stage_channels(float* zs, const Channels& ch, long long row0, int len, int C) {
    for (int idx = threadIdx.x; idx < len * C; idx += blockDim.x) {
        const int k = idx / C, c = idx - k * C;
        zs[idx] = ch.at(row0 + k, c);
    }
}

}  // namespace idattn::fast::ssm_detail
