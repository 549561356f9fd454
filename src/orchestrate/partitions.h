// Partitions of a source (`partition: {by: day, start: 2026-01-01}`): each
// partition is collected, versioned and published on its own, and the public
// table is the union of every partition's current version. A partition key
// names one period in UTC: "2026" (year), "2026-01" (month), "2026-01-05"
// (week: its Monday; day), "2026-01-05T07" (hour). Pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"

namespace sluice {

enum class PartitionUnit { kHour, kDay, kWeek, kMonth, kYear };

struct PartitionScheme {
  PartitionUnit unit = PartitionUnit::kDay;
  std::string first;  // key of `start:`, "" when unbounded
  std::string last;   // key of `end:`, "" when unbounded
};

struct PartitionWindow {
  std::string key;
  std::string start;  // {{ start }}: "2026-01-05", or "2026-01-05T07:00:00Z" for hours
  std::string end;    // {{ end }}: the start of the next partition, same form
};

// From a source's `partition:` mapping (already validated by the loader).
Result<PartitionScheme> ParsePartitionScheme(const nlohmann::json& partition);
// The key of the partition holding `value` ("2026-01-05", "2026-01", ...):
// value must be written at the unit's precision (weeks accept any day).
Result<std::string> PartitionKey(const PartitionScheme& scheme, const std::string& value);
// The partitions of "A" or "A..B" (inclusive), oldest first, within the
// scheme's start/end; at most 10,000.
Result<std::vector<std::string>> ExpandPartitions(const PartitionScheme& scheme,
                                                  const std::string& range);
// The partition holding `now`.
std::string CurrentPartition(const PartitionScheme& scheme, Micros now);
// {{ start }} and {{ end }} of a partition key.
Result<PartitionWindow> WindowOf(const PartitionScheme& scheme, const std::string& key);

}  // namespace sluice
