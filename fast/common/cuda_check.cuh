// Error checking and an owning device buffer for the host side of the CUDA
// code. Every CUDA runtime call in the project goes through
// IDATTN_CUDA_CHECK (every cuBLAS call through IDATTN_CUBLAS_CHECK), so a
// failure becomes an idattn::Error that names the call, the place and CUDA's
// own description, instead of a silent bad result.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>

#include "core/error.hpp"

namespace idattn::fast::detail {

// "CUDA error: cudaMalloc(&p, 64) returned cudaErrorMemoryAllocation (2):
//  out of memory [at fast/x.cu:12]"
[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line) {
    throw ::idattn::Error(std::string("CUDA error: ") + expr + " returned " + cudaGetErrorName(err) + " (" +
                          std::to_string(static_cast<int>(err)) + "): " + cudaGetErrorString(err) + " [at " +
                          file + ":" + std::to_string(line) + "]");
}

}  // namespace idattn::fast::detail

// Evaluates a cudaError_t expression once; throws idattn::Error unless it is
// cudaSuccess. After a kernel launch use IDATTN_CUDA_CHECK(cudaGetLastError()).
#define IDATTN_CUDA_CHECK(expr)                                                               \
    do {                                                                                      \
        const cudaError_t idattn_cuda_err_ = (expr);                                          \
        if (idattn_cuda_err_ != cudaSuccess)                                                  \
            ::idattn::fast::detail::throw_cuda_error(idattn_cuda_err_, #expr, __FILE__, __LINE__); \
    } while (0)

namespace idattn::fast::detail {

// "cuBLAS error: cublasSgemm(...) returned CUBLAS_STATUS_INVALID_VALUE (7): an
//  invalid numeric value was used as an argument [at fast/x.cu:12]"
[[noreturn]] inline void throw_cublas_error(cublasStatus_t st, const char* expr, const char* file, int line) {
    throw ::idattn::Error(std::string("cuBLAS error: ") + expr + " returned " + cublasGetStatusName(st) + " (" +
                          std::to_string(static_cast<int>(st)) + "): " + cublasGetStatusString(st) + " [at " +
                          file + ":" + std::to_string(line) + "]");
}

}  // namespace idattn::fast::detail

// The same for cuBLAS: evaluates a cublasStatus_t expression once; throws
// idattn::Error, naming the status, unless it is CUBLAS_STATUS_SUCCESS.
#define IDATTN_CUBLAS_CHECK(expr)                                                                     \
    do {                                                                                              \
        const cublasStatus_t idattn_cublas_st_ = (expr);                                              \
        if (idattn_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                               \
            ::idattn::fast::detail::throw_cublas_error(idattn_cublas_st_, #expr, __FILE__, __LINE__); \
    } while (0)

namespace idattn::fast {

// Owns `size()` elements of T in device memory (cudaMalloc / cudaFree).
// Move-only. The contents are uninitialised until written.
template <class T>
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(std::size_t count) : size_(count) {
        if (count > 0) IDATTN_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr_), count * sizeof(T)));
    }
    ~DeviceBuffer() {
        if (ptr_ != nullptr) (void)cudaFree(ptr_);  // a destructor must not throw
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    DeviceBuffer(DeviceBuffer&& other) noexcept
        : ptr_(std::exchange(other.ptr_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
        if (this != &other) {
            if (ptr_ != nullptr) (void)cudaFree(ptr_);
            ptr_ = std::exchange(other.ptr_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }

    T* data() { return ptr_; }
    const T* data() const { return ptr_; }
    std::size_t size() const { return size_; }
    std::size_t bytes() const { return size_ * sizeof(T); }

    // Copies `count` elements (default: all) from host memory into the buffer.
    void copy_from_host(const T* src, std::size_t count) {
        check_count(count, "copy_from_host");
        if (count > 0) IDATTN_CUDA_CHECK(cudaMemcpy(ptr_, src, count * sizeof(T), cudaMemcpyHostToDevice));
    }
    void copy_from_host(const T* src) { copy_from_host(src, size_); }

    // Copies `count` elements (default: all) from the buffer into host memory.
    void copy_to_host(T* dst, std::size_t count) const {
        check_count(count, "copy_to_host");
        if (count > 0) IDATTN_CUDA_CHECK(cudaMemcpy(dst, ptr_, count * sizeof(T), cudaMemcpyDeviceToHost));
    }
    void copy_to_host(T* dst) const { copy_to_host(dst, size_); }

    // Sets every byte of the buffer to `byte` (0xFF in float32 is a NaN: the
    // poison written before a kernel that must overwrite every element).
    void fill_bytes(int byte) {
        if (size_ > 0) IDATTN_CUDA_CHECK(cudaMemset(ptr_, byte, bytes()));
    }

private:
    void check_count(std::size_t count, const char* what) const {
        if (count > size_)
            throw ::idattn::Error(std::string("DeviceBuffer::") + what + ": " + std::to_string(count) +
                                  " elements requested but the buffer holds " + std::to_string(size_));
    }

    T* ptr_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace idattn::fast
