// The CLI's own behaviour: help, unknown subcommands and options, info, compare.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <filesystem>

#include <sys/stat.h>

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

// Outputs: all or none, checked before anything is computed (reliability review
// root causes 3, 4, 8, 11).
BOOST_AUTO_TEST_CASE(outputs_are_all_or_none_and_checked_first) {
    const auto dir = idattn::test::temp_dir("cliout");
    const std::vector<double> x{0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8};
    idattn::npy::write(dir + "/x.npy", x.data(), {4, 2});
    const std::string feat = "features --map positive --x " + dir + "/x.npy --R 4 ";
    // A failing run (an unknown option) writes neither --save-w nor --out.
    auto r = run_cli(feat + "--save-w " + dir + "/w.npy --out " + dir + "/o.npy --bogus 1");
    BOOST_TEST(r.exit_code == 1, r.output);
    BOOST_TEST(has(r.output, "unknown option --bogus"), r.output);
    BOOST_TEST(!idattn::test::file_exists(dir + "/w.npy"));
    BOOST_TEST(!idattn::test::file_exists(dir + "/o.npy"));
    // Two outputs naming one file.
    r = run_cli(feat + "--save-w " + dir + "/o.npy --out " + dir + "/./o.npy");
    BOOST_TEST(r.exit_code == 1, r.output);
    BOOST_TEST(has(r.output, "--save-w and --out name the same file"), r.output);
    // A repeated option.
    r = run_cli(feat + "--out " + dir + "/a.npy --out " + dir + "/b.npy");
    BOOST_TEST(r.exit_code == 1, r.output);
    BOOST_TEST(has(r.output, "option --out is given more than once"), r.output);
    // A FIFO or a directory as --out is refused and left as it was.
    const std::string fifo = dir + "/fifo";
    BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    r = run_cli(feat + "--out " + fifo);
    BOOST_TEST(r.exit_code == 1, r.output);
    BOOST_TEST(has(r.output, "is not a regular file"), r.output);
    r = run_cli(feat + "--out " + dir);
    BOOST_TEST(has(r.output, "--out: '" + dir + "' is a directory"), r.output);
    r = run_cli(feat + "--out=");
    BOOST_TEST(has(r.output, "--out: the output path is empty"), r.output);
    // project: one output in a missing folder - none of the three is written.
    const std::vector<double> v{1, 2, 3, 4, 5, 6, 7, 8};
    idattn::npy::write(dir + "/v.npy", v.data(), {4, 2});
    r = run_cli("project --basis legs --M 2 --fk " + dir + "/x.npy --v " + dir + "/v.npy --out-u " + dir +
                "/u.npy --out-gamma " + dir + "/nodir/g.npy --out-eta " + dir + "/e.npy");
    BOOST_TEST(r.exit_code == 1, r.output);
    BOOST_TEST(has(r.output, "nodir' does not exist"), r.output);
    BOOST_TEST(!idattn::test::file_exists(dir + "/u.npy"));
    BOOST_TEST(!idattn::test::file_exists(dir + "/e.npy"));
    // And a good run writes both, with no temporary left.
    r = run_cli(feat + "--save-w " + dir + "/w.npy --out " + dir + "/o.npy");
    BOOST_TEST(r.exit_code == 0, r.output);
    BOOST_TEST(idattn::npy::read(dir + "/w.npy", "w").shape == (std::vector<std::size_t>{4, 2}));
    BOOST_TEST(idattn::npy::read(dir + "/o.npy", "o").shape == (std::vector<std::size_t>{4, 4}));
    std::size_t files = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
    BOOST_TEST(files == 5u);  // x, v, fifo, w, o
}

// A file-size limit (as on a full disk) makes the CLI fail with the reason,
// keep the previous output and leave no temporary.
BOOST_AUTO_TEST_CASE(a_failed_write_is_reported_and_keeps_the_old_output) {
    const auto dir = idattn::test::temp_dir("clifull");
    std::vector<double> x(4000 * 4, 0.5);
    idattn::npy::write(dir + "/x.npy", x.data(), {4000, 4});
    const std::vector<double> old{1, 2};
    idattn::npy::write(dir + "/o.npy", old.data(), {2});
    // ulimit applies to the shell that then runs idattn (run_cli prefixes the CLI path).
    const auto r = idattn::test::run_shell("ulimit -f 8; " + idattn::test::cli_path() + " features --map positive --x " +
                                           dir + "/x.npy --R 64 --out " + dir + "/o.npy");
    BOOST_TEST(r.exit_code == 1, r.output);
    BOOST_TEST(has(r.output, "disk full or file too large"), r.output);
    BOOST_TEST(idattn::npy::read(dir + "/o.npy", "o").data == old, boost::test_tools::per_element());
    std::size_t files = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
    BOOST_TEST(files == 2u);
}

// A count typed wrong is refused before anything is allocated, naming the
// option and the memory it would need (reliability review root causes 1, 6, 9):
// no crash, hang, allocator text or "internal error".
BOOST_AUTO_TEST_CASE(absurd_sizes_are_refused_naming_the_option) {
    const auto dir = idattn::test::temp_dir("clisize");
    const std::vector<double> x{0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8};
    for (const char* n : {"q", "k", "v"}) idattn::npy::write(dir + "/" + n + ".npy", x.data(), {4, 2});
    const std::string qkv = " --q " + dir + "/q.npy --k " + dir + "/k.npy --v " + dir + "/v.npy";
    const std::string out = " --out " + dir + "/o.npy";
    const std::string huge = "4611686018427387904";  // 2^62
    struct Case {
        std::string args, expect;
    };
    const std::vector<Case> cases{
        {"features --map positive --x " + dir + "/q.npy --R " + huge + out, "R = " + huge + " random frequencies needs"},
        {"linear" + qkv + " --R " + huge + out, "R = " + huge},
        {"interdomain" + qkv + " --R 4 --basis legs --M " + huge + out, "M = " + huge + " basis functions needs"},
        {"project --basis legs --M " + huge + " --fk " + dir + "/k.npy --v " + dir + "/v.npy --out-u " + dir +
             "/u.npy --out-gamma " + dir + "/g.npy --out-eta " + dir + "/e.npy",
         "M = " + huge},
        {"ssm --z " + dir + "/q.npy --M " + huge + out, "M = " + huge + " states needs"},
        {"ssm --z " + dir + "/q.npy --basis fourier --L " + huge + out, "L = " + huge},
        {"ssm --z " + dir + "/q.npy --basis legs --M " + huge + out, "M = " + huge},
        {"ssm --z " + dir + "/q.npy --basis legs --M 18446744073709551615" + out, "M = 18446744073709551615"},
        {"ssm --z " + dir + "/q.npy --basis legs --M 4 --legs-method euler --substeps 1000000000000" + out,
         "substeps = 1000000000000"},
        {"ssm-attention" + qkv + " --R 4 --M " + huge + out, "M = " + huge},
    };
    for (const auto& c : cases) {
        const auto r = run_cli(c.args);
        BOOST_TEST(r.exit_code == 1, c.args << "\n" << r.output);
        BOOST_TEST(has(r.output, c.expect), c.args << "\n" << r.output);
        BOOST_TEST(!has(r.output, "internal error"), r.output);
    }
    BOOST_TEST(!idattn::test::file_exists(dir + "/o.npy"));
}

// Inputs of 1e300 are finite, but the logits (or the exp features) overflow:
// an error naming the input, never a NaN/Inf file with exit 0, in every
// subcommand and backend (reliability review root cause 7).
BOOST_AUTO_TEST_CASE(overflowing_intermediates_are_errors_not_nan_files) {
    const auto dir = idattn::test::temp_dir("clinan");
    std::vector<double> big{0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8};
    const std::vector<double> v = big;
    for (auto& e : big) e *= 1e300;
    idattn::npy::write(dir + "/qb.npy", big.data(), {4, 2});
    idattn::npy::write(dir + "/v.npy", v.data(), {4, 2});
    const std::string qkv = " --q " + dir + "/qb.npy --k " + dir + "/qb.npy --v " + dir + "/v.npy";
    const std::string out = " --out " + dir + "/o.npy";
    // In float32 (naive32) the logits of inputs of 1e30 already overflow (1e60 > 3.4e38);
    // inputs beyond float32's range are refused before (messages_name_the_real_problem).
    std::vector<double> mid = v;
    for (auto& e : mid) e *= 1e30;
    idattn::npy::write(dir + "/qm.npy", mid.data(), {4, 2});
    const std::string qkv32 = " --q " + dir + "/qm.npy --k " + dir + "/qm.npy --v " + dir + "/v.npy";
    for (const std::string& args :
         {"softmax" + qkv + out, "softmax" + qkv32 + " --impl naive32" + out, "linear" + qkv + " --R 4" + out,
          "features --map rff --x " + dir + "/qb.npy --R 4" + out, "features --map taylor --x " + dir + "/qb.npy" + out}) {
        const auto r = run_cli(args);
        BOOST_TEST(r.exit_code == 1, args << "\n" << r.output);
        BOOST_TEST(has(r.output, "the output is not finite"), args << "\n" << r.output);
        BOOST_TEST(has(r.output, "the largest input magnitude is"), args << "\n" << r.output);
        BOOST_TEST(!idattn::test::file_exists(dir + "/o.npy"), args);
    }
}

// Options of another basis, form or map (CLI-conventions review 3, 4, 5, 7, 8):
// refused as "does not apply" (not "unknown option"), or ignored with a note
// where harmless; --help marks what is required and lists what is accepted.
BOOST_AUTO_TEST_CASE(options_that_do_not_apply_are_named) {
    const auto dir = idattn::test::temp_dir("cliapply");
    const std::vector<double> x{0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8};
    for (const char* n : {"q", "k", "v"}) idattn::npy::write(dir + "/" + n + ".npy", x.data(), {4, 2});
    const std::string z = " --z " + dir + "/q.npy --out " + dir + "/o.npy";
    auto r = run_cli("ssm --basis legs --M 4 --form chunked" + z);
    BOOST_TEST(r.exit_code == 1, r.output);
    BOOST_TEST(has(r.output, "--form does not apply here: --basis legs takes --M, --legs-method and --substeps"),
               r.output);
    r = run_cli("ssm --M 4 --legs-method euler" + z);
    BOOST_TEST(has(r.output, "--legs-method does not apply here: they belong to --basis legs"), r.output);
    r = run_cli("ssm --basis legs --M 4 --substeps 4" + z);
    BOOST_TEST(r.exit_code == 0, r.output);
    BOOST_TEST(has(r.output, "note: --substeps applies to --legs-method euler and bilinear only"), r.output);
    r = run_cli("ssm --M 4 --form recurrence --chunk 7" + z);
    BOOST_TEST(r.exit_code == 0, r.output);
    BOOST_TEST(has(r.output, "note: --chunk applies to --form chunked only"), r.output);
    r = run_cli("features --map taylor --x " + dir + "/q.npy --save-w " + dir + "/w.npy --out " + dir + "/o2.npy");
    BOOST_TEST(r.exit_code == 1, r.output);
    BOOST_TEST(has(r.output, "--w, --R and --save-w do not apply"), r.output);
    BOOST_TEST(!idattn::test::file_exists(dir + "/w.npy"));
    r = run_cli("features --map taylor --seed 3 --x " + dir + "/q.npy --out " + dir + "/o2.npy");
    BOOST_TEST(r.exit_code == 0, r.output);
    BOOST_TEST(has(r.output, "note: --seed does not apply to the deterministic taylor map"), r.output);
    const auto h = run_cli("project --help");
    BOOST_TEST(has(h.output, "--basis legs|gram|dct|fourier\n"), h.output);  // every basis, one complex convention
    BOOST_TEST(has(h.output, "--impl ref|naive32|fast"), h.output);
    BOOST_TEST(has(h.output, "(required)"), h.output);
    BOOST_TEST(!has(run_cli("ssm-attention --help").output, "legs"));
    BOOST_TEST(has(run_cli("features --help").output, "every cosine first, then every sine"));
    BOOST_TEST(has(run_cli("ssm --help").output, "multiply entry [n] by sqrt(n + 1)"));
    // Literal positive features that underflow to 0 are finite but carry nothing: said once.
    std::vector<double> far(4 * 64, 0.0);
    for (std::size_t i = 0; i < far.size(); i += 64) far[i] = 200.0;  // |x~|^2 / 2 = 2500 at d = 64
    idattn::npy::write(dir + "/far.npy", far.data(), {4, 64});
    r = run_cli("features --map positive --R 8 --x " + dir + "/far.npy --out " + dir + "/o3.npy");
    BOOST_TEST(r.exit_code == 0, r.output);
    BOOST_TEST(has(r.output, "4 of 4 rows have every feature exactly 0"), r.output);
}

// Messages that named the wrong thing (reliability review root cause 12).
BOOST_AUTO_TEST_CASE(messages_name_the_real_problem) {
    const auto dir = idattn::test::temp_dir("climsg");
    const std::vector<double> z{0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8};
    idattn::npy::write(dir + "/z.npy", z.data(), {4, 2});
    std::vector<double> zb = z;
    zb[0] = 1e300;
    idattn::npy::write(dir + "/zb.npy", zb.data(), {4, 2});
    const std::string io = " --z " + dir + "/z.npy --out " + dir + "/o.npy";
    auto r = run_cli("ssm --basis bogus" + io);
    BOOST_TEST(has(r.output, "'legs' (HiPPO-LegS), got 'bogus'"), r.output);
    r = run_cli("ssm --M 4 --delta 1e-320" + io);  // a subnormal step is a number
    BOOST_TEST(r.exit_code == 0, r.output);
    r = run_cli("ssm --M 4 --delta 1e308" + io);
    BOOST_TEST(r.exit_code == 1, r.output);
    BOOST_TEST(has(r.output, "overflows; the step Delta = 1e+308 is far too large"), r.output);
    r = run_cli("ssm --M 4 --impl naive32 --z " + dir + "/zb.npy --out " + dir + "/o.npy");
    BOOST_TEST(r.exit_code == 1, r.output);
    BOOST_TEST(has(r.output, "z element 0 = 1e+300 is beyond float32's range"), r.output);
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
    // --tol parsed whole, not with --baseline; a NaN reference cannot judge.
    const std::string rc = "compare --reference " + dir + "/ref.npy --candidate " + dir + "/good.npy";
    auto t = run_cli(rc + " --tol 1e-3abc");
    BOOST_TEST(t.exit_code == 1);
    BOOST_TEST(has(t.output, "tol must be a finite number >= 0, got '1e-3abc'"), t.output);
    t = run_cli(rc + " --tol 1e-3 --baseline " + dir + "/base.npy");
    BOOST_TEST(t.exit_code == 1);
    BOOST_TEST(has(t.output, "not both"), t.output);
    const std::vector<double> nan_ref{3, std::nan("")};
    idattn::npy::write(dir + "/nanref.npy", nan_ref.data(), {2});
    t = run_cli("compare --reference " + dir + "/nanref.npy --candidate " + dir + "/good.npy --tol 0.1");
    BOOST_TEST(t.exit_code == 1);
    BOOST_TEST(has(t.output, "the reference is not finite"), t.output);
}

BOOST_AUTO_TEST_SUITE_END()
