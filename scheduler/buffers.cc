#include "scheduler/buffers.h"

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace gradflow::sched {

absl::StatusOr<std::unique_ptr<Buffers>> Buffers::Allocate(const BufferSizes& sizes,
                                                           BuffersOptions options) {
  std::unique_ptr<Buffers> buffers(new Buffers(sizes));
  for (BufferKind kind : {BufferKind::kParameters, BufferKind::kGradients, BufferKind::kState,
                          BufferKind::kInputs, BufferKind::kArena}) {
    const int64_t bytes = sizes.of(kind);
    if (bytes < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("the ", BufferKindName(kind), " buffer has ", bytes, " bytes"));
    }
    // aligned_alloc wants a multiple of the alignment, and empty buffers still get a valid base.
    const size_t rounded =
        (static_cast<size_t>(bytes) + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
    void* memory = std::aligned_alloc(kBufferAlignment, rounded == 0 ? kBufferAlignment : rounded);
    if (memory == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat("cannot allocate the ", BufferKindName(kind),
                                                       " buffer of ", bytes, " bytes"));
    }
    buffers->bases_[static_cast<size_t>(kind)] = static_cast<std::byte*>(memory);
    std::memset(memory, kind == BufferKind::kArena && options.poison_arena ? 0xFF : 0, rounded);
  }
  return buffers;
}

Buffers::~Buffers() {
  for (std::byte* base : bases_) std::free(base);
}

void* Buffers::data(const Placement& placement) const {
  std::byte* b = base(placement.buffer);
  return b == nullptr ? nullptr : b + placement.offset;
}

void Buffers::PoisonArena() {
  std::memset(base(BufferKind::kArena), 0xFF, static_cast<size_t>(size(BufferKind::kArena)));
}

}  // namespace gradflow::sched
