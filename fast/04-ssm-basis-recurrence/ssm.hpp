// Chapter 4, fast backend (CUDA, float32 / complex64): the S4D diagonal
// recurrence (eq:P11). Host-side interface, includable without the CUDA
// toolkit; kernels and design notes in ssm_scan.cu (chunked scan, eq:4.chunk),
// ssm_fft.cu (cuFFT convolution, eq:4.4) and ssm_attention.cu (the fused causal
// readout, eq:4.readout). Kernel bodies: ssm_device.cuh, ssm_scan_kernels.cuh, ssm_fused_kernels.cuh.
//
// Status: verified on a GPU (NVIDIA H100 and H200, sm_90, 2026-11-26): every test
// of tests/NN-*/fast_*.cpp passes there; compute-sanitizer memcheck, racecheck and
// synccheck are clean on the cases listed in bench/results/README.md. Not run on
// sm_80 (compiled only).
//
// Layouts. Complex numbers are std::complex<float> on the host and float2
// (re, im) on the device: the same 8 bytes. Every pointer is a device pointer
// to contiguous row-major data. The SSM parameters of a batch of heads are
// lambda and bbar of shape (hp, m): batch-head b (b = batch * H + head in a
// (B, H, ...) tensor) uses row b % hp, so hp = 1 shares one SSM across all
// heads and hp = H gives every head its own (e.g. its own Delta, eq:4.delta).
//
// Time as in the reference: the state after token n is entry [n]; query i
// sits at position p_i = i + n - nq (needs nq <= n) and reads the state after
// its own token.
#pragma once

#include <complex>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "ref/04-ssm-basis-recurrence/ssm.hpp"

namespace idattn::fast {

// The chunk length the host wrappers use by default (a chunk of 64 tokens
// keeps the serial pass over chunk boundaries at n/64 steps).
inline constexpr std::int64_t kSsmDefaultChunk = 64;
// Largest feature dimension R and value dimension d of the fused attention
// forward (its per-lane channel registers are sized at compile time).
inline constexpr std::int64_t kSsmMaxDim = 128;

// Why the fast backend cannot run this problem ("" when it can).
inline std::string ssm_unsupported(ref::SsmForm form, std::size_t R, std::size_t d) {
    const auto max_dim = static_cast<std::size_t>(kSsmMaxDim);
    if (form == ref::SsmForm::Explicit)
        return "the explicit O(N^2) form (eq:4.3) has no fast version (the fast backend runs the chunked scan or cuFFT)";
    if (R > max_dim || d > max_dim)
        return "the fast chapter-4 attention supports R, d <= " + std::to_string(max_dim) + ", got R = " +
               std::to_string(R) + ", d = " + std::to_string(d);
    return "";
}

// ---- Device entry points --------------------------------------------------------
// Errors (bad sizes, null pointers, CUDA or cuFFT failures) throw idattn::Error;
// `stream` is a cudaStream_t (void* so that this header needs no CUDA headers).
// Temporary buffers (the chunk-entry states, 3/K of the states' size; the
// FFT workspace) are stream-ordered (cudaMallocAsync / cudaFreeAsync): no
// device synchronisation per call. The first call sets the device's default
// memory pool to keep freed memory (release threshold = max) so that repeated
// calls reuse it. The FFT path also creates its cuFFT plans on every call.

// eq:4.chunk / eq:4.5: the states of every head by the chunked scan.
// lambda, bbar (hp, m) complex; z (bh, n, c) real; x (bh, n, m, c) complex,
// x[b][t] = the state after token t. chunk >= 1 (chunk >= n is one chunk,
// chunk = 1 is the plain recurrence eq:P11).
void ssm_states_chunked_device(const std::complex<float>* lambda, const std::complex<float>* bbar, std::int64_t hp,
                               const float* z, std::complex<float>* x, std::int64_t bh, std::int64_t n,
                               std::int64_t m, std::int64_t c, std::int64_t chunk, void* stream = nullptr);

// eq:4.4: the same states by cuFFT convolution with the impulse response
// psi_m(tau) = Lambda_m^tau Bbar_m (eq:4.psi), zero-padded to L = 2^k >= 2n.
// Same shapes as ssm_states_chunked_device. Allocates its own workspace
// (bounded, about 512 MiB; the (m, c) pairs are processed in batches).
// Cost versus the scan: M C inverse transforms of length L >= 2n, O(M C n log n)
// flops and ~6 L x 8 bytes of memory traffic per (m, c) pair against the scan's
// n x 8 (each state written once): roughly 10x the scan's traffic, so the
// scan is the fast way to materialise the states; the FFT form has no serial
// part and is here as the other classical computation (eq:4.4), cross-checked.
void ssm_states_fft_device(const std::complex<float>* lambda, const std::complex<float>* bbar, std::int64_t hp,
                           const float* z, std::complex<float>* x, std::int64_t bh, std::int64_t n, std::int64_t m,
                           std::int64_t c, void* stream = nullptr);

// eq:4.readout / eq:3.5 / eq:P9, fused: causal interdomain attention over the
// diagonal SSM basis without materialising the per-token states. fq (bh, nq, r),
// fk (bh, n, r), v (bh, n, d); r, d in [1, kSsmMaxDim]; nq <= n.
// Parts: num (bh, nq, d) = Re(a^T Gamma), den (bh, nq) = Re(a^T eta),
// a = conj(U) xi(q). Full: o (bh, nq, d) = num / den.
void ssm_attention_parts_device(const std::complex<float>* lambda, const std::complex<float>* bbar, std::int64_t hp,
                                const float* fq, const float* fk, const float* v, float* num, float* den,
                                std::int64_t bh, std::int64_t nq, std::int64_t n, std::int64_t m, std::int64_t r,
                                std::int64_t d, std::int64_t chunk = kSsmDefaultChunk, void* stream = nullptr);
void ssm_attention_device(const std::complex<float>* lambda, const std::complex<float>* bbar, std::int64_t hp,
                          const float* fq, const float* fk, const float* v, float* o, std::int64_t bh, std::int64_t nq,
                          std::int64_t n, std::int64_t m, std::int64_t r, std::int64_t d,
                          std::int64_t chunk = kSsmDefaultChunk, void* stream = nullptr);

// ---- Host convenience (validate, copy in, NaN-poison the output, run, copy out) ----

// The states (N, M, C) of one input z (N, C), as ref::ssm_states. form:
// Chunked (the scan, `chunk` tokens per chunk), Recurrence (the same scan with
// chunk = 1: eq:4.5 says they are equal) or Fft (cuFFT); Explicit (O(N^2)) has
// no fast version and throws idattn::Error.
xt::xtensor<std::complex<float>, 3> ssm_states(ref::SsmForm form, const ref::DiagonalSsm<float>& s,
                                               const xt::xtensor<float, 2>& z, std::size_t chunk = kSsmDefaultChunk);
// Batched: z (BH, N, C) -> (BH, N, M, C), one SSM for every batch entry.
xt::xtensor<std::complex<float>, 4> ssm_states_batched(ref::SsmForm form, const ref::DiagonalSsm<float>& s,
                                                       const xt::xtensor<float, 3>& z,
                                                       std::size_t chunk = kSsmDefaultChunk);

// Causal interdomain attention over the SSM basis, fused (as
// ref::ssm_attention_parts / ref::ssm_attention per head): fq (B, H, Nq, R),
// fk (B, H, N, R), v (B, H, N, d) -> (B, H, Nq, d). One SSM for every head, or
// one per head (per_head.size() == H).
struct SsmReadout {
    xt::xtensor<float, 4> num;  // (B, H, Nq, d)
    xt::xtensor<float, 3> den;  // (B, H, Nq)
};
SsmReadout ssm_attention_parts(const ref::DiagonalSsm<float>& s, const xt::xtensor<float, 4>& fq,
                               const xt::xtensor<float, 4>& fk, const xt::xtensor<float, 4>& v,
                               std::size_t chunk = kSsmDefaultChunk);
xt::xtensor<float, 4> ssm_attention(const ref::DiagonalSsm<float>& s, const xt::xtensor<float, 4>& fq,
                                    const xt::xtensor<float, 4>& fk, const xt::xtensor<float, 4>& v,
                                    std::size_t chunk = kSsmDefaultChunk);
xt::xtensor<float, 4> ssm_attention(const std::vector<ref::DiagonalSsm<float>>& per_head,
                                    const xt::xtensor<float, 4>& fq, const xt::xtensor<float, 4>& fk,
                                    const xt::xtensor<float, 4>& v, std::size_t chunk = kSsmDefaultChunk);

}  // namespace idattn::fast
