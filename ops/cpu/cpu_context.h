// The CPU device: one oneDNN engine and in-order stream, and the thread budget of its kernels.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "oneapi/dnnl/dnnl.hpp"
#include "ops/kernel.h"

namespace gradflow::ops::cpu {

class CpuContext final : public DeviceContext {
 public:
  // `threads` is the number of OpenMP threads oneDNN's primitives use (oneDNN here is built on
  // OpenMP). The caller sizes its oneTBB arena so that the two never oversubscribe the cores.
  static absl::StatusOr<std::unique_ptr<CpuContext>> Create(int threads);

  DeviceType type() const override { return DeviceType::kCpu; }
  dnnl::engine& engine() { return engine_; }
  dnnl::stream& stream() { return stream_; }
  int threads() const { return threads_; }

  // Layout changes done by kernels at run time (oneDNN reorders). Kept off the hot path by the
  // planner's layout choice; counted so that tests and benchmarks can prove it.
  void CountReorder() { reorders_.fetch_add(1, std::memory_order_relaxed); }
  int64_t reorders() const { return reorders_.load(std::memory_order_relaxed); }

 private:
  CpuContext(dnnl::engine engine, dnnl::stream stream, int threads)
      : engine_(std::move(engine)), stream_(std::move(stream)), threads_(threads) {}

  dnnl::engine engine_;
  dnnl::stream stream_;
  int threads_;
  std::atomic<int64_t> reorders_{0};
};

}  // namespace gradflow::ops::cpu
