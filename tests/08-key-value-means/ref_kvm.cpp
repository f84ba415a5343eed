// Chapter 8, the Key-Value Means reference: with a budget of at least N nothing is
// merged and KVM is exact causal softmax attention; chunked prefill equals
// token-by-token decoding at every position; the merge keeps its invariants; the
// budget schedules give the numbers of the reference configurations; ties are
// broken deterministically; bad options are named. Deterministic, float64.
// Labels refer to chapters/08-key-value-means.md.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>

#include <xtensor/xview.hpp>

#include "ref/01-softmax-attention/softmax_attention.hpp"
#include "ref/08-key-value-means/kvm.hpp"
#include "tests/common/messages.hpp"
#include "tests/common/testutil.hpp"

using namespace idattn::ref;
using idattn::test::error_message;
using idattn::test::has;
using idattn::test::tol_check;

namespace {

std::vector<double> gates(idattn::test::Rng& rng, std::size_t n) {
    std::vector<double> g(n);
    for (auto& e : g) e = rng.uniform(0.3, 2.0);  // 1 + ELU(.) > 0
    return g;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(kvm)

// With B >= N every overflow token is appended as its own row; with the state norm off
// and no RoPE channels a row reads back exactly its token, so KVM is causal softmax
// attention (chapter 1), for every chunk and window.     eq:8.window eq:8.readout eq:8.append eq:8.init eq:8.memkey
BOOST_AUTO_TEST_CASE(budget_at_least_n_is_exact_softmax) {
    IDATTN_SEEDED(rng);
    for (std::size_t N : {std::size_t{1}, std::size_t{7}, std::size_t{40}, std::size_t{97}}) {
        const KMat q = rng.normal<2>({N, 8}, 0.7), k = rng.normal<2>({N, 8}, 0.7), v = rng.normal<2>({N, 8});
        const KMat exact = softmax_attention<double>(q, k, v, true);
        for (std::size_t C : {std::size_t{2}, std::size_t{5}, std::size_t{8}})
            for (std::size_t W : {std::size_t{1}, std::size_t{2}}) {
                KvmOptions o;
                o.chunk = C;
                o.window_chunks = W;
                o.budget = {KvmBudgetKind::Fixed, N + 1};
                o.state_norm = false;
                IDATTN_CHECK_CMP(tol_check<2>("N = " + std::to_string(N) + ", C = " + std::to_string(C) + ", W = " +
                                                  std::to_string(W),
                                              exact, kvm_attention(q, k, v, {}, o), 1e-12));
            }
    }
}

// Chunked prefill equals token-by-token decoding at every position, for every budget,
// with the state norm, RoPE channels, gates, gated appends and temperatures.     eq:8.window eq:8.budget eq:8.merge
BOOST_AUTO_TEST_CASE(prefill_equals_decode_at_every_position) {
    IDATTN_SEEDED(rng);
    const std::size_t N = 131;
    const KMat q = rng.normal<2>({N, 8}), k = rng.normal<2>({N, 8}), v = rng.normal<2>({N, 6});
    const auto g = gates(rng, N);
    for (KvmBudget b : {KvmBudget{KvmBudgetKind::Fixed, 6}, KvmBudget{KvmBudgetKind::PowerLaw, 4, 1.5, 0.5},
                        KvmBudget{KvmBudgetKind::Saturate, 20}}) {
        KvmOptions o;
        o.chunk = 8;
        o.window_chunks = 2;
        o.sinks = 1;
        o.budget = b;
        o.rope_dims = 4;
        o.tau_state = 1.3;
        o.tau_window = 0.8;
        o.gate_appends = b.kind == KvmBudgetKind::PowerLaw;
        KvmState st;
        const KMat pre = kvm_attention(q, k, v, g, o, &st);
        IDATTN_CHECK_CMP(tol_check<2>("budget " + std::to_string(int(b.kind)), pre, kvm_decode(q, k, v, g, o), 1e-12));
        BOOST_TEST(st.keys.shape(0) <= std::max<std::size_t>(kvm_budget(b, N + o.chunk), o.chunk));
        BOOST_TEST(st.keys.shape(0) == st.radius.size());
    }
}

// One fold: appended rows are the least similar tokens, merged keys are the gated sums of
// their members, the radius never changes, sinks are never targets.     eq:8.append eq:8.merge eq:8.memkey
BOOST_AUTO_TEST_CASE(merge_invariants) {
    IDATTN_SEEDED(rng);
    const std::size_t C = 10;
    const KMat k = rng.normal<2>({3 * C, 6}), v = rng.normal<2>({3 * C, 4});
    const auto g = gates(rng, 3 * C);
    KvmOptions o;
    o.chunk = C;
    o.sinks = 2;
    o.budget = {KvmBudgetKind::Fixed, C + 3};
    KvmState s;
    kvm_fold(s, k, v, g, 2 * C, o);  // the initial state: C rows
    BOOST_TEST(s.keys.shape(0) == C);
    const KvmState before = s;
    const KvmFold f = kvm_fold(s, k, v, g, 3 * C, o);
    BOOST_TEST(f.appended.size() == 3u, "B = C + 3 rows: 3 appended");
    BOOST_TEST(s.keys.shape(0) == C + 3);
    for (std::size_t i = 0; i < C; ++i) BOOST_TEST(s.radius[i] == before.radius[i]);
    for (std::size_t i = 0; i < o.sinks; ++i)
        BOOST_TEST((xt::view(s.keys, i, xt::all()) == xt::view(before.keys, i, xt::all())), "sink " << i << " changed");
    // Every row: its key before (or its appended memory key) plus the gated memory keys merged into it.
    KMat expect = xt::zeros<double>(s.keys.shape());
    xt::view(expect, xt::range(0, C), xt::all()) = before.keys;
    for (std::size_t a = 0; a < f.appended.size(); ++a)
        xt::view(expect, C + a, xt::all()) = kvm_memory_key(o, xt::view(k, C + f.appended[a], xt::all()));
    for (std::size_t j = 0; j < C; ++j)
        if (f.target[j] != std::numeric_limits<std::size_t>::max()) {
            BOOST_TEST(f.target[j] >= o.sinks);
            xt::view(expect, f.target[j], xt::all()) += g[C + j] * kvm_memory_key(o, xt::view(k, C + j, xt::all()));
        }
    BOOST_TEST(xt::amax(xt::abs(expect - s.keys))() <= 1e-13);
    // The appended tokens are the 3 with the smallest max-similarity to the rows before.
    std::vector<double> score(C, -INFINITY);
    for (std::size_t j = 0; j < C; ++j)
        for (std::size_t i = 0; i < C; ++i) {
            const auto kb = kvm_memory_key(o, xt::view(k, C + j, xt::all()));
            const auto sk = kvm_memory_key(KvmOptions{}, xt::view(before.keys, i, xt::all()));  // LN_s of the row
            double d = 0;
            for (std::size_t c = 0; c < kb.size(); ++c) d += kb(c) * sk(c);
            score[j] = std::max(score[j], d);
        }
    for (std::size_t a : f.appended)
        for (std::size_t j = 0; j < C; ++j)
            if (f.target[j] != std::numeric_limits<std::size_t>::max()) BOOST_TEST(score[a] <= score[j]);
}

// The budget schedules of the reference configurations (C = 256).     eq:8.budget
BOOST_AUTO_TEST_CASE(budget_schedules) {
    const KvmBudget sqrt16{KvmBudgetKind::PowerLaw, 256, 16.0, 0.5}, sat{KvmBudgetKind::Saturate, 1024};
    const std::vector<std::pair<std::size_t, std::size_t>> pl{{768, 443}, {1024, 512}, {2048, 724}, {4096, 1024},
                                                              {8192, 1448}, {16384, 2048}, {32768, 2896}};
    for (const auto& [t, rows] : pl) BOOST_TEST(kvm_budget(sqrt16, t) == rows, "t = " << t);
    BOOST_TEST(kvm_budget(sqrt16, 100) == 256u);  // the floor of the power law
    BOOST_TEST(kvm_budget(sat, 4096) == 819u);
    BOOST_TEST(kvm_budget(sat, 8192) == 910u);
    BOOST_TEST(kvm_budget(sat, 32768) == 992u);
    BOOST_TEST(kvm_budget(KvmBudget{KvmBudgetKind::Fixed, 256}, 1u << 20) == 256u);
}

// Ties: equal tokens are appended in token order and merged into the lower row.     eq:8.append eq:8.merge
BOOST_AUTO_TEST_CASE(ties_are_broken_by_the_lower_index) {
    const std::size_t C = 4;
    KMat k = xt::zeros<double>({3 * C, std::size_t{3}});
    for (std::size_t j = 0; j < 3 * C; ++j) k(j, j % 3) = 1.0;  // every key is one of three unit vectors
    const KMat v = xt::ones<double>({3 * C, std::size_t{2}});
    KvmOptions o;
    o.chunk = C;
    o.sinks = 1;
    o.state_norm = false;
    o.budget = {KvmBudgetKind::Fixed, C + 1};
    KvmState s;
    kvm_fold(s, k, v, {}, 2 * C, o);  // rows: e0, e1, e2, e0
    const KvmFold f = kvm_fold(s, k, v, {}, 3 * C, o);  // block: e1, e2, e0, e1 - all scores 1, a tie
    BOOST_TEST((f.appended == std::vector<std::size_t>{0}), "the first of the tied tokens is appended");
    // e2 goes to row 2; e0 ties rows 0 (a sink, excluded) and 3 -> row 3; e1 ties rows 1 and 4 -> row 1
    BOOST_TEST(f.target[1] == 2u);
    BOOST_TEST(f.target[2] == 3u);
    BOOST_TEST(f.target[3] == 1u);
}

BOOST_AUTO_TEST_CASE(bad_options_and_inputs_are_named) {
    const KMat q = xt::ones<double>({6, 4}), v = xt::ones<double>({6, 2});
    auto err = [&](KvmOptions o, const KMat& k = xt::ones<double>({6, 4}), std::vector<double> g = {}) {
        return error_message([&] { kvm_attention(q, k, v, g, o); });
    };
    KvmOptions o;
    o.chunk = 0;
    BOOST_TEST(has(err(o), "chunk length C must be >= 1"));
    o = {};
    o.chunk = 4;
    o.window_chunks = 0;
    BOOST_TEST(has(err(o), "window must hold at least one chunk"));
    o = {};
    o.chunk = std::size_t{1} << 40;
    o.window_chunks = std::size_t{1} << 40;
    BOOST_TEST(has(err(o), "W C overflows"));
    o = {};
    o.chunk = 2;
    o.sinks = 2;
    BOOST_TEST(has(err(o), "sinks = 2 but the initial state has C = 2 rows"));
    o = {};
    o.chunk = 4;
    o.budget = {KvmBudgetKind::Fixed, 0};
    BOOST_TEST(has(err(o), "budget's rows must be >= 1"));
    o = {};
    o.chunk = 4;
    o.rope_dims = 5;
    BOOST_TEST(has(err(o), "rope_dims = 5 exceeds the key width 4"));
    o = {};
    o.chunk = 4;
    BOOST_TEST(has(err(o, xt::ones<double>({5, 4})), "k has shape (5, 4) but q has shape (6, 4)"));
    BOOST_TEST(has(err(o, xt::ones<double>({6, 4}), {1, 1, 1, 0, 1, 1}), "merge gate g(3) = 0"));
    KMat kn = xt::ones<double>({6, 4});
    kn(2, 1) = NAN;
    BOOST_TEST(has(err(o, kn), "k"));
    BOOST_TEST(has(err(o, kn), "nan"));
}

BOOST_AUTO_TEST_SUITE_END()
