// The CLI's own behaviour: help, unknown subcommands and options, info, compare.
#include <boost/test/unit_test.hpp>

#include "api/common/npy.hpp"
#include "tests/common/cli_runner.hpp"
#include "tests/common/messages.hpp"

using idattn::test::has;
using idattn::test::run_cli;

BOOST_AUTO_TEST_SUITE(cli_general)

BOOST_AUTO_TEST_CASE(help_lists_subcommands_by_chapter) {
    const auto r = run_cli("--help");
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(has(r.output, "softmax"), r.output);
    BOOST_TEST(has(r.output, "[01-softmax-attention]"), r.output);
    BOOST_TEST(has(r.output, "compare"), r.output);
    const auto s = run_cli("softmax --help");
    BOOST_TEST(s.exit_code == 0);
    BOOST_TEST(has(s.output, "--causal"), s.output);
    BOOST_TEST(has(s.output, "--impl"), s.output);
}

BOOST_AUTO_TEST_CASE(unknown_subcommand_and_option_are_errors) {
    const auto r = run_cli("nosuch");
    BOOST_TEST(r.exit_code == 2);
    BOOST_TEST(has(r.output, "unknown subcommand 'nosuch'"), r.output);
    const auto o = run_cli("info --bogus 3");
    BOOST_TEST(o.exit_code == 1);
    BOOST_TEST(has(o.output, "unknown option --bogus"), o.output);
    const auto m = run_cli("softmax --q a.npy");
    BOOST_TEST(m.exit_code == 1);
    BOOST_TEST(has(m.output, "--q"), m.output);
}

BOOST_AUTO_TEST_CASE(info_reports_cuda_status) {
    const auto r = run_cli("info");
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(has(r.output, "CUDA device:"), r.output);
}

BOOST_AUTO_TEST_CASE(compare_applies_the_rule_and_sets_the_exit_code) {
    const auto dir = idattn::test::temp_dir("cmp");
    const std::vector<double> ref{3, 4}, base{3, 4.05}, good{3, 4.09}, bad{3, 4.2};
    idattn::npy::write(dir + "/ref.npy", ref.data(), {2});
    idattn::npy::write(dir + "/base.npy", base.data(), {2});
    idattn::npy::write(dir + "/good.npy", good.data(), {2});
    idattn::npy::write(dir + "/bad.npy", bad.data(), {2});
    const std::string common = "compare --reference " + dir + "/ref.npy --baseline " + dir + "/base.npy --candidate ";
    const auto g = run_cli(common + dir + "/good.npy");
    BOOST_TEST(g.exit_code == 0, g.output);
    BOOST_TEST(has(g.output, "PASS"), g.output);
    const auto b = run_cli(common + dir + "/bad.npy");
    BOOST_TEST(b.exit_code == 1, b.output);
    BOOST_TEST(has(b.output, "FAIL"), b.output);
    const auto n = run_cli("compare --reference " + dir + "/ref.npy --candidate " + dir + "/good.npy");
    BOOST_TEST(n.exit_code == 1);
    BOOST_TEST(has(n.output, "--baseline"), n.output);
}

BOOST_AUTO_TEST_SUITE_END()
