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
#include <string>

#include "fast/common/device.hpp"

namespace {

bool is_listing_or_help(const char* arg) {
    return std::strncmp(arg, "--list_content", 14) == 0 || std::strcmp(arg, "--help") == 0;
}

// The command line as the process received it. The static Boost.Test main()
// removes the options it knows (--list_content among them) before it calls
// init_unit_test_suite, so argv there no longer shows them.
bool command_line_lists_or_helps() {
    std::FILE* f = std::fopen("/proc/self/cmdline", "rb");
    if (!f) return false;
    std::string arg;
    bool found = false;
    for (int c = std::fgetc(f); c != EOF; c = std::fgetc(f)) {
        if (c != 0) {
            arg.push_back(static_cast<char>(c));
            continue;
        }
        found = found || is_listing_or_help(arg.c_str());
        arg.clear();
    }
    std::fclose(f);
    return found || is_listing_or_help(arg.c_str());
}

void skip_without_device(int argc, char* argv[]) {
    if (!IDATTN_TEST_NEEDS_CUDA) return;
    for (int i = 1; i < argc; ++i)
        if (is_listing_or_help(argv[i])) return;
    if (command_line_lists_or_helps()) return;
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
