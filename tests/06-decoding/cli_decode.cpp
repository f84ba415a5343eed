// Chapter 6 through the CLI: `idattn decode` prefills a prompt in chunks and decodes
// fed or fed-back steps; its outputs equal the reference's parallel forward on the same
// inputs, and its state file holds the state; bad options fail with nothing written.
#include <boost/test/unit_test.hpp>

#include <set>

#include <xtensor/xview.hpp>

#include "api/common/npy.hpp"
#include "api/common/npz.hpp"
#include "ref/06-decoding/decode.hpp"
#include "tests/05-learned-layer/layer_testing.hpp"
#include "tests/common/cli_runner.hpp"
#include "tests/common/messages.hpp"
#include "tests/common/npy_files.hpp"

using idattn::test::has;
using idattn::test::run_cli;
using namespace idattn::ref;

BOOST_AUTO_TEST_SUITE(cli_decode)

// eq:6.step eq:6.prefill eq:6.state: prompt of 7 in chunks of 3, then 5 fed steps, equals the
// parallel forward of all 12 tokens; fed back, each step's input is the previous output.
BOOST_AUTO_TEST_CASE(cli_decode_equals_the_parallel_forward) {
    IDATTN_SEEDED(rng);
    const auto dir = idattn::test::temp_dir("clidecode");
    auto r = run_cli("layer-init --variant full --d-model 5 --heads 2 --R 4 --d-head 3 --M 3 --seed 4 --out " + dir +
                     "/p.npz");
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
    const LayerParams p = layer_init(LayerVariant::Full, {5, 2, 4, 3, 3, 4, false, true});
    const LMat x = xt::view(idattn::test::random_x(rng, 1, 12, 5), 0);
    idattn::test::write_npy<2>(dir + "/prompt.npy", LMat(xt::view(x, xt::range(0, 7), xt::all())));
    idattn::test::write_npy<2>(dir + "/feed.npy", LMat(xt::view(x, xt::range(7, 12), xt::all())));
    r = run_cli("decode --variant full --params " + dir + "/p.npz --x " + dir + "/prompt.npy --steps 5 --feed " + dir +
                "/feed.npy --chunk 3 --readout folded --out " + dir + "/y.npy --state-out " + dir + "/s.npz");
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
    const LayerOptions opt = idattn::test::options_for(LayerVariant::Full);
    const xt::xtensor<double, 3> x3 = xt::reshape_view(x, {std::size_t{1}, std::size_t{12}, std::size_t{5}});
    const LMat whole = xt::view(layer_forward(LayerVariant::Full, p, x3, opt), 0);
    IDATTN_CHECK_CMP(idattn::test::tol_check<2>("decode vs forward", whole, idattn::test::read_npy<2>(dir + "/y.npy"), 1e-12));
    std::set<std::string> names;
    for (const auto& m : idattn::npz::read(dir + "/s.npz", "s")) {
        names.insert(m.name);
        if (m.name == "position") BOOST_TEST(m.tensor.data.at(0) == 12.0);
        if (m.name == "X") BOOST_TEST((m.tensor.shape == std::vector<std::size_t>{2, 3, 7, 2}));
    }
    BOOST_TEST((names == std::set<std::string>{"position", "X", "history_W_q", "history_W_k"}));

    // Fed back: step i's input is the previous output.
    r = run_cli("decode --variant full --params " + dir + "/p.npz --x " + dir + "/prompt.npy --steps 3 --out " + dir +
                "/y2.npy");
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
    const LMat y2 = idattn::test::read_npy<2>(dir + "/y2.npy");
    const DecodeLayer dl = prepare_decode(LayerVariant::Full, p, opt);
    DecodeState st = decode_start(dl);
    const LMat y0 = prefill(dl, st, xt::view(x, xt::range(0, 7), xt::all()), 64);
    xt::xtensor<double, 1> next = xt::view(y0, 6);
    for (std::size_t i = 0; i < 3; ++i) {
        next = decode_step(dl, st, next);
        BOOST_TEST((xt::xtensor<double, 1>(xt::view(y2, 7 + i)) == next), "step " << i);
    }
}

BOOST_AUTO_TEST_CASE(cli_decode_bad_options) {
    const auto dir = idattn::test::temp_dir("clidecodebad");
    auto r = run_cli("layer-init --variant s4d --d-model 5 --heads 2 --R 4 --d-head 3 --M 3 --out " + dir + "/p.npz");
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
    idattn::test::write_npy<2>(dir + "/x.npy", xt::ones<double>({std::size_t{4}, std::size_t{5}}));
    const std::string base = "decode --params " + dir + "/p.npz --x " + dir + "/x.npy --out " + dir + "/y.npy";
    r = run_cli(base + " --variant full");
    BOOST_TEST((r.exit_code == 1 && has(r.output, "'W_q' is missing")), r.output);
    r = run_cli(base + " --variant s4d --steps 2 --feed " + dir + "/x.npy");
    BOOST_TEST((r.exit_code == 1 && has(r.output, "--feed has shape (4, 5) but --steps is 2")), r.output);
    r = run_cli(base + " --variant s4d --readout chunked");
    BOOST_TEST((r.exit_code == 1 && has(r.output, "unknown readout 'chunked'")), r.output);
    r = run_cli(base + " --variant s4d --steps 1000000000000");
    BOOST_TEST((r.exit_code == 1 && has(r.output, "--steps = 1000000000000")), r.output);
    r = run_cli(base + " --variant s4d --chunk 0");
    BOOST_TEST((r.exit_code == 1 && has(r.output, "chunk length K must be >= 1")), r.output);
    BOOST_TEST(!idattn::test::file_exists(dir + "/y.npy"));
}

BOOST_AUTO_TEST_SUITE_END()
