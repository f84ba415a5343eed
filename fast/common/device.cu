// Compiled when CMake found the CUDA toolkit: asks the runtime whether there is
// a device, once, and describes it (or says why there is none).
#include "fast/common/device.hpp"

#include <cuda_runtime.h>

#include <exception>
#include <string>

namespace idattn::fast {

namespace {

std::string describe_error(const char* call, cudaError_t err) {
    return std::string(call) + " returned " + cudaGetErrorName(err) + " (" + std::to_string(static_cast<int>(err)) +
           ")";
}

DeviceStatus query_device() {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();  // clear the error so that later calls do not report it again
        return {false, "no CUDA device: " + describe_error("cudaGetDeviceCount", err)};
    }
    if (count <= 0) return {false, "no CUDA device: cudaGetDeviceCount found 0 devices"};

    int dev = 0;
    err = cudaGetDevice(&dev);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return {false, "no usable CUDA device: " + describe_error("cudaGetDevice", err)};
    }
    cudaDeviceProp prop{};
    err = cudaGetDeviceProperties(&prop, dev);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return {false, "no usable CUDA device: " + describe_error("cudaGetDeviceProperties", err)};
    }
    int major = 0, minor = 0, sms = 0, driver = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        cudaDriverGetVersion(&driver) != cudaSuccess) {
        err = cudaGetLastError();
        return {false, "no usable CUDA device: querying device attributes failed with " +
                           std::string(cudaGetErrorName(err))};
    }
    // "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, driver 13.0)"
    std::string detail = std::string(prop.name) + " (sm_" + std::to_string(major) + std::to_string(minor) + ", " +
                         std::to_string(sms) + " SMs, driver " + std::to_string(driver / 1000) + "." +
                         std::to_string((driver % 1000) / 10) + ")";
    if (count > 1) detail += " [device " + std::to_string(dev) + " of " + std::to_string(count) + "]";
    return {true, detail};
}

}  // namespace

DeviceStatus device_status() {
    static const DeviceStatus status = []() noexcept {
        try {
            return query_device();
        } catch (const std::exception& e) {  // only std::bad_alloc is possible here
            return DeviceStatus{false, std::string("no CUDA device: querying it failed: ") + e.what()};
        } catch (...) {
            return DeviceStatus{false, "no CUDA device: querying it failed"};
        }
    }();
    return status;
}

bool built_with_cuda() { return true; }

}  // namespace idattn::fast
