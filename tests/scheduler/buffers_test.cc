#include "scheduler/buffers.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

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
  ASSERT_TRUE((*buffers)->PoisonArena().ok());
  for (int i = 0; i < 256; ++i) ASSERT_TRUE(std::isnan(arena[i]));
  const auto* params = reinterpret_cast<const float*>((*buffers)->base(BufferKind::kParameters));
  for (int i = 0; i < 64; ++i) ASSERT_EQ(params[i], 0.0f);
}

// Another device's memory, as a GPU's would be: here host memory with a ledger, so the test sees
// every allocation, fill and release the buffers make through it.
class LedgerMemory final : public BufferMemory {
 public:
  absl::StatusOr<std::byte*> Allocate(size_t bytes) override {
    if (fail_after_ >= 0 && static_cast<int>(live_.size()) >= fail_after_) {
      return absl::ResourceExhaustedError("the device is full");
    }
    absl::StatusOr<std::byte*> block = HostBufferMemory().Allocate(bytes);
    if (block.ok()) live_.push_back(*block);
    return block;
  }
  void Free(std::byte* data) override {
    std::erase(live_, data);
    HostBufferMemory().Free(data);
  }
  absl::Status Fill(std::byte* data, int value, size_t bytes) override {
    fills_.push_back(value);
    return HostBufferMemory().Fill(data, value, bytes);
  }

  std::vector<std::byte*> live_;
  std::vector<int> fills_;
  int fail_after_ = -1;
};

TEST(BuffersTest, AllocatesFillsAndFreesThroughTheGivenMemory) {
  LedgerMemory memory;
  {
    absl::StatusOr<std::unique_ptr<Buffers>> buffers =
        Buffers::Allocate({.parameters = 100, .gradients = 100, .arena = 512},
                          {.poison_arena = true, .memory = &memory});
    ASSERT_TRUE(buffers.ok()) << buffers.status();
    // One block per kind (empty ones too), zeroed except the poisoned arena.
    EXPECT_EQ(memory.live_.size(), 5u);
    EXPECT_EQ(memory.fills_, (std::vector<int>{0, 0, 0, 0, 0xFF}));
    ASSERT_TRUE((*buffers)->PoisonArena().ok());
    EXPECT_EQ(memory.fills_.back(), 0xFF);
  }
  EXPECT_TRUE(memory.live_.empty()) << "every block goes back to the memory it came from";
}

TEST(BuffersTest, AFullDeviceNamesTheBufferAndKeepsNothing) {
  LedgerMemory memory;
  memory.fail_after_ = 2;  // parameters and gradients fit, the state buffer does not
  absl::StatusOr<std::unique_ptr<Buffers>> buffers =
      Buffers::Allocate({.parameters = 100, .gradients = 100, .state = 100}, {.memory = &memory});
  ASSERT_EQ(buffers.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(buffers.status().message().find("state"), absl::string_view::npos) << buffers.status();
  EXPECT_NE(buffers.status().message().find("the device is full"), absl::string_view::npos);
  EXPECT_TRUE(memory.live_.empty());
}

TEST(BuffersTest, RefusesNegativeSizes) {
  EXPECT_EQ(Buffers::Allocate({.arena = -1}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gradflow::sched
