// Google Benchmark of gradflow's registered CPU convolution kernels (ops::StandardKernels(), fp32)
// on every distinct ResNet-50 convolution shape: forward (Conv2D), backward-data
// (Conv2DBackwardData) and backward-weights (Conv2DBackwardFilter). Activations are channels-last
// by default, the layout the planner gives the CPU. Kernels are prepared (and run once, to warm
// caches and fault in pages) outside the timed loop; the loop times Kernel::Run only.
//
// Own flags, besides Google Benchmark's --benchmark_*:
//   --threads=N      OpenMP threads of oneDNN (default $GRADFLOW_BENCH_THREADS, else 2)
//   --batch=N        batch size (default 16)
//   --layout=L       channels_last (default) or row_major (NCHW) activations
//   --list_shapes    print the shape table (tab-separated, with a header) and exit
// Counters: GFLOP (a rate, printed GFLOP=x/s: 2 * MACs per second of wall time), reorders/run
// (CpuContext::reorders() per Run: layout changes on the hot path), count (uses in ResNet-50).
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "bench/conv_shapes.h"
#include "benchmark/benchmark.h"
#include "graph/attribute.h"
#include "graph/ir.h"
#include "graph/op_schema.h"
#include "graph/types.h"
#include "ops/cpu/cpu_context.h"
#include "ops/kernel.h"
#include "ops/kernels.h"
#include "ops/registry.h"

namespace gradflow::bench {
namespace {

using graph::DType;
using graph::Shape;
using graph::TensorType;
using ops::Layout;

struct Options {
  int threads = 2;
  int64_t batch = 16;
  Layout layout = Layout::kChannelsLast;
  bool list_shapes = false;
};

absl::StatusOr<int64_t> ParsePositive(std::string_view flag, std::string_view text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || value < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        std::string(flag), " must be a positive integer, got '", std::string(text), "'"));
  }
  return value;
}

// Whatever Google Benchmark left in argv is ours.
absl::StatusOr<Options> ParseOptions(int argc, char** argv) {
  Options options;
  if (const char* env = std::getenv("GRADFLOW_BENCH_THREADS"); env != nullptr && *env != '\0') {
    absl::StatusOr<int64_t> threads = ParsePositive("GRADFLOW_BENCH_THREADS", env);
    if (!threads.ok()) return threads.status();
    options.threads = static_cast<int>(std::min<int64_t>(*threads, 1024));
  }
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const size_t eq = arg.find('=');
    const std::string_view name = arg.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? "" : arg.substr(eq + 1);
    if (name == "--threads") {
      absl::StatusOr<int64_t> threads = ParsePositive(name, value);
      if (!threads.ok()) return threads.status();
      options.threads = static_cast<int>(std::min<int64_t>(*threads, 1024));
    } else if (name == "--batch") {
      absl::StatusOr<int64_t> batch = ParsePositive(name, value);
      if (!batch.ok()) return batch.status();
      options.batch = *batch;
    } else if (name == "--layout") {
      if (value == "channels_last") {
        options.layout = Layout::kChannelsLast;
      } else if (value == "row_major") {
        options.layout = Layout::kRowMajor;
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "--layout must be channels_last or row_major, got '", std::string(value), "'"));
      }
    } else if (arg == "--list_shapes") {
      options.list_shapes = true;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown flag '", std::string(arg),
          "' (own flags: --threads=N --batch=N --layout=channels_last|row_major --list_shapes; "
          "see --help for --benchmark_*)"));
    }
  }
  return options;
}

// Zero-initialised, 64-byte aligned storage (what the planner's arena gives kernels).
class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t bytes) {
    constexpr size_t kAlignment = 64;
    const size_t rounded =
        std::max<size_t>(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
    data_.reset(static_cast<std::byte*>(std::aligned_alloc(kAlignment, rounded)));
    if (data_ != nullptr) std::memset(data_.get(), 0, rounded);
  }
  std::byte* data() const { return data_.get(); }

 private:
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  std::unique_ptr<std::byte, Free> data_;
};

// Values in [-1, 1) from a multiplicative hash: deterministic, no denormals, and fast enough to
// fill the 50 MB activations of the first stage without dominating the run.
void FillTensor(float* data, int64_t count, uint32_t seed) {
  for (int64_t i = 0; i < count; ++i) {
    const uint32_t h = (static_cast<uint32_t>(i) + seed) * 2654435761u;
    data[i] = static_cast<float>(h >> 8) * (2.0f / 16777216.0f) - 1.0f;
  }
}

// One direction of one shape: the prepared kernel and every buffer it runs on.
class ConvCase {
 public:
  static absl::StatusOr<std::unique_ptr<ConvCase>> Prepare(const ConvShape& shape,
                                                           ConvDirection direction,
                                                           const Options& options,
                                                           ops::cpu::CpuContext& ctx) {
    auto conv = std::unique_ptr<ConvCase>(new ConvCase);
    const int64_t n = options.batch;
    const Shape x{n, shape.in_channels, shape.height, shape.height};
    const Shape w{shape.out_channels, shape.in_channels, shape.kernel, shape.kernel};
    const Shape y{n, shape.out_channels, shape.output_height(), shape.output_height()};
    const Layout act = options.layout;

    graph::Node& node = conv->node_;
    node.op = std::string(DirectionOp(direction));
    node.name = absl::StrCat("bench/", std::string(DirectionName(direction)), "/", shape.Name());
    node.attrs = {{"strides", std::vector<int64_t>{shape.stride, shape.stride}},
                  {"pads", std::vector<int64_t>{shape.padding(), shape.padding()}}};
    switch (direction) {
      case ConvDirection::kForward:
        conv->inputs_ = {{DType::kFloat32, x}, {DType::kFloat32, w}};
        conv->input_layouts_ = {act, Layout::kRowMajor};
        conv->output_layouts_ = {act};
        break;
      case ConvDirection::kBackwardData:
        node.attrs["input_shape"] = x;
        conv->inputs_ = {{DType::kFloat32, y}, {DType::kFloat32, w}};
        conv->input_layouts_ = {act, Layout::kRowMajor};
        conv->output_layouts_ = {act};
        break;
      case ConvDirection::kBackwardWeights:
        node.attrs["filter_shape"] = w;
        conv->inputs_ = {{DType::kFloat32, y}, {DType::kFloat32, x}};
        conv->input_layouts_ = {act, act};
        conv->output_layouts_ = {Layout::kRowMajor};
        break;
    }

    // Output types come from the op's own shape function, as in a real graph.
    const graph::OpSchema* schema = ops::StandardOps().Find(node.op, 1);
    if (schema == nullptr) return absl::NotFoundError(absl::StrCat("no schema for ", node.op));
    absl::StatusOr<std::vector<TensorType>> outputs =
        graph::InferNodeOutputs(node, *schema, conv->inputs_);
    if (!outputs.ok()) return outputs.status();
    conv->outputs_ = *std::move(outputs);

    const graph::Attrs attrs(node, *schema);
    const ops::KernelSpec spec{
        node, attrs, conv->inputs_, conv->outputs_, conv->input_layouts_, conv->output_layouts_,
        ctx};
    absl::StatusOr<std::unique_ptr<ops::Kernel>> kernel =
        ops::StandardKernels().Create(spec, DType::kFloat32);
    if (!kernel.ok()) return kernel.status();
    conv->kernel_ = *std::move(kernel);

    // Touching more than the machine holds would end in the OOM killer, not in an error.
    size_t total_bytes = 0;
    for (const std::vector<TensorType>* types : {&conv->inputs_, &conv->outputs_}) {
      for (const TensorType& type : *types) {
        total_bytes +=
            static_cast<size_t>(graph::NumElements(type.shape)) * graph::DTypeSize(type.dtype);
      }
    }
    const size_t physical_bytes =
        static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
    if (total_bytes > physical_bytes / 2) {
      return absl::ResourceExhaustedError(absl::StrCat(
          node.name, " needs ", total_bytes, " bytes of operands at --batch=", options.batch,
          ", more than half of this machine's ", physical_bytes));
    }

    uint32_t seed = 1;
    auto bind = [&](const TensorType& type, Layout layout,
                    std::vector<ops::TensorRef>& refs) -> absl::Status {
      ops::TensorRef ref{nullptr, type.dtype, type.shape, layout};
      conv->buffers_.emplace_back(ref.bytes());
      ref.data = conv->buffers_.back().data();
      if (ref.data == nullptr) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "allocating ", ref.bytes(), " bytes for a ", graph::ShapeToString(type.shape),
            " operand of ", node.name, " (--batch=", options.batch, ")"));
      }
      FillTensor(ref.as<float>(), ref.num_elements(), seed++ * 7919u);
      refs.push_back(std::move(ref));
      return absl::OkStatus();
    };
    for (size_t i = 0; i < conv->inputs_.size(); ++i) {
      absl::Status bound = bind(conv->inputs_[i], conv->input_layouts_[i], conv->input_refs_);
      if (!bound.ok()) return bound;
    }
    for (size_t i = 0; i < conv->outputs_.size(); ++i) {
      absl::Status bound = bind(conv->outputs_[i], conv->output_layouts_[i], conv->output_refs_);
      if (!bound.ok()) return bound;
    }
    conv->workspace_ = std::make_unique<AlignedBuffer>(conv->kernel_->workspace_bytes());
    if (conv->workspace_->data() == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "allocating ", conv->kernel_->workspace_bytes(), " workspace bytes for ", node.name));
    }
    if (absl::Status warm = conv->Run(); !warm.ok()) return warm;
    return conv;
  }

  absl::Status Run() {
    return kernel_->Run(input_refs_, output_refs_,
                        kernel_->workspace_bytes() > 0 ? workspace_->data() : nullptr);
  }

 private:
  ConvCase() = default;

  graph::Node node_;
  std::vector<TensorType> inputs_;
  std::vector<TensorType> outputs_;
  std::vector<Layout> input_layouts_;
  std::vector<Layout> output_layouts_;
  std::unique_ptr<ops::Kernel> kernel_;
  std::vector<AlignedBuffer> buffers_;
  std::vector<ops::TensorRef> input_refs_;
  std::vector<ops::TensorRef> output_refs_;
  std::unique_ptr<AlignedBuffer> workspace_;
};

// Google Benchmark calls a benchmark function several times while it sizes the iteration count
// and once per repetition; the case is prepared on the first call and kept until another case
// runs. One at a time: the largest cases hold ~200 MB of operands.
struct CaseCache {
  std::string key;
  std::unique_ptr<ConvCase> conv;
};

absl::StatusOr<ConvCase*> CachedCase(const ConvShape& shape, ConvDirection direction,
                                     const Options& options, ops::cpu::CpuContext& ctx) {
  static CaseCache cache;
  std::string key = absl::StrCat(std::string(DirectionName(direction)), "/", shape.Name());
  if (cache.key != key || cache.conv == nullptr) {
    cache.conv.reset();  // free the previous case's buffers before allocating this one's
    cache.key.clear();
    absl::StatusOr<std::unique_ptr<ConvCase>> conv =
        ConvCase::Prepare(shape, direction, options, ctx);
    if (!conv.ok()) return conv.status();
    cache.conv = *std::move(conv);
    cache.key = std::move(key);
  }
  return cache.conv.get();
}

void BenchmarkConv(benchmark::State& state, const ConvShape& shape, ConvDirection direction,
                   const Options& options, ops::cpu::CpuContext& ctx) {
  absl::StatusOr<ConvCase*> conv = CachedCase(shape, direction, options, ctx);
  if (!conv.ok()) {
    state.SkipWithError(std::string(conv.status().ToString()).c_str());
    return;
  }
  const int64_t reorders_before = ctx.reorders();
  for (auto _ : state) {
    if (absl::Status status = (*conv)->Run(); !status.ok()) {
      state.SkipWithError(std::string(status.ToString()).c_str());
      break;
    }
  }
  const double runs = static_cast<double>(state.iterations());
  state.counters["GFLOP"] =
      benchmark::Counter(2.0 * shape.Macs(options.batch) * runs / 1e9, benchmark::Counter::kIsRate);
  state.counters["reorders/run"] =
      runs > 0 ? static_cast<double>(ctx.reorders() - reorders_before) / runs : 0.0;
  state.counters["count"] = shape.count;
}

void PrintShapes() {
  std::printf(
      "name\tin_channels\tout_channels\tkernel\tstride\theight\tpadding\tcount\t"
      "input_is_image\twhere\n");
  for (const ConvShape& s : ResNet50ConvShapes()) {
    std::printf("%s\t%lld\t%lld\t%lld\t%lld\t%lld\t%lld\t%d\t%d\t%s\n", s.Name().c_str(),
                static_cast<long long>(s.in_channels), static_cast<long long>(s.out_channels),
                static_cast<long long>(s.kernel), static_cast<long long>(s.stride),
                static_cast<long long>(s.height), static_cast<long long>(s.padding()), s.count,
                s.input_is_image ? 1 : 0, std::string(s.where).c_str());
  }
}

int Main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  absl::StatusOr<Options> parsed = ParseOptions(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "conv_bench: %s\n", std::string(parsed.status().message()).c_str());
    return 2;
  }
  static const Options options = *parsed;
  if (options.list_shapes) {
    PrintShapes();
    return 0;
  }
  absl::StatusOr<std::unique_ptr<ops::cpu::CpuContext>> created =
      ops::cpu::CpuContext::Create(options.threads);
  if (!created.ok()) {
    std::fprintf(stderr, "conv_bench: %s\n", std::string(created.status().message()).c_str());
    return 2;
  }
  static ops::cpu::CpuContext* const ctx = created->release();

  benchmark::AddCustomContext("gradflow_threads", std::to_string(options.threads));
  benchmark::AddCustomContext("gradflow_batch", std::to_string(options.batch));
  benchmark::AddCustomContext(
      "gradflow_layout", options.layout == Layout::kChannelsLast ? "channels_last" : "row_major");
  for (const ConvShape& shape : ResNet50ConvShapes()) {
    for (ConvDirection direction : kAllDirections) {
      if (!RunsInTraining(shape, direction)) continue;
      const std::string name =
          absl::StrCat(std::string(DirectionName(direction)), "/", shape.Name());
      benchmark::RegisterBenchmark(name.c_str(),
                                   [&shape, direction](benchmark::State& state) {
                                     BenchmarkConv(state, shape, direction, options, *ctx);
                                   })
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace
}  // namespace gradflow::bench

int main(int argc, char** argv) { return gradflow::bench::Main(argc, argv); }
