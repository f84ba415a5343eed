// .npy files of xtensor arrays for the CLI tests: write an array, read one back
// (the rank is checked, a failure stops the test case).
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <xtensor/xtensor.hpp>

#include "api/common/npy.hpp"

namespace idattn::test {

template <std::size_t R>
void write_npy(const std::string& path, const xt::xtensor<double, R>& x) {
    npy::write(path, x.data(), std::vector<std::size_t>(x.shape().begin(), x.shape().end()));
}

template <std::size_t R>
xt::xtensor<double, R> read_npy(const std::string& path) {
    const auto t = npy::read(path, path);
    BOOST_TEST_REQUIRE(t.shape.size() == R, path << " has rank " << t.shape.size() << ", expected " << R);
    std::array<std::size_t, R> shape{};
    std::copy(t.shape.begin(), t.shape.end(), shape.begin());
    xt::xtensor<double, R> x(shape);
    std::copy(t.data.begin(), t.data.end(), x.begin());
    return x;
}

}  // namespace idattn::test
