// Chapter 2, fast backend: the kernel feature map (eq:P3, eq:2.1 to eq:2.4)
// with the exponent stabiliser (eq:2.stab), float32, and its host wrappers.
// Linear attention on these features is in linear_attention_chunked.cu.
//
// Status: verified on a GPU (NVIDIA H100 and H200, sm_90, 2026-11-26): every test
// of tests/NN-*/fast_*.cpp passes there; compute-sanitizer memcheck, racecheck and
// synccheck are clean on the cases listed in bench/results/README.md. Not run on
// sm_80 (compiled only).
//
// What it optimises, and why
// --------------------------
// The feature map, fused. xi(x_n) needs the projections a_nr = w_r . x~_n
// (an N x R product with inner dimension d) and then one exp or one
// cos/sin per entry, plus a per-row maximum for the stabiliser. With cuBLAS
// that is an SGEMM that writes the N x R projection to global memory and an
// elementwise pass that reads it back and writes the features: the
// projection crosses the memory bus twice more than the features
// themselves, and at d = 64 the whole map is a short-inner-dimension
// product whose cost *is* that traffic. Here one thread block owns
// FM_ROWS = 32 rows, stages their x and a tile of FM_FREQ = 64 rows of W in
// shared memory (the d axis in tiles of 64), forms a register-blocked
// 32 x 64 slice of the projection (2 x 4 entries per thread) together with
// |x_n|^2, and writes the finished features (exp, or cos and sin) straight
// from registers: the projection never leaves the chip. For the positive
// maps the scaled features need the row maximum c_n = max_r e_nr first
// (eq:2.stab): the block makes two sweeps over W, the first one only
// reduces the maximum (registers and half-warp shuffles), the second one
// recomputes the projection and writes exp(e_nr - c_n). Recomputing costs
// 2 d flops per feature; staging the N x R exponents instead would cost
// shared memory proportional to R (and occupancy), or a round trip through
// global memory, which is what fusing avoids. rff needs no maximum
// (c_n = |x_n|^2 / 2s) and taylor (eq:2.4) is elementwise (c_n = 0).
//
// Registers (ptxas, CUDA 13.0), no spills: 60 (positive) and 64 (rff, plus
// the 32-byte local array of sinf/cosf's slow range reduction for
// |argument| > 1e5; sincosf instead spills around that path).
//
// Numerics: float32 with accurate expf / sinf / cosf (no fast-math
// intrinsics); the formulas are those of the reference, evaluated in the same
// order up to the summation order of the dot products. The tests bound the
// difference with the project's rule against naive32 = the reference
// templates in float (derivation.md, "Precision and tolerances").
//
// Ragged sizes: any number of rows, any R >= 1, any d (in tiles of 64).
// Rows and frequencies past the ends are zero-filled in shared memory and
// not stored.
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

__device__ __forceinline__ float half_warp_max(float x) {
    for (int offset = 8; offset > 0; offset /= 2) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
    return x;
}

// ---- Kernel 1: the fused feature map -------------------------------------------

constexpr int FM_ROWS = 32;                      // rows per block: ty + 16 i, i < FM_TM
constexpr int FM_FREQ = 64;                      // frequencies per tile: tx + 16 j, j < FM_TN
constexpr int FM_DT = 64;                        // head-dimension tile
constexpr int FM_STRIDE = FM_DT + 1;             // odd stride: 16 W rows read in one step hit 16 banks
constexpr int FM_TM = FM_ROWS / kRowGroups;      // 2
constexpr int FM_TN = FM_FREQ / kRowGroup;       // 4
constexpr std::size_t FM_SMEM_BYTES = sizeof(float) * (FM_ROWS + FM_FREQ) * FM_STRIDE;

struct FeatureConsts {
    float s;           // s = sqrt(d)
    float inv_root_s;  // 1 / sqrt(s) = d^(-1/4)
    float inv_root_m;  // R^(-1/2)
};

// RFF = true: eq:2.1, false: eq:2.2 / eq:2.3 (positive maps on either draw).
template <bool RFF>
__global__ void __launch_bounds__(kThreads)
    feature_map_kernel(const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ f,
                       float* __restrict__ c, long long rows, int d, int m, bool scaled, FeatureConsts k) {
    extern __shared__ float4 smem_f4[];
    float* const Xs = reinterpret_cast<float*>(smem_f4);
    float* const Ws = Xs + FM_ROWS * FM_STRIDE;

    const int tx = static_cast<int>(threadIdx.x) % kRowGroup;
    const int ty = static_cast<int>(threadIdx.x) / kRowGroup;
    const long long row0 = static_cast<long long>(blockIdx.x) * FM_ROWS;
    const int rows_valid = static_cast<int>(rows - row0 < FM_ROWS ? rows - row0 : FM_ROWS);
    const long long rf = RFF ? 2LL * m : static_cast<long long>(m);

    float cmax[FM_TM];  // running row maximum of the exponents (positive maps, scaled)
    float sq[FM_TM];    // |x_n|^2
#pragma unroll
    for (int i = 0; i < FM_TM; ++i) {
        cmax[i] = -INFINITY;
        sq[i] = 0.f;
    }

    // Sweep 0 (positive maps, scaled only) reduces the row maximum; sweep 1 writes.
    const bool need_max = !RFF && scaled;
    for (int sweep = need_max ? 0 : 1; sweep < 2; ++sweep) {
        for (int r0 = 0; r0 < m; r0 += FM_FREQ) {
            float acc[FM_TM][FM_TN];
#pragma unroll
            for (int i = 0; i < FM_TM; ++i) {
                sq[i] = 0.f;
#pragma unroll
                for (int j = 0; j < FM_TN; ++j) acc[i][j] = 0.f;
            }
            for (int d0 = 0; d0 < d; d0 += FM_DT) {
                __syncthreads();  // the previous tile is consumed
                for (int idx = static_cast<int>(threadIdx.x); idx < FM_ROWS * FM_DT; idx += kThreads) {
                    const int row = idx / FM_DT, col = idx % FM_DT;
                    float val = 0.f;
                    if (row < rows_valid && d0 + col < d) val = x[(row0 + row) * d + d0 + col];
                    Xs[row * FM_STRIDE + col] = val;
                }
                for (int idx = static_cast<int>(threadIdx.x); idx < FM_FREQ * FM_DT; idx += kThreads) {
                    const int r = idx / FM_DT, col = idx % FM_DT;
                    float val = 0.f;
                    if (r0 + r < m && d0 + col < d) val = w[static_cast<long long>(r0 + r) * d + d0 + col];
                    Ws[r * FM_STRIDE + col] = val;
                }
                __syncthreads();
                const int dt = min(FM_DT, d - d0);
                for (int kk = 0; kk < dt; ++kk) {
                    float xa[FM_TM], wb[FM_TN];
#pragma unroll
                    for (int i = 0; i < FM_TM; ++i) xa[i] = Xs[(ty + kRowGroups * i) * FM_STRIDE + kk];
#pragma unroll
                    for (int j = 0; j < FM_TN; ++j) wb[j] = Ws[(tx + kRowGroup * j) * FM_STRIDE + kk];
#pragma unroll
                    for (int i = 0; i < FM_TM; ++i) {
                        sq[i] = fmaf(xa[i], xa[i], sq[i]);  // |x_n|^2
#pragma unroll
                        for (int j = 0; j < FM_TN; ++j) acc[i][j] = fmaf(wb[j], xa[i], acc[i][j]);  // w_r . x_n
                    }
                }
            }
#pragma unroll
            for (int i = 0; i < FM_TM; ++i) {
                const int row = ty + kRowGroups * i;
                const bool row_ok = row < rows_valid;
                float* const frow = f + (row0 + row) * rf;
#pragma unroll
                for (int j = 0; j < FM_TN; ++j) {
                    const int r = r0 + tx + kRowGroup * j;
                    const float a = acc[i][j] * k.inv_root_s;  // w_r . x~,  x~ = x / sqrt(s)
                    if constexpr (RFF) {
                        // xi(x) = exp(|x|^2 / 2s) R^(-1/2) [cos(w_r . x~), sin(w_r . x~)]_r     eq:2.1 eq:P5
                        // scaled: the magnitude exp(|x|^2 / 2s) is the row's log-scale c.    eq:2.stab
                        float sn, cs;
                        sn = sinf(a);  // (sinf and cosf: sincosf spills around its slow path)
                        cs = cosf(a);
                        const float scale = scaled ? k.inv_root_m : expf(sq[i] / (2.f * k.s)) * k.inv_root_m;
                        if (row_ok && r < m) {
                            frow[r] = scale * cs;
                            frow[m + r] = scale * sn;
                        }
                    } else if (!scaled) {
                        // xi(x)_r = R^(-1/2) exp(w_r . x~ - |x~|^2 / 2), |x~|^2 = |x|^2 / s      eq:2.2 eq:2.3
                        if (row_ok && r < m) frow[r] = k.inv_root_m * expf(a - sq[i] / (2.f * k.s));
                    } else {
                        // e_r = w_r . x~ - |x~|^2 / 2; f_r = R^(-1/2) exp(e_r - c), c = max_r e_r  eq:2.2 eq:2.stab
                        const float e = a - sq[i] * k.inv_root_s * k.inv_root_s / 2.f;
                        if (sweep == 0) {
                            if (r < m) cmax[i] = fmaxf(cmax[i], e);
                        } else if (row_ok && r < m) {
                            frow[r] = k.inv_root_m * expf(e - cmax[i]);
                        }
                    }
                }
            }
        }
        if (sweep == 0) {
            // The row's maximum over all frequencies: its 16 threads are one half-warp.
#pragma unroll
            for (int i = 0; i < FM_TM; ++i) cmax[i] = half_warp_max(cmax[i]);
        }
    }
    if (scaled && c != nullptr && tx == 0) {
#pragma unroll
        for (int i = 0; i < FM_TM; ++i) {
            const int row = ty + kRowGroups * i;
            if (row < rows_valid) c[row0 + row] = RFF ? sq[i] / (2.f * k.s) : cmax[i];  // eq:2.stab
        }
    }
}

// xi(x) = [1, x / sqrt(s), vec(x x^T) / (s sqrt 2)]: xi(q).xi(k) = 1 + t + t^2/2, c = 0.   eq:2.4
__global__ void __launch_bounds__(kThreads)
    taylor_feature_kernel(const float* __restrict__ x, float* __restrict__ f, float* __restrict__ c,
                          long long rows, int d, float inv_sqrt_s, float inv_s_sqrt2) {
    const long long rf = 1 + d + static_cast<long long>(d) * d;
    const long long total = rows * rf;
    for (long long idx = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
         idx += static_cast<long long>(gridDim.x) * blockDim.x) {
        const long long row = idx / rf;
        const int j = static_cast<int>(idx - row * rf);
        const float* const xr = x + row * d;
        float val;
        if (j == 0) {
            val = 1.f;
            if (c != nullptr) c[row] = 0.f;
        } else if (j <= d) {
            val = xr[j - 1] * inv_sqrt_s;
        } else {
            const int ab = j - 1 - d;
            val = xr[ab / d] * xr[ab % d] * inv_s_sqrt2;
        }
        f[idx] = val;
    }
}

}  // namespace

// ---------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------

namespace feature_map_detail {

std::int64_t rf_of(ref::FeatureMap map, std::int64_t m, std::int64_t d) {
    return static_cast<std::int64_t>(
        ref::feature_dim(map, static_cast<std::size_t>(m), static_cast<std::size_t>(d)));
}

void check_feature_args(const std::string& what, ref::FeatureMap map, const float* x, const float* w,
                        std::int64_t rows, std::int64_t d, std::int64_t m) {
    if (x == nullptr) throw Error(what + ": a null device pointer was passed for x");
    if (rows < 1 || d < 1)
        throw Error(what + ": rows and d must be at least 1, got rows = " + std::to_string(rows) +
                    ", d = " + std::to_string(d));
    if (ref::is_random(map)) {
        if (w == nullptr) throw Error(what + ": the " + ref::feature_map_name(map) + " map needs a device pointer W");
        if (m < 1)
            throw Error(what + ": the number of random frequencies R must be at least 1 for the " +
                        ref::feature_map_name(map) + " map, got " + std::to_string(m));
    } else if (m != 0) {
        throw Error(what + ": the taylor map is deterministic and takes no W, but R = " + std::to_string(m) +
                    " was given; pass R = 0");
    }
    if (d > INT_MAX / 4 || m > INT_MAX / 4 || rf_of(map, m, d) > INT_MAX / 4)
        throw Error(what + ": d = " + std::to_string(d) + ", R = " + std::to_string(m) +
                    " exceed the kernel's index range");
}

void launch_features(ref::FeatureMap map, const float* x, const float* w, float* f, float* c, std::int64_t rows,
                     std::int64_t d, std::int64_t m, bool scaled, cudaStream_t stream) {
    const float s = std::sqrt(static_cast<float>(d));  // the reference's constants, in float
    if (map == ref::FeatureMap::Taylor) {
        const float inv_sqrt_s = 1.f / std::sqrt(s);
        const float inv_s_sqrt2 = 1.f / (s * std::sqrt(2.f));
        const long long total = rows * rf_of(map, 0, d);
        const long long blocks = std::min<long long>((total + kThreads - 1) / kThreads, 65536LL * 16);
        taylor_feature_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
            x, f, c, rows, static_cast<int>(d), inv_sqrt_s, inv_s_sqrt2);
        IDATTN_CUDA_CHECK(cudaGetLastError());
        return;
    }
    const FeatureConsts k{s, 1.f / std::sqrt(s), 1.f / std::sqrt(static_cast<float>(m))};
    const long long blocks = (rows + FM_ROWS - 1) / FM_ROWS;
    if (blocks > INT_MAX) throw Error("feature_map_device: rows = " + std::to_string(rows) + " is too many");
    if (map == ref::FeatureMap::Rff)
        feature_map_kernel<true><<<static_cast<unsigned>(blocks), kThreads, FM_SMEM_BYTES, stream>>>(
            x, w, f, c, rows, static_cast<int>(d), static_cast<int>(m), scaled, k);
    else
        feature_map_kernel<false><<<static_cast<unsigned>(blocks), kThreads, FM_SMEM_BYTES, stream>>>(
            x, w, f, c, rows, static_cast<int>(d), static_cast<int>(m), scaled, k);
    IDATTN_CUDA_CHECK(cudaGetLastError());
}

std::vector<std::size_t> shape_of(const xt::xtensor<float, 4>& t) {
    return std::vector<std::size_t>(t.shape().begin(), t.shape().end());
}
std::vector<std::size_t> shape_of(const xt::xtensor<float, 2>& t) {
    return std::vector<std::size_t>(t.shape().begin(), t.shape().end());
}

void require_nonempty(const std::string& what, const char* name, const std::vector<std::size_t>& shape) {
    for (std::size_t a = 0; a < shape.size(); ++a)
        if (shape[a] == 0)
            throw Error(what + ": " + name + " has shape " + shape_str(shape) + " with axis " + std::to_string(a) +
                        " of length 0; every axis must be at least 1");
}

// W as the device functions take it: (m, d) rows, m = 0 for taylor.
std::int64_t frequencies(ref::FeatureMap map, const xt::xtensor<float, 2>& w) {
    return ref::is_random(map) ? static_cast<std::int64_t>(w.shape(0)) : 0;
}

}  // namespace feature_map_detail

// ---- Device entry points ----------------------------------------------------------

void feature_map_device(ref::FeatureMap map, const float* x, const float* w, float* f, float* c, std::int64_t rows,
                        std::int64_t d, std::int64_t m, bool scaled, void* stream) {
    const std::string what = "feature_map_device";
    check_feature_args(what, map, x, w, rows, d, m);
    if (f == nullptr) throw Error(what + ": a null device pointer was passed for the features f");
    launch_features(map, x, w, f, scaled ? c : nullptr, rows, d, m, scaled, static_cast<cudaStream_t>(stream));
}

// ---- Host convenience -----------------------------------------------------------

namespace {

void check_host_features(const std::string& what, ref::FeatureMap map, const xt::xtensor<float, 4>& x,
                         const xt::xtensor<float, 2>& w) {
    const auto xs = shape_of(x);
    require_nonempty(what, "x", xs);
    ref::check_feature_inputs(what, map, {xs[2], xs[3]}, shape_of(w));
}

}  // namespace

ScaledFeatures32 scaled_feature_map(ref::FeatureMap map, const xt::xtensor<float, 4>& x,
                                    const xt::xtensor<float, 2>& w) {
    const std::string what = "scaled_feature_map (fast)";
    check_host_features(what, map, x, w);
    const auto xs = shape_of(x);
    const std::int64_t m = frequencies(map, w), d = static_cast<std::int64_t>(xs[3]);
    const std::int64_t rows = static_cast<std::int64_t>(xs[0] * xs[1] * xs[2]);
    const std::size_t rf = static_cast<std::size_t>(rf_of(map, m, d));
    DeviceBuffer<float> dx(x.size()), dw(ref::is_random(map) ? w.size() : 0), df(static_cast<std::size_t>(rows) * rf),
        dc(static_cast<std::size_t>(rows));
    dx.copy_from_host(x.data());
    if (ref::is_random(map)) dw.copy_from_host(w.data());
    df.fill_bytes(0xFF);  // NaN poison: an output the kernel fails to write shows up in the tests
    dc.fill_bytes(0xFF);
    feature_map_device(map, dx.data(), dw.data(), df.data(), dc.data(), rows, d, m, true, nullptr);
    IDATTN_CUDA_CHECK(cudaDeviceSynchronize());
    ScaledFeatures32 out{xt::xtensor<float, 4>(std::array<std::size_t, 4>{xs[0], xs[1], xs[2], rf}),
                         xt::xtensor<float, 3>(std::array<std::size_t, 3>{xs[0], xs[1], xs[2]})};
    df.copy_to_host(out.f.data());
    dc.copy_to_host(out.c.data());
    return out;
}

xt::xtensor<float, 4> feature_map(ref::FeatureMap map, const xt::xtensor<float, 4>& x, const xt::xtensor<float, 2>& w) {
    const std::string what = "feature_map (fast)";
    check_host_features(what, map, x, w);
    const auto xs = shape_of(x);
    const std::int64_t m = frequencies(map, w), d = static_cast<std::int64_t>(xs[3]);
    const std::int64_t rows = static_cast<std::int64_t>(xs[0] * xs[1] * xs[2]);
    const std::size_t rf = static_cast<std::size_t>(rf_of(map, m, d));
    DeviceBuffer<float> dx(x.size()), dw(ref::is_random(map) ? w.size() : 0), df(static_cast<std::size_t>(rows) * rf);
    dx.copy_from_host(x.data());
    if (ref::is_random(map)) dw.copy_from_host(w.data());
    df.fill_bytes(0xFF);  // NaN poison
    feature_map_device(map, dx.data(), dw.data(), df.data(), nullptr, rows, d, m, false, nullptr);
    IDATTN_CUDA_CHECK(cudaDeviceSynchronize());
    xt::xtensor<float, 4> out(std::array<std::size_t, 4>{xs[0], xs[1], xs[2], rf});
    df.copy_to_host(out.data());
    return out;
}

}  // namespace idattn::fast
