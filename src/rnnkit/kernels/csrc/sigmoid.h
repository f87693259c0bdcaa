// The logistic sigmoid shared by the compiled kernels (built with -ffast-math).
#pragma once

#include <algorithm>
#include <cmath>

namespace rnnkit {

// exp's argument is capped so that no step overflows to inf: -ffast-math assumes finite
// values, and sigmoid(x) = 1 / (1 + exp(-x)) is already 0 to the type's precision there
template <typename T>
constexpr T kExpCap = T(80);  // exp(80) ~ 5.5e34 < FLT_MAX
template <>
constexpr double kExpCap<double> = 700.0;

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(std::min(-x, kExpCap<T>)));
}

}  // namespace rnnkit
