// Chapter 4 reference, the FFT form of the S4D states (eq:4.4): the diagonal
// SSM is linear and time-invariant, so every state m and channel c is the
// causal convolution x[., m, c] = psi[., m] * z[., c] of the input with the
// impulse response, computed here with FFTW (fftw for double, fftwf for float,
// the naive32 baseline). Equation labels refer to chapters/04-ssm-basis-recurrence.md.
#include <fftw3.h>

#include <complex>
#include <vector>

#include "core/error.hpp"
#include "core/validate.hpp"
#include "ref/04-ssm-basis-recurrence/ssm.hpp"

namespace idattn::ref {

namespace {

// One in-place complex transform of length n, forward or backward, on an
// FFTW-allocated buffer (so the planner's alignment assumptions hold).
template <class T>
class Fft;

template <>
class Fft<double> {
public:
    explicit Fft(std::size_t n) : buf_(static_cast<fftw_complex*>(fftw_malloc(sizeof(fftw_complex) * n))) {
        if (!buf_) throw Error("ssm_states_fft: cannot allocate an FFT buffer of length " + std::to_string(n));
        fwd_ = fftw_plan_dft_1d(static_cast<int>(n), buf_, buf_, FFTW_FORWARD, FFTW_ESTIMATE);
        bwd_ = fftw_plan_dft_1d(static_cast<int>(n), buf_, buf_, FFTW_BACKWARD, FFTW_ESTIMATE);
    }
    ~Fft() {
        fftw_destroy_plan(fwd_);
        fftw_destroy_plan(bwd_);
        fftw_free(buf_);
    }
    Fft(const Fft&) = delete;
    Fft& operator=(const Fft&) = delete;
    std::complex<double>* data() { return reinterpret_cast<std::complex<double>*>(buf_); }
    void forward() { fftw_execute(fwd_); }
    void backward() { fftw_execute(bwd_); }  // unnormalised: divide by n

private:
    fftw_complex* buf_;
    fftw_plan fwd_, bwd_;
};

template <>
class Fft<float> {
public:
    explicit Fft(std::size_t n) : buf_(static_cast<fftwf_complex*>(fftwf_malloc(sizeof(fftwf_complex) * n))) {
        if (!buf_) throw Error("ssm_states_fft: cannot allocate an FFT buffer of length " + std::to_string(n));
        fwd_ = fftwf_plan_dft_1d(static_cast<int>(n), buf_, buf_, FFTW_FORWARD, FFTW_ESTIMATE);
        bwd_ = fftwf_plan_dft_1d(static_cast<int>(n), buf_, buf_, FFTW_BACKWARD, FFTW_ESTIMATE);
    }
    ~Fft() {
        fftwf_destroy_plan(fwd_);
        fftwf_destroy_plan(bwd_);
        fftwf_free(buf_);
    }
    Fft(const Fft&) = delete;
    Fft& operator=(const Fft&) = delete;
    std::complex<float>* data() { return reinterpret_cast<std::complex<float>*>(buf_); }
    void forward() { fftwf_execute(fwd_); }
    void backward() { fftwf_execute(bwd_); }

private:
    fftwf_complex* buf_;
    fftwf_plan fwd_, bwd_;
};

}  // namespace

template <class T>
xt::xtensor<std::complex<T>, 3> ssm_states_fft(const DiagonalSsm<T>& s, const xt::xtensor<T, 2>& z) {
    check_ssm("ssm_states_fft", s);
    const std::vector<std::size_t> zshape{z.shape(0), z.shape(1)};
    require_sane_size("ssm_states_fft", "z", zshape);
    require_finite("ssm_states_fft", "z", z.data(), zshape);
    const std::size_t N = z.shape(0), C = z.shape(1), M = s.lambda.shape(0);
    // Zero-padding to L >= 2N - 1 makes the circular convolution of length L
    // equal the linear (causal) one on the first N outputs.                  eq:4.4
    std::size_t L = 1;
    while (L < 2 * N - 1) L *= 2;
    Fft<T> fft(L);
    std::complex<T>* buf = fft.data();

    // psi^ = FFT(psi[., m]) for every state m.
    const auto psi = impulse_response(s, N);  // psi[tau][m] = Lambda_m^tau Bbar_m   eq:4.psi
    std::vector<std::complex<T>> psi_hat(M * L);
    for (std::size_t m = 0; m < M; ++m) {
        for (std::size_t k = 0; k < L; ++k) buf[k] = k < N ? psi(k, m) : std::complex<T>(0);
        fft.forward();
        for (std::size_t k = 0; k < L; ++k) psi_hat[m * L + k] = buf[k];
    }
    // z^ = FFT(z[., c]) for every channel c.
    std::vector<std::complex<T>> z_hat(C * L);
    for (std::size_t c = 0; c < C; ++c) {
        for (std::size_t k = 0; k < L; ++k) buf[k] = k < N ? std::complex<T>(z(k, c)) : std::complex<T>(0);
        fft.forward();
        for (std::size_t k = 0; k < L; ++k) z_hat[c * L + k] = buf[k];
    }
    // x[., m, c] = IFFT(psi^_m . z^_c)[0 .. N-1]: convolution theorem.           eq:4.4
    xt::xtensor<std::complex<T>, 3> x({N, M, C});
    const T inv_l = T(1) / T(L);
    for (std::size_t m = 0; m < M; ++m)
        for (std::size_t c = 0; c < C; ++c) {
            for (std::size_t k = 0; k < L; ++k) buf[k] = psi_hat[m * L + k] * z_hat[c * L + k];
            fft.backward();
            for (std::size_t t = 0; t < N; ++t) x(t, m, c) = buf[t] * inv_l;
        }
    return x;
}

template xt::xtensor<std::complex<double>, 3> ssm_states_fft<double>(const DiagonalSsm<double>&,
                                                                     const xt::xtensor<double, 2>&);
template xt::xtensor<std::complex<float>, 3> ssm_states_fft<float>(const DiagonalSsm<float>&,
                                                                   const xt::xtensor<float, 2>&);

}  // namespace idattn::ref
