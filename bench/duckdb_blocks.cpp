// What a DuckDB file's block size costs a big table: loads a CSV into a new
// file made with BLOCK_SIZE bytes a block (CREATE TABLE AS read_csv, then the
// close and its checkpoint), reopens it and times five reads, each the mean
// of three. Prints one line: load ms, each read's ms, the file's MB. With
// bench/scheduler's BLOCK_SIZE runs it shows the trade-off behind
// `defaults: {block_size: ...}`: small blocks for many small tables, big
// ones for scans of big tables. QUERY_THREADS (DuckDB's `threads`, as
// `defaults: {query_threads: ...}` sets it) shows that setting's cost to a
// big table the same way.
//   duckdb_blocks CSV DB_PATH BLOCK_SIZE [QUERY_THREADS]
// (the CSV of bench/ingest: id, ts, city, amount, quantity, flag, note)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/strings.h"
#include "warehouse/duckdb.h"

namespace {

double MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sluice;
  if (argc < 4) {
    std::fprintf(stderr, "usage: duckdb_blocks CSV DB_PATH BLOCK_SIZE [QUERY_THREADS]\n");
    return 2;
  }
  const std::string csv = argv[1];
  const std::string path = argv[2];
  DuckDbOptions options;
  options.block_size = std::atoll(argv[3]);
  if (argc > 4) options.threads = std::max(1, std::atoi(argv[4]));
  std::filesystem::remove(path);
  std::filesystem::remove(path + ".wal");
  auto fail = [](const Status& st) {
    std::fprintf(stderr, "%s\n", st.message().c_str());
    return 1;
  };
  auto start = std::chrono::steady_clock::now();
  {
    auto db = DuckDbDatabase::Open(path, options);
    if (!db.ok()) return fail(db.status());
    auto conn = db->Connect();
    if (!conn.ok()) return fail(conn.status());
    Status st =
        conn->Execute("CREATE TABLE t AS SELECT * FROM read_csv(" + QuoteLiteral(csv) + ")");
    if (!st.ok()) return fail(st);
  }
  const double load_ms = MsSince(start);
  std::printf("block_size %lld, threads %s: load %.0f ms; reads (ms):",
              static_cast<long long>(options.block_size),
              options.threads > 0 ? std::to_string(options.threads).c_str() : "default", load_ms);
  {
    auto db = DuckDbDatabase::Open(path, options);
    if (!db.ok()) return fail(db.status());
    auto conn = db->Connect();
    if (!conn.ok()) return fail(conn.status());
    for (const char* read : {"SELECT sum(amount), avg(quantity) FROM t",
                             "SELECT city, count(*), sum(amount) FROM t GROUP BY city",
                             "SELECT count(DISTINCT note) FROM t",
                             "SELECT count(*) FROM t WHERE id BETWEEN 1000000 AND 1001000",
                             "SELECT * FROM t ORDER BY amount DESC LIMIT 10"}) {
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 3; ++i) {
        auto r = conn->Query(read);
        if (!r.ok()) return fail(r.status());
      }
      std::printf(" %.0f", MsSince(t0) / 3);
    }
  }
  std::printf("; file %.0f MB\n", std::filesystem::file_size(path) / 1048576.0);
  return 0;
}
