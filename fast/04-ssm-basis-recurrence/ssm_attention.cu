// Chapter 4, fast backend: the fused causal interdomain-attention forward over
// a diagonal SSM basis (eq:4.readout, eq:3.5, eq:P9), float32 / complex64.
//
// Status: verified on a GPU (NVIDIA H100 and H200, sm_90, 2026-11-26): every test
// of tests/NN-*/fast_*.cpp passes there; compute-sanitizer memcheck, racecheck and
// synccheck are clean on the cases listed in bench/results/README.md. Not run on
// sm_80 (compiled only).
//
// What it optimises, and why
// --------------------------
// The reference forms every state X_t = [U_t | Gamma_t | eta_t] (M x C
// complex, C = R + d + 1: eq:4.channels) and reads query i from X_{p_i}. At
// N = 16384, M = 64, C = 129 that is 8.6 GB of states per head if written
// out; the readout only needs each state once, right after it is formed. So:
//   passes 1 + 2 of eq:4.chunk (shared with ssm_scan.cu): the state entering
//     every chunk of K = 64 tokens, H (bh, N/K, M, C) - 1/K of the states,
//     the only intermediate in global memory; the channels [xi(k), v, 1] are
//     read straight from fk and v, never concatenated.
//   fused pass 3 (fused_readout_kernel in ssm_fused_kernels.cuh): one block per
//     (chunk, head, group of modes); warp w owns 4 modes and lane l the
//     channels l, l + 32, ..., so the block's slice of the state lives in
//     registers while the block walks its chunk token by token (eq:P11).
//     For each query token: a_m = sum_r xi(q)_r conj(U_mr) is a warp
//     all-reduce (shuffles; every channel of a mode is in one warp), the
//     products Re(a_m Gamma_mc) and Re(a_m eta_m) are summed over the warp's
//     modes in registers, and the sum over the block's warps goes through
//     shared memory (double-buffered partial sums, one __syncthreads per
//     query). One group (<= 64 modes at R + d + 1 <= 160, <= 32 modes above)
//     covers M = 64 at R = d = 64: the sum over modes is complete in the block
//     and num / den / o are stored directly. For larger M the mode groups
//     atomically add their partial sums into zeroed num and den and a small
//     kernel divides (float atomics: the summation order, hence the last
//     bits, may vary between runs).
// Work: O(N M C) per head, linear in N (softmax attention is O(N^2 d)); the
// only serial part is pass 2's N/K steps. Memory: fk, v read twice, fq
// once, H written and read 3 x (N/K) M C x 8 bytes, o written once.
//
// Numerics. The same float32 recurrence steps as the reference recurrence
// inside a chunk, Lambda^K from float64 powering (ssm_scan.cu), float32 sums
// of R products per mode (warp tree) and of M modes (registers + warps).
//
// Limits: R, d <= 128 (kSsmMaxDim: lane registers hold ceil((R+d+1)/32) <= 9
// channels per mode), nq <= n, bh <= 65535 heads per call.
#include <algorithm>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "fast/common/cuda_check.cuh"
#include "core/error.hpp"
#include "core/validate.hpp"
#include "fast/04-ssm-basis-recurrence/ssm.hpp"
#include "fast/04-ssm-basis-recurrence/ssm_fused_kernels.cuh"
#include "fast/04-ssm-basis-recurrence/ssm_internal.cuh"

namespace idattn::fast {

namespace {

using namespace ssm_detail;

// Shared-memory budget of the fused kernel (floats; 48 KiB without opt-in).
constexpr int kFusedSmemFloats = 12288;

template <int CPL>
void launch_fused(const float2* lam, const float2* bb, int hp, const Channels& ch, const float* fq, const float2* h,
                  float* num, float* den, float* o, int bh, int n, int nq, int M, int chunk, cudaStream_t s) {
    const int maxw = CPL <= 5 ? 16 : 8;  // matches the kernel's __launch_bounds__
    const int nwarps = std::min(maxw, (M + kModesPerWarp - 1) / kModesPerWarp);
    const int groups = (M + nwarps * kModesPerWarp - 1) / (nwarps * kModesPerWarp);
    const int R = ch.ca, d = ch.cb, C = ch.count();
    const int red = 2 * nwarps * (d + 1);
    const int tile = std::max(1, std::min(chunk, (kFusedSmemFloats - red) / (C + R)));
    const std::size_t smem = sizeof(float) * (static_cast<std::size_t>(tile) * (C + R) + red);
    const int nchunks = (n + chunk - 1) / chunk;
    const int atomic = groups > 1 ? 1 : 0;
    if (atomic) {
        IDATTN_CUDA_CHECK(cudaMemsetAsync(num, 0, sizeof(float) * static_cast<std::size_t>(bh) * nq * d, s));
        IDATTN_CUDA_CHECK(cudaMemsetAsync(den, 0, sizeof(float) * static_cast<std::size_t>(bh) * nq, s));
    }
    fused_readout_kernel<CPL><<<dim3(unsigned(nchunks), unsigned(bh), unsigned(groups)), 32 * nwarps, smem, s>>>(
        lam, bb, hp, ch, fq, h, num, den, atomic ? nullptr : o, n, nq, M, chunk, tile, atomic);
    IDATTN_CUDA_CHECK(cudaGetLastError());
    if (atomic && o != nullptr) {
        const long long total = static_cast<long long>(bh) * nq * d;
        divide_kernel<<<unsigned((total + 255) / 256), 256, 0, s>>>(num, den, o, static_cast<long long>(bh) * nq, d);
        IDATTN_CUDA_CHECK(cudaGetLastError());
    }
}

// num / den may be null (then o is not): with one mode group the kernel
// stores whichever is given; with several it needs num / den, so the caller
// provides scratch.
void fused_forward(const std::string& what, const std::complex<float>* lambda, const std::complex<float>* bbar,
                   std::int64_t hp, const float* fq, const float* fk, const float* v, float* num, float* den, float* o,
                   std::int64_t bh, std::int64_t nq, std::int64_t n, std::int64_t m, std::int64_t r, std::int64_t d,
                   std::int64_t chunk, void* stream) {
    if (lambda == nullptr || bbar == nullptr || fq == nullptr || fk == nullptr || v == nullptr)
        throw Error(what + ": a null device pointer was passed for lambda, bbar, fq, fk or v");
    if (r < 1 || d < 1 || nq < 1)
        throw Error(what + ": every size must be at least 1, got nq = " + std::to_string(nq) + ", R = " +
                    std::to_string(r) + ", d = " + std::to_string(d));
    check_ssm_sizes(what, hp, bh, n, m, r + d + 1);
    if (r > kSsmMaxDim || d > kSsmMaxDim)
        throw Error(what + ": feature dimension R = " + std::to_string(r) + " and value dimension d = " +
                    std::to_string(d) + " must both be <= " + std::to_string(kSsmMaxDim) + " (the kernel's limit)");
    if (nq > n)
        throw Error(what + ": causal attention needs nq <= n (query i sits at position i + n - nq), got nq = " +
                    std::to_string(nq) + " and n = " + std::to_string(n));
    if (chunk < 1) throw Error(what + ": the chunk size K must be at least 1, got " + std::to_string(chunk));
    const int K = static_cast<int>(std::min(chunk, n));
    const int ni = static_cast<int>(n), nqi = static_cast<int>(nq), mi = static_cast<int>(m);
    const int nchunks = (ni + K - 1) / K;
    const auto s = static_cast<cudaStream_t>(stream);
    const auto* lam = reinterpret_cast<const float2*>(lambda);
    const auto* bb = reinterpret_cast<const float2*>(bbar);
    const Channels ch{fk, v, static_cast<int>(r), static_cast<int>(d), 1};
    const int C = ch.ca + ch.cb + 1;
    StreamBuffer<float2> h(static_cast<std::size_t>(bh) * nchunks * m * C, s);
    launch_chunk_entries(lam, bb, static_cast<int>(hp), ch, h.data(), static_cast<int>(bh), ni, mi, K, s);

    // Several mode groups need num / den as accumulators: scratch when the caller gave none.
    const int cpl = (C + 31) / 32;
    const int maxw = cpl <= 5 ? 16 : 8;
    const bool split = m > std::int64_t{maxw} * kModesPerWarp;
    StreamBuffer<float> snum(split && num == nullptr ? static_cast<std::size_t>(bh * nq * d) : 0, s);
    StreamBuffer<float> sden(split && den == nullptr ? static_cast<std::size_t>(bh * nq) : 0, s);
    if (split && num == nullptr) num = snum.data();
    if (split && den == nullptr) den = sden.data();
    const int bhi = static_cast<int>(bh), hpi = static_cast<int>(hp);
    switch (cpl) {
#define IDATTN_SSM_CASE(P) \
    case P: launch_fused<P>(lam, bb, hpi, ch, fq, h.data(), num, den, o, bhi, ni, nqi, mi, K, s); break;
        IDATTN_SSM_CASE(1)
        IDATTN_SSM_CASE(2)
        IDATTN_SSM_CASE(3)
        IDATTN_SSM_CASE(4)
        IDATTN_SSM_CASE(5)
        IDATTN_SSM_CASE(6)
        IDATTN_SSM_CASE(7)
        IDATTN_SSM_CASE(8)
        IDATTN_SSM_CASE(9)
#undef IDATTN_SSM_CASE
        default: throw Error(what + ": internal error, C = " + std::to_string(C) + " channels");
    }
    // The scratch buffers and h are released on the stream after the kernels.
}

}  // namespace

void ssm_attention_parts_device(const std::complex<float>* lambda, const std::complex<float>* bbar, std::int64_t hp,
                                const float* fq, const float* fk, const float* v, float* num, float* den,
                                std::int64_t bh, std::int64_t nq, std::int64_t n, std::int64_t m, std::int64_t r,
                                std::int64_t d, std::int64_t chunk, void* stream) {
    const std::string what = "ssm_attention_parts_device";
    if (num == nullptr || den == nullptr) throw Error(what + ": a null device pointer was passed for num or den");
    fused_forward(what, lambda, bbar, hp, fq, fk, v, num, den, nullptr, bh, nq, n, m, r, d, chunk, stream);
}

void ssm_attention_device(const std::complex<float>* lambda, const std::complex<float>* bbar, std::int64_t hp,
                          const float* fq, const float* fk, const float* v, float* o, std::int64_t bh, std::int64_t nq,
                          std::int64_t n, std::int64_t m, std::int64_t r, std::int64_t d, std::int64_t chunk,
                          void* stream) {
    const std::string what = "ssm_attention_device";
    if (o == nullptr) throw Error(what + ": a null device pointer was passed for o");
    fused_forward(what, lambda, bbar, hp, fq, fk, v, nullptr, nullptr, o, bh, nq, n, m, r, d, chunk, stream);
}

// ---- Host convenience -----------------------------------------------------------------

namespace {

std::vector<std::size_t> shape4(const xt::xtensor<float, 4>& t) { return {t.shape(0), t.shape(1), t.shape(2), t.shape(3)}; }

struct HostRun {
    std::size_t B, H, NQ, N, R, D, M;
};

// Validates fq (B, H, Nq, R), fk (B, H, N, R), v (B, H, N, d) and the SSMs
// (one, or one per head: all of the same M).
HostRun check_host(const std::string& what, const std::vector<ref::DiagonalSsm<float>>& ssms,
                   const xt::xtensor<float, 4>& fq, const xt::xtensor<float, 4>& fk, const xt::xtensor<float, 4>& v,
                   std::size_t chunk) {
    const auto qs = shape4(fq), ks = shape4(fk), vs = shape4(v);
    for (const auto& [name, shape] : {std::pair<const char*, const std::vector<std::size_t>&>{"query features", qs},
                                      std::pair<const char*, const std::vector<std::size_t>&>{"key features", ks},
                                      std::pair<const char*, const std::vector<std::size_t>&>{"v", vs}}) {
        require_sane_size(what, name, shape);
        for (std::size_t a = 0; a < 4; ++a)
            if (shape[a] == 0)
                throw Error(what + ": " + name + " have shape " + shape_str(shape) + " with axis " + std::to_string(a) +
                            " of length 0; every axis must be at least 1");
    }
    if (ks[0] != qs[0] || ks[1] != qs[1] || ks[3] != qs[3])
        throw Error(what + ": key features have shape " + shape_str(ks) + " but query features have shape " +
                    shape_str(qs) + "; expected (B, H, N, R) = (" + std::to_string(qs[0]) + ", " +
                    std::to_string(qs[1]) + ", N, " + std::to_string(qs[3]) + ")");
    if (vs[0] != ks[0] || vs[1] != ks[1] || vs[2] != ks[2])
        throw Error(what + ": v has shape " + shape_str(vs) + " but key features have shape " + shape_str(ks) +
                    "; expected v of shape (B, H, N, d) = (" + std::to_string(ks[0]) + ", " + std::to_string(ks[1]) +
                    ", " + std::to_string(ks[2]) + ", d)");
    if (qs[2] > ks[2])
        throw Error(what + ": causal attention needs Nq <= N (queries are the last Nq of N positions), but Nq = " +
                    std::to_string(qs[2]) + " and N = " + std::to_string(ks[2]));
    if (qs[3] > static_cast<std::size_t>(kSsmMaxDim) || vs[3] > static_cast<std::size_t>(kSsmMaxDim))
        throw Error(what + ": query features have shape " + shape_str(qs) + " and v has shape " + shape_str(vs) +
                    "; the fast kernel supports R <= " + std::to_string(kSsmMaxDim) + " and d <= " +
                    std::to_string(kSsmMaxDim));
    if (chunk == 0) throw Error(what + ": the chunk size K must be at least 1, got 0");
    if (ssms.size() != 1 && ssms.size() != qs[1])
        throw Error(what + ": got " + std::to_string(ssms.size()) + " per-head SSMs but H = " + std::to_string(qs[1]) +
                    " heads; expected one SSM per head");
    for (const auto& s : ssms) ref::check_ssm(what, s);
    const std::size_t M = ssms[0].lambda.shape(0);
    for (std::size_t h = 0; h < ssms.size(); ++h)
        if (ssms[h].lambda.shape(0) != M)
            throw Error(what + ": the SSM of head " + std::to_string(h) + " has M = " +
                        std::to_string(ssms[h].lambda.shape(0)) + " states but head 0 has M = " + std::to_string(M) +
                        "; every head needs the same M");
    require_finite(what, "query features", fq.data(), qs);
    require_finite(what, "key features", fk.data(), ks);
    require_finite(what, "v", v.data(), vs);
    return {qs[0], qs[1], qs[2], ks[2], qs[3], vs[3], M};
}

// Runs the fused forward; parts = true fills num / den, otherwise o.
void run_host(const std::vector<ref::DiagonalSsm<float>>& ssms, const HostRun& r, const xt::xtensor<float, 4>& fq,
              const xt::xtensor<float, 4>& fk, const xt::xtensor<float, 4>& v, std::size_t chunk, float* num_out,
              float* den_out, float* o_out) {
    const std::size_t hp = ssms.size();
    std::vector<std::complex<float>> lam(hp * r.M), bb(hp * r.M);
    for (std::size_t h = 0; h < hp; ++h)
        for (std::size_t m = 0; m < r.M; ++m) {
            lam[h * r.M + m] = ssms[h].lambda(m);
            bb[h * r.M + m] = ssms[h].bbar(m);
        }
    DeviceBuffer<std::complex<float>> dl(hp * r.M), db(hp * r.M);
    DeviceBuffer<float> dq(fq.size()), dk(fk.size()), dv(v.size());
    dl.copy_from_host(lam.data());
    db.copy_from_host(bb.data());
    dq.copy_from_host(fq.data());
    dk.copy_from_host(fk.data());
    dv.copy_from_host(v.data());
    const std::size_t rows = r.B * r.H * r.NQ;
    const auto bh = static_cast<std::int64_t>(r.B * r.H);
    const auto args = std::make_tuple(static_cast<std::int64_t>(r.NQ), static_cast<std::int64_t>(r.N),
                                      static_cast<std::int64_t>(r.M), static_cast<std::int64_t>(r.R),
                                      static_cast<std::int64_t>(r.D), static_cast<std::int64_t>(chunk));
    if (o_out != nullptr) {
        DeviceBuffer<float> dout(rows * r.D);
        dout.fill_bytes(0xFF);  // NaN poison
        ssm_attention_device(dl.data(), db.data(), static_cast<std::int64_t>(hp), dq.data(), dk.data(), dv.data(),
                             dout.data(), bh, std::get<0>(args), std::get<1>(args), std::get<2>(args),
                             std::get<3>(args), std::get<4>(args), std::get<5>(args), nullptr);
        IDATTN_CUDA_CHECK(cudaDeviceSynchronize());
        dout.copy_to_host(o_out);
    } else {
        DeviceBuffer<float> dnum(rows * r.D), dden(rows);
        dnum.fill_bytes(0xFF);  // NaN poison
        dden.fill_bytes(0xFF);
        ssm_attention_parts_device(dl.data(), db.data(), static_cast<std::int64_t>(hp), dq.data(), dk.data(),
                                   dv.data(), dnum.data(), dden.data(), bh, std::get<0>(args), std::get<1>(args),
                                   std::get<2>(args), std::get<3>(args), std::get<4>(args), std::get<5>(args),
                                   nullptr);
        IDATTN_CUDA_CHECK(cudaDeviceSynchronize());
        dnum.copy_to_host(num_out);
        dden.copy_to_host(den_out);
    }
}

}  // namespace

SsmReadout ssm_attention_parts(const ref::DiagonalSsm<float>& s, const xt::xtensor<float, 4>& fq,
                               const xt::xtensor<float, 4>& fk, const xt::xtensor<float, 4>& v, std::size_t chunk) {
    const std::vector<ref::DiagonalSsm<float>> ssms{s};
    const HostRun r = check_host("ssm_attention_parts (fast)", ssms, fq, fk, v, chunk);
    SsmReadout out{xt::empty<float>({r.B, r.H, r.NQ, r.D}), xt::empty<float>({r.B, r.H, r.NQ})};
    run_host(ssms, r, fq, fk, v, chunk, out.num.data(), out.den.data(), nullptr);
    return out;
}

xt::xtensor<float, 4> ssm_attention(const std::vector<ref::DiagonalSsm<float>>& per_head,
                                    const xt::xtensor<float, 4>& fq, const xt::xtensor<float, 4>& fk,
                                    const xt::xtensor<float, 4>& v, std::size_t chunk) {
    if (per_head.empty())
        throw Error("ssm_attention (fast): got 0 SSMs; expected one for every head, or one shared");
    const HostRun r = check_host("ssm_attention (fast)", per_head, fq, fk, v, chunk);
    xt::xtensor<float, 4> o = xt::empty<float>({r.B, r.H, r.NQ, r.D});
    run_host(per_head, r, fq, fk, v, chunk, nullptr, nullptr, o.data());
    return o;
}

xt::xtensor<float, 4> ssm_attention(const ref::DiagonalSsm<float>& s, const xt::xtensor<float, 4>& fq,
                                    const xt::xtensor<float, 4>& fk, const xt::xtensor<float, 4>& v,
                                    std::size_t chunk) {
    return ssm_attention(std::vector<ref::DiagonalSsm<float>>{s}, fq, fk, v, chunk);
}

}  // namespace idattn::fast
