// Chapter 1 through the CLI: `idattn softmax` on .npy files equals the
// reference (eq:P1), and bad files fail cleanly with no output file.
#include <boost/test/unit_test.hpp>

#include <fstream>

#include "api/common/npy.hpp"
#include "ref/01-softmax-attention/softmax_attention.hpp"
#include "tests/common/cli_runner.hpp"
#include "tests/common/testutil.hpp"
#include "tests/common/messages.hpp"

using idattn::test::has;
using idattn::test::run_cli;

BOOST_AUTO_TEST_SUITE(cli_softmax)

// eq:P1: the CLI's reference output equals the library reference, for
// float32 and float64 inputs, single-head and batched.
BOOST_AUTO_TEST_CASE(cli_output_equals_reference) {
    IDATTN_SEEDED(rng);
    const auto dir = idattn::test::temp_dir("clisoftmax");
    const auto q = rng.normal<4>({2, 3, 33, 16}), k = rng.normal<4>({2, 3, 40, 16}), v = rng.normal<4>({2, 3, 40, 16});
    idattn::npy::write(dir + "/q.npy", q.data(), {2, 3, 33, 16});
    const auto k32 = idattn::test::to_f32(k);
    idattn::npy::write(dir + "/k.npy", k32.data(), {2, 3, 40, 16});
    idattn::npy::write(dir + "/v.npy", v.data(), {2, 3, 40, 16});
    const auto r = run_cli("softmax --q " + dir + "/q.npy --k " + dir + "/k.npy --v " + dir + "/v.npy --causal --out " +
                           dir + "/o.npy");
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
    BOOST_TEST(has(r.output, "inputs k are float32: promoted exactly to float64"), r.output);
    BOOST_TEST(has(r.output, "ref (float64, CPU)"), r.output);
    const auto o = idattn::npy::read(dir + "/o.npy", "o");
    BOOST_TEST(o.dtype == "float64");
    const auto want = idattn::ref::softmax_attention<double>(q, idattn::test::to_f64(k32), v, true);
    BOOST_TEST_REQUIRE((o.shape == std::vector<std::size_t>(want.shape().begin(), want.shape().end())));
    for (std::size_t i = 0; i < o.data.size(); ++i) BOOST_TEST_REQUIRE(o.data[i] == want.data()[i]);
}

// The fast backend without a device falls back to the reference and says so.
BOOST_AUTO_TEST_CASE(fast_without_device_falls_back_visibly) {
    IDATTN_SEEDED(rng);
    const auto dir = idattn::test::temp_dir("clifast");
    const auto x = rng.normal<2>({8, 4});
    for (const char* n : {"q", "k", "v"}) idattn::npy::write(dir + "/" + n + ".npy", x.data(), {8, 4});
    const auto r = run_cli("softmax --impl fast --q " + dir + "/q.npy --k " + dir + "/k.npy --v " + dir +
                           "/v.npy --out " + dir + "/o.npy");
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
    const auto info = run_cli("info");
    if (has(info.output, "unavailable")) {
        BOOST_TEST(has(r.output, "fast backend requested but unavailable"), r.output);
        BOOST_TEST(has(r.output, "ran the float64 reference instead"), r.output);
    } else {
        BOOST_TEST(has(r.output, "fast (float32"), r.output);
    }
}

BOOST_AUTO_TEST_CASE(bad_files_fail_without_partial_output) {
    IDATTN_SEEDED(rng);
    const auto dir = idattn::test::temp_dir("clibad");
    const auto x = rng.normal<2>({8, 4});
    idattn::npy::write(dir + "/x.npy", x.data(), {8, 4});
    const auto y = rng.normal<2>({8, 5});
    idattn::npy::write(dir + "/y.npy", y.data(), {8, 5});
    std::ofstream(dir + "/trunc.npy", std::ios::binary) << std::string("\x93NUMPY\x01\x00\x10\x00{'descr': '<f8'", 25);
    std::ofstream(dir + "/text.npy") << "not a numpy file";
    struct Case {
        std::string args, expect;
    };
    const std::string X = dir + "/x.npy";
    const std::vector<Case> cases{
        {"--q " + dir + "/missing.npy --k " + X + " --v " + X, "--q (" + dir + "/missing.npy)"},
        {"--q " + X + " --k " + dir + "/trunc.npy --v " + X, "--k ("},
        {"--q " + X + " --k " + X + " --v " + dir + "/text.npy", "not a .npy file"},
        {"--q " + X + " --k " + dir + "/y.npy --v " + X, "k has shape (8, 5)"},
        {"--q " + X + " --k " + X + " --v " + X + " --impl cuda", "--impl must be"},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.args) {
            const std::string out = dir + "/o.npy";
            const auto r = run_cli("softmax " + c.args + " --out " + out);
            BOOST_TEST(r.exit_code == 1, r.output);
            BOOST_TEST(has(r.output, "error: "), r.output);
            BOOST_TEST(has(r.output, c.expect), r.output);
            BOOST_TEST(!idattn::test::file_exists(out));
            BOOST_TEST(!idattn::test::file_exists(out + ".partial"));
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
