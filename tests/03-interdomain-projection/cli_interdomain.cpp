// Chapter 3 through the CLI: `idattn project` writes the projections of eq:P6 and
// `idattn interdomain` the output of eq:P9, both equal to the reference on the same
// inputs and draw; bad options fail cleanly with no output file.
#include <boost/test/unit_test.hpp>

#include "api/common/npy.hpp"
#include "ref/02-kernel-feature-map/feature_map.hpp"
#include "ref/03-interdomain-projection/bases.hpp"
#include "ref/03-interdomain-projection/interdomain.hpp"
#include "tests/common/cli_runner.hpp"
#include "tests/common/messages.hpp"
#include "tests/common/testutil.hpp"

using idattn::test::has;
using idattn::test::run_cli;
using Mat = xt::xtensor<double, 2>;
using namespace idattn::ref;

namespace {

idattn::HostTensor read(const std::string& path) { return idattn::npy::read(path, path); }

Mat as_mat(const idattn::HostTensor& t) {
    BOOST_TEST_REQUIRE(t.shape.size() == 2u);
    Mat m(std::array<std::size_t, 2>{t.shape[0], t.shape[1]});
    std::copy(t.data.begin(), t.data.end(), m.begin());
    return m;
}

void write(const std::string& path, const Mat& m) { idattn::npy::write(path, m.data(), {m.shape(0), m.shape(1)}); }

}  // namespace

BOOST_AUTO_TEST_SUITE(cli_interdomain)

// eq:P6 eq:3.1 eq:3.5: `idattn project` writes U = Phi F_k, Gamma = Phi V, eta = Phi 1 equal to the
// reference projection, for LegS and DCT, and for the complex Fourier rows as (..., 2).
BOOST_AUTO_TEST_CASE(cli_project_equals_reference) {
    IDATTN_SEEDED(rng);
    const auto dir = idattn::test::temp_dir("cliproject");
    const Mat fk = xt::abs(rng.normal<2>({37, 6})), v = rng.normal<2>({37, 5});
    write(dir + "/fk.npy", fk);
    write(dir + "/v.npy", v);
    for (Basis b : {Basis::LegS, Basis::Dct}) {
        const auto r = run_cli("project --basis " + basis_name(b) + " --M 9 --fk " + dir + "/fk.npy --v " + dir +
                               "/v.npy --out-u " + dir + "/u.npy --out-gamma " + dir + "/g.npy --out-eta " + dir + "/e.npy");
        BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
        const auto p = project<double>(basis_matrix<double>(b, 9, 37), fk, v);
        BOOST_TEST((as_mat(read(dir + "/u.npy")) == p.U));
        BOOST_TEST((as_mat(read(dir + "/g.npy")) == p.Gamma));
        const auto e = read(dir + "/e.npy");
        BOOST_TEST_REQUIRE((e.shape == std::vector<std::size_t>{9}));
        for (std::size_t m = 0; m < 9; ++m) BOOST_TEST(e.data[m] == p.eta(m));
    }
    // The complex Fourier rows (eq:3.5): U, Gamma, eta with a trailing axis of 2 (real, imaginary).
    const auto r = run_cli("project --basis fourier --M 9 --fk " + dir + "/fk.npy --v " + dir + "/v.npy --out-u " +
                           dir + "/u.npy --out-gamma " + dir + "/g.npy --out-eta " + dir + "/e.npy");
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
    const auto p = project<double>(fourier_basis_matrix<double>(9, 37), fk, v);
    for (const auto& [file, x] : {std::pair{"/u.npy", p.U}, std::pair{"/g.npy", p.Gamma}}) {
        const auto t = read(dir + file);
        BOOST_TEST_REQUIRE((t.shape == std::vector<std::size_t>{9, x.shape(1), 2}), file);
        for (std::size_t i = 0; i < x.size(); ++i) {
            BOOST_TEST(t.data[2 * i] == x.flat(i).real());
            BOOST_TEST(t.data[2 * i + 1] == x.flat(i).imag());
        }
    }
    const auto e = read(dir + "/e.npy");
    BOOST_TEST_REQUIRE((e.shape == std::vector<std::size_t>{9, 2}));
    for (std::size_t m = 0; m < 9; ++m) BOOST_TEST((e.data[2 * m] == p.eta(m).real() && e.data[2 * m + 1] == p.eta(m).imag()));
}

// eq:P9 eq:3.causal: `idattn interdomain` equals the reference (P9) on the positive features of
// the same draw, causal and not; --impl fast runs or falls back with a note.
BOOST_AUTO_TEST_CASE(cli_interdomain_equals_reference) {
    IDATTN_SEEDED(rng);
    const auto dir = idattn::test::temp_dir("cliinterdomain");
    const Mat q = rng.normal<2>({30, 8}, 0.5), k = rng.normal<2>({30, 8}, 0.5), v = rng.normal<2>({30, 8});
    write(dir + "/q.npy", q);
    write(dir + "/k.npy", k);
    write(dir + "/v.npy", v);
    const std::string io = " --q " + dir + "/q.npy --k " + dir + "/k.npy --v " + dir + "/v.npy --map positive --R 16 --seed 4";
    const Mat w = draw_gaussian(16, 8, 4);
    const Mat fq = feature_map<double>(FeatureMap::Positive, q, w), fk = feature_map<double>(FeatureMap::Positive, k, w);
    for (bool causal : {false, true})
        for (Basis b : {Basis::LegS, Basis::Gram, Basis::Dct}) {
            const auto r = run_cli("interdomain" + io + " --basis " + basis_name(b) + " --M 6" +
                                   (causal ? " --causal" : "") + " --out " + dir + "/o.npy");
            BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
            const Mat want = interdomain_attention<double>(b, 6, fq, fk, v, causal);
            IDATTN_CHECK_CMP(idattn::test::tol_check(basis_name(b), want, as_mat(read(dir + "/o.npy")), 1e-12));
        }
    const auto r = run_cli("interdomain" + io + " --basis gram --M 6 --causal --impl fast --out " + dir + "/o.npy");
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
    BOOST_TEST(has(r.output, "ran the float64 reference instead"), r.output);
}

BOOST_AUTO_TEST_CASE(bad_options_fail_without_partial_output) {
    IDATTN_SEEDED(rng);
    const auto dir = idattn::test::temp_dir("clibad3");
    const Mat x = rng.normal<2>({8, 4});
    write(dir + "/x.npy", x);
    const std::string X = dir + "/x.npy";
    const std::string qkv = " --q " + X + " --k " + X + " --v " + X + " --R 4";
    struct Case {
        std::string args, expect;
        bool with_out = true;  // `project` has no --out
    };
    const std::vector<Case> cases{
        {"interdomain" + qkv + " --basis gram --M 0", "M must be at least 1"},
        {"interdomain" + qkv + " --basis dct --M 9", "M = 9 functions cannot be orthonormal on N = 8 points"},
        {"interdomain" + qkv + " --basis hippo --M 2", "--basis must be"},
        {"interdomain" + qkv + " --basis legs --M two", "--M must be a non-negative integer"},
        {"interdomain" + qkv + " --basis fourier --M 4 --causal", "no causal form"},
        {"interdomain" + qkv + " --M 4", "missing required option --basis"},
        {"project --basis fourier --M 9 --fk " + X + " --v " + X + " --out-u " + dir + "/u.npy --out-gamma " + dir +
             "/g.npy --out-eta " + dir + "/e.npy",
         "M = 9", false},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.args) {
            const std::string out = dir + "/o.npy";
            const auto r = run_cli(c.args + (c.with_out ? " --out " + out : std::string()));
            BOOST_TEST(r.exit_code == 1, r.output);
            BOOST_TEST(has(r.output, "error: "), r.output);
            BOOST_TEST(has(r.output, c.expect), r.output);
            BOOST_TEST(!idattn::test::file_exists(out));
            BOOST_TEST(!idattn::test::file_exists(dir + "/u.npy"));
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
