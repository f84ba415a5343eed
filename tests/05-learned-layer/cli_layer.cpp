// Chapter 5 through the CLI: `idattn layer-init` writes the reference's initialisation as an
// .npz; `idattn layer` writes the reference's forward and, with --dy, every gradient (stored or
// Lambda-division) as an .npz; parameter files with a missing, extra, misshapen or non-finite
// array, or no 'heads', fail with the array named and nothing written. Deterministic.
#include <boost/test/unit_test.hpp>

#include "api/common/names.hpp"
#include "api/common/npy.hpp"
#include "api/common/npz.hpp"
#include "tests/05-learned-layer/layer_testing.hpp"
#include "tests/common/cli_runner.hpp"
#include "tests/common/messages.hpp"
#include "tests/common/npy_files.hpp"

using idattn::test::has;
using idattn::test::run_cli;
using namespace idattn::ref;
using idattn::api::parse_layer_variant;

namespace {

LayerParams read_params(const std::string& path) {
    LayerParams p;
    for (const auto& m : idattn::npz::read(path, path)) {
        if (m.name == "heads") {
            p.heads = static_cast<std::size_t>(m.tensor.data.at(0));
            continue;
        }
        xt::xarray<double> a = xt::zeros<double>(m.tensor.shape);
        std::copy(m.tensor.data.begin(), m.tensor.data.end(), a.begin());
        p.arrays.emplace(m.name, a);
    }
    return p;
}

void write_params(const std::string& path, const LayerParams& p) {
    std::vector<idattn::npz::Member> ms{{"heads", {{}, "int64", {double(p.heads)}}}};
    for (const auto& [n, a] : p.arrays) ms.push_back({n, {{a.shape().begin(), a.shape().end()}, "float64", {a.begin(), a.end()}}});
    idattn::npz::write(path, ms);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cli_layer)

// eq:5.init eq:5.ssm eq:5.adjoint eq:5.lambda-div: layer-init, then layer forward and backward
// from the CLI equal the reference on the same files.
BOOST_AUTO_TEST_CASE(cli_layer_equals_the_reference) {
    IDATTN_SEEDED(rng);
    const auto dir = idattn::test::temp_dir("clilayer");
    for (const std::string variant : {"full", "s4d", "softmax"}) {
        const LayerVariant v = parse_layer_variant(variant);
        const std::string p = dir + "/p_" + variant + ".npz";
        auto r = run_cli("layer-init --variant " + variant + " --d-model 5 --heads 2 --R 4 --d-head 3" +
                         (variant == "softmax" ? "" : " --M 3") + " --seed 9 --gate on --out " + p);
        BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
        const LayerParams params = read_params(p);
        const LayerParams ref_params = layer_init(v, {5, 2, 4, 3, variant == "softmax" ? 0u : 3u, 9, true, true});
        BOOST_TEST(params.heads == 2u);
        BOOST_TEST(params.arrays.size() == ref_params.arrays.size());
        for (const auto& [n, a] : ref_params.arrays) BOOST_TEST((params.arrays.at(n) == a), variant << ": " << n);

        const auto x = idattn::test::random_x(rng, 2, 9, 5), dy = idattn::test::random_x(rng, 2, 9, 5);
        idattn::test::write_npy<3>(dir + "/x.npy", x);
        idattn::test::write_npy<3>(dir + "/dy.npy", dy);
        r = run_cli("layer --variant " + variant + " --params " + p + " --x " + dir + "/x.npy --out " + dir +
                    "/y.npy --dy " + dir + "/dy.npy --grads-out " + dir + "/g.npz --backward lambda-division "
                    "--checkpoint 4 --form chunked --chunk 4");
        BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
        LayerOptions opt = idattn::test::options_for(v);
        opt.form = LayerForm::Chunked;
        opt.chunk = 4;
        BOOST_TEST((idattn::test::read_npy<3>(dir + "/y.npy") == layer_forward(v, params, x, opt)), variant << ": y");
        opt.backward = LayerBackward::LambdaDivision;
        opt.checkpoint = 4;
        const LayerGrads g = layer_backward(v, params, x, dy, opt);
        const LayerParams grads = read_params(dir + "/g.npz");  // 'x' and every parameter name
        BOOST_TEST((grads.arrays.at("x") == xt::xarray<double>(g.dx)), variant << ": dL/dx");
        for (const auto& [n, a] : g.params) BOOST_TEST((grads.arrays.at(n) == a), variant << ": dL/d" << n);
        BOOST_TEST(grads.arrays.size() == g.params.size() + 1);
    }
}

BOOST_AUTO_TEST_CASE(cli_layer_bad_parameter_files) {
    const auto dir = idattn::test::temp_dir("clilayerbad");
    const LayerParams good = layer_init(LayerVariant::Full, {5, 2, 4, 3, 3, 1, false, true});
    idattn::test::write_npy<3>(dir + "/x.npy", xt::ones<double>({1, 4, 5}));
    auto run = [&](const LayerParams& p, const std::string& extra = "") {
        write_params(dir + "/p.npz", p);
        return run_cli("layer --variant full --params " + dir + "/p.npz --x " + dir + "/x.npy --out " + dir +
                       "/y.npy" + extra);
    };
    LayerParams p = good;
    p.arrays.erase("C");
    auto r = run(p);
    BOOST_TEST((r.exit_code == 1 && has(r.output, "'C' is missing")), r.output);
    p = good;
    p.arrays.emplace("W_a", xt::zeros<double>({5, 8}));
    r = run(p);
    BOOST_TEST((r.exit_code == 1 && has(r.output, "'W_a' is not used by the full variant")), r.output);
    p = good;
    p.arrays.at("log_dt") = xt::zeros<double>({3});
    r = run(p);
    BOOST_TEST((r.exit_code == 1 && has(r.output, "'log_dt' has shape (3,) but expected (2,)")), r.output);
    p = good;
    p.arrays.at("B")(1, 2, 0) = NAN;
    r = run(p);
    BOOST_TEST((r.exit_code == 1 && has(r.output, "'B'") && has(r.output, "nan")), r.output);
    p = good;
    p.heads = 0;
    r = run(p);
    BOOST_TEST((r.exit_code == 1 && has(r.output, "'heads' must be an integer >= 1")), r.output);
    r = run(good, " --rope on --rope-order sideways");
    BOOST_TEST((r.exit_code == 1 && has(r.output, "unknown RoPE order 'sideways'")), r.output);
    r = run(good, " --checkpoint 4");
    BOOST_TEST((r.exit_code == 1 && has(r.output, "--checkpoint does not apply here")), r.output);
    r = run(good, " --dy " + dir + "/x.npy");
    BOOST_TEST((r.exit_code == 1 && has(r.output, "--grads-out")), r.output);
    BOOST_TEST(!idattn::test::file_exists(dir + "/y.npy"), "no output is written when the run fails");
    r = run_cli("layer-init --variant full --d-model 5 --heads 2 --R 3 --d-head 3 --M 3 --out " + dir + "/q.npz");
    BOOST_TEST((r.exit_code == 1 && has(r.output, "R = 3 is odd")), r.output);
    r = run_cli("layer-init --variant softmax --d-model 5 --heads 2 --R 4 --d-head 3 --M 3 --out " + dir + "/q.npz");
    BOOST_TEST((r.exit_code == 1 && has(r.output, "--M does not apply here")), r.output);
    BOOST_TEST(!idattn::test::file_exists(dir + "/q.npz"));
}

BOOST_AUTO_TEST_SUITE_END()
