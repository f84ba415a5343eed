// Chapter 3, fast backend (CUDA, float32): the projections (P6) and the
// readout (P8)/(P9), non-causal and causal. Host-side interface, includable
// without the CUDA toolkit; kernels and design notes in projection.cu (the
// cuBLAS projection), readout.cu (the fused readout) and causal.cu (the causal
// kernel with its prefix bases generated on the device).
//
// Status: verified on a GPU (NVIDIA H100 and H200, sm_90, 2026-11-26): every test
// of tests/NN-*/fast_*.cpp passes there; compute-sanitizer memcheck, racecheck and
// synccheck are clean on the cases listed in bench/results/README.md. Not run on
// sm_80 (compiled only).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <xtensor/xtensor.hpp>

#include "ref/03-interdomain-projection/bases.hpp"

namespace idattn::fast {

// Largest feature dimension R and value dimension d the kernels support.
inline constexpr std::int64_t kInterdomainMaxDim = 128;
// Largest number of basis functions M of the causal kernel (its coefficient
// vectors and recurrence tables live in shared memory).
inline constexpr std::int64_t kInterdomainCausalMaxM = 2048;

// Why the kernels cannot run this problem ("" when they can).
inline std::string interdomain_unsupported(ref::Basis b, std::size_t M, bool causal, std::size_t R, std::size_t d) {
    const auto max_dim = static_cast<std::size_t>(kInterdomainMaxDim);
    if (ref::is_complex(b)) return "the fast chapter-3 kernels have no complex (fourier) basis";
    if (R > max_dim || d > max_dim)
        return "the fast chapter-3 kernels support R, d <= " + std::to_string(max_dim) + ", got R = " +
               std::to_string(R) + ", d = " + std::to_string(d);
    if (causal && b == ref::Basis::Gram)
        return "the fast causal kernel generates LegS and DCT prefix bases only (the Gram basis has no closed form)";
    if (causal && M > static_cast<std::size_t>(kInterdomainCausalMaxM))
        return "the fast causal kernel supports M <= " + std::to_string(kInterdomainCausalMaxM) + ", got M = " +
               std::to_string(M);
    return "";
}

// ---- Device entry points --------------------------------------------------------
// All pointers are device pointers to contiguous row-major float32; `stream`
// is a cudaStream_t (void* so that this header needs no CUDA headers). Errors
// (bad sizes, null pointers, CUDA or cuBLAS failures) throw idattn::Error.

// eq:P6, the projection of every head: u (bh, m, r) = Phi fk, gamma (bh, m, d)
// = Phi v, and eta (m) = Phi 1 (one vector for all heads: Phi is shared).
// phi (m, n), fk (bh, n, r), v (bh, n, d). Two cuBLAS strided-batched SGEMMs
// and a row-sum kernel.
void interdomain_project_device(const float* phi, const float* fk, const float* v, float* u, float* gamma,
                                float* eta, std::int64_t bh, std::int64_t n, std::int64_t m, std::int64_t r,
                                std::int64_t d, void* stream = nullptr);

// eq:P9, the readout of every head: o (bh, nq, d) = F_q U^T Gamma / (F_q U^T eta)
// with fq (bh, nq, r), u (bh, m, r), gamma (bh, m, d), eta (m). One fused
// kernel; the (nq, m) matrix F_q U^T never reaches global memory.
void interdomain_readout_device(const float* fq, const float* u, const float* gamma, const float* eta, float* o,
                                std::int64_t bh, std::int64_t nq, std::int64_t m, std::int64_t r, std::int64_t d,
                                void* stream = nullptr);

// eq:P9 causal, through the effective weights of eq:3.4: query i (at position
// p_i = i + n - nq, needs nq <= n) reads its own prefix projected on the
// prefix basis Phi^(i) = basis_matrix(b, M_i, p_i + 1), generated on the
// device (LegS: M_i = m; Dct: M_i = min(m, p_i + 1)). Gram and Fourier throw.
// fq (bh, nq, r), fk (bh, n, r), v (bh, n, d) -> o (bh, nq, d).
void interdomain_causal_device(ref::Basis b, std::int64_t m, const float* fq, const float* fk, const float* v,
                               float* o, std::int64_t bh, std::int64_t nq, std::int64_t n, std::int64_t r,
                               std::int64_t d, void* stream = nullptr);

// ---- Host convenience (copies in, NaN-poisons the output, runs, copies out) --------

// Non-causal (P9): phi (M, N) is the basis matrix (any real basis, computed by
// the caller, e.g. ref::basis_matrix<float>); fq (B, H, Nq, R), fk (B, H, N, R),
// v (B, H, N, d) -> (B, H, Nq, d). The projection [U | Gamma | eta] = Phi [F_k | V | 1]
// is one batched GEMM; the readout F_q U^T Gamma / F_q U^T eta is one fused kernel.
xt::xtensor<float, 4> interdomain_attention(const xt::xtensor<float, 2>& phi, const xt::xtensor<float, 4>& fq,
                                            const xt::xtensor<float, 4>& fk, const xt::xtensor<float, 4>& v);

// Causal (P9) with the prefix basis of every query generated on the device
// (closed forms: LegS and Dct; Gram and Fourier throw idattn::Error naming the
// basis). Same shapes; needs Nq <= N.
xt::xtensor<float, 4> interdomain_attention_causal(ref::Basis b, std::size_t M, const xt::xtensor<float, 4>& fq,
                                                   const xt::xtensor<float, 4>& fk, const xt::xtensor<float, 4>& v);

}  // namespace idattn::fast
