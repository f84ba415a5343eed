// Chapter 2, bad input through the api layer (what the CLI and Python see):
// every error names the tensor and the expected and actual shape or value.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>

#include "api/02-kernel-feature-map/feature_map_api.hpp"
#include "api/common/names.hpp"
#include "core/error.hpp"
#include "tests/common/messages.hpp"

using idattn::test::has;
using idattn::test::tensor;
using idattn::HostTensor;
using idattn::api::FeatureMap;
using idattn::api::Impl;
using idattn::api::LinearForm;

namespace {

const HostTensor kNoW{{0, 0}, "float64", {}};

std::string features_error(const HostTensor& x, FeatureMap map, const HostTensor& w) {
    return idattn::test::error_message([&] { idattn::api::feature_map(x, map, w, Impl::Ref); });
}

std::string linear_error(const HostTensor& q, const HostTensor& k, const HostTensor& v, FeatureMap map,
                         const HostTensor& w, std::size_t chunk = 16, bool causal = false) {
    return idattn::test::error_message(
        [&] { idattn::api::linear_attention(q, k, v, map, w, LinearForm::Chunked, causal, chunk, Impl::Ref); });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(bad_input)

BOOST_AUTO_TEST_CASE(zero_random_frequencies) {
    auto m = features_error(tensor({4, 8}), FeatureMap::Positive, tensor({0, 8}));
    BOOST_TEST(has(m, "W has shape (0, 8)"), m);
    BOOST_TEST(has(m, "R must be at least 1"), m);
    BOOST_CHECK_EXCEPTION(idattn::api::draw_feature_weights(FeatureMap::Rff, 0, 8, 1), idattn::Error,
                          [](const idattn::Error& e) { return has(e.what(), "R must be at least 1, got 0"); });
}

BOOST_AUTO_TEST_CASE(w_head_dimension_mismatch) {
    auto m = features_error(tensor({4, 8}), FeatureMap::Rff, tensor({5, 6}));
    BOOST_TEST(has(m, "W has shape (5, 6) but x has head dimension d = 8; expected W of shape (R, 8)"), m);
    m = linear_error(tensor({4, 8}), tensor({5, 8}), tensor({5, 8}), FeatureMap::Orthogonal, tensor({5, 7}));
    BOOST_TEST(has(m, "W has shape (5, 7)"), m);
}

BOOST_AUTO_TEST_CASE(w_of_the_wrong_rank_or_missing) {
    auto m = features_error(tensor({4, 8}), FeatureMap::Positive, tensor({5, 8, 1}));
    BOOST_TEST(has(m, "W must have rank 2, but has shape (5, 8, 1) (rank 3)"), m);
    m = features_error(tensor({4, 8}), FeatureMap::Positive, HostTensor{});
    BOOST_TEST(has(m, "needs a random draw W of shape (R, 8); none was given"), m);
    m = features_error(tensor({4, 8}), FeatureMap::Taylor, tensor({5, 8}));
    BOOST_TEST(has(m, "taylor map is deterministic and takes no W, but W has shape (5, 8)"), m);
    BOOST_TEST(features_error(tensor({4, 8}), FeatureMap::Taylor, kNoW).empty());
}

BOOST_AUTO_TEST_CASE(non_finite_inputs_are_located) {
    auto w = tensor({5, 8});
    w.data[1 * 8 + 2] = std::numeric_limits<double>::quiet_NaN();
    auto m = features_error(tensor({4, 8}), FeatureMap::Positive, w);
    BOOST_TEST(has(m, "W must be finite, but W(1, 2) = nan"), m);
    auto x = tensor({4, 8});
    x.data[3] = INFINITY;
    m = features_error(x, FeatureMap::Taylor, kNoW);
    BOOST_TEST(has(m, "x must be finite, but x(0, 3) = inf"), m);
    auto v = tensor({5, 8});
    v.data[9] = -INFINITY;
    m = linear_error(tensor({4, 8}), tensor({5, 8}), v, FeatureMap::Positive, tensor({3, 8}));
    BOOST_TEST(has(m, "v(1, 1) = -inf"), m);
}

BOOST_AUTO_TEST_CASE(chunk_zero_and_empty_inputs) {
    auto m = linear_error(tensor({4, 8}), tensor({5, 8}), tensor({5, 8}), FeatureMap::Positive, tensor({3, 8}), 0);
    BOOST_TEST(has(m, "chunk size must be at least 1, got 0"), m);
    m = features_error(tensor({0, 8}), FeatureMap::Positive, tensor({3, 8}));
    BOOST_TEST(has(m, "x has shape (0, 8) with axis 0 of length 0"), m);
    m = linear_error(tensor({4, 8}), tensor({0, 8}), tensor({0, 8}), FeatureMap::Positive, tensor({3, 8}));
    BOOST_TEST(has(m, "k has shape (0, 8) with axis 0 of length 0"), m);
}

BOOST_AUTO_TEST_CASE(linear_shapes_and_causality) {
    auto m = linear_error(tensor({4, 8}), tensor({5, 6}), tensor({5, 8}), FeatureMap::Positive, tensor({3, 8}));
    BOOST_TEST(has(m, "k has shape (5, 6)"), m);
    m = linear_error(tensor({6, 8}), tensor({5, 8}), tensor({5, 8}), FeatureMap::Positive, tensor({3, 8}), 16, true);
    BOOST_TEST(has(m, "Nq = 6"), m);
}

BOOST_AUTO_TEST_CASE(unknown_map_and_form_names) {
    BOOST_CHECK_EXCEPTION(idattn::api::parse_feature_map("fourier"), idattn::Error, [](const idattn::Error& e) {
        return has(e.what(), "'fourier'") && has(e.what(), "orthogonal");
    });
    BOOST_CHECK_EXCEPTION(idattn::api::parse_linear_form("scan"), idattn::Error, [](const idattn::Error& e) {
        return has(e.what(), "'scan'") && has(e.what(), "chunked");
    });
}

BOOST_AUTO_TEST_SUITE_END()
