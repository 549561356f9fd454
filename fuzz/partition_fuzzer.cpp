// Fuzzes partition keys and ranges as `--partition` receives them.
#include <cstdint>
#include <string>

#include "orchestrate/partitions.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* kUnits[] = {"hour", "day", "week", "month", "year"};
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto scheme = sluice::ParsePartitionScheme(
      {{"by", kUnits[data[0] % 5]}, {"start", "2000-01-01"}, {"end", "2100-01-01"}});
  if (!scheme.ok()) return 0;
  auto keys = sluice::ExpandPartitions(*scheme, text);
  if (keys.ok() && !keys->empty()) (void)sluice::WindowOf(*scheme, keys->front());
  (void)sluice::ParsePartitionScheme({{"by", "day"}, {"start", text}});
  return 0;
}
