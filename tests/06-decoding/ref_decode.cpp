// Chapter 6, the decoding reference: token-by-token decode and chunked prefill
// equal chapter 5's parallel forward at every position for every variant; the
// folded step equals the explicit one; the state of the SSM variants does not
// grow while the softmax cache does; a state that does not belong to the layer is
// refused by name. Deterministic, float64. Labels refer to chapters/06-decoding.md.
#include <boost/test/unit_test.hpp>

#include <xtensor/xview.hpp>

#include "api/common/names.hpp"
#include "ref/06-decoding/decode.hpp"
#include "tests/05-learned-layer/layer_testing.hpp"
#include "tests/common/messages.hpp"

using namespace idattn::ref;
using idattn::api::parse_layer_variant;
using idattn::test::error_message;
using idattn::test::has;
using idattn::test::LayerSizes;
using idattn::test::tol_check;

namespace {

xt::xtensor<double, 2> first(const xt::xtensor<double, 3>& x) { return xt::view(x, 0); }

}  // namespace

BOOST_AUTO_TEST_SUITE(decode)

// Prefill of a prompt, then token-by-token decode, equals the parallel forward at every
// position, for every variant (gate on, RoPE where the variant has it).     eq:6.step eq:6.state eq:6.cache
BOOST_AUTO_TEST_CASE(decode_equals_the_parallel_forward_at_every_position) {
    IDATTN_SEEDED(rng);
    const LayerSizes s;
    const std::size_t N = 23, prompt = 6;
    for (const auto& name : layer_variant_names()) {
        const LayerVariant v = parse_layer_variant(name);
        const LayerParams p = idattn::test::random_layer_params(rng, v, s, true);
        const auto x = idattn::test::random_x(rng, 1, N, s.D);
        const LayerOptions opt = idattn::test::options_for(v);
        const xt::xtensor<double, 2> whole = first(layer_forward(v, p, x, opt));
        const DecodeLayer dl = prepare_decode(v, p, opt);
        DecodeState st = decode_start(dl);
        xt::xtensor<double, 2> y = xt::zeros<double>({N, s.D});
        xt::view(y, xt::range(0, prompt), xt::all()) =
            prefill(dl, st, xt::view(first(x), xt::range(0, prompt), xt::all()), 4);
        for (std::size_t t = prompt; t < N; ++t)
            xt::view(y, t) = decode_step(dl, st, xt::xtensor<double, 1>(xt::view(x, 0, t)));
        IDATTN_CHECK_CMP(tol_check<2>(name + ": prefill 6 + decode 17 vs the parallel forward", whole, y, 1e-12));
        BOOST_TEST(st.position == N);
    }
}

// Chunked prefill with every chunk length (1, not dividing N, N, beyond N) equals the
// unchunked forward, and so does the folded readout.     eq:6.prefill eq:6.cost eq:5.fold
BOOST_AUTO_TEST_CASE(chunked_prefill_equals_unchunked_for_every_chunk) {
    IDATTN_SEEDED(rng);
    const LayerSizes s;
    const std::size_t N = 17;
    for (LayerVariant v : {LayerVariant::Full, LayerVariant::S4d, LayerVariant::Softmax}) {
        const LayerParams p = idattn::test::random_layer_params(rng, v, s, false);
        const auto x = idattn::test::random_x(rng, 1, N, s.D);
        LayerOptions opt = idattn::test::options_for(v);
        const xt::xtensor<double, 2> whole = first(layer_forward(v, p, x, opt));
        for (std::size_t K : {std::size_t{1}, std::size_t{3}, std::size_t{5}, N, N + 4}) {
            for (LayerForm form : {LayerForm::Recurrence, LayerForm::Folded}) {
                opt.form = form;
                const DecodeLayer dl = prepare_decode(v, p, opt);
                DecodeState st = decode_start(dl);
                const xt::xtensor<double, 2> y = prefill(dl, st, first(x), K);
                IDATTN_CHECK_CMP(tol_check<2>(layer_variant_name(v) + ", K = " + std::to_string(K) + ", " +
                                                  layer_form_name(form), whole, y, 1e-12));
            }
        }
    }
}

// The SSM state has the same size after 1 and after 10,000 tokens; the softmax cache grows
// by (R + d) H floats per token.     eq:6.state eq:6.cache
BOOST_AUTO_TEST_CASE(the_state_does_not_grow_the_cache_does) {
    IDATTN_SEEDED(rng);
    const LayerSizes s;
    const LayerParams p = idattn::test::random_layer_params(rng, LayerVariant::Full, s, false);
    const LayerOptions opt = idattn::test::options_for(LayerVariant::Full);
    const DecodeLayer dl = prepare_decode(LayerVariant::Full, p, opt);
    DecodeState st = decode_start(dl);
    const auto x = idattn::test::random_x(rng, 1, 10000, s.D);
    prefill(dl, st, xt::view(first(x), xt::range(0, 1), xt::all()), 1);
    const std::size_t after_one = state_floats(st);
    prefill(dl, st, xt::view(first(x), xt::range(1, 10000), xt::all()), 1000);
    BOOST_TEST(st.position == 10000u);
    BOOST_TEST(state_floats(st) == after_one);
    // H (2 M (R + d)) for X plus the windows of the q and k convolutions, 2 x 3 H R
    BOOST_TEST(after_one == s.H * 2 * s.M * (s.R + s.d) + 2 * 3 * s.H * s.R);

    const LayerParams ps = idattn::test::random_layer_params(rng, LayerVariant::Softmax, s, false);
    const DecodeLayer ds = prepare_decode(LayerVariant::Softmax, ps, idattn::test::options_for(LayerVariant::Softmax));
    DecodeState sc = decode_start(ds);
    prefill(ds, sc, xt::view(first(x), xt::range(0, 100), xt::all()), 7);
    BOOST_TEST(state_floats(sc) == 100 * s.H * (s.R + s.d));
}

BOOST_AUTO_TEST_CASE(a_state_that_does_not_belong_is_refused) {
    IDATTN_SEEDED(rng);
    const LayerSizes s;
    const LayerParams pf = idattn::test::random_layer_params(rng, LayerVariant::Full, s, false);
    const LayerParams ps = idattn::test::random_layer_params(rng, LayerVariant::S4d, s, false);
    const LayerOptions opt = idattn::test::options_for(LayerVariant::Full);
    const xt::xtensor<double, 1> x = xt::ones<double>({s.D});
    const DecodeLayer dl = prepare_decode(LayerVariant::Full, pf, opt);
    DecodeState st = decode_start(prepare_decode(LayerVariant::S4d, ps, idattn::test::options_for(LayerVariant::S4d)));
    std::string e = error_message([&] { decode_step(dl, st, x); });
    BOOST_TEST(has(e, "the state belongs to the s4d variant, not to the full variant"), e);
    st = decode_start(dl);
    st.X[1] = CMat(xt::zeros<std::complex<double>>({s.M + 1, s.R + s.d}));
    e = error_message([&] { decode_step(dl, st, x); });
    BOOST_TEST((has(e, "state X of head 1 has shape (4, 7)") && has(e, "expected (M, R + d) = (3, 7)")), e);
    st = decode_start(dl);
    st.history.erase("W_q");
    e = error_message([&] { decode_step(dl, st, x); });
    BOOST_TEST(has(e, "short-convolution histories"), e);
    st = decode_start(dl);
    e = error_message([&] { decode_step(dl, st, xt::ones<double>({s.D + 1})); });
    BOOST_TEST(has(e, "x has shape (1, 6) but expected (n, 5)"), e);
    LayerOptions chunked = opt;
    chunked.form = LayerForm::Chunked;
    e = error_message([&] { prepare_decode(LayerVariant::Full, pf, chunked); });
    BOOST_TEST(has(e, "the chunked form is chapter 5's parallel forward"), e);
    e = error_message([&] { prefill(dl, st, LMat(xt::ones<double>({std::size_t{3}, s.D})), 0); });
    BOOST_TEST(has(e, "chunk length K must be >= 1"), e);
    const LayerParams p3 = layer_init(LayerVariant::Full, {s.D, 3, s.R, s.d, s.M, 1, false, true});
    e = error_message([&] { decode_step(prepare_decode(LayerVariant::Full, p3, opt), st, x); });
    BOOST_TEST(has(e, "the state has 2 heads but the parameters have H = 3"), e);
    LayerParams bad = pf;
    bad.arrays.at("C")(0, 0, 0, 0) = NAN;
    e = error_message([&] { prepare_decode(LayerVariant::Full, bad, opt); });
    BOOST_TEST((has(e, "'C'") && has(e, "nan")), e);
}

BOOST_AUTO_TEST_SUITE_END()
