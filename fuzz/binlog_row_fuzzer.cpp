// Fuzzes the binlog row decoder (ingest/binlog_row.h): a table map built
// from the input (column types, metadata, signedness), then row images
// decoded from the rest until one fails — as a MariaDB server's bytes
// reach it. Nothing may crash, read out of bounds or loop.
//
// Input: [ncols][types: ncols bytes][meta length][meta][signedness][rows...]
#include <cstdint>
#include <string>
#include <vector>

#include "ingest/binlog_row.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  size_t at = 0;
  auto take = [&](size_t n) -> std::string {
    if (size - at < n) n = size - at;
    std::string s(reinterpret_cast<const char*>(data + at), n);
    at += n;
    return s;
  };
  if (size < 3) return 0;
  const size_t ncols = 1 + data[at++] % 16;
  const std::string types = take(ncols);
  if (types.size() != ncols || at >= size) return 0;
  const std::string meta = take(data[at++]);
  unsigned char signedness[2] = {0, 0};
  if (at < size) signedness[0] = data[at++];
  if (at < size) signedness[1] = data[at++];
  // Names as the optional metadata carries them: a length, then the bytes.
  std::string names;
  for (size_t i = 0; i < ncols; ++i) {
    std::string n = "c" + std::to_string(i);
    names += static_cast<char>(n.size());
    names += n;
  }
  auto map = sluice::binlog::ParseTableMap(1, "db", "t", types, meta, signedness, names, "", "");
  if (!map.ok()) return 0;
  std::vector<unsigned char> present((ncols + 7) / 8, 0xff);
  std::vector<sluice::binlog::Value> row;
  for (int rows = 0; at < size && rows < 64; ++rows) {
    auto used = sluice::binlog::DecodeRow(*map, present.data(), data + at, size - at, &row);
    if (!used.ok() || *used == 0) break;
    if (*used > size - at) __builtin_trap();  // claimed bytes it was not given
    at += *used;
  }
  return 0;
}
