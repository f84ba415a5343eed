// Chapter 1, bad input through the api layer (what the CLI and Python see):
// every error names the tensor, the expected and the actual shape or value.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>

#include "api/01-softmax-attention/softmax_attention_api.hpp"
#include "core/error.hpp"
#include "tests/common/messages.hpp"

using idattn::test::has;
using idattn::test::tensor;
using idattn::HostTensor;
using idattn::api::Impl;

namespace {

// Runs the api call and returns the error message ("" if none).
std::string error_of(const HostTensor& q, const HostTensor& k, const HostTensor& v, bool causal = false) {
    return idattn::test::error_message([&] { idattn::api::softmax_attention(q, k, v, causal, Impl::Ref); });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(bad_input)

BOOST_AUTO_TEST_CASE(mismatched_head_dimension) {
    const auto m = error_of(tensor({4, 8}), tensor({5, 6}), tensor({5, 8}));
    BOOST_TEST(has(m, "k has shape (5, 6)"), m);
    BOOST_TEST(has(m, "d = 8"), m);
}

BOOST_AUTO_TEST_CASE(values_do_not_match_keys) {
    const auto m = error_of(tensor({4, 8}), tensor({5, 8}), tensor({6, 8}));
    BOOST_TEST(has(m, "v has shape (6, 8)"), m);
    BOOST_TEST(has(m, "expected (..., 5, 8)"), m);
}

BOOST_AUTO_TEST_CASE(wrong_and_mixed_ranks) {
    auto m = error_of(tensor({2, 4, 8}), tensor({2, 5, 8}), tensor({2, 5, 8}));
    BOOST_TEST(has(m, "q must have rank 2 or 4, but has shape (2, 4, 8) (rank 3)"), m);
    m = error_of(tensor({1, 1, 4, 8}), tensor({5, 8}), tensor({5, 8}));
    BOOST_TEST(has(m, "same rank"), m);
    m = error_of(tensor({2, 3, 4, 8}), tensor({2, 2, 5, 8}), tensor({2, 2, 5, 8}));
    BOOST_TEST(has(m, "(B, H) axes"), m);
}

BOOST_AUTO_TEST_CASE(empty_sequences_and_zero_d) {
    auto m = error_of(tensor({0, 8}), tensor({5, 8}), tensor({5, 8}));
    BOOST_TEST(has(m, "q has shape (0, 8) with axis 0 of length 0"), m);
    m = error_of(tensor({4, 0}), tensor({5, 0}), tensor({5, 0}));
    BOOST_TEST(has(m, "axis 1 of length 0"), m);
}

BOOST_AUTO_TEST_CASE(non_finite_values_are_located) {
    auto k = tensor({5, 8});
    k.data[2 * 8 + 3] = std::numeric_limits<double>::quiet_NaN();
    auto m = error_of(tensor({4, 8}), k, tensor({5, 8}));
    BOOST_TEST(has(m, "k must be finite, but k(2, 3) = nan"), m);
    auto v = tensor({5, 8});
    v.data[0] = INFINITY;
    m = error_of(tensor({4, 8}), tensor({5, 8}), v);
    BOOST_TEST(has(m, "v(0, 0) = inf"), m);
}

BOOST_AUTO_TEST_CASE(causal_needs_no_more_queries_than_keys) {
    const auto m = error_of(tensor({6, 8}), tensor({5, 8}), tensor({5, 8}), true);
    BOOST_TEST(has(m, "Nq = 6"), m);
    BOOST_TEST(has(m, "N = 5"), m);
    BOOST_TEST(error_of(tensor({6, 8}), tensor({5, 8}), tensor({5, 8}), false).empty());
}

BOOST_AUTO_TEST_CASE(sizes_that_cannot_fit_in_memory) {
    HostTensor q;
    q.shape = {std::size_t{1} << 20, std::size_t{1} << 20, 64, 64};  // data left empty: must fail on the size
    const auto m = error_of(q, tensor({5, 8}), tensor({5, 8}));
    BOOST_TEST(has(m, "cannot fit in memory"), m);
}

BOOST_AUTO_TEST_CASE(unknown_backend_name) {
    BOOST_CHECK_EXCEPTION(idattn::api::parse_impl("gpu"), idattn::Error, [](const idattn::Error& e) {
        return has(e.what(), "'gpu'") && has(e.what(), "naive32");
    });
}

BOOST_AUTO_TEST_SUITE_END()
