// Chapter 8 through the CLI: `idattn kvm` equals the reference in both forms, batched;
// bad budgets and forms are named and nothing is written.
#include <boost/test/unit_test.hpp>

#include <xtensor/xview.hpp>

#include "api/common/npy.hpp"
#include "ref/08-key-value-means/kvm.hpp"
#include "tests/common/cli_runner.hpp"
#include "tests/common/messages.hpp"
#include "tests/common/npy_files.hpp"
#include "tests/common/testutil.hpp"

using idattn::test::has;
using idattn::test::run_cli;
using namespace idattn::ref;

BOOST_AUTO_TEST_SUITE(cli_kvm)

// eq:8.window eq:8.budget eq:8.readout: (B, H, N, d) through the CLI, head by head equal to the reference.
BOOST_AUTO_TEST_CASE(cli_kvm_equals_the_reference) {
    IDATTN_SEEDED(rng);
    const auto dir = idattn::test::temp_dir("clikvm");
    const auto q = rng.normal<4>({1, 2, 45, 6}), k = rng.normal<4>({1, 2, 45, 6}), v = rng.normal<4>({1, 2, 45, 3});
    for (const auto& [name, x] : {std::pair{"q", &q}, std::pair{"k", &k}, std::pair{"v", &v}})
        idattn::test::write_npy<4>(dir + "/" + name + ".npy", *x);
    KvmOptions o;
    o.chunk = 5;
    o.budget = {KvmBudgetKind::PowerLaw, 5, 2.0, 0.5};
    for (const std::string form : {"prefill", "decode"}) {
        const auto r = run_cli("kvm --q " + dir + "/q.npy --k " + dir + "/k.npy --v " + dir + "/v.npy --chunk 5 "
                               "--budget sqrt:2 --form " + form + " --out " + dir + "/o.npy");
        BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
        const auto out = idattn::npy::read(dir + "/o.npy", "o");
        BOOST_TEST_REQUIRE((out.shape == std::vector<std::size_t>{1, 2, 45, 3}));
        for (std::size_t h = 0; h < 2; ++h) {
            const KMat y = kvm_attention(xt::view(q, 0, h), xt::view(k, 0, h), xt::view(v, 0, h), {}, o);
            for (std::size_t i = 0; i < y.size(); ++i)
                BOOST_TEST(std::abs(out.data[h * y.size() + i] - y.flat(i)) <= 1e-12 * (1 + std::abs(y.flat(i))));
        }
    }
}

BOOST_AUTO_TEST_CASE(cli_kvm_bad_options) {
    const auto dir = idattn::test::temp_dir("clikvmbad");
    const std::vector<double> x(40, 0.5);
    idattn::npy::write(dir + "/x.npy", x.data(), {10, 4});
    const std::string base = "kvm --q " + dir + "/x.npy --k " + dir + "/x.npy --v " + dir + "/x.npy --out " + dir + "/o.npy";
    for (const auto& [args, expect] : std::vector<std::pair<std::string, std::string>>{
             {" --budget fixed", "expected fixed:R, sqrt:F or saturate:R"},
             {" --budget linear:4", "expected fixed:R"},
             {" --budget fixed:2.5", "whole number of rows"},
             {" --chunk 4 --sinks 4", "sinks = 4 but the initial state has C = 4 rows"},
             {" --form parallel", "unknown form 'parallel'"},
             {" --state-norm maybe", "--state-norm must be 'on' or 'off'"}}) {
        const auto r = run_cli(base + args);
        BOOST_TEST((r.exit_code == 1 && has(r.output, expect)), args << ": " << r.output);
    }
    BOOST_TEST(!idattn::test::file_exists(dir + "/o.npy"));
}

BOOST_AUTO_TEST_SUITE_END()
