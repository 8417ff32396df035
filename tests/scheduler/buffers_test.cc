#include "scheduler/buffers.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "gtest/gtest.h"

namespace gradflow::sched {
namespace {

constexpr BufferKind kAllocated[] = {BufferKind::kParameters, BufferKind::kGradients,
                                     BufferKind::kState, BufferKind::kInputs, BufferKind::kArena};

TEST(BuffersTest, AlignedZeroedAndSizedAsPlanned) {
  const BufferSizes sizes{
      .parameters = 1000, .gradients = 1000, .state = 0, .inputs = 77, .arena = 4096};
  absl::StatusOr<std::unique_ptr<Buffers>> buffers = Buffers::Allocate(sizes);
  ASSERT_TRUE(buffers.ok()) << buffers.status();
  for (BufferKind kind : kAllocated) {
    std::byte* base = (*buffers)->base(kind);
    ASSERT_NE(base, nullptr) << BufferKindName(kind);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(base) % kBufferAlignment, 0u);
    EXPECT_EQ((*buffers)->size(kind), sizes.of(kind));
    for (int64_t i = 0; i < sizes.of(kind); ++i) ASSERT_EQ(base[i], std::byte{0});
  }
  EXPECT_EQ((*buffers)->base(BufferKind::kNone), nullptr);
  EXPECT_EQ((*buffers)->data(Placement{}), nullptr);
  EXPECT_EQ((*buffers)->data({BufferKind::kArena, 128, 64}),
            (*buffers)->base(BufferKind::kArena) + 128);
}

TEST(BuffersTest, PoisonFillsOnlyTheArenaWithNan) {
  const BufferSizes sizes{
      .parameters = 256, .gradients = 256, .state = 64, .inputs = 64, .arena = 1024};
  absl::StatusOr<std::unique_ptr<Buffers>> buffers =
      Buffers::Allocate(sizes, {.poison_arena = true});
  ASSERT_TRUE(buffers.ok()) << buffers.status();
  auto* arena = reinterpret_cast<float*>((*buffers)->base(BufferKind::kArena));
  for (int i = 0; i < 256; ++i) ASSERT_TRUE(std::isnan(arena[i]));
  std::memset(arena, 0, 1024);
  (*buffers)->PoisonArena();
  for (int i = 0; i < 256; ++i) ASSERT_TRUE(std::isnan(arena[i]));
  const auto* params = reinterpret_cast<const float*>((*buffers)->base(BufferKind::kParameters));
  for (int i = 0; i < 64; ++i) ASSERT_EQ(params[i], 0.0f);
}

TEST(BuffersTest, RefusesNegativeSizes) {
  EXPECT_EQ(Buffers::Allocate({.arena = -1}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gradflow::sched
