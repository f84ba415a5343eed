// The .npz reader/writer (api/common/npz.hpp): round trips, files written by
// numpy (np.savez, np.savez_compressed), every malformed archive or member
// refused with a message naming the file and the member, and atomic writes.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include <sys/stat.h>

#include "api/common/npz.hpp"
#include "core/error.hpp"
#include "tests/common/cli_runner.hpp"
#include "tests/common/file_limit.hpp"
#include "tests/common/messages.hpp"

namespace npz = idattn::npz;
using idattn::HostTensor;
using idattn::test::error_message;
using idattn::test::has;

namespace {

constexpr double k2p53 = 9007199254740992.0;  // 2^53

npz::Member member(const std::string& name, std::vector<std::size_t> shape, std::string dtype,
                   std::vector<double> data) {
    return {name, HostTensor{std::move(shape), std::move(dtype), std::move(data)}};
}

// Float64, float32 (values exact in float32), int64 (0-d and +-2^53), int32.
std::vector<npz::Member> sample() {
    return {member("w_q", {2, 3}, "float64", {1.5, -2.25, 3e-300, 4e300, 0, -0.1}),
            member("scale", {3}, "float32", {1.5, -2.25, 0.125}),
            member("heads", {}, "int64", {4}),
            member("steps", {2, 2}, "int64", {k2p53, -k2p53, 0, -7}),
            member("idx", {3}, "int32", {-2147483648.0, 0, 2147483647})};
}

std::string bytes_of(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Files in `dir` other than the ones named (temporaries left behind).
std::set<std::string> others(const std::string& dir, const std::set<std::string>& expected) {
    std::set<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        if (!expected.count(e.path().filename().string())) out.insert(e.path().filename().string());
    return out;
}

// Debian's interpreter with numpy (scripts/run.sh installs python3-numpy) runs `script` with `dir` as argv[1].
void run_python(const std::string& dir, const std::string& script) {
    const std::string file = dir + "/script.py";
    std::ofstream(file) << script;
    const auto r = idattn::test::run_shell("/usr/bin/python3 '" + file + "' '" + dir + "'");
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "/usr/bin/python3 (with numpy) failed:\n" << r.output);
}

// Writes, with numpy and zipfile, the archives the tests read: good ones from
// np.savez and np.savez_compressed, and one bad archive per refusal.
const char* const kMakeArchives = R"PY(
import io, struct, sys, warnings, zipfile
import numpy as np
d = sys.argv[1]
warnings.simplefilter("ignore")  # zipfile warns about the duplicate name, on purpose
def npy(a):
    b = io.BytesIO(); np.save(b, a, allow_pickle=True); return b.getvalue()
def archive(path, members, method=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in members:
            z.writestr(name, data)
good = dict(w=np.arange(6.0).reshape(2, 3), f=np.array([1.5, -2.25, 3.0], dtype=np.float32),
            t=np.asfortranarray(np.arange(6.0).reshape(2, 3)), heads=np.array(4, dtype=np.int64),
            big=np.array([2**53, -2**53, 7], dtype=np.int64), i=np.array([-3, 0, 2**31 - 1], dtype=np.int32))
np.savez(f"{d}/savez.npz", **good)
np.savez_compressed(f"{d}/compressed.npz", **good)
archive(f"{d}/empty.npz", [])
np.savez(f"{d}/complex.npz", w=np.ones(2), c=np.ones(2, dtype=np.complex128))
np.savez(f"{d}/object.npz", o=np.array([1, "x"], dtype=object))
np.savez(f"{d}/bool.npz", b=np.ones(2, dtype=bool))
np.savez(f"{d}/bigendian.npz", e=np.ones(2, dtype=">f8"))
np.savez(f"{d}/huge_int.npz", n=np.array([1, 2**53 + 1], dtype=np.int64))
np.save(f"{d}/plain.npy", np.ones(2))
open(f"{d}/text.npz", "w").write("not a zip archive at all\n")
archive(f"{d}/not_npy.npz", [("w.npy", npy(np.ones(2))), ("readme.txt", b"hello")])
archive(f"{d}/duplicate.npz", [("w.npy", npy(np.ones(2))), ("w.npy", npy(np.zeros(2)))])
archive(f"{d}/folder.npz", [("sub/w.npy", npy(np.ones(2)))])
archive(f"{d}/bzip2.npz", [("w.npy", npy(np.ones(2)))], zipfile.ZIP_BZIP2)
archive(f"{d}/short_data.npz", [("w.npy", npy(np.ones(3))[:-8])])
archive(f"{d}/bad_header.npz", [("w.npy", b"\x93NUMPY\x01\x00\x10\x00['descr', 1]    \n")])
raw = bytearray(open(f"{d}/savez.npz", "rb").read())
raw[raw.index(b"w.npy") + 5 + 130] ^= 0xFF  # a data byte of w: the CRC no longer matches
open(f"{d}/crc.npz", "wb").write(bytes(raw))
open(f"{d}/truncated.npz", "wb").write(bytes(raw[: len(raw) // 2]))
raw = bytearray(open(f"{d}/savez.npz", "rb").read())
struct.pack_into("<H", raw, raw.index(b"PK\x03\x04") + 26, 4)  # w's local header names "w.np"
open(f"{d}/inconsistent.npz", "wb").write(bytes(raw))
# One deflated member of 1 MiB of zeros (about 1 KiB compressed), then the same
# archive with its declared uncompressed size changed in both headers.
archive(f"{d}/zeros.npz", [("z.npy", npy(np.zeros(1 << 17)))], zipfile.ZIP_DEFLATED)
def declared(dst, size):
    raw = bytearray(open(f"{d}/zeros.npz", "rb").read())
    struct.pack_into("<I", raw, raw.index(b"PK\x03\x04") + 22, size)
    struct.pack_into("<I", raw, raw.index(b"PK\x01\x02") + 24, size)
    open(dst, "wb").write(bytes(raw))
declared(f"{d}/bomb.npz", 0xFFFFFF00)
declared(f"{d}/size_short.npz", 1000)
declared(f"{d}/size_long.npz", (1 << 20) + 128 + 4096)
)PY";

// The archives of kMakeArchives, made once for the whole suite.
const std::string& archives() {
    static const std::string dir = [] {
        const auto d = idattn::test::temp_dir("npzpy");
        run_python(d, kMakeArchives);
        return d;
    }();
    return dir;
}

// npz::read(path) fails with a message naming the file, the label, the member
// (unless `member` is empty) and every text of `expect`.
void expect_read_error(const std::string& path, const std::string& member, const std::vector<std::string>& expect) {
    const std::string m = error_message([&] { npz::read(path, "--params"); });
    BOOST_TEST_MESSAGE(m);
    BOOST_TEST(!m.empty(), "no error for " << path);
    BOOST_TEST(has(m, "--params from '" + path + "'"), "message was: " << m);
    if (!member.empty()) BOOST_TEST(has(m, "member '" + member + "' of --params"), "message was: " << m);
    for (const auto& e : expect) BOOST_TEST(has(m, e), "message was: " << m);
}

void check_numpy_sample(const std::vector<npz::Member>& m, const std::string& which) {
    BOOST_TEST_CONTEXT(which) {
        BOOST_REQUIRE_EQUAL(m.size(), 6u);
        const std::vector<std::string> names{"w", "f", "t", "heads", "big", "i"};
        for (std::size_t i = 0; i < names.size(); ++i) BOOST_TEST(m[i].name == names[i]);
        const std::vector<double> w{0, 1, 2, 3, 4, 5};
        BOOST_TEST(m[0].tensor.dtype == "float64");
        BOOST_TEST((m[0].tensor.shape == std::vector<std::size_t>{2, 3}));
        BOOST_TEST(m[0].tensor.data == w, boost::test_tools::per_element());
        BOOST_TEST(m[1].tensor.dtype == "float32");
        BOOST_TEST((m[1].tensor.data == std::vector<double>{1.5, -2.25, 3.0}));
        BOOST_TEST((m[2].tensor.shape == std::vector<std::size_t>{2, 3}));  // Fortran order, read in C order
        BOOST_TEST(m[2].tensor.data == w, boost::test_tools::per_element());
        BOOST_TEST(m[3].tensor.dtype == "int64");
        BOOST_TEST(m[3].tensor.shape.empty());
        BOOST_TEST((m[3].tensor.data == std::vector<double>{4}));
        BOOST_TEST((m[4].tensor.data == std::vector<double>{k2p53, -k2p53, 7}));
        BOOST_TEST(m[5].tensor.dtype == "int32");
        BOOST_TEST((m[5].tensor.data == std::vector<double>{-3, 0, 2147483647}));
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(npz_io)

BOOST_AUTO_TEST_CASE(round_trip_keeps_names_order_dtypes_and_values) {
    const auto dir = idattn::test::temp_dir("npz");
    const auto in = sample();
    npz::write(dir + "/p.npz", in);
    const auto out = npz::read(dir + "/p.npz", "params");
    BOOST_REQUIRE_EQUAL(out.size(), in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        BOOST_TEST_CONTEXT(in[i].name) {
            BOOST_TEST(out[i].name == in[i].name);
            BOOST_TEST(out[i].tensor.dtype == in[i].tensor.dtype);
            BOOST_TEST(out[i].tensor.shape == in[i].tensor.shape, boost::test_tools::per_element());
            BOOST_TEST(out[i].tensor.data == in[i].tensor.data, boost::test_tools::per_element());
        }
    }
    // A fixed timestamp: the same arrays give the same bytes.
    npz::write(dir + "/q.npz", in);
    BOOST_TEST((bytes_of(dir + "/p.npz") == bytes_of(dir + "/q.npz")));
    BOOST_TEST(others(dir, {"p.npz", "q.npz"}).empty());
}

// numpy reads what we write: same names, dtypes, shapes and values.
BOOST_AUTO_TEST_CASE(numpy_reads_what_is_written) {
    const auto dir = idattn::test::temp_dir("npznp");
    npz::write(dir + "/p.npz", sample());
    run_python(dir, R"PY(
import sys, numpy as np
z = np.load(sys.argv[1] + "/p.npz")
assert list(z.keys()) == ["w_q", "scale", "heads", "steps", "idx"], list(z.keys())
assert z["w_q"].dtype == np.float64 and z["w_q"].shape == (2, 3)
assert z["w_q"].tolist() == [[1.5, -2.25, 3e-300], [4e300, 0.0, -0.1]]
assert z["scale"].dtype == np.float32 and z["scale"].tolist() == [1.5, -2.25, 0.125]
assert z["heads"].dtype == np.int64 and z["heads"].shape == () and int(z["heads"]) == 4
assert z["steps"].dtype == np.int64 and z["steps"].tolist() == [[2**53, -2**53], [0, -7]]
assert z["idx"].dtype == np.int32 and z["idx"].tolist() == [-2**31, 0, 2**31 - 1]
)PY");
}

BOOST_AUTO_TEST_CASE(reads_np_savez_and_np_savez_compressed) {
    const auto& dir = archives();
    check_numpy_sample(npz::read(dir + "/savez.npz", "savez"), "np.savez");
    check_numpy_sample(npz::read(dir + "/compressed.npz", "compressed"), "np.savez_compressed");
    BOOST_TEST(npz::read(dir + "/empty.npz", "empty").empty());
}

// Every bad archive or member: an Error naming the file, the member where
// there is one, and the reason.
BOOST_AUTO_TEST_CASE(bad_archives_are_refused_naming_file_and_member) {
    const auto& dir = archives();
    struct Case {
        std::string file, member;
        std::vector<std::string> expect;  // every one must appear
    };
    const std::vector<Case> cases{
        {"complex.npz", "c.npy", {"expected dtype float32 ('<f4'), float64 ('<f8'), int64 ('<i8') or int32", "'<c16'"}},
        {"object.npz", "o.npy", {"found '|O'", "pickled Python objects are never loaded"}},
        {"bool.npz", "b.npy", {"found '|b1'"}},
        {"bigendian.npz", "e.npy", {"found '>f8'", "big-endian"}},
        {"huge_int.npz", "n.npy", {"9007199254740993", "beyond 2^53"}},
        {"not_npy.npz", "readme.txt", {"is not a .npy array"}},
        {"duplicate.npz", "w.npy", {"appears twice"}},
        {"folder.npz", "sub/w.npy", {"is in a folder"}},
        {"bzip2.npz", "w.npy", {"zip method 12", "only stored (np.savez) and deflated"}},
        {"short_data.npz", "w.npy", {"truncated: shape (3,) of float64 needs 24 bytes of data, found 16"}},
        {"bad_header.npz", "w.npy", {"malformed header"}},
        {"crc.npz", "w.npy", {"is corrupt", "CRC"}},
        {"bomb.npz", "z.npy", {"declares an uncompressed size of 4294967040 bytes", "zip bomb"}},
        {"size_short.npz", "z.npy", {"holds more than the 1000 bytes the archive declares"}},
        {"size_long.npz", "z.npy", {"is truncated: the archive declares 1052800 bytes, found 1048704"}},
        {"text.npz", "", {"not a zip archive"}},
        {"plain.npy", "", {"not a zip archive"}},
        {"truncated.npz", "", {"not a zip archive, or one cut short"}},
        {"inconsistent.npz", "", {"the zip archive is corrupt or truncated"}},
    };
    for (const auto& c : cases)
        BOOST_TEST_CONTEXT(c.file) { expect_read_error(dir + "/" + c.file, c.member, c.expect); }
}

// Not regular files are refused by name before anything is read.
BOOST_AUTO_TEST_CASE(inputs_that_are_not_files_are_refused) {
    const auto dir = idattn::test::temp_dir("npzin");
    const std::string fifo = dir + "/fifo.npz";
    BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    expect_read_error(dir + "/missing.npz", "", {"does not exist"});
    expect_read_error(dir, "", {"is a directory, not a .npz file"});
    expect_read_error(fifo, "", {"is not a regular file"});  // and does not block waiting for a writer
    expect_read_error("/dev/zero", "", {"is not a regular file"});
}

// Refused before anything is written: the folder keeps only the old file, unchanged.
BOOST_AUTO_TEST_CASE(bad_members_are_refused_before_writing) {
    const auto dir = idattn::test::temp_dir("npzbad");
    const std::string path = dir + "/p.npz";
    npz::write(path, sample());
    const std::string before = bytes_of(path);
    const auto ok = member("ok", {1}, "float64", {1});
    struct Case {
        std::vector<npz::Member> members;
        std::string expect;
    };
    const std::vector<Case> cases{
        {{}, "no arrays to write"},
        {{ok, member("", {1}, "float64", {1})}, "an array has an empty name"},
        {{ok, member("a/b", {1}, "float64", {1})}, "the array name 'a/b' contains '/'"},
        {{ok, member(std::string("a\0b", 3), {1}, "float64", {1})}, "an array name contains a NUL character"},
        {{ok, member("ok", {1}, "float64", {2})}, "two arrays are named 'ok'"},
        {{ok, member("c", {2}, "complex128", {1, 2})}, "member 'c': cannot write dtype 'complex128'"},
        {{ok, member("n", {2}, "int64", {1, 1.5})}, "member 'n': value 1.5 at flat index 1 is not an integer"},
        {{ok, member("n", {1}, "int64", {2 * k2p53})},
         "member 'n': value 18014398509481984 at flat index 0 is not an integer in "
         "[-9007199254740992, 9007199254740992] (dtype int64"},
        {{ok, member("n", {1}, "int32", {4294967296.0})},
         "member 'n': value 4294967296 at flat index 0 is not an integer in [-2147483648, 2147483647] (dtype int32)"},
        {{ok, member("n", {1}, "int64", {NAN})}, "member 'n': value nan"},
        {{ok, member("f", {1}, "float32", {1e300})},
         "member 'f': value 1.0000000000000001e+300 at flat index 0 is beyond float32's range"},
        {{ok, member("s", {2, 2}, "float64", {1, 2, 3})}, "member 's': has 3 values but its shape (2, 2) needs 4"},
        {{ok, member("e", {2, 0}, "float64", {})}, "member 'e': shape (2, 0) has an empty axis 1"},
    };
    for (std::size_t i = 0; i < cases.size(); ++i) {
        BOOST_TEST_CONTEXT("case " << i << ": " << cases[i].expect) {
            const std::string m = error_message([&] { npz::write(path, cases[i].members); });
            BOOST_TEST(has(m, cases[i].expect), "message was: " << m);
            BOOST_TEST(has(m, "'" + path + "'"), "message was: " << m);
        }
    }
    BOOST_TEST((bytes_of(path) == before));
    BOOST_TEST(others(dir, {"p.npz"}).empty());
}

// A missing folder or a directory as the target: refused, nothing created.
BOOST_AUTO_TEST_CASE(bad_output_paths_are_refused) {
    const auto dir = idattn::test::temp_dir("npzout");
    std::string m = error_message([&] { npz::write(dir + "/nodir/p.npz", sample()); });
    BOOST_TEST(has(m, "the folder '" + dir + "/nodir' does not exist"), m);
    m = error_message([&] { npz::write(dir, sample()); });
    BOOST_TEST(has(m, "is a directory"), m);
    BOOST_TEST(others(dir, {}).empty());
}

// Past a file-size limit (as on a full disk) the write fails with a clear
// message, the previous file is unchanged and no temporary is left.
BOOST_AUTO_TEST_CASE(a_failed_write_keeps_the_previous_file) {
    const auto dir = idattn::test::temp_dir("npzfull");
    const std::string path = dir + "/p.npz";
    npz::write(path, sample());
    const std::string before = bytes_of(path);
    const std::vector<npz::Member> big{member("big", {100000}, "float64", std::vector<double>(100000, 7.0))};
    const std::string m = idattn::test::error_under_file_size_limit([&] { npz::write(path, big); });
    BOOST_TEST(has(m, "disk full or file too large"), m);
    BOOST_TEST(has(m, "previous file, if any, is unchanged"), m);
    BOOST_TEST((bytes_of(path) == before));
    BOOST_TEST(others(dir, {"p.npz"}).empty());
}

BOOST_AUTO_TEST_SUITE_END()
