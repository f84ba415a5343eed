// Chapter 4, fast backend: the S4D states by a chunked scan (eq:4.chunk,
// eq:4.5), complex64, batched over heads; the host wrappers of the states.
//
// Status: verified on a GPU (NVIDIA H100 and H200, sm_90, 2026-11-26): every test
// of tests/NN-*/fast_*.cpp passes there; compute-sanitizer memcheck, racecheck and
// synccheck are clean on the cases listed in bench/results/README.md. Not run on
// sm_80 (compiled only).
//
// What it optimises, and why
// --------------------------
// The recurrence x_t = Lambda (.) x_{t-1} + Bbar z_t (eq:P11) is serial in t
// but independent per (head, m, c): M C = 8256 chains per head at M = 64,
// C = 129. The chunked scan of eq:4.chunk cuts the serial length from N to
// N/K and lets every chunk run in parallel:
//   pass 1  chunk_sums_kernel: one block per (chunk, head, slice of (m, c));
//           a thread owns 4 entries (m, c) and runs Horner's rule over the
//           chunk from zero, S_j = sum Lambda^(c1-1-n) Bbar z_n; the chunk's
//           input channels are staged in shared memory once for all M modes.
//           Writes S (bh, N/K, M, C) - 1/K of the size of the states.
//   pass 2  chunk_carry_kernel: one thread per (head, m, c), serial over the
//           N/K boundaries, H_{j+1} = Lambda^K H_j + S_j, in place. Lambda^K is
//           computed once per thread by binary powering in float64 from the
//           float32 Lambda and rounded once (see cpow_int: exp(K log Lambda)
//           or float32 squaring would each lose ~K ulps).
//   pass 3  chunk_states_kernel: same grid as pass 1; each thread restarts
//           its entries from H_j and walks the chunk, x_t = Lambda x_{t-1} +
//           Bbar z_t, writing every x_t. This equals eq:4.chunk's pass 3,
//           Lambda^(t-c0+1) H_j + sum_{c0<=n<=t} Lambda^(t-n) Bbar z_n, but
//           reads only z and H_j and writes every state exactly once (a
//           "local states, then add the carry" pass 3 would write, read and
//           write the (N, M, C) states again: 3x the traffic).
// Memory traffic per head: the output N M C x 8 bytes (written once,
// coalesced: consecutive threads own consecutive (m, c)), z read twice
// (N C x 4 bytes each, 1/16 of the output at M = 64), and S/H 3 x (N/K) M C x
// 8 bytes (3/K of the output). So the scan is write-bandwidth bound: the
// benchmark compares it with a device-to-device copy.
// chunk = 1 is the plain recurrence (pass 2 does all the work, N serial
// steps); the host wrapper maps ref::SsmForm::Recurrence to it.
//
// Numerics. Float32 state and inputs (complex64), the same operations as the
// reference recurrence (eq:P11) inside a chunk; the only other rounding is
// Lambda^K (once, see above). Errors against the float64 reference grow with
// the number of steps like the naive float32 recurrence's.
//
// Limits: C <= 8192 channels (a token's channels must fit the staged tile),
// bh <= 65535 heads per call (grid y), n, M < 2^31 / 8.
#include <algorithm>
#include <climits>
#include <string>
#include <vector>

#include "fast/common/cuda_check.cuh"
#include "core/error.hpp"
#include "core/validate.hpp"
#include "fast/04-ssm-basis-recurrence/ssm.hpp"
#include "fast/04-ssm-basis-recurrence/ssm_internal.cuh"
#include "fast/04-ssm-basis-recurrence/ssm_scan_kernels.cuh"

namespace idattn::fast {

namespace ssm_detail {

void check_ssm_sizes(const std::string& what, std::int64_t hp, std::int64_t bh, std::int64_t n, std::int64_t m,
                     std::int64_t c) {
    if (hp < 1 || bh < 1 || n < 1 || m < 1 || c < 1)
        throw Error(what + ": every size must be at least 1, got hp = " + std::to_string(hp) + ", bh = " +
                    std::to_string(bh) + ", n = " + std::to_string(n) + ", M = " + std::to_string(m) + ", C = " +
                    std::to_string(c));
    if (bh % hp != 0)
        throw Error(what + ": bh = " + std::to_string(bh) + " batch-heads are not a multiple of hp = " +
                    std::to_string(hp) + " SSM parameter rows (batch-head b uses row b % hp)");
    if (bh > 65535)
        throw Error(what + ": bh = " + std::to_string(bh) + " batch-heads exceed the kernels' limit of 65535");
    constexpr std::int64_t kMaxLen = INT_MAX / 8;
    if (n > kMaxLen || m > kMaxLen || m * c > kMaxLen)
        throw Error(what + ": sizes n = " + std::to_string(n) + ", M = " + std::to_string(m) + ", M C = " +
                    std::to_string(m * c) + " exceed the kernels' limit of " + std::to_string(kMaxLen));
    if (c > kTileFloats)
        throw Error(what + ": C = " + std::to_string(c) + " channels exceed the kernels' limit of " +
                    std::to_string(kTileFloats) + " (a token's channels are staged in shared memory)");
}

void* stream_alloc(std::size_t bytes, cudaStream_t s) {
    static const bool pool_kept = [] {
        int dev = 0;
        IDATTN_CUDA_CHECK(cudaGetDevice(&dev));
        cudaMemPool_t pool;
        IDATTN_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, dev));
        std::uint64_t keep = ~std::uint64_t{0};
        IDATTN_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
        return true;
    }();
    (void)pool_kept;
    void* p = nullptr;
    if (bytes > 0) IDATTN_CUDA_CHECK(cudaMallocAsync(&p, bytes, s));
    return p;
}

void stream_free(void* p, cudaStream_t s) {
    if (p != nullptr) (void)cudaFreeAsync(p, s);  // called from destructors: must not throw
}

void launch_chunk_entries(const float2* lambda, const float2* bbar, int hp, const Channels& ch, float2* h, int bh,
                          int n, int M, int chunk, cudaStream_t s) {
    const int C = ch.ca + ch.cb + ch.ones;
    const int nchunks = (n + chunk - 1) / chunk;
    const long long MC = (long long)M * C;
    const int tile = std::max(1, std::min(chunk, kTileFloats / C));
    const auto slices = static_cast<unsigned>((MC + kScanThreads * kScanPerThread - 1) / (kScanThreads * kScanPerThread));
    chunk_sums_kernel<<<dim3(unsigned(nchunks), unsigned(bh), slices), kScanThreads, tile * C * sizeof(float), s>>>(
        lambda, bbar, hp, ch, h, n, M, chunk, tile);
    IDATTN_CUDA_CHECK(cudaGetLastError());
    const long long threads = (long long)bh * MC;
    chunk_carry_kernel<<<unsigned((threads + kScanThreads - 1) / kScanThreads), kScanThreads, 0, s>>>(
        lambda, hp, h, bh, M, C, nchunks, chunk);
    IDATTN_CUDA_CHECK(cudaGetLastError());
}

}  // namespace ssm_detail

// eq:4.chunk / eq:4.5: passes 1 and 2 (chunk entries), then pass 3 writing every state.
void ssm_states_chunked_device(const std::complex<float>* lambda, const std::complex<float>* bbar, std::int64_t hp,
                               const float* z, std::complex<float>* x, std::int64_t bh, std::int64_t n,
                               std::int64_t m, std::int64_t c, std::int64_t chunk, void* stream) {
    using namespace ssm_detail;
    const std::string what = "ssm_states_chunked_device";
    if (lambda == nullptr || bbar == nullptr || z == nullptr || x == nullptr)
        throw Error(what + ": a null device pointer was passed for lambda, bbar, z or x");
    check_ssm_sizes(what, hp, bh, n, m, c);
    if (chunk < 1) throw Error(what + ": the chunk size K must be at least 1, got " + std::to_string(chunk));
    const int K = static_cast<int>(std::min(chunk, n));
    const int ni = static_cast<int>(n), mi = static_cast<int>(m), ci = static_cast<int>(c);
    const int nchunks = (ni + K - 1) / K;
    const auto s = static_cast<cudaStream_t>(stream);
    const auto* lam = reinterpret_cast<const float2*>(lambda);
    const auto* bb = reinterpret_cast<const float2*>(bbar);
    const Channels ch{z, nullptr, ci, 0, 0};
    StreamBuffer<float2> h(static_cast<std::size_t>(bh) * nchunks * m * c, s);
    launch_chunk_entries(lam, bb, static_cast<int>(hp), ch, h.data(), static_cast<int>(bh), ni, mi, K, s);
    const int tile = std::max(1, std::min(K, kTileFloats / ci));
    const long long MC = m * c;
    const auto slices = static_cast<unsigned>((MC + kScanThreads * kScanPerThread - 1) / (kScanThreads * kScanPerThread));
    chunk_states_kernel<<<dim3(unsigned(nchunks), unsigned(bh), slices), kScanThreads, tile * ci * sizeof(float), s>>>(
        lam, bb, static_cast<int>(hp), ch, h.data(), reinterpret_cast<float2*>(x), ni, mi, K, tile);
    IDATTN_CUDA_CHECK(cudaGetLastError());
    // h is released on the stream after the kernels (stream-ordered, no device sync).
}

// ---- Host convenience -----------------------------------------------------------------

namespace {

xt::xtensor<std::complex<float>, 4> states_host(const std::string& what, ref::SsmForm form,
                                                const ref::DiagonalSsm<float>& s, const float* zdata,
                                                const std::vector<std::size_t>& zshape, std::size_t chunk) {
    if (form == ref::SsmForm::Explicit)
        throw Error(what + ": form 'explicit' (the O(N^2) projection eq:4.3) has no fast version; use 'chunked', "
                           "'recurrence' or 'fft'");
    ref::check_ssm(what, s);
    require_sane_size(what, "z", zshape);
    const std::size_t BH = zshape[0], N = zshape[1], C = zshape[2], M = s.lambda.shape(0);
    for (std::size_t a = 0; a < 3; ++a)
        if (zshape[a] == 0)
            throw Error(what + ": z has shape " + shape_str(zshape) + " with axis " + std::to_string(a) +
                        " of length 0; every axis must be at least 1");
    require_finite(what, "z", zdata, zshape);
    if (form == ref::SsmForm::Chunked && chunk == 0)
        throw Error(what + ": the chunk size K must be at least 1, got 0");
    require_sane_size(what, "states", {BH, N, M, C});

    DeviceBuffer<std::complex<float>> dl(M), db(M), dx(BH * N * M * C);
    DeviceBuffer<float> dz(BH * N * C);
    dl.copy_from_host(s.lambda.data());
    db.copy_from_host(s.bbar.data());
    dz.copy_from_host(zdata);
    dx.fill_bytes(0xFF);  // NaN poison: an element the kernels fail to write shows up in the tests
    const auto bh = static_cast<std::int64_t>(BH), n = static_cast<std::int64_t>(N),
               m = static_cast<std::int64_t>(M), c = static_cast<std::int64_t>(C);
    if (form == ref::SsmForm::Fft)
        ssm_states_fft_device(dl.data(), db.data(), 1, dz.data(), dx.data(), bh, n, m, c, nullptr);
    else
        ssm_states_chunked_device(dl.data(), db.data(), 1, dz.data(), dx.data(), bh, n, m, c,
                                  form == ref::SsmForm::Recurrence ? 1 : static_cast<std::int64_t>(chunk), nullptr);
    IDATTN_CUDA_CHECK(cudaDeviceSynchronize());  // reports an error raised while a kernel ran
    xt::xtensor<std::complex<float>, 4> out = xt::empty<std::complex<float>>({BH, N, M, C});
    dx.copy_to_host(out.data());
    return out;
}

}  // namespace

xt::xtensor<std::complex<float>, 3> ssm_states(ref::SsmForm form, const ref::DiagonalSsm<float>& s,
                                               const xt::xtensor<float, 2>& z, std::size_t chunk) {
    const std::string what = "ssm_states(" + ref::ssm_form_name(form) + ", fast)";
    require_sane_size(what, "z", {z.shape(0), z.shape(1)});  // name the 2-d shape the caller passed
    require_finite(what, "z", z.data(), {z.shape(0), z.shape(1)});
    const std::vector<std::size_t> zshape{1, z.shape(0), z.shape(1)};
    auto x4 = states_host(what, form, s, z.data(), zshape, chunk);
    xt::xtensor<std::complex<float>, 3> x = xt::empty<std::complex<float>>({x4.shape(1), x4.shape(2), x4.shape(3)});
    std::copy(x4.begin(), x4.end(), x.begin());
    return x;
}

xt::xtensor<std::complex<float>, 4> ssm_states_batched(ref::SsmForm form, const ref::DiagonalSsm<float>& s,
                                                       const xt::xtensor<float, 3>& z, std::size_t chunk) {
    const std::string what = "ssm_states_batched(" + ref::ssm_form_name(form) + ", fast)";
    return states_host(what, form, s, z.data(), {z.shape(0), z.shape(1), z.shape(2)}, chunk);
}

}  // namespace idattn::fast
