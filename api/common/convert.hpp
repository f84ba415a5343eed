// HostTensor <-> xtensor for the api layer: rank-2 (N, d) single heads become
// (1, 1, N, d) so that every backend sees (B, H, N, d), and outputs go back to
// the rank the user supplied.
#pragma once

#include <algorithm>

#include <xtensor/xtensor.hpp>

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

}  // namespace idattn::api
