// The main of every test executable.
//
// A CUDA test executable (IDATTN_TEST_NEEDS_CUDA) with no usable device prints
// why and exits 77, which CTest reports as "Skipped" - visibly, with the
// reason in the test's output - instead of passing vacuously. Listing the
// test cases (--list_content, used at build time) never needs a device.
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <cstring>

#include "fast/common/device.hpp"

bool init_unit_test() {
    boost::unit_test::framework::master_test_suite().p_name.value = IDATTN_TEST_MODULE;
    return true;
}

int main(int argc, char* argv[]) {
    if (IDATTN_TEST_NEEDS_CUDA) {
        bool listing = false;
        for (int i = 1; i < argc; ++i)
            if (std::strncmp(argv[i], "--list_content", 14) == 0 || std::strcmp(argv[i], "--help") == 0) listing = true;
        if (!listing) {
            const auto st = idattn::fast::device_status();
            if (!st.available) {
                std::printf("SKIPPED %s: %s\n", IDATTN_TEST_MODULE, st.detail.c_str());
                return 77;
            }
            std::printf("CUDA device: %s\n", st.detail.c_str());
        }
    }
    return boost::unit_test::unit_test_main(&init_unit_test, argc, argv);
}
