// The engine's own floor under bench/scheduler: what building N trivial
// models costs when only the statements a build cannot do without are run,
// straight on DuckDB through the same library, from THREADS threads — per
// model, a table created from the seed, its schema read, then its view and
// its publication record (the 14 columns of _sluice.publications). MODE
// `two` (the default) commits the table on its own and the view and record
// in a second transaction; `one` does all of it in one transaction, one
// commit a model; `groupK` (e.g. group8) does K models of a thread in one
// transaction, one commit per K (what group commits of builds would cost).
// No checks, no metadata, no logs, no planning: what Sluice's ms/model
// compares with. Prints the
// milliseconds per model, opening to closing the database (its checkpoint
// included, as a `sluice run`). BLOCK_SIZE (bytes) makes the file with that
// block size, as `defaults: {block_size: ...}` makes Sluice's warehouse
// (0: DuckDB's default); QUERY_THREADS is DuckDB's `threads`, as
// `defaults: {query_threads: ...}` sets it (default: one per CPU).
//   duckdb_models N DB_PATH [THREADS] [two|one|groupK] [BLOCK_SIZE] [QUERY_THREADS]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "core/strings.h"
#include "warehouse/duckdb.h"

int main(int argc, char** argv) {
  using namespace sluice;
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: duckdb_models N DB_PATH [THREADS] [two|one|groupK] [BLOCK_SIZE] "
                 "[QUERY_THREADS]\n");
    return 2;
  }
  const int n = std::atoi(argv[1]);
  const std::string path = argv[2];
  const int threads = argc > 3 ? std::max(1, std::atoi(argv[3])) : 4;
  const std::string mode = argc > 4 ? argv[4] : "two";
  // Models a transaction holds: 1 for `one`, K for `groupK`; 0 for `two`.
  // Anything else is refused: a figure under a misspelt mode would be
  // another mode's.
  int per_commit = -1;
  if (mode == "two") {
    per_commit = 0;
  } else if (mode == "one") {
    per_commit = 1;
  } else if (mode.size() > 5 && mode.compare(0, 5, "group") == 0 &&
             mode.find_first_not_of("0123456789", 5) == std::string::npos) {
    per_commit = std::atoi(mode.c_str() + 5);
  }
  if (per_commit < 0 || (per_commit == 0 && mode != "two")) {
    std::fprintf(stderr, "duckdb_models: MODE is two, one or groupK (K at least 1), got '%s'\n",
                 mode.c_str());
    return 2;
  }
  const bool in_transaction = per_commit > 0;  // build, view and record in one
  DuckDbOptions options;
  if (argc > 5) options.block_size = std::atoll(argv[5]);
  if (argc > 6) options.threads = std::max(1, std::atoi(argv[6]));
  std::filesystem::remove(path);
  std::filesystem::remove(path + ".wal");
  auto start = std::chrono::steady_clock::now();
  auto db = DuckDbDatabase::Open(path, options);
  if (!db.ok()) {
    std::fprintf(stderr, "%s\n", db.status().message().c_str());
    return 1;
  }
  {
    auto setup = db->Connect();
    if (!setup.ok()) return 1;
    Status st = setup->Execute(
        "CREATE SCHEMA v; CREATE SCHEMA meta; CREATE TABLE base AS SELECT * FROM (VALUES (1, "
        "'a'), (2, 'b'), (3, 'c')) t(id, v); CREATE TABLE meta.publications (seq BIGINT NOT "
        "NULL, asset VARCHAR NOT NULL, partition_key VARCHAR NOT NULL, version_id VARCHAR NOT "
        "NULL, physical VARCHAR NOT NULL, fingerprint VARCHAR, checks_hash VARCHAR, inputs "
        "VARCHAR, schema_json VARCHAR, rows BIGINT, cursor_state VARCHAR, run_id BIGINT, "
        "published_at TIMESTAMP NOT NULL, request_id VARCHAR)");
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.message().c_str());
      return 1;
    }
  }
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      auto conn = db->Connect();
      if (!conn.ok()) {
        failed = true;
        return;
      }
      int open = 0;  // models in the open transaction
      for (int i = next++; i < n && !failed; i = next++) {
        const std::string name = "m" + std::to_string(i + 1);
        const std::string table = "v." + QuoteIdent(name);
        Status st =
            in_transaction && open++ == 0 ? conn->Execute("BEGIN TRANSACTION") : Status::Ok();
        if (st.ok()) {
          st = conn->Execute("CREATE TABLE " + table + " AS SELECT id, v FROM base WHERE id <= " +
                             std::to_string((i + 1) % 3 + 1));
        }
        Result<QueryResult> schema = conn->Query("DESCRIBE SELECT * FROM " + table);
        if (st.ok() && !schema.ok()) st = schema.status();
        if (st.ok()) {
          st = conn->Execute(std::string(in_transaction ? "" : "BEGIN TRANSACTION; ") +
                             "CREATE OR REPLACE VIEW main." + QuoteIdent(name) +
                             " AS SELECT * FROM " + table +
                             // The record as _sluice.publications has it (14 columns).
                             "; INSERT INTO meta.publications (seq, asset, partition_key, "
                             "version_id, physical, fingerprint, checks_hash, inputs, "
                             "schema_json, rows, run_id, published_at, request_id, "
                             "cursor_state) VALUES (" +
                             std::to_string(i + 1) + ", " + QuoteLiteral(name) +
                             ", '', '0123456789abcdef', " + QuoteLiteral(table) +
                             ", 'fp', 'ch', '[\"base\"]', "
                             "'[{\"name\":\"id\",\"type\":\"INTEGER\"},{\"name\":\"v\","
                             "\"type\":\"VARCHAR\"}]', 3, 1, make_timestamp(1767225600000000), "
                             "NULL, NULL)" +
                             (in_transaction && open < per_commit ? "" : "; COMMIT"));
          if (open == per_commit) open = 0;
        }
        if (!st.ok()) {
          std::fprintf(stderr, "%s\n", st.message().c_str());
          failed = true;
        }
      }
      if (open > 0 && !failed && !conn->Execute("COMMIT").ok()) failed = true;
    });
  }
  for (std::thread& w : workers) w.join();
  if (failed) return 1;
  *db = DuckDbDatabase();  // closed: its checkpoint written
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("%.2f\n", ms / n);
  return 0;
}
