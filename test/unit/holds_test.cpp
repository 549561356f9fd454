// Tests of AssetHolds (orchestrate/holds.h): one holder per (asset,
// partition), others wait and are told by whom, a cancelled waiter gives up,
// and keys that differ never wait for each other.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "orchestrate/holds.h"

namespace sluice {
namespace {

using Holder = AssetHolds::Holder;

TEST(AssetHolds, OtherKeysDoNotWaitAndAReleasedKeyIsFree) {
  AssetHolds holds;
  auto a = holds.Acquire({"stops", ""}, {1, "run 1"}, nullptr, nullptr);
  ASSERT_TRUE(a.ok());
  bool waited = false;
  auto told = [&](const Holder&) { waited = true; };
  auto b = holds.Acquire({"routes", ""}, {2, "run 2"}, told, nullptr);
  auto c = holds.Acquire({"stops", "2026-01-01"}, {2, "run 2"}, told, nullptr);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(waited);
  EXPECT_EQ(holds.Held().size(), 3u);
  { AssetHolds::Hold gone = std::move(*a); }  // released here, once
  EXPECT_EQ(holds.Held().size(), 2u);
  auto again = holds.Acquire({"stops", ""}, {3, "run 3"}, told, nullptr);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(waited);
}

TEST(AssetHolds, ASecondHolderWaitsAndIsToldByWhom) {
  AssetHolds holds;
  auto first = holds.Acquire({"stops", ""}, {7, "run 7 `sluice run stops`"}, nullptr, nullptr);
  ASSERT_TRUE(first.ok());
  std::promise<Holder> told;
  std::atomic<bool> holding{false};
  std::thread second([&] {
    auto hold = holds.Acquire(
        {"stops", ""}, {8, "run 8"}, [&](const Holder& h) { told.set_value(h); }, nullptr);
    ASSERT_TRUE(hold.ok());
    holding = true;
  });
  Holder by = told.get_future().get();  // told before it waits; never times out
  EXPECT_EQ(by.run_id, 7);
  EXPECT_EQ(by.what, "run 7 `sluice run stops`");
  EXPECT_FALSE(holding.load());
  *first = AssetHolds::Hold();  // released: the second goes on
  second.join();
  EXPECT_TRUE(holding.load());
  EXPECT_TRUE(holds.Held().empty());  // the second's hold ended with its thread's scope
}

TEST(AssetHolds, ACancelledWaiterGivesUp) {
  AssetHolds holds;
  auto first = holds.Acquire({"stops", ""}, {1, "run 1"}, nullptr, nullptr);
  ASSERT_TRUE(first.ok());
  std::atomic<bool> cancel{false};
  std::promise<void> waiting;
  auto result = std::async(std::launch::async, [&] {
    return holds
        .Acquire(
            {"stops", ""}, {2, "run 2"}, [&](const Holder&) { waiting.set_value(); },
            [&] { return cancel.load(); })
        .status();
  });
  waiting.get_future().wait();
  cancel = true;
  Status st = result.get();
  EXPECT_EQ(st.code(), StatusCode::kCancelled);
  ASSERT_EQ(holds.Held().size(), 1u);
  EXPECT_EQ(holds.Held()[0].second.run_id, 1);
}

}  // namespace
}  // namespace sluice
