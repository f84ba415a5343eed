// Chapter 2, fast backend: what the two .cu files of this folder share, not
// part of the public interface (feature_map.hpp): the thread-block geometry
// of every kernel, and the host-side feature-map launcher and checks that
// linear_attention_chunked.cu calls (defined in feature_map.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "ref/02-kernel-feature-map/feature_map.hpp"

namespace idattn::fast::feature_map_detail {

// Every kernel uses 256 threads; thread (ty, tx) = (tid / 16, tid % 16), so
// that a half-warp (16 lanes, one "row group") shares ty, hence its rows.

constexpr int kThreads = 256;
constexpr int kRowGroup = 16;
constexpr int kRowGroups = kThreads / kRowGroup;  // 16

// R_f of the map as the kernels index it.
std::int64_t rf_of(ref::FeatureMap map, std::int64_t m, std::int64_t d);

// The checks of the feature-map arguments every device entry point makes.
void check_feature_args(const std::string& what, ref::FeatureMap map, const float* x, const float* w,
                        std::int64_t rows, std::int64_t d, std::int64_t m);

// Launches the feature-map kernel of `map` on `rows` rows of x into f (and c).
void launch_features(ref::FeatureMap map, const float* x, const float* w, float* f, float* c, std::int64_t rows,
                     std::int64_t d, std::int64_t m, bool scaled, cudaStream_t stream);

std::vector<std::size_t> shape_of(const xt::xtensor<float, 4>& t);
std::vector<std::size_t> shape_of(const xt::xtensor<float, 2>& t);

void require_nonempty(const std::string& what, const char* name, const std::vector<std::size_t>& shape);

// W as the device functions take it: (m, d) rows, m = 0 for taylor.
std::int64_t frequencies(ref::FeatureMap map, const xt::xtensor<float, 2>& w);

}  // namespace idattn::fast::feature_map_detail
