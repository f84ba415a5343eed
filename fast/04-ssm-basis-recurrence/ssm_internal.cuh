// Chapter 4, fast backend: host-side helpers shared by the .cu files of this
// folder (not part of the public interface, which is ssm.hpp).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "fast/04-ssm-basis-recurrence/ssm_device.cuh"

namespace idattn::fast::ssm_detail {

// Common checks of the device entry points (throw idattn::Error naming `what`):
// non-null pointers are checked by the callers; here the sizes.
void check_ssm_sizes(const std::string& what, std::int64_t hp, std::int64_t bh, std::int64_t n, std::int64_t m,
                     std::int64_t c);

// Passes 1 and 2 of eq:4.chunk for every batch-head: h (bh, nchunks, M, C)
// receives H_j, the state entering chunk j. nchunks = ceil(n / chunk).
void launch_chunk_entries(const float2* lambda, const float2* bbar, int hp, const Channels& ch, float2* h, int bh,
                          int n, int M, int chunk, cudaStream_t s);

// A stream-ordered device buffer (cudaMallocAsync / cudaFreeAsync on the
// launch stream): the chunk-entry states and scratch sums live only as long as
// one call, and a plain cudaMalloc / cudaFree would synchronise the device on
// every call (and show up in every timing). On first use the device's default
// memory pool is told to keep freed memory (release threshold = max), so
// repeated calls reuse it instead of returning it to the driver.
template <class T>
class StreamBuffer {
public:
    StreamBuffer(std::size_t count, cudaStream_t s);
    ~StreamBuffer();
    StreamBuffer(const StreamBuffer&) = delete;
    StreamBuffer& operator=(const StreamBuffer&) = delete;
    T* data() const { return ptr_; }

private:
    T* ptr_ = nullptr;
    cudaStream_t stream_;
};
void* stream_alloc(std::size_t bytes, cudaStream_t s);
void stream_free(void* p, cudaStream_t s);
template <class T>
StreamBuffer<T>::StreamBuffer(std::size_t count, cudaStream_t s)
    : ptr_(static_cast<T*>(stream_alloc(count * sizeof(T), s))), stream_(s) {}
template <class T>
StreamBuffer<T>::~StreamBuffer() {
    stream_free(ptr_, stream_);
}

}  // namespace idattn::fast::ssm_detail
