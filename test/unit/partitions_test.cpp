#include "orchestrate/partitions.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

PartitionScheme Scheme(const std::string& by, const std::string& start = "",
                       const std::string& end = "") {
  nlohmann::json j = {{"by", by}};
  if (!start.empty()) j["start"] = start;
  if (!end.empty()) j["end"] = end;
  Result<PartitionScheme> s = ParsePartitionScheme(j);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return *s;
}

TEST(PartitionsTest, ExpandsDaysAcrossMonthAndLeapDay) {
  auto keys = ExpandPartitions(Scheme("day"), "2028-02-28..2028-03-01");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(*keys, (std::vector<std::string>{"2028-02-28", "2028-02-29", "2028-03-01"}));
}

TEST(PartitionsTest, HoursRollOverMidnight) {
  auto keys = ExpandPartitions(Scheme("hour"), "2026-01-01T22..2026-01-02T01");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(*keys, (std::vector<std::string>{"2026-01-01T22", "2026-01-01T23", "2026-01-02T00",
                                             "2026-01-02T01"}));
  auto w = WindowOf(Scheme("hour"), "2026-01-01T23");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->start, "2026-01-01T23:00:00Z");
  EXPECT_EQ(w->end, "2026-01-02T00:00:00Z");
}

TEST(PartitionsTest, WeeksStartOnMonday) {
  // 2026-01-07 is a Wednesday; its ISO week starts on Monday 2026-01-05.
  auto key = PartitionKey(Scheme("week"), "2026-01-07");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(*key, "2026-01-05");
  auto w = WindowOf(Scheme("week"), *key);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->end, "2026-01-12");
}

TEST(PartitionsTest, MonthsAndYears) {
  auto months = ExpandPartitions(Scheme("month"), "2025-11..2026-02");
  ASSERT_TRUE(months.ok());
  EXPECT_EQ(*months, (std::vector<std::string>{"2025-11", "2025-12", "2026-01", "2026-02"}));
  auto w = WindowOf(Scheme("month"), "2025-12");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->start, "2025-12-01");
  EXPECT_EQ(w->end, "2026-01-01");
  auto y = WindowOf(Scheme("year"), "2026");
  ASSERT_TRUE(y.ok());
  EXPECT_EQ(y->end, "2027-01-01");
}

TEST(PartitionsTest, CurrentPartitionOfAnInstant) {
  // 2026-11-24T12:34:56Z
  Micros now = int64_t{1795523696} * 1000000;
  EXPECT_EQ(CurrentPartition(Scheme("day"), now), "2026-11-24");
  EXPECT_EQ(CurrentPartition(Scheme("hour"), now), "2026-11-24T12");
  EXPECT_EQ(CurrentPartition(Scheme("week"), now), "2026-11-23");
  EXPECT_EQ(CurrentPartition(Scheme("month"), now), "2026-11");
}

TEST(PartitionsTest, RejectsMalformedAndOutOfBoundsRanges) {
  auto bad = ExpandPartitions(Scheme("day"), "2026-13-01");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("expected YYYY-MM-DD"), std::string::npos);
  EXPECT_FALSE(ExpandPartitions(Scheme("day"), "2026-02-30").ok());
  EXPECT_FALSE(ExpandPartitions(Scheme("month"), "2026-01-01").ok());
  auto early = ExpandPartitions(Scheme("day", "2026-01-01"), "2025-12-31..2026-01-02");
  ASSERT_FALSE(early.ok());
  EXPECT_NE(early.status().message().find("before the source's partition start"),
            std::string::npos);
  auto late = ExpandPartitions(Scheme("day", "", "2026-01-31"), "2026-01-30..2026-02-01");
  EXPECT_FALSE(late.ok());
  auto huge = ExpandPartitions(Scheme("hour"), "2020-01-01T00..2026-01-01T00");
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("more than 10000"), std::string::npos);
}

}  // namespace
}  // namespace sluice
