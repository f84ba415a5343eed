// The .npy reader/writer: round trips and every malformed-file error.
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <sys/stat.h>

#include "api/common/npy.hpp"
#include "core/error.hpp"
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
        {"negative_dim", header("{'descr': '<f8', 'fortran_order': False, 'shape': (-8, 4), }"),
         "shape entry 0 is '-8': a negative dimension"},
        {"fractional_dim", header("{'descr': '<f8', 'fortran_order': False, 'shape': (2.5, 4), }"),
         "shape entry 0 is '2.5': not a non-negative integer"},
        {"huge_dim", header("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999, 4), }"),
         "far too large"},
        {"structured", header("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (2,), }"),
         "structured dtype"},
        {"not_a_dict", header("['descr', '<f8']"), "malformed header"},
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

// The header is the Python literal numpy writes: double quotes, other key
// orders and spacing are the same dict.
BOOST_AUTO_TEST_CASE(header_is_parsed_as_a_python_literal) {
    const auto dir = idattn::test::temp_dir("npyhdr");
    std::string data(16, '\0');
    const double one = 1.0, two = 2.0;
    std::memcpy(data.data(), &one, 8);
    std::memcpy(data.data() + 8, &two, 8);
    write_raw(dir + "/dq.npy", header("{\"shape\": (1,2),\"fortran_order\":False,  \"descr\": \"<f8\"}") + data);
    const auto a = npy::read(dir + "/dq.npy", "dq");
    BOOST_TEST((a.shape == std::vector<std::size_t>{1, 2}));
    BOOST_TEST(a.data[0] == 1.0);
    BOOST_TEST(a.data[1] == 2.0);
}

// numpy saves a.T of a C-order array in Fortran order: read back in C order.
BOOST_AUTO_TEST_CASE(fortran_order_is_converted_on_read) {
    const auto dir = idattn::test::temp_dir("npyf");
    // The (2, 3) array [[0, 1, 2], [3, 4, 5]] in Fortran order: column by column.
    const std::vector<double> f{0, 3, 1, 4, 2, 5};
    std::string data(f.size() * 8, '\0');
    std::memcpy(data.data(), f.data(), data.size());
    write_raw(dir + "/f.npy", header("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }") + data);
    const auto a = npy::read(dir + "/f.npy", "f");
    BOOST_TEST((a.shape == std::vector<std::size_t>{2, 3}));
    const std::vector<double> c{0, 1, 2, 3, 4, 5};
    BOOST_TEST(a.data == c, boost::test_tools::per_element());
}

// Not regular files are refused by name before anything is read; a file's
// declared size is checked against its real size before the data is read (a
// 6 GiB sparse file is refused at once, with the true byte count).
BOOST_AUTO_TEST_CASE(inputs_are_checked_before_they_are_read) {
    const auto dir = idattn::test::temp_dir("npyin");
    const auto expect_error = [](const std::string& path, const std::string& text) {
        try {
            npy::read(path, "--q");
            BOOST_ERROR("no error for " << path);
        } catch (const idattn::Error& e) {
            BOOST_TEST(message_has(e, text), "message was: " << e.what());
            BOOST_TEST(message_has(e, "--q"), "message was: " << e.what());
        }
    };
    expect_error(dir, "is a directory");
    expect_error("/dev/zero", "is not a regular file");
    const std::string fifo = dir + "/fifo.npy";
    BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    expect_error(fifo, "is not a regular file");  // and does not block waiting for a writer
    const std::string sparse = dir + "/sparse.npy";
    const std::string head = header("{'descr': '<f8', 'fortran_order': False, 'shape': (8, 4), }");
    write_raw(sparse, head + std::string(8 * 4 * 8, '\0'));
    const std::uintmax_t size = std::uintmax_t{6} << 30;
    std::filesystem::resize_file(sparse, size);
    expect_error(sparse, std::to_string(size - head.size() - 8 * 4 * 8) + " unexpected trailing bytes");
}

BOOST_AUTO_TEST_CASE(unwritable_output_is_an_error) {
    const double x = 1;
    BOOST_CHECK_THROW(npy::write("/nonexistent-dir/o.npy", &x, {1}), idattn::Error);
}

BOOST_AUTO_TEST_SUITE_END()
