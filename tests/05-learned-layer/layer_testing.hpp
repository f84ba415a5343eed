// Chapter 5 tests: random parameters away from every special point, random
// inputs, and flat views for comparisons. Shared by the tests of this folder.
#pragma once

#include <cstddef>
#include <random>

#include <xtensor/xadapt.hpp>

#include "ref/05-learned-layer/layer.hpp"
#include "tests/common/testutil.hpp"

namespace idattn::test {

// Small heads so that finite differences can visit every element; R even for RoPE.
struct LayerSizes {
    std::size_t D = 5, H = 2, R = 4, d = 3, M = 3;
};

// layer-init's parameters, then every array moved by N(0, 0.3^2) noise so that
// nothing sits where a bug could hide (b = 0, g = 1, C = I, B of the zero-order hold), and
// log Delta drawn in [log 0.05, log 0.5] so that the states decay within a
// test's few tokens.
inline ref::LayerParams random_layer_params(Rng& rng, ref::LayerVariant v, const LayerSizes& s, bool gate) {
    ref::LayerInitSpec spec{s.D, s.H, s.R, s.d, s.M, rng.engine()(), gate, true};
    ref::LayerParams p = ref::layer_init(v, spec);
    std::normal_distribution<double> nd(0.0, 0.3);
    for (auto& [name, a] : p.arrays) {
        if (name == "log_dt") {
            for (auto& e : a) e = rng.uniform(std::log(0.05), std::log(0.5));
        } else {
            for (auto& e : a) e += nd(rng.engine());
        }
    }
    return p;
}

inline xt::xtensor<double, 3> random_x(Rng& rng, std::size_t B, std::size_t N, std::size_t D) {
    xt::xtensor<double, 3> x = xt::zeros<double>({B, N, D});
    std::normal_distribution<double> nd(0.0, 1.0);
    for (auto& e : x) e = nd(rng.engine());
    return x;
}

// Any array as a flat vector (for tol_check<1>).
template <class E>
xt::xtensor<double, 1> flat(const E& a) {
    xt::xtensor<double, 1> f = xt::zeros<double>({a.size()});
    std::size_t i = 0;
    for (auto e : a) f(i++) = e;
    return f;
}

inline ref::LayerOptions options_for(ref::LayerVariant v) {
    ref::LayerOptions o;
    o.rope = ref::layer_default_rope(v);
    return o;
}

}  // namespace idattn::test
