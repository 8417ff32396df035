#include "scheduler/buffers.h"

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace gradflow::sched {
namespace {

class HostMemory final : public BufferMemory {
 public:
  absl::StatusOr<std::byte*> Allocate(size_t bytes) override {
    // aligned_alloc wants a multiple of the alignment.
    const size_t rounded = (bytes + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
    void* memory = std::aligned_alloc(kBufferAlignment, rounded);
    if (memory == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat("out of host memory for ", bytes, " bytes"));
    }
    return static_cast<std::byte*>(memory);
  }
  void Free(std::byte* data) override { std::free(data); }
  absl::Status Fill(std::byte* data, int value, size_t bytes) override {
    std::memset(data, value, bytes);
    return absl::OkStatus();
  }
};

}  // namespace

BufferMemory& HostBufferMemory() {
  static HostMemory* const memory = new HostMemory;
  return *memory;
}

absl::StatusOr<std::unique_ptr<Buffers>> Buffers::Allocate(const BufferSizes& sizes,
                                                           BuffersOptions options) {
  BufferMemory& memory = options.memory != nullptr ? *options.memory : HostBufferMemory();
  std::unique_ptr<Buffers> buffers(new Buffers(sizes, memory));
  for (BufferKind kind : {BufferKind::kParameters, BufferKind::kGradients, BufferKind::kState,
                          BufferKind::kInputs, BufferKind::kArena}) {
    const int64_t bytes = sizes.of(kind);
    if (bytes < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("the ", BufferKindName(kind), " buffer has ", bytes, " bytes"));
    }
    // Rounded up so that reductions over a whole buffer may read its padding (zeroed below), and
    // empty buffers still get a valid base.
    const size_t rounded =
        (static_cast<size_t>(bytes) + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
    const size_t allocated = rounded == 0 ? kBufferAlignment : rounded;
    absl::StatusOr<std::byte*> base = memory.Allocate(allocated);
    if (!base.ok()) {
      return absl::ResourceExhaustedError(absl::StrCat("cannot allocate the ", BufferKindName(kind),
                                                       " buffer of ", bytes,
                                                       " bytes: ", base.status().message()));
    }
    buffers->bases_[static_cast<size_t>(kind)] = *base;
    const int fill = kind == BufferKind::kArena && options.poison_arena ? 0xFF : 0;
    if (absl::Status s = memory.Fill(*base, fill, allocated); !s.ok()) return s;
  }
  return buffers;
}

Buffers::~Buffers() {
  for (std::byte* base : bases_) {
    if (base != nullptr) memory_.Free(base);
  }
}

void* Buffers::data(const Placement& placement) const {
  std::byte* b = base(placement.buffer);
  return b == nullptr ? nullptr : b + placement.offset;
}

absl::Status Buffers::PoisonArena() {
  return memory_.Fill(base(BufferKind::kArena), 0xFF,
                      static_cast<size_t>(size(BufferKind::kArena)));
}

}  // namespace gradflow::sched
