// Chapter 4 through the CLI: `idattn ssm` writes the states of every form (eq:P11, eq:4.3,
// eq:4.4, eq:4.5) as real and imaginary parts on a trailing axis, equal to the reference
// recurrence; the LegS states (eq:4.1, eq:4.2) equal the reference; `idattn ssm-attention`
// equals the reference readout (eq:4.readout) on the same draw; bad options fail cleanly
// with no output file. Deterministic.
#include <boost/test/unit_test.hpp>

#include "api/common/npy.hpp"
#include "ref/02-kernel-feature-map/feature_map.hpp"
#include "ref/04-ssm-basis-recurrence/ssm.hpp"
#include "tests/common/cli_runner.hpp"
#include "tests/common/messages.hpp"
#include "tests/common/testutil.hpp"

using idattn::test::has;
using idattn::test::run_cli;
using Mat = xt::xtensor<double, 2>;
using Real4 = xt::xtensor<double, 4>;
using namespace idattn::ref;

namespace {

idattn::HostTensor read(const std::string& path) { return idattn::npy::read(path, path); }

Mat as_mat(const idattn::HostTensor& t) {
    BOOST_TEST_REQUIRE(t.shape.size() == 2u);
    Mat m(std::array<std::size_t, 2>{t.shape[0], t.shape[1]});
    std::copy(t.data.begin(), t.data.end(), m.begin());
    return m;
}

Real4 as_real4(const idattn::HostTensor& t) {
    BOOST_TEST_REQUIRE(t.shape.size() == 4u);
    Real4 x(std::array<std::size_t, 4>{t.shape[0], t.shape[1], t.shape[2], t.shape[3]});
    std::copy(t.data.begin(), t.data.end(), x.begin());
    return x;
}

// (N, M, C) complex -> (N, M, C, 2): the layout the CLI writes.
Real4 split(const xt::xtensor<std::complex<double>, 3>& x) {
    Real4 y(std::array<std::size_t, 4>{x.shape(0), x.shape(1), x.shape(2), 2});
    for (std::size_t i = 0; i < x.size(); ++i) {
        y.data()[2 * i] = x.data()[i].real();
        y.data()[2 * i + 1] = x.data()[i].imag();
    }
    return y;
}

void write(const std::string& path, const Mat& m) { idattn::npy::write(path, m.data(), {m.shape(0), m.shape(1)}); }

}  // namespace

BOOST_AUTO_TEST_SUITE(cli_ssm)

// eq:P11 eq:4.3 eq:4.4 eq:4.5 eq:4.6: `idattn ssm` in every form equals the reference recurrence
// (S4D-Inv, S4D-Lin, damped Fourier), written as (N, M, C, 2); naive32 writes float32 close to it.
BOOST_AUTO_TEST_CASE(cli_ssm_forms_equal_recurrence) {
    IDATTN_SEEDED(rng);
    const auto dir = idattn::test::temp_dir("clissm");
    const Mat z = rng.normal<2>({37, 5});
    write(dir + "/z.npy", z);
    struct Basis {
        std::string args;
        DiagonalSsm<double> s;
    };
    const std::vector<Basis> bases{{"--basis s4d --init inv --M 9 --delta 0.05", s4d(S4dInit::Inv, 9, 0.05)},
                                   {"--init lin --M 4 --delta 0.3", s4d(S4dInit::Lin, 4, 0.3)},
                                   {"--basis fourier --L 16 --alpha 0.1", damped_fourier(16, 0.1)}};
    for (const auto& b : bases) {
        const Real4 want = split(ssm_states_recurrence<double>(b.s, z));
        for (const std::string form : {"recurrence", "explicit", "fft", "chunked"}) {
            BOOST_TEST_CONTEXT(b.args << " --form " << form) {
                const auto r = run_cli("ssm --z " + dir + "/z.npy " + b.args + " --form " + form + " --chunk 7 --out " +
                                       dir + "/x.npy");
                BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
                const auto x = read(dir + "/x.npy");
                BOOST_TEST(x.dtype == "float64");
                IDATTN_CHECK_CMP(idattn::test::tol_check(form, want, as_real4(x), 1e-12));
            }
        }
        const auto r = run_cli("ssm --z " + dir + "/z.npy " + b.args + " --form chunked --impl naive32 --out " + dir +
                               "/x32.npy");
        BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
        const auto x32 = read(dir + "/x32.npy");
        BOOST_TEST(x32.dtype == "float32");
        IDATTN_CHECK_CMP(idattn::test::tol_check("naive32", want, as_real4(x32), 1e-5));
    }
}

// eq:4.1 eq:4.2: `idattn ssm --basis legs` equals the reference LegS states, exact and approximate.
BOOST_AUTO_TEST_CASE(cli_legs_states_equal_reference) {
    IDATTN_SEEDED(rng);
    const auto dir = idattn::test::temp_dir("clilegs");
    const Mat z = rng.normal<2>({23, 3});
    write(dir + "/z.npy", z);
    for (LegsMethod m : {LegsMethod::Exact, LegsMethod::Euler, LegsMethod::Bilinear}) {
        const auto r = run_cli("ssm --basis legs --M 6 --legs-method " + legs_method_name(m) + " --substeps 4 --z " + dir +
                               "/z.npy --out " + dir + "/c.npy");
        BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
        const auto c = read(dir + "/c.npy");
        const auto want = legs_states(m, 6, z, 4);
        BOOST_TEST_REQUIRE((c.shape == std::vector<std::size_t>{23, 6, 3}));
        double worst = 0;
        for (std::size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(c.data[i] - want.data()[i]));
        BOOST_TEST(worst == 0.0, legs_method_name(m) << ": max |cli - ref| = " << worst);
    }
}

// eq:4.readout: `idattn ssm-attention` equals the reference readout on the positive features of
// the same draw, for two forms and both bases; --impl fast runs or falls back with a note.
BOOST_AUTO_TEST_CASE(cli_ssm_attention_equals_reference) {
    IDATTN_SEEDED(rng);
    const auto dir = idattn::test::temp_dir("clissmattn");
    const Mat q = rng.normal<2>({21, 8}, 0.5), k = rng.normal<2>({30, 8}, 0.5), v = rng.normal<2>({30, 8});
    write(dir + "/q.npy", q);
    write(dir + "/k.npy", k);
    write(dir + "/v.npy", v);
    const std::string io = " --q " + dir + "/q.npy --k " + dir + "/k.npy --v " + dir + "/v.npy --map positive --R 16 --seed 4";
    const Mat w = draw_gaussian(16, 8, 4);
    const auto fq = scaled_feature_map<double>(FeatureMap::Positive, q, w).f;
    const auto fk = sequence_stabilised(scaled_feature_map<double>(FeatureMap::Positive, k, w));
    struct Basis {
        std::string args;
        DiagonalSsm<double> s;
    };
    const std::vector<Basis> bases{{"--basis s4d --M 12 --delta 0.04", s4d(S4dInit::Inv, 12, 0.04)},
                                   {"--basis fourier --L 32 --alpha 0.05", damped_fourier(32, 0.05)}};
    for (const auto& b : bases)
        for (const std::string form : {"recurrence", "chunked"}) {
            const auto r = run_cli("ssm-attention" + io + " " + b.args + " --form " + form + " --chunk 8 --out " + dir +
                                   "/o.npy");
            BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
            const Mat want = ssm_attention<double>(SsmForm::Recurrence, b.s, fq, fk, v);
            IDATTN_CHECK_CMP(idattn::test::tol_check(b.args + " " + form, want, as_mat(read(dir + "/o.npy")), 1e-12));
        }
    const auto r = run_cli("ssm-attention" + io + " --M 8 --impl fast --out " + dir + "/o.npy");
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
    BOOST_TEST((has(r.output, "ran the float64 reference instead") || has(r.output, "backend fast")), r.output);
}

BOOST_AUTO_TEST_CASE(bad_options_fail_without_partial_output) {
    IDATTN_SEEDED(rng);
    const auto dir = idattn::test::temp_dir("clibad4");
    const Mat x = rng.normal<2>({8, 4});
    write(dir + "/x.npy", x);
    Mat bad = x;
    bad(3, 2) = std::nan("");
    write(dir + "/nan.npy", bad);
    const std::string X = dir + "/x.npy";
    const std::string qkv = " --q " + X + " --k " + X + " --v " + X + " --R 4";
    const std::vector<std::pair<std::string, std::string>> cases{
        {"ssm --z " + X + " --M 0", "M must be at least 1"},
        {"ssm --z " + X + " --delta 0", "Delta must be finite and > 0"},
        {"ssm --z " + X + " --delta -1e-3", "Delta must be finite and > 0"},
        {"ssm --z " + X + " --delta abc", "--delta must be a finite number"},
        {"ssm --z " + X + " --basis fourier --alpha -0.5", "alpha must be finite and >= 0"},
        {"ssm --z " + X + " --basis fourier --L 0", "must be at least 1"},
        {"ssm --z " + X + " --basis fourier --M 4", "belong to --basis s4d"},
        {"ssm --z " + X + " --L 4", "belong to --basis fourier"},
        {"ssm --z " + X + " --basis hippo", "--basis must be"},
        {"ssm --z " + X + " --init legt", "--init must be"},
        {"ssm --z " + X + " --form scan", "--form must be"},
        {"ssm --z " + X + " --form chunked --chunk 0", "chunk size K (--chunk) must be at least 1"},
        {"ssm --z " + dir + "/nan.npy --M 4", "z must be finite, but z(3, 2) = nan"},
        {"ssm --z " + X + " --basis legs --M 4 --legs-method rk4", "--legs-method must be"},
        {"ssm --z " + X + " --basis legs --M 4 --legs-method euler --substeps 0", "sub-steps per token must be at least 1"},
        {"ssm --z " + X + " --basis legs --M 4 --impl naive32", "float64 reference only"},
        {"ssm --z " + X + " --basis legs --M 4 --form fft", "--form"},
        {"ssm-attention" + qkv + " --M 0", "M must be at least 1"},
        {"ssm-attention --q " + dir + "/x.npy --k " + dir + "/nan.npy --v " + X + " --R 4 --M 4", "k must be finite"},
        {"ssm-attention --q " + X + " --k " + X + " --v " + X + " --M 4", "needs a random draw"},
    };
    for (const auto& [args, expect] : cases) {
        BOOST_TEST_CONTEXT(args) {
            const std::string out = dir + "/o.npy";
            const auto r = run_cli(args + " --out " + out);
            BOOST_TEST(r.exit_code == 1, r.output);
            BOOST_TEST(has(r.output, "error: "), r.output);
            BOOST_TEST(has(r.output, expect), r.output);
            BOOST_TEST(!idattn::test::file_exists(out));
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
