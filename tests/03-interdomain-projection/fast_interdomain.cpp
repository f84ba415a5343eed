// Chapter 3, fast tests: the CUDA projection + fused readout (non-causal) and
// the causal effective-weights kernel against the float64 reference, with the
// project's rule err(fast) <= 2 err(naive32) + floor, naive32 being the
// reference templates instantiated for float. Inputs are positive random
// features (Chapter 2, FAVOR+) of Gaussian queries and keys, rounded to
// float32 once, so that every implementation sees the same numbers and the
// denominators stay positive. Output buffers are NaN-poisoned by the host
// wrappers, so an unwritten element fails the rule. Ragged N, d, R and M.
// Runs only with a CUDA device (else the whole executable reports Skipped).
#include <boost/test/unit_test.hpp>

#include <sstream>

#include <xtensor/xview.hpp>

#include "fast/03-interdomain-projection/interdomain.hpp"
#include "ref/02-kernel-feature-map/feature_map.hpp"
#include "ref/03-interdomain-projection/bases.hpp"
#include "ref/03-interdomain-projection/interdomain.hpp"
#include "core/error.hpp"
#include "tests/common/testutil.hpp"

using idattn::ref::Basis;
using idattn::test::to_f32;
using idattn::test::to_f64;

namespace {

// Dimension of the query/key vectors the features are drawn from.
constexpr std::size_t kKeyDim = 16;

struct Inputs {
    xt::xtensor<float, 4> fq, fk, v;  // (B, H, Nq, R), (B, H, N, R), (B, H, N, d)
};

// Positive random features xi(x) = exp(w.x - |x|^2/2) / sqrt(R) of q, k ~ N(0, I/4)
// (one draw W per test case, shared by the heads), and v ~ N(0, I).
Inputs draw(idattn::test::Rng& rng, std::size_t b, std::size_t h, std::size_t nq, std::size_t n, std::size_t r,
            std::size_t d) {
    using idattn::ref::FeatureMap;
    const auto w = idattn::ref::draw_for(FeatureMap::Positive, r, kKeyDim, rng.engine()());
    const auto xq = rng.normal<4>({b, h, nq, kKeyDim}, 0.5);
    const auto xk = rng.normal<4>({b, h, n, kKeyDim}, 0.5);
    Inputs in{xt::xtensor<float, 4>::from_shape({b, h, nq, r}), xt::xtensor<float, 4>::from_shape({b, h, n, r}),
              to_f32(rng.normal<4>({b, h, n, d}))};
    for (std::size_t i = 0; i < b; ++i)
        for (std::size_t j = 0; j < h; ++j) {
            const xt::xtensor<double, 2> q = xt::view(xq, i, j), k = xt::view(xk, i, j);
            xt::view(in.fq, i, j) = xt::cast<float>(idattn::ref::feature_map<double>(FeatureMap::Positive, q, w));
            xt::view(in.fk, i, j) = xt::cast<float>(idattn::ref::feature_map<double>(FeatureMap::Positive, k, w));
        }
    return in;
}

// The reference (float64 on the float32 inputs) and naive32, head by head.
struct Baselines {
    xt::xtensor<double, 4> ref, naive;
};
Baselines baselines(Basis basis, std::size_t m, const Inputs& in, bool causal) {
    const std::size_t b = in.fq.shape(0), h = in.fq.shape(1), nq = in.fq.shape(2), d = in.v.shape(3);
    Baselines out{xt::zeros<double>({b, h, nq, d}), xt::zeros<double>({b, h, nq, d})};
    for (std::size_t i = 0; i < b; ++i)
        for (std::size_t j = 0; j < h; ++j) {
            const xt::xtensor<float, 2> q = xt::view(in.fq, i, j), k = xt::view(in.fk, i, j), v = xt::view(in.v, i, j);
            xt::view(out.ref, i, j) =
                idattn::ref::interdomain_attention<double>(basis, m, to_f64(q), to_f64(k), to_f64(v), causal);
            xt::view(out.naive, i, j) = to_f64(idattn::ref::interdomain_attention<float>(basis, m, q, k, v, causal));
        }
    return out;
}

void check_rule(idattn::test::Rng& rng, Basis basis, std::size_t m, std::size_t b, std::size_t h, std::size_t nq,
                std::size_t n, std::size_t r, std::size_t d, bool causal) {
    const Inputs in = draw(rng, b, h, nq, n, r, d);
    const Baselines base = baselines(basis, m, in, causal);
    xt::xtensor<double, 4> fast;
    if (causal) {
        fast = to_f64(idattn::fast::interdomain_attention_causal(basis, m, in.fq, in.fk, in.v));
    } else {
        // The basis the kernel is handed: exact, rounded once to float32.
        const auto phi = to_f32(idattn::ref::basis_matrix<double>(basis, m, n));
        fast = to_f64(idattn::fast::interdomain_attention(phi, in.fq, in.fk, in.v));
    }
    std::ostringstream label;
    label << idattn::ref::basis_name(basis) << " M=" << m << " B=" << b << " H=" << h << " Nq=" << nq << " N=" << n
          << " R=" << r << " d=" << d << " causal=" << causal;
    IDATTN_CHECK_CMP(idattn::test::rule_check(label.str(), base.ref, fast, base.naive));
}

// M in {1, 7, 32, N (discrete bases)}; LegS also takes M > N.
std::vector<std::size_t> sizes_m(Basis basis, std::size_t n) {
    std::vector<std::size_t> ms;
    for (std::size_t m : {std::size_t{1}, std::size_t{7}, std::size_t{32}})
        if (!idattn::ref::is_discrete(basis) || m <= n) ms.push_back(m);
    if (idattn::ref::is_discrete(basis) && n > 32) ms.push_back(n);
    return ms;
}

const std::vector<std::size_t> kFeatureDims{16, 64};

}  // namespace

BOOST_AUTO_TEST_SUITE(eq_P9_fast)

// eq:P6 eq:P8 eq:P9 eq:3.eta: projection (cuBLAS, eta by a row sum) + fused readout
// = reference, every real basis, ragged N, d and R, M in {1, 7, 32, N}.
BOOST_AUTO_TEST_CASE(fast_noncausal_equals_reference_ragged_sizes) {
    IDATTN_SEEDED(rng);
    std::size_t k = 0;
    for (std::size_t n : idattn::test::kRaggedN)
        for (Basis basis : {Basis::LegS, Basis::Gram, Basis::Dct})
            for (std::size_t m : sizes_m(basis, n)) {
                // Every d and R appears with every N; the pairs rotate.
                const std::size_t d = idattn::test::kRaggedD[k % 3], r = kFeatureDims[(k / 3) % 2];
                ++k;
                check_rule(rng, basis, m, 1, 2, n, n, r, d, false);
            }
}

// eq:P9: batched heads (B = 2, H = 3), Nq < N and Nq > N, the largest R and d,
// M > N for LegS.
BOOST_AUTO_TEST_CASE(fast_noncausal_batched_and_rectangular) {
    IDATTN_SEEDED(rng);
    for (Basis basis : {Basis::LegS, Basis::Gram, Basis::Dct}) check_rule(rng, basis, 32, 2, 3, 65, 97, 64, 100, false);
    check_rule(rng, Basis::Dct, 50, 1, 2, 100, 50, 128, 128, false);  // Nq > N, R = d = 128
    check_rule(rng, Basis::LegS, 200, 1, 2, 70, 130, 37, 3, false);  // M > N, R % 4 != 0, tiny d
}

// eq:P9 eq:3.4 eq:3.causal eq:3.legs eq:3.1 eq:3.dct: causal kernel (effective weights,
// prefix bases generated on the device) = reference, LegS and Dct, ragged N, d, R, M.
BOOST_AUTO_TEST_CASE(fast_causal_equals_reference_ragged_sizes) {
    IDATTN_SEEDED(rng);
    std::size_t k = 0;
    for (std::size_t n : idattn::test::kRaggedN)
        for (Basis basis : {Basis::LegS, Basis::Dct})
            for (std::size_t m : sizes_m(basis, n)) {
                if (m == n && n > 97) continue;  // the reference's causal cost is O(N^2 M (R + d)): keep it short
                const std::size_t d = idattn::test::kRaggedD[k % 3], r = kFeatureDims[(k / 3) % 2];
                ++k;
                check_rule(rng, basis, m, 1, 1, n, n, r, d, true);
            }
}

// eq:P9 eq:3.4 eq:3.causal: causal with batched heads (B = 2, H = 3) and Nq < N (bottom-right
// alignment), one decoding query on a long prefix, LegS with M > N.
BOOST_AUTO_TEST_CASE(fast_causal_batched_and_rectangular) {
    IDATTN_SEEDED(rng);
    for (Basis basis : {Basis::LegS, Basis::Dct}) check_rule(rng, basis, 32, 2, 3, 65, 97, 64, 100, true);
    for (Basis basis : {Basis::LegS, Basis::Dct}) check_rule(rng, basis, 300, 1, 1, 1, 1025, 16, 59, true);
    check_rule(rng, Basis::LegS, 80, 1, 2, 40, 60, 128, 128, true);  // M > N, largest R and d
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bad_input_fast)

namespace {
xt::xtensor<float, 4> ones4(std::size_t b, std::size_t h, std::size_t n, std::size_t c) {
    return xt::ones<float>({b, h, n, c});
}
}  // namespace

// Mismatched shapes name the tensor and both shapes.
BOOST_AUTO_TEST_CASE(mismatched_shapes_are_errors) {
    const auto fq = ones4(1, 2, 8, 16), fk = ones4(1, 2, 10, 16), v = ones4(1, 2, 10, 5);
    const xt::xtensor<float, 2> phi = xt::ones<float>({4, 10});
    BOOST_CHECK_THROW(idattn::fast::interdomain_attention(phi, fq, ones4(1, 2, 10, 15), v), idattn::Error);  // R
    BOOST_CHECK_THROW(idattn::fast::interdomain_attention(phi, fq, fk, ones4(1, 2, 9, 5)), idattn::Error);   // N of v
    BOOST_CHECK_THROW(idattn::fast::interdomain_attention(phi, fq, ones4(2, 2, 10, 16), v), idattn::Error);  // B
    BOOST_CHECK_THROW(idattn::fast::interdomain_attention(xt::ones<float>({4, 9}), fq, fk, v), idattn::Error);  // phi N
    BOOST_CHECK_THROW(idattn::fast::interdomain_attention_causal(Basis::LegS, 4, ones4(1, 2, 11, 16), fk, v),
                      idattn::Error);  // causal Nq > N
    BOOST_CHECK_THROW(idattn::fast::interdomain_attention(phi, ones4(1, 2, 8, 129), ones4(1, 2, 10, 129), v),
                      idattn::Error);  // R above the kernel limit
    try {
        idattn::fast::interdomain_attention(phi, fq, fk, ones4(1, 2, 9, 5));
        BOOST_ERROR("no error for v of the wrong length");
    } catch (const idattn::Error& e) {
        const std::string msg = e.what();
        BOOST_TEST(msg.find("v has shape (1, 2, 9, 5)") != std::string::npos, msg);
    }
}

// M = 0 and M > N (discrete) are errors; so are the causal bases without a
// closed-form device generator (Gram, Fourier), named in the message.
BOOST_AUTO_TEST_CASE(bad_basis_size_and_causal_basis_are_errors) {
    const auto fq = ones4(1, 1, 8, 16), fk = ones4(1, 1, 10, 16), v = ones4(1, 1, 10, 5);
    BOOST_CHECK_THROW(idattn::fast::interdomain_attention(xt::xtensor<float, 2>::from_shape({0, 10}), fq, fk, v),
                      idattn::Error);
    BOOST_CHECK_THROW(idattn::fast::interdomain_attention_causal(Basis::LegS, 0, fq, fk, v), idattn::Error);
    BOOST_CHECK_THROW(idattn::fast::interdomain_attention_causal(Basis::Dct, 11, fq, fk, v), idattn::Error);
    BOOST_CHECK_THROW(
        idattn::fast::interdomain_attention_causal(Basis::LegS, idattn::fast::kInterdomainCausalMaxM + 1, fq, fk, v),
        idattn::Error);
    for (Basis basis : {Basis::Gram, Basis::Fourier}) {
        try {
            idattn::fast::interdomain_attention_causal(basis, 4, fq, fk, v);
            BOOST_ERROR("no error for a causal " << idattn::ref::basis_name(basis) << " basis");
        } catch (const idattn::Error& e) {
            const std::string msg = e.what();
            BOOST_TEST(msg.find(idattn::ref::basis_name(basis)) != std::string::npos, msg);
        }
    }
}

// The device entry points check their sizes and pointers before launching.
BOOST_AUTO_TEST_CASE(device_entry_points_reject_bad_sizes) {
    BOOST_CHECK_THROW(
        idattn::fast::interdomain_readout_device(nullptr, nullptr, nullptr, nullptr, nullptr, 1, 4, 4, 4, 4),
        idattn::Error);
    float* dummy = reinterpret_cast<float*>(16);  // never dereferenced: the size check comes first
    BOOST_CHECK_THROW(idattn::fast::interdomain_readout_device(dummy, dummy, dummy, dummy, dummy, 1, 4, 0, 4, 4),
                      idattn::Error);  // M = 0
    BOOST_CHECK_THROW(
        idattn::fast::interdomain_causal_device(Basis::Gram, 4, dummy, dummy, dummy, dummy, 1, 4, 4, 4, 4),
        idattn::Error);
}

BOOST_AUTO_TEST_SUITE_END()
