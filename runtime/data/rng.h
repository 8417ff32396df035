// Deterministic random numbers for data loading: the same seed gives the same stream on every
// platform and compiler (std:: distributions are implementation-defined, so they are not used).
#pragma once

#include <cstdint>
#include <initializer_list>

namespace gradflow::runtime::data {

// SplitMix64 finalizer: a bijective 64-bit mix, used to derive independent seeds from tuples.
inline uint64_t MixBits(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// One seed from an ordered tuple, e.g. (seed, epoch, iteration, rank): order matters, and nearby
// tuples give unrelated seeds.
inline uint64_t DeriveSeed(std::initializer_list<uint64_t> parts) {
  uint64_t h = 0x6a09e667f3bcc909ULL;
  for (uint64_t part : parts) h = MixBits(h ^ MixBits(part));
  return h;
}

// xoshiro256**: fast, small state, good statistical quality; seeded through SplitMix64 as its
// authors recommend so that any 64-bit seed (including 0) gives a usable state.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& word : state_) {
      seed += 0x9e3779b97f4a7c15ULL;
      word = MixBits(seed - 0x9e3779b97f4a7c15ULL);
    }
  }

  uint64_t NextU64() {
    const uint64_t result = Rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = Rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(NextU64() >> 11) * 0x1.0p-53; }
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }

  // Uniform integer in [0, bound), bound > 0, without modulo bias: draws from the top of the range
  // that is not a whole multiple of `bound` are rejected (rare unless bound is near 2^64).
  uint64_t Below(uint64_t bound) {
    const uint64_t rejected_from = UINT64_MAX - UINT64_MAX % bound;
    uint64_t draw = NextU64();
    while (draw >= rejected_from) draw = NextU64();
    return draw % bound;
  }

  // Uniform integer in [lo, hi], both inclusive (torchvision's randint convention).
  int64_t UniformInt(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(Below(static_cast<uint64_t>(hi - lo) + 1));
  }

  bool Bernoulli(double p) { return Uniform() < p; }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t state_[4];
};

}  // namespace gradflow::runtime::data
