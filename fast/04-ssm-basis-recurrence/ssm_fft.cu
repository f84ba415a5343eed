// Chapter 4, fast backend: the S4D states by FFT convolution with cuFFT
// (eq:4.4), complex64, batched over heads.
//
// Status: verified on a GPU (NVIDIA H100 and H200, sm_90, 2026-11-26): every test
// of tests/NN-*/fast_*.cpp passes there; compute-sanitizer memcheck, racecheck and
// synccheck are clean on the cases listed in bench/results/README.md. Not run on
// sm_80 (compiled only).
//
// What it does, and what it costs versus the scan
// -----------------------------------------------
// The diagonal SSM is linear and time-invariant, so x[., m, c] is the causal
// convolution of z[., c] with the impulse response psi_m(tau) = Lambda_m^tau
// Bbar_m (eq:4.psi). Zero-padded to L = 2^k >= 2n the circular convolution
// of length L equals the linear one on the first n outputs (eq:4.4). Per head:
//   psi_kernel    psi_m(tau) for tau < n (0 above), Lambda^tau as
//                 exp(tau log Lambda) in float64 from the float32 Lambda,
//                 rounded once (float32 exp/log would lose ~tau ulps of phase);
//   cuFFT         M + C batched forward C2C transforms (psi_m, z_c);
//   product       P (m, c) pairs at a time: psi^_m . z^_c / L;
//   cuFFT         P batched inverse C2C transforms;
//   scatter       a 32 x 32 shared-memory transpose writing x[t][m][c] for
//                 t < n (coalesced on both sides).
// Cost: M C inverse transforms of length L >= 2n, O(M C n log n) flops, and
// memory traffic of about (product write + ~2 FFT passes read/write +
// transpose read) ~ 6 L x 8 bytes per (m, c) pair against the scan's n x 8
// bytes (eq:4.chunk writes each state once): roughly 10x the scan's traffic.
// The scan is O(n M C) and bandwidth-bound at the output; the FFT form has no
// serial part at all but is the slower way to materialise the states on a
// GPU. It is here because (4.4) is the other classical computation and must
// agree with the scan (the tests check both against the float64 reference).
// Workspace: the (m, c) pairs are processed in batches of P so that the
// inverse-transform buffer stays below ~512 MiB.
#include <cufft.h>

#include <algorithm>
#include <string>

#include "fast/common/cuda_check.cuh"
#include "core/error.hpp"
#include "fast/04-ssm-basis-recurrence/ssm.hpp"
#include "fast/04-ssm-basis-recurrence/ssm_internal.cuh"

#define IDATTN_CUFFT_CHECK(expr)                                                                          \
    do {                                                                                                  \
        const cufftResult idattn_cufft_st_ = (expr);                                                      \
        if (idattn_cufft_st_ != CUFFT_SUCCESS)                                                            \
            throw ::idattn::Error(std::string("cuFFT error: ") + #expr + " returned status " +            \
                                  std::to_string(static_cast<int>(idattn_cufft_st_)) + " [at " + __FILE__ + \
                                  ":" + std::to_string(__LINE__) + "]");                                  \
    } while (0)

namespace idattn::fast {

namespace {

constexpr std::size_t kWorkspaceBytes = std::size_t{512} << 20;

// psi (M, L): psi_m(tau) = Lambda_m^tau Bbar_m for tau < n, 0 for n <= tau < L.   eq:4.psi
__global__ void psi_kernel(const float2* __restrict__ lambda, const float2* __restrict__ bbar, cufftComplex* psi,
                           int n, int L, int M) {
    const long long gid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (gid >= (long long)M * L) return;
    const int m = int(gid / L), tau = int(gid - (long long)m * L);
    cufftComplex out = make_float2(0.f, 0.f);
    if (tau < n) {
        const float2 l = lambda[m], b = bbar[m];
        double pr = 1.0, pi = 0.0;  // Lambda^0 = 1
        if (tau > 0) {
            if (l.x == 0.f && l.y == 0.f) {
                pr = 0.0;  // 0^tau = 0
            } else {
                const double lr = log(hypot(double(l.x), double(l.y))), li = atan2(double(l.y), double(l.x));
                const double mag = exp(double(tau) * lr);
                pr = mag * cos(double(tau) * li);
                pi = mag * sin(double(tau) * li);
            }
        }
        out = make_float2(float(pr * b.x - pi * b.y), float(pr * b.y + pi * b.x));
    }
    psi[gid] = out;
}

// zh (C, L): z[t][c] transposed and zero-padded, as complex.
__global__ void zpad_kernel(const float* __restrict__ z, cufftComplex* zh, int n, int L, int C) {
    const long long gid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (gid >= (long long)C * L) return;
    const int c = int(gid / L), t = int(gid - (long long)c * L);
    zh[gid] = make_float2(t < n ? z[(long long)t * C + c] : 0.f, 0.f);
}

// tmp[p][k] = psi^_m[k] z^_c[k] / L for the pairs q = q0 + p = m C + c.   eq:4.4
__global__ void product_kernel(const cufftComplex* __restrict__ psih, const cufftComplex* __restrict__ zh,
                               cufftComplex* tmp, long long q0, int P, long long MC, int C, int L, float inv_l) {
    const long long gid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (gid >= (long long)P * L) return;
    const int p = int(gid / L), k = int(gid - (long long)p * L);
    const long long q = q0 + p;
    if (q >= MC) {
        tmp[gid] = make_float2(0.f, 0.f);
        return;
    }
    const int m = int(q / C), c = int(q - (long long)m * C);
    const float2 a = psih[(long long)m * L + k], b = zh[(long long)c * L + k];
    tmp[gid] = make_float2((a.x * b.x - a.y * b.y) * inv_l, (a.x * b.y + a.y * b.x) * inv_l);
}

// x[t][q0 + p] = tmp[p][t] for t < n, p < np: a tiled transpose.
__global__ void scatter_kernel(const cufftComplex* __restrict__ tmp, float2* __restrict__ x, long long q0, int np,
                               long long MC, int n, int L) {
    __shared__ float2 tileb[32][33];
    const int p0 = blockIdx.x * 32, t0 = blockIdx.y * 32;
    for (int i = threadIdx.y; i < 32; i += blockDim.y) {
        const int p = p0 + i, t = t0 + threadIdx.x;
        tileb[i][threadIdx.x] = (p < np && t < n) ? tmp[(long long)p * L + t] : make_float2(0.f, 0.f);
    }
    __syncthreads();
    for (int i = threadIdx.y; i < 32; i += blockDim.y) {
        const int t = t0 + i, p = p0 + threadIdx.x;
        if (t < n && p < np) x[(long long)t * MC + q0 + p] = tileb[threadIdx.x][i];
    }
}

struct Plan {
    cufftHandle h = 0;
    bool made = false;
    Plan(int L, int batch, cudaStream_t s) {
        int len = L;
        IDATTN_CUFFT_CHECK(cufftPlanMany(&h, 1, &len, nullptr, 1, L, nullptr, 1, L, CUFFT_C2C, batch));
        made = true;
        IDATTN_CUFFT_CHECK(cufftSetStream(h, s));
    }
    ~Plan() {
        if (made) (void)cufftDestroy(h);
    }
    Plan(const Plan&) = delete;
    Plan& operator=(const Plan&) = delete;
};

}  // namespace

// eq:4.4 with eq:4.psi, every head.
void ssm_states_fft_device(const std::complex<float>* lambda, const std::complex<float>* bbar, std::int64_t hp,
                           const float* z, std::complex<float>* x, std::int64_t bh, std::int64_t n, std::int64_t m,
                           std::int64_t c, void* stream) {
    const std::string what = "ssm_states_fft_device";
    if (lambda == nullptr || bbar == nullptr || z == nullptr || x == nullptr)
        throw Error(what + ": a null device pointer was passed for lambda, bbar, z or x");
    ssm_detail::check_ssm_sizes(what, hp, bh, n, m, c);
    if (n > std::int64_t{65535} * 32)
        throw Error(what + ": n = " + std::to_string(n) + " tokens exceed the FFT path's limit of " +
                    std::to_string(65535 * 32) + " (grid of the final transpose)");
    std::int64_t L = 1;
    while (L < 2 * n) L *= 2;  // zero padding: circular = linear on the first n outputs   eq:4.4
    const long long MC = m * c;
    const std::int64_t P = std::max<std::int64_t>(
        1, std::min<std::int64_t>(MC, static_cast<std::int64_t>(kWorkspaceBytes / (sizeof(cufftComplex) * L))));
    const auto s = static_cast<cudaStream_t>(stream);
    const int Li = static_cast<int>(L), ni = static_cast<int>(n), mi = static_cast<int>(m), ci = static_cast<int>(c);
    ssm_detail::StreamBuffer<cufftComplex> psih(static_cast<std::size_t>(m * L), s),
        zh(static_cast<std::size_t>(c * L), s), tmp(static_cast<std::size_t>(P * L), s);
    Plan plan_m(Li, mi, s), plan_c(Li, ci, s), plan_p(Li, static_cast<int>(P), s);
    const auto* lam = reinterpret_cast<const float2*>(lambda);
    const auto* bb = reinterpret_cast<const float2*>(bbar);
    const float inv_l = 1.0f / static_cast<float>(L);  // L is a power of two: exact
    auto blocks = [](long long total) { return static_cast<unsigned>((total + 255) / 256); };
    for (std::int64_t b = 0; b < bh; ++b) {
        const std::int64_t row = b % hp;
        psi_kernel<<<blocks(m * L), 256, 0, s>>>(lam + row * m, bb + row * m, psih.data(), ni, Li, mi);
        IDATTN_CUDA_CHECK(cudaGetLastError());
        IDATTN_CUFFT_CHECK(cufftExecC2C(plan_m.h, psih.data(), psih.data(), CUFFT_FORWARD));
        zpad_kernel<<<blocks(c * L), 256, 0, s>>>(z + b * n * c, zh.data(), ni, Li, ci);
        IDATTN_CUDA_CHECK(cudaGetLastError());
        IDATTN_CUFFT_CHECK(cufftExecC2C(plan_c.h, zh.data(), zh.data(), CUFFT_FORWARD));
        float2* xb = reinterpret_cast<float2*>(x) + b * n * MC;
        for (long long q0 = 0; q0 < MC; q0 += P) {
            const int np = static_cast<int>(std::min<long long>(P, MC - q0));
            product_kernel<<<blocks(P * L), 256, 0, s>>>(psih.data(), zh.data(), tmp.data(), q0, static_cast<int>(P),
                                                         MC, ci, Li, inv_l);
            IDATTN_CUDA_CHECK(cudaGetLastError());
            IDATTN_CUFFT_CHECK(cufftExecC2C(plan_p.h, tmp.data(), tmp.data(), CUFFT_INVERSE));
            const dim3 grid(static_cast<unsigned>((np + 31) / 32), static_cast<unsigned>((n + 31) / 32));
            scatter_kernel<<<grid, dim3(32, 8), 0, s>>>(tmp.data(), xb, q0, np, MC, ni, Li);
            IDATTN_CUDA_CHECK(cudaGetLastError());
        }
    }
    // The plans are destroyed here (cufftDestroy frees their work areas with
    // cudaFree, which waits for the device); the buffers are released on the stream.
    // Plan creation is part of every call (and of its benchmark time).
}

}  // namespace idattn::fast
