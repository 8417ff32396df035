#include "runtime/trainer/initialize.h"

#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"

namespace gradflow::runtime {
namespace {

uint64_t Fnv1a(const std::string& text, uint64_t seed) {
  uint64_t hash = 1469598103934665603ULL ^ (seed * 0x9E3779B97F4A7C15ULL);
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return hash;
}

}  // namespace

absl::Status InitializeTensor(const graph::Graph& graph, const graph::Tensor& tensor,
                              uint64_t seed, std::span<float> values) {
  if (tensor.dtype != graph::DType::kFloat32) {
    return absl::UnimplementedError(absl::StrCat("tensor '", tensor.name, "' is ",
                                                 graph::DTypeName(tensor.dtype),
                                                 "; only f32 parameters are initialized"));
  }
  if (static_cast<int64_t>(values.size()) != graph::NumElements(tensor.shape)) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", tensor.name, "' has ",
                                                   graph::NumElements(tensor.shape),
                                                   " elements, got room for ", values.size()));
  }
  if (tensor.buffer >= 0) {
    const graph::Buffer& stored = graph.buffers.at(tensor.buffer);
    if (stored.data.size() != values.size_bytes()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", tensor.name, "' has ", stored.data.size(),
                       " stored bytes, needs ", values.size_bytes()));
    }
    std::memcpy(values.data(), stored.data.data(), values.size_bytes());
    return absl::OkStatus();
  }
  const graph::Initializer& init = tensor.init;
  switch (init.kind) {
    case graph::InitKind::kNone:
    case graph::InitKind::kZeros:
      std::fill(values.begin(), values.end(), 0.0f);
      return absl::OkStatus();
    case graph::InitKind::kOnes:
      std::fill(values.begin(), values.end(), 1.0f);
      return absl::OkStatus();
    case graph::InitKind::kConstant:
      std::fill(values.begin(), values.end(), init.value);
      return absl::OkStatus();
    case graph::InitKind::kHeNormal:
    case graph::InitKind::kNormal: {
      if (!(init.value >= 0)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor '", tensor.name, "' has a normal initializer with std ", init.value));
      }
      std::mt19937_64 rng(Fnv1a(tensor.name, seed));
      std::normal_distribution<float> normal(0.0f, init.value);
      for (float& v : values) v = normal(rng);
      return absl::OkStatus();
    }
    case graph::InitKind::kUniform: {
      if (!(init.value >= 0)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor '", tensor.name, "' has a uniform initializer with bound ", init.value));
      }
      std::mt19937_64 rng(Fnv1a(tensor.name, seed));
      std::uniform_real_distribution<float> uniform(-init.value, init.value);
      for (float& v : values) v = uniform(rng);
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("tensor '", tensor.name,
                                                 "' has an unknown initializer"));
}

}  // namespace gradflow::runtime
