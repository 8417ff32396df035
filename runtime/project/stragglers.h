// Synchronous SGD waits, every iteration, for the slowest of its devices. If each device's
// compute time per iteration varies independently as a normal with coefficient of variation cv,
// the slowest of n takes on average mean * (1 + cv * E[max of n standard normals]).
#pragma once

#include <cstdint>

namespace gradflow::runtime::project {

// E[max of n independent standard normal variables]: 0 for n = 1, 1/sqrt(pi) for 2, 1.4236 for
// 8, 2.8269 for 256. n >= 1.
double ExpectedMaxOfStandardNormals(int64_t n);

// The factor the slowest of `devices` devices stretches compute by.
inline double StragglerFactor(double cv, int64_t devices) {
  return 1 + cv * ExpectedMaxOfStandardNormals(devices);
}

}  // namespace gradflow::runtime::project
