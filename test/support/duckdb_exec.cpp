// duckdb_exec: runs SQL on a DuckDB file directly, as a person with DuckDB's
// own shell would (Debian has no DuckDB CLI): for cases that tamper with a
// warehouse behind Sluice's back (a public view dropped by hand). Prints each
// result row with columns separated by '|'.
//   duckdb_exec DB_PATH SQL
#include <cstdio>

#include "warehouse/duckdb.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: duckdb_exec DB_PATH SQL\n");
    return 2;
  }
  sluice::DuckDbOptions options;
  options.memory_limit = "512MB";
  auto db = sluice::DuckDbDatabase::Open(argv[1], options);
  if (!db.ok()) {
    std::fprintf(stderr, "%s\n", db.status().message().c_str());
    return 1;
  }
  auto conn = db->Connect();
  if (!conn.ok()) return 1;
  auto result = conn->Query(argv[2]);
  if (!result.ok()) {
    std::fprintf(stderr, "%s\n", result.status().message().c_str());
    return 1;
  }
  for (const auto& row : result->rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      std::printf("%s%s", i ? "|" : "", row[i].value_or("NULL").c_str());
    }
    std::printf("\n");
  }
  return 0;
}
