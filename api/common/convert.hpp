// HostTensor <-> xtensor for the api layer: rank-2 (N, d) single heads become
// (1, 1, N, d) so that every backend sees (B, H, N, d), and outputs go back to
// the rank the user supplied.
#pragma once

#include <algorithm>
#include <complex>
#include <vector>

#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include "api/common/host_tensor.hpp"

namespace idattn::api {

template <class T>
xt::xtensor<T, 4> to_batched(const HostTensor& t) {
    std::array<std::size_t, 4> s{1, 1, 1, 1};
    std::copy(t.shape.begin(), t.shape.end(), s.begin() + (4 - t.shape.size()));
    xt::xtensor<T, 4> out(s);
    std::transform(t.data.begin(), t.data.end(), out.begin(), [](double x) { return static_cast<T>(x); });
    return out;
}

template <class T>
HostTensor from_batched(const xt::xtensor<T, 4>& x, std::size_t rank) {
    HostTensor t;
    t.dtype = sizeof(T) == 4 ? "float32" : "float64";
    t.shape.assign(x.shape().begin() + (4 - rank), x.shape().end());
    t.data.assign(x.begin(), x.end());
    return t;
}

// Complex (..., ) -> real (..., 2): [..., 0] real part, [..., 1] imaginary part,
// the one complex convention of every output (the CLI's .npy files, Python).
template <class T, class E>
HostTensor complex_tensor(const E& x, std::vector<std::size_t> shape) {
    HostTensor t;
    t.dtype = sizeof(T) == 4 ? "float32" : "float64";
    shape.push_back(2);
    t.shape = std::move(shape);
    t.data.reserve(2 * x.size());
    for (const std::complex<T>& c : x) {
        t.data.push_back(c.real());
        t.data.push_back(c.imag());
    }
    return t;
}

// One head's formula on every (b, h) of batched (B, H, ., .) inputs - the one
// place the api loops over heads. f(qh, kh, vh) returns head (b, h)'s output,
// (Nq, dv) with Nq = q's rows and dv = v's columns.
template <class T, class F>
xt::xtensor<T, 4> per_head(const xt::xtensor<T, 4>& q, const xt::xtensor<T, 4>& k, const xt::xtensor<T, 4>& v,
                           F&& f) {
    xt::xtensor<T, 4> out(std::array<std::size_t, 4>{q.shape(0), q.shape(1), q.shape(2), v.shape(3)});
    for (std::size_t b = 0; b < q.shape(0); ++b)
        for (std::size_t h = 0; h < q.shape(1); ++h) {
            const xt::xtensor<T, 2> qh = xt::view(q, b, h), kh = xt::view(k, b, h), vh = xt::view(v, b, h);
            xt::view(out, b, h) = f(qh, kh, vh);
        }
    return out;
}

}  // namespace idattn::api
