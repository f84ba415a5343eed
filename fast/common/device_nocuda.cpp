// Compiled only when CMake found no CUDA toolkit: the fast backend does not
// exist in this build, and every caller is told so.
#include "fast/common/device.hpp"

namespace idattn::fast {

DeviceStatus device_status() {
    return {false, "built without the CUDA toolkit (configure found no nvcc), so the fast kernels do not exist in this build"};
}

bool built_with_cuda() { return false; }

}  // namespace idattn::fast
