// Chapter 2 through the CLI: `idattn features` and `idattn linear` on .npy files
// equal the reference with the same draw W (read from a file or drawn from a seed),
// and bad options fail cleanly with no output file.
#include <boost/test/unit_test.hpp>

#include "api/common/npy.hpp"
#include "ref/02-kernel-feature-map/feature_map.hpp"
#include "ref/02-kernel-feature-map/linear_attention.hpp"
#include "tests/common/cli_runner.hpp"
#include "tests/common/testutil.hpp"
#include "tests/common/messages.hpp"

using idattn::test::has;
using idattn::test::run_cli;
using Mat = xt::xtensor<double, 2>;

namespace {

Mat read_mat(const std::string& path) {
    const auto t = idattn::npy::read(path, path);
    BOOST_TEST_REQUIRE(t.shape.size() == 2u);
    Mat m(std::array<std::size_t, 2>{t.shape[0], t.shape[1]});
    std::copy(t.data.begin(), t.data.end(), m.begin());
    return m;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(cli_feature_map)

// eq:P3 eq:2.2: `idattn features` with --w equals the reference features; with --R/--seed
// and --save-w the saved draw reproduces the output.
BOOST_AUTO_TEST_CASE(cli_features_equal_reference) {
    IDATTN_SEEDED(rng);
    const auto dir = idattn::test::temp_dir("clifeatures");
    const Mat x = rng.normal<2>({33, 16});
    const Mat w = idattn::ref::draw_orthogonal(24, 16, 5);
    idattn::npy::write(dir + "/x.npy", x.data(), {33, 16});
    idattn::npy::write(dir + "/w.npy", w.data(), {24, 16});
    auto r = run_cli("features --map orthogonal --x " + dir + "/x.npy --w " + dir + "/w.npy --out " + dir + "/f.npy");
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
    const Mat want = idattn::ref::feature_map<double>(idattn::ref::FeatureMap::Orthogonal, x, w);
    BOOST_TEST((read_mat(dir + "/f.npy") == want));
    r = run_cli("features --map rff --x " + dir + "/x.npy --R 12 --seed 3 --save-w " + dir + "/w2.npy --out " + dir +
                "/g.npy");
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
    const Mat w2 = read_mat(dir + "/w2.npy");
    BOOST_TEST((w2 == idattn::ref::draw_gaussian(12, 16, 3)));
    BOOST_TEST((read_mat(dir + "/g.npy") == idattn::ref::feature_map<double>(idattn::ref::FeatureMap::Rff, x, w2)));
}

// eq:2.5 eq:P4: `idattn linear` in its three forms gives the same output, equal to the
// reference quadratic form on the same draw; --impl fast falls back with a note.
BOOST_AUTO_TEST_CASE(cli_linear_forms_agree) {
    IDATTN_SEEDED(rng);
    const auto dir = idattn::test::temp_dir("clilinear");
    const Mat q = rng.normal<2>({40, 8}), k = rng.normal<2>({40, 8}), v = rng.normal<2>({40, 8});
    for (auto [n, t] : {std::pair<const char*, const Mat*>{"q", &q}, {"k", &k}, {"v", &v}})
        idattn::npy::write(dir + "/" + n + ".npy", t->data(), {40, 8});
    const std::string io = " --q " + dir + "/q.npy --k " + dir + "/k.npy --v " + dir + "/v.npy --map positive --R 32 --seed 7 --causal";
    const Mat w = idattn::ref::draw_gaussian(32, 8, 7);
    const Mat want = idattn::ref::linear_attention_quadratic<double>(
        idattn::ref::feature_map<double>(idattn::ref::FeatureMap::Positive, q, w),
        idattn::ref::feature_map<double>(idattn::ref::FeatureMap::Positive, k, w), v, true);
    for (const std::string form : {"quadratic", "recurrent", "chunked"}) {
        const auto r = run_cli("linear" + io + " --form " + form + " --chunk 7 --out " + dir + "/o.npy");
        BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
        IDATTN_CHECK_CMP(idattn::test::tol_check(form, want, read_mat(dir + "/o.npy"), 1e-12));
    }
    const auto r = run_cli("linear" + io + " --impl fast --out " + dir + "/o.npy");
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
    BOOST_TEST(has(r.output, "ran the float64 reference instead"), r.output);
}

BOOST_AUTO_TEST_CASE(bad_options_fail_without_partial_output) {
    IDATTN_SEEDED(rng);
    const auto dir = idattn::test::temp_dir("clibad2");
    const Mat x = rng.normal<2>({8, 4});
    idattn::npy::write(dir + "/x.npy", x.data(), {8, 4});
    const Mat w = rng.normal<2>({6, 5});
    idattn::npy::write(dir + "/w.npy", w.data(), {6, 5});
    const std::string X = dir + "/x.npy";
    struct Case {
        std::string args, expect;
    };
    const std::vector<Case> cases{
        {"features --map positive --x " + X + " --R 0", "R must be at least 1"},
        {"features --map positive --x " + X, "give --w FILE.npy or --R"},
        {"features --map fourier --x " + X + " --R 4", "--map must be"},
        {"features --map taylor --x " + X + " --R 4", "taylor map is deterministic"},
        {"features --map rff --x " + X + " --w " + dir + "/w.npy", "W has shape (6, 5)"},
        {"features --map rff --x " + X + " --R many", "--R must be a non-negative integer"},
        {"linear --q " + X + " --k " + X + " --v " + X + " --R 4 --chunk 0", "chunk size must be at least 1"},
        {"linear --q " + X + " --k " + X + " --v " + X + " --R 4 --form scan", "--form must be"},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.args) {
            const std::string out = dir + "/o.npy";
            const auto r = run_cli(c.args + " --out " + out);
            BOOST_TEST(r.exit_code == 1, r.output);
            BOOST_TEST(has(r.output, "error: "), r.output);
            BOOST_TEST(has(r.output, c.expect), r.output);
            BOOST_TEST(!idattn::test::file_exists(out));
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
