// Is there a CUDA device to run the fast kernels on? Plain C++ header: the
// CLI, the Python module and the tests include it without the CUDA toolkit.
#pragma once

#include <string>

namespace idattn::fast {

struct DeviceStatus {
    bool available = false;
    // When available: "NVIDIA H100 80GB HBM3 (sm_90, driver 13.0)".
    // Otherwise the reason, e.g. "no CUDA device: cudaGetDeviceCount returned
    // cudaErrorInsufficientDriver (35)" or "built without the CUDA toolkit".
    std::string detail;
};

// Queried once and cached; never throws.
DeviceStatus device_status();

// True when this build compiled the CUDA kernels.
bool built_with_cuda();

}  // namespace idattn::fast
