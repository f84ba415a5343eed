// Chapter 3, fast backend: the projection (eq:P6) of every head onto one
// basis matrix Phi, [U | Gamma | eta] = Phi [F_k | V | 1], float32.
//
// What it optimises, and why
// --------------------------
// The reference forms the projections U = Phi F_k (M x R), Gamma = Phi V
// (M x d) and eta = Phi 1 (eq:P6, eq:3.eta) before the readout (readout.cu).
// The projection is a plain GEMM per head, Phi (M x N) times [F_k | V]
// (N x (R + d)), with one Phi shared by every head: exactly what cuBLAS's
// strided-batched SGEMM does best (it picks a tuned, register- and
// shared-memory-blocked kernel for each shape; a hand-written kernel would
// only reproduce it). Stride 0 for Phi shares it across the batch. eta = Phi 1
// does not depend on the head: it is computed once, by a row-sum kernel.
//
// Numerics: float32; the caller's Phi (any real basis matrix) is used as
// given.
//
// Not done (yet): tensor cores (TF32) for the projection (cuBLAS is kept in
// the default math mode, which does not use TF32 for SGEMM, so the float32
// rounding the tests compare stays plain).
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

#include "fast/03-interdomain-projection/interdomain_internal.cuh"
#include "fast/common/cuda_check.cuh"
#include "core/error.hpp"

namespace idattn::fast {

using namespace interdomain_detail;

namespace {

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
// Host side
// ===========================================================================

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

}  // namespace idattn::fast
