// Writing .npy files: atomic, checked, all or none (api/common/npy.hpp).
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include "api/common/npy.hpp"
#include "core/error.hpp"
#include "tests/common/cli_runner.hpp"
#include "tests/common/file_limit.hpp"
#include "tests/common/messages.hpp"

namespace npy = idattn::npy;
using idattn::test::has;

namespace {

std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const idattn::Error& e) {
        return e.what();
    }
    return "(no error)";
}

// Files in `dir` other than the ones named (temporaries left behind).
std::vector<std::string> others(const std::string& dir, const std::set<std::string>& expected) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        if (!expected.count(e.path().filename().string())) out.push_back(e.path().filename().string());
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(npy_write)

// A directory, a FIFO, an empty path, a missing folder are refused before
// anything is written, and a FIFO is never replaced.
BOOST_AUTO_TEST_CASE(bad_output_paths_are_refused_by_name) {
    const auto dir = idattn::test::temp_dir("npyout");
    const std::string fifo = dir + "/fifo.npy";
    BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    const double x = 1;
    std::string m = error_of([&] { npy::check_output("", "--out"); });
    BOOST_TEST(has(m, "--out: the output path is empty"), m);
    m = error_of([&] { npy::check_output(dir, "--out"); });
    BOOST_TEST(has(m, "is a directory"), m);
    m = error_of([&] { npy::check_output(dir + "/sub/", "--out"); });
    BOOST_TEST(has(m, "names a directory"), m);
    m = error_of([&] { npy::write(fifo, &x, {1}); });
    BOOST_TEST(has(m, "is not a regular file"), m);
    struct stat st {};
    BOOST_TEST((::stat(fifo.c_str(), &st) == 0 && S_ISFIFO(st.st_mode)));  // still the FIFO
    m = error_of([&] { npy::write(dir + "/nodir/o.npy", &x, {1}); });
    BOOST_TEST(has(m, "the folder '" + dir + "/nodir' does not exist"), m);
    BOOST_TEST(others(dir, {"fifo.npy"}).empty());
}

// Past a file-size limit (as on a full disk) the write fails with a clear
// message, the previous file is unchanged and no temporary is left.
BOOST_AUTO_TEST_CASE(a_failed_write_keeps_the_previous_file) {
    const auto dir = idattn::test::temp_dir("npyfull");
    const std::string path = dir + "/o.npy";
    const std::vector<double> old{1, 2, 3};
    npy::write(path, old.data(), {3});
    const std::vector<double> big(100000, 7.0);
    const std::string m =
        idattn::test::error_under_file_size_limit([&] { npy::write(path, big.data(), {big.size()}); });
    BOOST_TEST(has(m, "disk full or file too large"), m);
    BOOST_TEST(has(m, "previous file, if any, is unchanged"), m);
    const auto back = npy::read(path, "o");
    BOOST_TEST(back.data == old, boost::test_tools::per_element());
    BOOST_TEST(others(dir, {"o.npy"}).empty());
}

// Two writers to one path: every end state is one complete file from one of
// them (unique temporaries; rename is atomic), never a mix, never an error.
BOOST_AUTO_TEST_CASE(concurrent_writers_leave_one_complete_file) {
    const auto dir = idattn::test::temp_dir("npyrace");
    const std::string path = dir + "/s.npy";
    const std::vector<double> a(20000, 1.0), b(15000, 2.0);
    for (int trial = 0; trial < 20; ++trial) {
        std::string ea, eb;
        std::thread ta([&] { ea = error_of([&] { npy::write(path, a.data(), {100, 200}); }); });
        std::thread tb([&] { eb = error_of([&] { npy::write(path, b.data(), {100, 150}); }); });
        ta.join();
        tb.join();
        BOOST_TEST(ea == "(no error)");
        BOOST_TEST(eb == "(no error)");
        const auto r = npy::read(path, "s");
        const bool is_a = r.shape == std::vector<std::size_t>{100, 200} && r.data == a;
        const bool is_b = r.shape == std::vector<std::size_t>{100, 150} && r.data == b;
        BOOST_TEST((is_a || is_b), "trial " << trial << ": the file is neither writer's output");
    }
    BOOST_TEST(others(dir, {"s.npy"}).empty());
}

// write_all: every output or none; two outputs naming one file are refused
// before anything is written.
BOOST_AUTO_TEST_CASE(write_all_is_all_or_none) {
    const auto dir = idattn::test::temp_dir("npyall");
    idattn::HostTensor t{{2}, "float64", {1, 2}};
    std::string m = error_of([&] { npy::write_all({{dir + "/a.npy", &t}, {dir + "/missing/b.npy", &t}}); });
    BOOST_TEST(has(m, "does not exist"), m);
    BOOST_TEST(others(dir, {}).empty());  // a.npy not written either
    m = error_of([&] { npy::write_all({{dir + "/a.npy", &t}, {dir + "/./a.npy", &t}}); });
    BOOST_TEST(has(m, "two outputs name the same file"), m);
    BOOST_TEST(others(dir, {}).empty());
    idattn::HostTensor f{{2}, "float32", {1.5, 2.5}};
    npy::write_all({{dir + "/a.npy", &t}, {dir + "/b.npy", &f}});
    BOOST_TEST(npy::read(dir + "/a.npy", "a").dtype == "float64");
    BOOST_TEST(npy::read(dir + "/b.npy", "b").dtype == "float32");
    BOOST_TEST(others(dir, {"a.npy", "b.npy"}).empty());
}

// Ctrl-C while the CLI writes: the temporary is removed, the previous file is
// untouched and the process ends as SIGINT would have (status 130 in a shell).
// The output (512 MiB of S4D-free Fourier states) takes long enough to write
// that the shell catches its temporary on disk and interrupts it there.
BOOST_AUTO_TEST_CASE(sigint_during_a_write_leaves_the_previous_file_and_no_temporary) {
    const auto dir = idattn::test::temp_dir("npysigint");
    const std::vector<double> z(2048 * 8, 0.5), old(6, 7.0);
    npy::write(dir + "/z.npy", z.data(), {2048, 8});
    npy::write(dir + "/o.npy", old.data(), {2, 3});
    const std::string script =
        "cd " + dir + "; " + idattn::test::cli_path() +
        " ssm --basis fourier --L 2048 --alpha 0.1 --z z.npy --out o.npy & pid=$!; "
        "while ! ls o.npy.tmp-* >/dev/null 2>&1; do kill -0 $pid 2>/dev/null || break; sleep 0.001; done; "
        "if ls o.npy.tmp-* >/dev/null 2>&1; then echo caught; fi; kill -INT $pid 2>/dev/null; wait $pid; "
        "echo status=$?";
    const auto r = idattn::test::run_shell(script);
    BOOST_TEST_REQUIRE(has(r.output, "caught"), "the write finished before the shell saw its temporary: " << r.output);
    BOOST_TEST(has(r.output, "status=130"), r.output);
    const auto kept = npy::read(dir + "/o.npy", "o");
    BOOST_TEST((kept.shape == std::vector<std::size_t>{2, 3} && kept.data == old), "the previous o.npy changed");
    BOOST_TEST(others(dir, {"z.npy", "o.npy"}).empty(), "a temporary was left behind");
}

BOOST_AUTO_TEST_SUITE_END()
