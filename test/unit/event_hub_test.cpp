// The live event hub (engine/event_hub.h): numbered, resumable, bounded,
// and readers woken by a publication or by Stop.
#include "engine/event_hub.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace sluice {
namespace {

using std::chrono::milliseconds;

TEST(EventHub, NumbersEventsAndResumesAfterTheLastSeen) {
  EventHub hub;
  hub.Publish({{"type", "run_start"}, {"run_id", 1}});
  hub.Publish({{"type", "run_end"}, {"run_id", 1}});
  EventHub::Batch all = hub.Wait(0, milliseconds(0));
  ASSERT_EQ(all.events.size(), 2u);
  EXPECT_EQ(all.events[0]["seq"], 1);
  EXPECT_EQ(all.events[1]["type"], "run_end");
  EXPECT_EQ(all.last, 2);
  EXPECT_FALSE(all.missed);
  EventHub::Batch after = hub.Wait(1, milliseconds(0));
  ASSERT_EQ(after.events.size(), 1u);
  EXPECT_EQ(after.events[0]["seq"], 2);
  // Nothing new: the wait times out empty.
  EXPECT_TRUE(hub.Wait(2, milliseconds(10)).events.empty());
}

TEST(EventHub, ANewReaderSeesOnlyWhatComesNext) {
  EventHub hub;
  hub.Publish({{"type", "old"}});
  const int64_t now = hub.Last();  // what a new stream starts from
  EXPECT_EQ(now, 1);
  hub.Publish({{"type", "new"}});
  EventHub::Batch b = hub.Wait(now, milliseconds(0));
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(b.events[0]["type"], "new");
  // A reader waiting for what comes next is woken by it.
  std::thread later([&] { hub.Publish({{"type", "newer"}}); });
  EventHub::Batch c = hub.Wait(2, milliseconds(60000));
  later.join();
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0]["type"], "newer");
}

TEST(EventHub, NumbersFromAnEarlierOwnerAreMissedNotWaitedFor) {
  EventHub hub;
  hub.Publish({{"type", "run_start"}});
  // A browser that saw event 500 of the owner before this one.
  EventHub::Batch b = hub.Wait(500, milliseconds(60000));
  EXPECT_TRUE(b.missed);
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(b.events[0]["seq"], 1);
}

TEST(EventHub, KeepsTheNewestAndSaysWhenSomeWereMissed) {
  EventHub hub;
  for (size_t i = 0; i < EventHub::kRetained + 5; ++i) hub.Publish({{"type", "task_end"}});
  EventHub::Batch b = hub.Wait(0, milliseconds(0));
  EXPECT_TRUE(b.missed);
  EXPECT_EQ(b.events.size(), EventHub::kRetained);
  EXPECT_EQ(b.events.front()["seq"], 6);
  EXPECT_FALSE(hub.Wait(5, milliseconds(0)).missed);
}

TEST(EventHub, AReaderOfAnEarlierOwnerGetsEverythingKeptAsMissed) {
  EventHub hub;
  EXPECT_FALSE(hub.boot().empty());
  for (int i = 0; i < 3; ++i) hub.Publish({{"type", "task_end"}});
  EventHub::Batch b = hub.Wait(EventHub::kEarlierOwner, milliseconds(60000));
  EXPECT_TRUE(b.missed);
  EXPECT_EQ(b.events.size(), 3u);
}

TEST(EventHub, StopWakesReaders) {
  EventHub hub;
  std::thread stopper([&] {
    std::this_thread::sleep_for(milliseconds(50));
    hub.Stop();
  });
  EventHub::Batch b = hub.Wait(0, milliseconds(60000));
  stopper.join();
  EXPECT_TRUE(b.stopped);
  EXPECT_TRUE(b.events.empty());
}

}  // namespace
}  // namespace sluice
