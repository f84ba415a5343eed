// Chapter 1, fast tests: the CUDA kernel against the float64 reference with
// the project's rule err(fast) <= 2 err(naive32) + floor, on the ragged sizes
// of the specification. Output buffers are NaN-poisoned by the host wrapper,
// so an unwritten element shows as non-finite and fails the rule.
// Runs only with a CUDA device (else the whole executable reports Skipped).
#include <boost/test/unit_test.hpp>

#include <sstream>

#include "fast/01-softmax-attention/softmax_attention.hpp"
#include "ref/01-softmax-attention/softmax_attention.hpp"
#include "core/error.hpp"
#include "tests/common/testutil.hpp"

using idattn::test::to_f32;
using idattn::test::to_f64;

namespace {

// Runs reference (float64 on the float32-rounded inputs), naive32 and fast,
// and checks the rule.
void check_rule(idattn::test::Rng& rng, std::size_t b, std::size_t h, std::size_t nq, std::size_t n, std::size_t d,
                bool causal, double scale) {
    const auto q32 = to_f32(rng.normal<4>({b, h, nq, d}, scale));
    const auto k32 = to_f32(rng.normal<4>({b, h, n, d}, scale));
    const auto v32 = to_f32(rng.normal<4>({b, h, n, d}));
    const auto ref = idattn::ref::softmax_attention<double>(to_f64(q32), to_f64(k32), to_f64(v32), causal);
    const auto naive = to_f64(idattn::ref::softmax_attention<float>(q32, k32, v32, causal));
    const auto fast = to_f64(idattn::fast::softmax_attention(q32, k32, v32, causal));
    std::ostringstream label;
    label << "B=" << b << " H=" << h << " Nq=" << nq << " N=" << n << " d=" << d << " causal=" << causal
          << " scale=" << scale;
    IDATTN_CHECK_CMP(idattn::test::rule_check(label.str(), ref, fast, naive));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(eq_1_1)

// eq:1.1 eq:1.2 eq:P1: fast = reference on every ragged N and d, causal and not.
BOOST_AUTO_TEST_CASE(fast_equals_reference_ragged_sizes) {
    IDATTN_SEEDED(rng);
    for (std::size_t n : idattn::test::kRaggedN)
        for (std::size_t d : idattn::test::kRaggedD)
            for (bool causal : {false, true}) check_rule(rng, 1, 2, n, n, d, causal, 1.0);
}

// eq:1.1 eq:1.causal: batched heads, Nq < N (bottom-right causal alignment), small d.
BOOST_AUTO_TEST_CASE(fast_equals_reference_batched_and_rectangular) {
    IDATTN_SEEDED(rng);
    check_rule(rng, 2, 3, 65, 97, 64, false, 1.0);
    check_rule(rng, 2, 3, 65, 97, 64, true, 1.0);
    check_rule(rng, 1, 4, 1, 1025, 100, true, 1.0);  // one decoding query
    check_rule(rng, 3, 1, 130, 257, 1, true, 1.0);   // d = 1
    check_rule(rng, 1, 1, 100, 50, 128, false, 1.0); // Nq > N non-causal, largest d
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(eq_1_3)

// eq:1.3: huge logits (|q.k|/sqrt(d) ~ 1e3) stay finite and within the rule.
BOOST_AUTO_TEST_CASE(fast_huge_logits_stay_finite) {
    IDATTN_SEEDED(rng);
    for (bool causal : {false, true}) check_rule(rng, 1, 2, 97, 97, 64, causal, 16.0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bad_input_fast)

BOOST_AUTO_TEST_CASE(head_dimension_above_kernel_limit_is_an_error) {
    xt::xtensor<float, 4> q = xt::ones<float>({1, 1, 4, 129});
    BOOST_CHECK_THROW(idattn::fast::softmax_attention(q, q, q, false), idattn::Error);
}

BOOST_AUTO_TEST_SUITE_END()
