#include "scheduler/cpu_stream.h"

#include <omp.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gradflow::sched {
namespace {

TEST(CpuStreamTest, RunsWorkInEnqueueOrderOnItsOwnThread) {
  CpuStream stream;
  std::vector<int> seen;  // only the stream thread touches it until Synchronize
  std::atomic<int> wrong_thread{0};
  for (int i = 0; i < 10000; ++i) {
    stream.Enqueue([&, i] {
      if (std::this_thread::get_id() != stream.thread_id()) wrong_thread.fetch_add(1);
      seen.push_back(i);
    });
  }
  ASSERT_TRUE(stream.Synchronize().ok());
  ASSERT_EQ(seen.size(), 10000u);
  for (int i = 0; i < 10000; ++i) ASSERT_EQ(seen[i], i);
  EXPECT_EQ(wrong_thread.load(), 0);
  EXPECT_NE(stream.thread_id(), std::this_thread::get_id());
}

TEST(CpuStreamTest, KeepsEachEnqueuingThreadsOrder) {
  CpuStream stream;
  constexpr int kThreads = 4;
  constexpr int kItems = 2000;
  std::vector<std::vector<int>> seen(kThreads);
  std::vector<std::thread> producers;
  for (int p = 0; p < kThreads; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kItems; ++i) stream.Enqueue([&, p, i] { seen[p].push_back(i); });
    });
  }
  for (std::thread& t : producers) t.join();
  ASSERT_TRUE(stream.Synchronize().ok());
  for (int p = 0; p < kThreads; ++p) {
    ASSERT_EQ(seen[p].size(), static_cast<size_t>(kItems));
    for (int i = 0; i < kItems; ++i) ASSERT_EQ(seen[p][i], i);
  }
}

TEST(CpuStreamTest, HostCallbacksRunAfterEarlierWork) {
  CpuStream stream;
  std::atomic<bool> work_done{false};
  std::atomic<bool> callback_saw_work{false};
  stream.Enqueue([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    work_done.store(true);
  });
  stream.EnqueueHostCallback([&] { callback_saw_work.store(work_done.load()); });
  ASSERT_TRUE(stream.Synchronize().ok());
  EXPECT_TRUE(callback_saw_work.load());
}

TEST(CpuStreamTest, EventOrdersAnotherStreamWithoutBlockingTheHost) {
  CpuStream producer;
  CpuStream consumer;
  std::atomic<bool> release{false};
  std::atomic<bool> produced{false};
  std::atomic<bool> consumer_saw_value{false};
  producer.Enqueue([&] {
    while (!release.load()) std::this_thread::yield();
    produced.store(true);
  });
  std::unique_ptr<Event> event = producer.CreateEvent();
  ASSERT_TRUE(producer.Record(*event).ok());
  ASSERT_TRUE(consumer.Wait(*event).ok());  // must return while the producer is still blocked
  consumer.Enqueue([&] { consumer_saw_value.store(produced.load()); });
  EXPECT_FALSE(event->Done());
  release.store(true);
  ASSERT_TRUE(event->HostWait().ok());
  EXPECT_TRUE(event->Done());
  ASSERT_TRUE(consumer.Synchronize().ok());
  EXPECT_TRUE(consumer_saw_value.load());
}

TEST(CpuStreamTest, RecordingAgainMovesTheEvent) {
  CpuStream stream;
  std::unique_ptr<Event> event = stream.CreateEvent();
  EXPECT_TRUE(event->Done());  // never recorded
  ASSERT_TRUE(stream.Record(*event).ok());
  ASSERT_TRUE(event->HostWait().ok());
  std::atomic<bool> release{false};
  stream.Enqueue([&] {
    while (!release.load()) std::this_thread::yield();
  });
  ASSERT_TRUE(stream.Record(*event).ok());
  EXPECT_FALSE(event->Done());
  release.store(true);
  ASSERT_TRUE(event->HostWait().ok());
  EXPECT_TRUE(event->Done());
}

TEST(CpuStreamTest, RejectsEventsOfAnotherKind) {
  class OtherEvent final : public Event {
   public:
    absl::Status HostWait() override { return absl::OkStatus(); }
    bool Done() override { return true; }
  };
  CpuStream stream;
  OtherEvent other;
  EXPECT_EQ(stream.Record(other).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(stream.Wait(other).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CpuStreamTest, DestructorRunsEverythingEnqueued) {
  std::atomic<int> ran{0};
  {
    CpuStream stream;
    for (int i = 0; i < 100; ++i) {
      stream.Enqueue([&] {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
        ran.fetch_add(1);
      });
    }
  }
  EXPECT_EQ(ran.load(), 100);
}

TEST(CpuStreamTest, SetsTheOpenMpTeamOnItsThread) {
  CpuStream stream({.omp_threads = 1, .thread_name = "gf-test"});
  int in_stream = 0;
  stream.Enqueue([&] { in_stream = omp_get_max_threads(); });
  ASSERT_TRUE(stream.Synchronize().ok());
  EXPECT_EQ(in_stream, 1);
  CpuStream three({.omp_threads = 3});
  three.Enqueue([&] { in_stream = omp_get_max_threads(); });
  ASSERT_TRUE(three.Synchronize().ok());
  EXPECT_EQ(in_stream, 3);
}

}  // namespace
}  // namespace gradflow::sched
