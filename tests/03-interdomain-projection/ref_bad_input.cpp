// Chapter 3, bad input, in the reference and through the api layer (what the
// CLI and Python see): every error names the tensor or parameter, and the
// expected and actual shape or value.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>

#include "api/03-interdomain-projection/interdomain_api.hpp"
#include "api/common/names.hpp"
#include "ref/03-interdomain-projection/bases.hpp"
#include "ref/03-interdomain-projection/interdomain.hpp"
#include "tests/common/messages.hpp"

using idattn::HostTensor;
using idattn::api::Impl;
using idattn::ref::Basis;
using idattn::test::error_message;
using idattn::test::has;
using idattn::test::tensor;
using Mat = xt::xtensor<double, 2>;

namespace {

Mat ones(std::size_t r, std::size_t c) { return xt::ones<double>({r, c}); }

std::string ref_error(Basis b, std::size_t M, const Mat& fq, const Mat& fk, const Mat& v, bool causal) {
    return error_message([&] { idattn::ref::interdomain_attention<double>(b, M, fq, fk, v, causal); });
}

std::string api_error(const HostTensor& fq, const HostTensor& fk, const HostTensor& v, Basis b, std::size_t M,
                      bool causal = false) {
    return error_message([&] { idattn::api::interdomain_attention_features(fq, fk, v, b, M, causal, Impl::Ref); });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(bad_input)

BOOST_AUTO_TEST_CASE(zero_basis_functions) {
    for (Basis b : {Basis::LegS, Basis::Gram, Basis::Dct}) {
        auto m = ref_error(b, 0, ones(3, 4), ones(5, 4), ones(5, 2), false);
        BOOST_TEST(has(m, "M must be at least 1, got M = 0"), m);
    }
    BOOST_CHECK_EXCEPTION(idattn::ref::basis_matrix<double>(Basis::Dct, 0, 4), idattn::Error,
                          [](const idattn::Error& e) { return has(e.what(), "got M = 0"); });
    auto m = api_error(tensor({3, 4}), tensor({5, 4}), tensor({5, 2}), Basis::Fourier, 0);
    BOOST_TEST(has(m, "M must be at least 1"), m);
}

BOOST_AUTO_TEST_CASE(too_many_functions_for_a_discrete_basis) {
    for (Basis b : {Basis::Gram, Basis::Dct}) {
        auto m = ref_error(b, 70, ones(3, 4), ones(64, 4), ones(64, 2), false);
        BOOST_TEST(has(m, "M = 70 functions cannot be orthonormal on N = 64 points"), m);
        BOOST_TEST(has(m, idattn::ref::basis_name(b)), m);
    }
    auto m = error_message([] { idattn::ref::fourier_basis_matrix<double>(9, 8); });
    BOOST_TEST(has(m, "M = 9 functions cannot be orthonormal on N = 8 points"), m);
    // LegS is a basis of functions on [0, N]: any M >= 1 is fine.
    BOOST_TEST(ref_error(Basis::LegS, 70, ones(3, 4), ones(64, 4), ones(64, 2), false).empty());
}

BOOST_AUTO_TEST_CASE(mismatched_shapes) {
    auto m = ref_error(Basis::LegS, 4, ones(3, 4), ones(5, 6), ones(5, 2), false);
    BOOST_TEST(has(m, "key features have shape (5, 6) but query features have 4 features per row"), m);
    m = ref_error(Basis::Gram, 4, ones(3, 4), ones(5, 4), ones(6, 2), false);
    BOOST_TEST(has(m, "v has shape (6, 2) but there are N = 5 keys"), m);
    m = error_message([] { idattn::ref::project<double>(ones(3, 7), ones(5, 4), ones(5, 2)); });
    BOOST_TEST(has(m, "Phi has shape (3, 7) but there are N = 5 key features"), m);
    m = api_error(tensor({1, 2, 3, 4}), tensor({1, 3, 5, 4}), tensor({1, 3, 5, 2}), Basis::Dct, 2);
    BOOST_TEST(has(m, "must share the (B, H) axes"), m);
    m = api_error(tensor({3, 4}), tensor({1, 1, 5, 4}), tensor({5, 2}), Basis::Dct, 2);
    BOOST_TEST(has(m, "must have the same rank"), m);
    m = api_error(tensor({3, 4}), tensor({0, 4}), tensor({0, 2}), Basis::Dct, 2);
    BOOST_TEST(has(m, "key features has shape (0, 4) with axis 0 of length 0"), m);
}

BOOST_AUTO_TEST_CASE(non_finite_values_are_located) {
    Mat fk = ones(5, 4);
    fk(2, 1) = std::numeric_limits<double>::quiet_NaN();
    auto m = ref_error(Basis::LegS, 3, ones(3, 4), fk, ones(5, 2), false);
    BOOST_TEST(has(m, "key features must be finite, but key features(2, 1) = nan"), m);
    Mat fq = ones(3, 4);
    fq(0, 3) = INFINITY;
    m = ref_error(Basis::Dct, 3, fq, ones(5, 4), ones(5, 2), true);
    BOOST_TEST(has(m, "query features(0, 3) = inf"), m);
    auto v = tensor({5, 2});
    v.data[3] = -INFINITY;
    m = api_error(tensor({3, 4}), tensor({5, 4}), v, Basis::Gram, 3);
    BOOST_TEST(has(m, "v must be finite, but v(1, 1) = -inf"), m);
    auto q = tensor({3, 4});
    q.data[0] = std::numeric_limits<double>::quiet_NaN();
    m = error_message([&] {
        idattn::api::interdomain_attention(q, tensor({5, 4}), tensor({5, 4}), idattn::ref::FeatureMap::Positive,
                                           tensor({6, 4}), Basis::LegS, 3, false, Impl::Ref);
    });
    BOOST_TEST(has(m, "q must be finite, but q(0, 0) = nan"), m);
}

BOOST_AUTO_TEST_CASE(causal_needs_nq_at_most_n) {
    auto m = ref_error(Basis::LegS, 3, ones(6, 4), ones(5, 4), ones(5, 2), true);
    BOOST_TEST(has(m, "causal attention needs Nq <= N"), m);
    BOOST_TEST(has(m, "Nq = 6 and N = 5"), m);
    m = error_message([] { idattn::ref::effective_weights<double>(Basis::Gram, 3, ones(6, 4), ones(5, 4), true); });
    BOOST_TEST(has(m, "Nq = 6 and N = 5"), m);
}

BOOST_AUTO_TEST_CASE(fourier_needs_the_hermitian_readout_and_is_not_causal) {
    auto m = ref_error(Basis::Fourier, 3, ones(3, 4), ones(5, 4), ones(5, 2), false);
    BOOST_TEST(has(m, "fourier basis is complex; use the Hermitian readout"), m);
    m = error_message([] { idattn::ref::basis_matrix<double>(Basis::Fourier, 3, 5); });
    BOOST_TEST(has(m, "use fourier_basis_matrix"), m);
    m = api_error(tensor({3, 4}), tensor({5, 4}), tensor({5, 2}), Basis::Fourier, 3, true);
    BOOST_TEST(has(m, "fourier basis has no causal form"), m);
    // Through the api the complex rows are an output like any other: (M, N, 2), real and imaginary part.
    const auto phi = idattn::api::basis_matrix(Basis::Fourier, 3, 5);
    BOOST_TEST((phi.shape == std::vector<std::size_t>{3, 5, 2}));
    BOOST_TEST(api_error(tensor({3, 4}), tensor({5, 4}), tensor({5, 2}), Basis::Fourier, 5).empty());
}

BOOST_AUTO_TEST_CASE(legs_eval_window_and_names) {
    auto m = error_message([] { idattn::ref::legs_eval(3, 2.0, xt::xtensor<double, 1>({0.5, 2.5})); });
    BOOST_TEST((has(m, "s(1) = 2.5") && has(m, "outside the window [0, t]")), m);
    m = error_message([] { idattn::ref::legs_eval(3, 0.0, xt::xtensor<double, 1>({0.0})); });
    BOOST_TEST(has(m, "window length t must be positive"), m);
    BOOST_CHECK_EXCEPTION(idattn::api::parse_basis("hippo"), idattn::Error, [](const idattn::Error& e) {
        return has(e.what(), "'hippo'") && has(e.what(), "legs") && has(e.what(), "dct");
    });
}

BOOST_AUTO_TEST_SUITE_END()
