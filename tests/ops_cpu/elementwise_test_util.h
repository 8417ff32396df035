// Helpers for the CPU kernel tests of the non-convolution ops: tensors kept in their physical
// layout (NaN-poisoned when they are outputs), a one-call way to prepare and run a kernel through
// the registry, and comparison against double-precision references in logical NCHW order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "graph/attribute.h"
#include "graph/types.h"
#include "ops/cpu/cpu_context.h"
#include "ops/kernel.h"

namespace gradflow::ops::cpu::testing {

// One CPU context (2 threads) shared by every test in the binary.
CpuContext& TestContext();

// A tensor as a kernel sees it, owning its (8-byte aligned) storage.
struct TestTensor {
  graph::TensorType type;
  Layout layout = Layout::kRowMajor;
  std::vector<uint64_t> storage;

  void* data() { return storage.data(); }
  float* f32() { return reinterpret_cast<float*>(storage.data()); }
  int64_t size() const { return graph::NumElements(type.shape); }
};

// fp32 tensor holding `logical` (row-major NCHW order) stored in `layout`.
TestTensor Float32(const graph::Shape& shape, const std::vector<double>& logical,
                   Layout layout = Layout::kRowMajor);
// fp32 output tensor filled with NaN, so that an element the kernel forgets shows up.
TestTensor Poisoned(const graph::Shape& shape, Layout layout = Layout::kRowMajor);
// Integer labels of the given dtype (int32 or int64).
TestTensor Labels(const std::vector<int64_t>& labels, graph::DType dtype);
// The elements of an fp32 tensor in logical (row-major NCHW) order.
std::vector<double> Logical(TestTensor& tensor);

// Reproducible uniform values in [low, high), each exactly representable in fp32 so that the
// double references start from the very inputs the kernels see.
std::vector<double> Uniform(int64_t count, double low, double high, uint32_t seed);

// Prepares `op` for these inputs and outputs (whose types must be what the op's schema infers)
// through the registry of this test's kernels, then runs it once with a NaN-poisoned workspace.
absl::Status RunOp(const std::string& op, const graph::AttrMap& attrs,
                   const std::vector<TestTensor*>& inputs, const std::vector<TestTensor*>& outputs);

// max |actual - expected| / max |expected| (the absolute difference when expected is all zero);
// infinity on a size mismatch or a NaN in actual.
double RelativeError(const std::vector<double>& actual, const std::vector<double>& expected);

// Both activation layouts, for parameterized tests.
inline const Layout kBothLayouts[] = {Layout::kRowMajor, Layout::kChannelsLast};
std::string LayoutName(Layout layout);

}  // namespace gradflow::ops::cpu::testing
