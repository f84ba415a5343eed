// The .npy reader/writer: round trips and every malformed-file error.
#include <boost/test/unit_test.hpp>

#include <fstream>

#include "api/common/npy.hpp"
#include "ref/common/error.hpp"
#include "tests/common/cli_runner.hpp"

namespace npy = idattn::npy;

namespace {

bool message_has(const idattn::Error& e, const std::string& s) {
    return std::string(e.what()).find(s) != std::string::npos;
}

void write_raw(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
}

std::string header(const std::string& dict) {
    std::string h = dict;
    while ((10 + h.size() + 1) % 64) h += ' ';
    h += '\n';
    return std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(h.size() & 0xff) +
           static_cast<char>(h.size() >> 8) + h;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(npy_io)

BOOST_AUTO_TEST_CASE(round_trip_float64_and_float32) {
    const auto dir = idattn::test::temp_dir("npy");
    const std::vector<double> d{1.5, -2.25, 3e-300, 4e300, 0, -0.0};
    npy::write(dir + "/a.npy", d.data(), {2, 3});
    const auto a = npy::read(dir + "/a.npy", "a");
    BOOST_TEST(a.dtype == "float64");
    BOOST_TEST((a.shape == std::vector<std::size_t>{2, 3}));
    BOOST_TEST(a.data == d, boost::test_tools::per_element());
    const std::vector<float> f{1.5f, -2.25f, 1e-30f};
    npy::write(dir + "/b.npy", f.data(), {3});
    const auto b = npy::read(dir + "/b.npy", "b");
    BOOST_TEST(b.dtype == "float32");
    BOOST_TEST((b.shape == std::vector<std::size_t>{3}));
    for (std::size_t i = 0; i < f.size(); ++i) BOOST_TEST(b.data[i] == static_cast<double>(f[i]));
    BOOST_TEST(!idattn::test::file_exists(dir + "/a.npy.partial"));
}

BOOST_AUTO_TEST_CASE(missing_file_names_the_file) {
    try {
        npy::read("/nonexistent/q.npy", "--q (/nonexistent/q.npy)");
        BOOST_FAIL("no error");
    } catch (const idattn::Error& e) {
        BOOST_TEST(message_has(e, "--q"));
        BOOST_TEST(message_has(e, "does not exist"));
    }
}

BOOST_AUTO_TEST_CASE(malformed_files_are_rejected_with_reasons) {
    const auto dir = idattn::test::temp_dir("npybad");
    struct Case {
        std::string name, bytes, expect;
    };
    const std::string f8 = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }";
    const std::vector<Case> cases{
        {"not_npy", "hello world, not numpy", "magic"},
        {"int64", header("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }") + std::string(16, '\0'),
         "expected dtype float32 ('<f4') or float64 ('<f8'), found '<i8'"},
        {"fortran", header("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }") + std::string(32, '\0'),
         "Fortran order"},
        {"truncated", header(f8) + std::string(20, '\0'), "truncated: shape (2, 2) of float64 needs 32 bytes of data, found 20"},
        {"trailing", header(f8) + std::string(40, '\0'), "trailing"},
        {"empty_axis", header("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 2), }"), "empty axis"},
        {"scalar", header("{'descr': '<f8', 'fortran_order': False, 'shape': (), }") + std::string(8, '\0'), "scalar"},
        {"short_header", std::string("\x93NUMPY\x01\x00\xff\x00{'descr'", 18), "truncated header"},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            const std::string path = dir + "/" + c.name + ".npy";
            write_raw(path, c.bytes);
            try {
                npy::read(path, "--x");
                BOOST_ERROR("no error for " << c.name);
            } catch (const idattn::Error& e) {
                BOOST_TEST(message_has(e, c.expect), "message was: " << e.what());
                BOOST_TEST(message_has(e, path));
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(unwritable_output_is_an_error) {
    const double x = 1;
    BOOST_CHECK_THROW(npy::write("/nonexistent-dir/o.npy", &x, {1}), idattn::Error);
}

BOOST_AUTO_TEST_SUITE_END()
