// The entry point of every test executable.
//
// A CUDA test executable (IDATTN_TEST_NEEDS_CUDA) with no usable device prints
// why and exits 77, which CTest reports as "Skipped" - visibly, with the
// reason in the test's output - instead of passing vacuously. Listing the
// test cases (--list_content, used at build time) never needs a device.
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "fast/common/device.hpp"

namespace {

void skip_without_device(int argc, char* argv[]) {
    if (!IDATTN_TEST_NEEDS_CUDA) return;
    for (int i = 1; i < argc; ++i)
        if (std::strncmp(argv[i], "--list_content", 14) == 0 || std::strcmp(argv[i], "--help") == 0) return;
    const auto st = idattn::fast::device_status();
    if (!st.available) {
        std::printf("SKIPPED %s: %s\n", IDATTN_TEST_MODULE, st.detail.c_str());
        std::fflush(stdout);
        std::exit(77);
    }
    std::printf("CUDA device: %s\n", st.detail.c_str());
}

}  // namespace

#ifdef BOOST_TEST_DYN_LINK
// Shared Boost.Test library: our main, the `bool init()` API.
bool init_unit_test() {
    boost::unit_test::framework::master_test_suite().p_name.value = IDATTN_TEST_MODULE;
    return true;
}

int main(int argc, char* argv[]) {
    skip_without_device(argc, argv);
    return boost::unit_test::unit_test_main(&init_unit_test, argc, argv);
}
#else
// Debian's static library (GPU bundle, IDATTN_STATIC_DEPS) brings its own
// main(), which calls this classic init function.
boost::unit_test::test_suite* init_unit_test_suite(int argc, char* argv[]) {
    skip_without_device(argc, argv);
    boost::unit_test::framework::master_test_suite().p_name.value = IDATTN_TEST_MODULE;
    return nullptr;
}
#endif
