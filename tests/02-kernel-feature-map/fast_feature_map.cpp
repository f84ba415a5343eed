// Chapter 2, fast tests: the CUDA feature map and chunked linear attention
// against the float64 reference, on the very same drawn W (drawn in float64,
// rounded to float32 once, and used by all three sides), with the project's
// rule err(fast) <= 2 err(naive32) + floor. naive32 is the reference template
// instantiated for float: the same formula, the same stabiliser (the query's
// constant dropped, one key constant per sequence, eq:2.stab), the same chunk.
// Output buffers are NaN-poisoned by the host wrappers, so an unwritten element
// shows as non-finite and fails the rule.
// Runs only with a CUDA device (else the whole executable reports Skipped).
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <functional>
#include <sstream>
#include <string>

#include <xtensor/xview.hpp>

#include "fast/02-kernel-feature-map/feature_map.hpp"
#include "ref/02-kernel-feature-map/feature_map.hpp"
#include "ref/02-kernel-feature-map/linear_attention.hpp"
#include "core/error.hpp"
#include "tests/common/testutil.hpp"

using idattn::ref::FeatureMap;
using idattn::test::to_f32;
using idattn::test::to_f64;

namespace {

const FeatureMap kAllMaps[] = {FeatureMap::Rff, FeatureMap::Positive, FeatureMap::Orthogonal, FeatureMap::Taylor};
const FeatureMap kRandomMaps[] = {FeatureMap::Rff, FeatureMap::Positive, FeatureMap::Orthogonal};

// R = 40 random frequencies: not a multiple of the kernels' tiles (rff: R_f = 80).
constexpr std::size_t kFrequencies = 40;

// The draw every side uses: float64 from the seed, rounded to float32 once.
xt::xtensor<float, 2> draw32(FeatureMap map, std::size_t m, std::size_t d, idattn::test::Rng& rng) {
    return to_f32(idattn::ref::draw_for(map, m, d, rng.engine()()));
}

std::string name(FeatureMap map) { return idattn::ref::feature_map_name(map); }

// Per head (b, h) of x, the reference's scaled features in T: f -> (B, H, N, R_f), c -> (B, H, N, 1).
template <class T>
void scaled_per_head(FeatureMap map, const xt::xtensor<T, 4>& x, const xt::xtensor<T, 2>& w, xt::xtensor<double, 4>& f,
                     xt::xtensor<double, 4>& c) {
    const std::size_t B = x.shape(0), H = x.shape(1), N = x.shape(2), d = x.shape(3);
    const std::size_t rf = idattn::ref::feature_dim(map, idattn::ref::is_random(map) ? w.shape(0) : 0, d);
    f = xt::xtensor<double, 4>(std::array<std::size_t, 4>{B, H, N, rf});
    c = xt::xtensor<double, 4>(std::array<std::size_t, 4>{B, H, N, 1});
    for (std::size_t b = 0; b < B; ++b)
        for (std::size_t h = 0; h < H; ++h) {
            const xt::xtensor<T, 2> xh = xt::view(x, b, h);
            const auto s = idattn::ref::scaled_feature_map<T>(map, xh, w);
            xt::view(f, b, h) = xt::cast<double>(s.f);
            for (std::size_t n = 0; n < N; ++n) c(b, h, n, 0) = static_cast<double>(s.c(n));
        }
}

// Per head, the reference's chunked linear attention in T with the api layer's
// stabiliser: query features f (own constant dropped), key features with one
// constant per sequence (eq:2.stab).
template <class T>
xt::xtensor<double, 4> linear_per_head(FeatureMap map, const xt::xtensor<T, 4>& q, const xt::xtensor<T, 4>& k,
                                       const xt::xtensor<T, 4>& v, const xt::xtensor<T, 2>& w, bool causal,
                                       std::size_t chunk) {
    xt::xtensor<double, 4> o(std::array<std::size_t, 4>{q.shape(0), q.shape(1), q.shape(2), v.shape(3)});
    for (std::size_t b = 0; b < q.shape(0); ++b)
        for (std::size_t h = 0; h < q.shape(1); ++h) {
            const xt::xtensor<T, 2> qh = xt::view(q, b, h), kh = xt::view(k, b, h), vh = xt::view(v, b, h);
            const auto fq = idattn::ref::scaled_feature_map<T>(map, qh, w);
            const auto fk = idattn::ref::scaled_feature_map<T>(map, kh, w);
            xt::view(o, b, h) = xt::cast<double>(idattn::ref::linear_attention_chunked<T>(
                fq.f, idattn::ref::sequence_stabilised(fk), vh, causal, chunk));
        }
    return o;
}

// Scaled features f and log-scales c: fast vs ref vs naive32.
void check_features(idattn::test::Rng& rng, FeatureMap map, std::size_t b, std::size_t h, std::size_t n,
                    std::size_t d, double scale) {
    const auto x32 = to_f32(rng.normal<4>({b, h, n, d}, scale));
    const auto w32 = idattn::ref::is_random(map) ? draw32(map, kFrequencies, d, rng)
                                                 : xt::xtensor<float, 2>(std::array<std::size_t, 2>{0, 0});
    xt::xtensor<double, 4> f_ref, c_ref, f_naive, c_naive;
    scaled_per_head<double>(map, to_f64(x32), to_f64(w32), f_ref, c_ref);
    scaled_per_head<float>(map, x32, w32, f_naive, c_naive);
    const auto fast = idattn::fast::scaled_feature_map(map, x32, w32);
    std::ostringstream label;
    label << name(map) << " B=" << b << " H=" << h << " N=" << n << " d=" << d << " scale=" << scale;
    IDATTN_CHECK_CMP(idattn::test::rule_check(label.str() + " f", f_ref, to_f64(fast.f), f_naive));
    const xt::xtensor<double, 4> c_fast = xt::reshape_view(to_f64(fast.c), {b, h, n, std::size_t{1}});
    if (map == FeatureMap::Taylor) {
        BOOST_TEST(xt::amax(xt::abs(c_fast))() == 0.0, label.str() << ": taylor log-scales must be exactly 0");
    } else {
        IDATTN_CHECK_CMP(idattn::test::rule_check(label.str() + " c", c_ref, c_fast, c_naive));
    }
}

// Input scale of q and k. rff's denominator is a Monte Carlo estimate that can
// cross zero (chapter 2.2): with R = 40 and entries of scale 0.5 the Gaussian
// factor exp(-|q - k|^2 / 2s) is ~0.1, below the estimate's noise, and rows with
// a near-zero denominator amplify every rounding error by |o| ~ 10..100 (in
// naive32 and fast alike, so the rule's ratio becomes a coin toss). Scale 0.25
// keeps that factor ~0.5 and the problem well conditioned.
double input_scale(FeatureMap map) { return map == FeatureMap::Rff ? 0.25 : 0.5; }

// Chunked linear attention: fast vs ref vs naive32.
void check_linear(idattn::test::Rng& rng, FeatureMap map, std::size_t b, std::size_t h, std::size_t nq, std::size_t n,
                  std::size_t d, bool causal, std::size_t chunk) {
    const double scale = input_scale(map);
    const auto q32 = to_f32(rng.normal<4>({b, h, nq, d}, scale));
    const auto k32 = to_f32(rng.normal<4>({b, h, n, d}, scale));
    const auto v32 = to_f32(rng.normal<4>({b, h, n, d}));
    const auto w32 = idattn::ref::is_random(map) ? draw32(map, kFrequencies, d, rng)
                                                 : xt::xtensor<float, 2>(std::array<std::size_t, 2>{0, 0});
    const auto ref = linear_per_head<double>(map, to_f64(q32), to_f64(k32), to_f64(v32), to_f64(w32), causal, chunk);
    const auto naive = linear_per_head<float>(map, q32, k32, v32, w32, causal, chunk);
    const auto fast = to_f64(idattn::fast::chunked_linear_attention(map, q32, k32, v32, w32, causal, chunk));
    std::ostringstream label;
    label << name(map) << " B=" << b << " H=" << h << " Nq=" << nq << " N=" << n << " d=" << d
          << " causal=" << causal << " chunk=" << chunk << " scale=" << scale;
    IDATTN_CHECK_CMP(idattn::test::rule_check(label.str(), ref, fast, naive));
}

// Rows of norm uniform in [lo, hi]: large, but all of similar size, so that the
// per-sequence key constants stay within float32's exponent range of each other.
xt::xtensor<float, 4> rows_of_norm(idattn::test::Rng& rng, std::array<std::size_t, 4> shape, double lo, double hi) {
    auto x = rng.normal<4>(shape);
    for (std::size_t b = 0; b < shape[0]; ++b)
        for (std::size_t h = 0; h < shape[1]; ++h)
            for (std::size_t n = 0; n < shape[2]; ++n) {
                auto row = xt::view(x, b, h, n, xt::all());
                const double norm = std::sqrt(xt::sum(row * row)());
                row *= rng.uniform(lo, hi) / norm;
            }
    return to_f32(x);
}

// Runs fn and checks that it throws idattn::Error whose message contains `expect`.
void check_throws(const std::function<void()>& fn, const std::string& expect) {
    try {
        fn();
    } catch (const idattn::Error& e) {
        const std::string msg = e.what();
        BOOST_TEST(msg.find(expect) != std::string::npos, "message '" << msg << "' lacks '" << expect << "'");
        return;
    }
    BOOST_ERROR("no idattn::Error for: " << expect);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fast_features)

// eq:P3 eq:2.1 eq:2.2 eq:2.3 eq:2.4 eq:2.stab: scaled features f and log-scales c equal the reference, every map
BOOST_AUTO_TEST_CASE(fast_scaled_features_equal_reference_ragged_sizes) {
    IDATTN_SEEDED(rng);
    for (FeatureMap map : kAllMaps)
        for (std::size_t n : idattn::test::kRaggedN)
            for (std::size_t d : idattn::test::kRaggedD) {
                // taylor has R_f = 1 + d + d^2: keep the float64 reference's size moderate
                if (map == FeatureMap::Taylor && n > 97 && d > 59) continue;
                check_features(rng, map, 1, 2, n, d, 1.0);
            }
    check_features(rng, FeatureMap::Positive, 2, 3, 33, 1, 1.0);   // d = 1, batched heads
    check_features(rng, FeatureMap::Rff, 2, 3, 33, 130, 0.3);      // d > 128: the map takes any d
}

// eq:P3 eq:P5 eq:2.1 eq:2.2: the literal features xi(x) (no stabiliser) equal the reference
BOOST_AUTO_TEST_CASE(fast_literal_features_equal_reference) {
    IDATTN_SEEDED(rng);
    for (FeatureMap map : kAllMaps)
        for (std::size_t n : {1, 65, 97})
            for (std::size_t d : {5, 64}) {
                const auto x32 = to_f32(rng.normal<4>({1, 2, n, d}, 0.5));
                const auto w32 = idattn::ref::is_random(map) ? draw32(map, kFrequencies, d, rng)
                                                             : xt::xtensor<float, 2>(std::array<std::size_t, 2>{0, 0});
                xt::xtensor<double, 4> ref, naive;
                const auto per_head = [&](auto tag, xt::xtensor<double, 4>& out) {
                    using T = decltype(tag);
                    const auto x = xt::xtensor<T, 4>(xt::cast<T>(x32));
                    const auto w = xt::xtensor<T, 2>(xt::cast<T>(w32));
                    const std::size_t rf = idattn::ref::feature_dim(map, w.shape(0), d);
                    out = xt::xtensor<double, 4>(std::array<std::size_t, 4>{1, 2, n, rf});
                    for (std::size_t h = 0; h < 2; ++h) {
                        const xt::xtensor<T, 2> xh = xt::view(x, 0, h);
                        xt::view(out, 0, h) = xt::cast<double>(idattn::ref::feature_map<T>(map, xh, w));
                    }
                };
                per_head(double{}, ref);
                per_head(float{}, naive);
                const auto fast = to_f64(idattn::fast::feature_map(map, x32, w32));
                std::ostringstream label;
                label << name(map) << " literal N=" << n << " d=" << d;
                IDATTN_CHECK_CMP(idattn::test::rule_check(label.str(), ref, fast, naive));
            }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(fast_linear)

// eq:P4 eq:2.chunk eq:2.recurrence eq:2.stab: chunked linear attention equals the reference, ragged N and d
BOOST_AUTO_TEST_CASE(fast_linear_equals_reference_ragged_sizes) {
    IDATTN_SEEDED(rng);
    for (FeatureMap map : kAllMaps)
        for (std::size_t n : idattn::test::kRaggedN)
            for (std::size_t d : idattn::test::kRaggedD)
                for (bool causal : {false, true}) {
                    if (map == FeatureMap::Taylor && n > 97 && d > 59) continue;  // R_f = 1 + d + d^2
                    check_linear(rng, map, 1, 2, n, n, d, causal, 64);
                }
}

// eq:2.chunk eq:2.5: every chunk size gives the same form - 1 (the recurrence), 7 (non-dividing), 64, 100, >= N
BOOST_AUTO_TEST_CASE(fast_linear_chunk_sizes) {
    IDATTN_SEEDED(rng);
    for (FeatureMap map : {FeatureMap::Rff, FeatureMap::Positive, FeatureMap::Taylor})
        for (std::size_t chunk : {1, 7, 64, 100, 130, 1000})
            for (bool causal : {false, true}) {
                check_linear(rng, map, 1, 2, 130, 130, map == FeatureMap::Taylor ? 7 : 59, causal, chunk);
                if (causal) check_linear(rng, map, 1, 2, 65, 130, 64, causal, chunk);  // Nq < N
            }
    check_linear(rng, FeatureMap::Orthogonal, 1, 1, 1025, 1025, 64, true, 1);  // the recurrence, long
}

// eq:P4 eq:1.causal eq:2.chunk: batched heads, Nq < N (bottom-right causal alignment), extreme d
BOOST_AUTO_TEST_CASE(fast_linear_batched_and_rectangular) {
    IDATTN_SEEDED(rng);
    for (FeatureMap map : kRandomMaps) {
        check_linear(rng, map, 2, 3, 65, 97, 64, false, 64);
        check_linear(rng, map, 2, 3, 65, 97, 64, true, 64);
        check_linear(rng, map, 1, 4, 1, 1025, 100, true, 64);   // one decoding query
        check_linear(rng, map, 3, 1, 130, 257, 1, true, 32);    // d = 1
        check_linear(rng, map, 1, 1, 100, 50, 128, false, 16);  // Nq > N non-causal, largest d
    }
}

// eq:2.stab eq:P4: inputs of norm 25..30 stay finite (the unstabilised float32 form overflows)
BOOST_AUTO_TEST_CASE(fast_large_norms_stay_finite) {
    IDATTN_SEEDED(rng);
    const std::size_t n = 97, d = 64;
    const auto q32 = rows_of_norm(rng, {1, 2, n, d}, 25.0, 30.0);
    const auto k32 = rows_of_norm(rng, {1, 2, n, d}, 25.0, 30.0);
    const auto v32 = to_f32(rng.normal<4>({1, 2, n, d}));
    for (FeatureMap map : kRandomMaps) {
        const auto w32 = draw32(map, kFrequencies, d, rng);
        // The unstabilised float32 computation, for contrast: literal features in (P4).
        const xt::xtensor<float, 2> q0 = xt::view(q32, 0, 0), k0 = xt::view(k32, 0, 0), v0 = xt::view(v32, 0, 0);
        const auto plain = idattn::ref::linear_attention_quadratic<float>(
            idattn::ref::feature_map<float>(map, q0, w32), idattn::ref::feature_map<float>(map, k0, w32), v0, false);
        const auto bad = idattn::test::count_non_finite(plain.data(), plain.size());
        BOOST_TEST_MESSAGE(name(map) << ": unstabilised float32 (P4): " << bad << " of " << plain.size()
                                     << " outputs non-finite");
        if (map == FeatureMap::Rff) BOOST_TEST(bad > 0u);  // exp(|q|^2/2s + |k|^2/2s) > FLT_MAX
        for (bool causal : {false, true})
            for (std::size_t chunk : {16, 64}) {
                const auto ref =
                    linear_per_head<double>(map, to_f64(q32), to_f64(k32), to_f64(v32), to_f64(w32), causal, chunk);
                const auto naive = linear_per_head<float>(map, q32, k32, v32, w32, causal, chunk);
                const auto fast = to_f64(idattn::fast::chunked_linear_attention(map, q32, k32, v32, w32, causal, chunk));
                BOOST_TEST(idattn::test::count_non_finite(fast.data(), fast.size()) == 0u);
                std::ostringstream label;
                label << name(map) << " norms 25..30 N=" << n << " d=" << d << " causal=" << causal << " chunk=" << chunk
                      << (map == FeatureMap::Rff ? " [rff: printed, not asserted; only finiteness is]" : "");
                const auto cmp = idattn::test::rule_check(label.str(), ref, fast, naive);
                // rff at these norms: the Gaussian factor exp(-|q - k|^2 / 2s) ~ e^-90 is far
                // below the Monte Carlo noise, denominators sit near zero and amplify every
                // rounding (outputs ~300); the rule's ratio is then a coin toss, so rff is
                // only required to stay finite here. The positive maps are well conditioned.
                if (map != FeatureMap::Rff) IDATTN_CHECK_CMP(cmp);
            }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bad_input_fast)

BOOST_AUTO_TEST_CASE(fast_feature_map_rejects_bad_shapes) {
    namespace fast = idattn::fast;
    const xt::xtensor<float, 4> x = xt::ones<float>({1, 2, 5, 8});
    const xt::xtensor<float, 2> w = xt::ones<float>({4, 8}), w_bad = xt::ones<float>({4, 7}),
                                w_none = xt::xtensor<float, 2>(std::array<std::size_t, 2>{0, 8});
    check_throws([&] { fast::feature_map(FeatureMap::Positive, x, w_bad); }, "W has shape (4, 7)");
    check_throws([&] { fast::scaled_feature_map(FeatureMap::Rff, x, w_none); }, "at least 1");
    check_throws([&] { fast::feature_map(FeatureMap::Taylor, x, w); }, "takes no W");
    const xt::xtensor<float, 4> empty(std::array<std::size_t, 4>{1, 0, 5, 8});
    check_throws([&] { fast::feature_map(FeatureMap::Positive, empty, w); }, "x has shape (1, 0, 5, 8)");
    // The device entry points check before launching.
    check_throws([&] { fast::feature_map_device(FeatureMap::Positive, nullptr, nullptr, nullptr, nullptr, 5, 8, 4, true); },
                 "null device pointer");
    check_throws([&] { fast::feature_map_device(FeatureMap::Taylor, x.data(), nullptr, nullptr, nullptr, 5, 8, 4, true); },
                 "takes no W");
}

BOOST_AUTO_TEST_CASE(fast_linear_attention_rejects_bad_input) {
    namespace fast = idattn::fast;
    const auto t = [](std::size_t n, std::size_t d) {
        xt::xtensor<float, 4> x(std::array<std::size_t, 4>{1, 2, n, d});
        x.fill(1.f);
        return x;
    };
    const xt::xtensor<float, 2> w = xt::ones<float>({4, 8});
    const auto q = t(5, 8), k = t(6, 8);
    check_throws([&] { fast::chunked_linear_attention(FeatureMap::Positive, q, t(6, 7), k, w, false, 4); },
                 "k has shape (1, 2, 6, 7)");
    check_throws([&] { fast::chunked_linear_attention(FeatureMap::Positive, q, k, t(5, 8), w, false, 4); },
                 "v has shape (1, 2, 5, 8)");
    check_throws([&] { fast::chunked_linear_attention(FeatureMap::Positive, t(7, 8), k, k, w, true, 4); },
                 "causal attention needs N_q <= N");
    check_throws([&] { fast::chunked_linear_attention(FeatureMap::Positive, q, k, k, w, false, 0); },
                 "chunk size must be at least 1");
    check_throws([&] { fast::chunked_linear_attention(FeatureMap::Rff, q, k, k, xt::xtensor<float, 2>(xt::ones<float>({4, 9})), false, 4); },
                 "W has shape (4, 9)");
    const xt::xtensor<float, 4> big = xt::ones<float>({1, 1, 3, 129});
    check_throws([&] { fast::chunked_linear_attention(FeatureMap::Taylor, big, big, big,
                                                      xt::xtensor<float, 2>(std::array<std::size_t, 2>{0, 0}), false, 4); },
                 "d <= 128");
    check_throws([&] { fast::chunked_linear_attention_device(FeatureMap::Positive, q.data(), k.data(), k.data(),
                                                             w.data(), nullptr, 2, 5, 6, 8, 4, false, 4); },
                 "null device pointer");
    check_throws([&] { fast::chunked_linear_attention_device(FeatureMap::Positive, q.data(), k.data(), k.data(),
                                                             nullptr, const_cast<float*>(q.data()), 2, 5, 6, 8, 4, false, 4); },
                 "needs a device pointer W");
}

BOOST_AUTO_TEST_SUITE_END()
