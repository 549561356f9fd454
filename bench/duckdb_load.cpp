// The peer of `sluice run` for a local CSV: DuckDB's own load of the same
// file through the same library, with the same memory limit, into a fresh
// database file. Prints the seconds taken (opening to closing the database)
// and the rows loaded. With a SQL
// file, runs that instead (a hand-written load: `@FILE@` is replaced by the
// quoted CSV path; it must create table t).
//   duckdb_load FILE.csv DB_PATH [MEMORY_LIMIT [SQL_FILE]]
#include <chrono>
#include <cstdio>
#include <string>

#include "core/fs.h"
#include "core/strings.h"
#include "warehouse/duckdb.h"

int main(int argc, char** argv) {
  using namespace sluice;
  if (argc < 3) {
    std::fprintf(stderr, "usage: duckdb_load FILE.csv DB_PATH [MEMORY_LIMIT]\n");
    return 2;
  }
  DuckDbOptions options;
  options.memory_limit = argc > 3 ? argv[3] : "2GB";
  auto start = std::chrono::steady_clock::now();
  auto db = DuckDbDatabase::Open(argv[2], options);
  if (!db.ok()) {
    std::fprintf(stderr, "%s\n", db.status().message().c_str());
    return 1;
  }
  auto conn = db->Connect();
  if (!conn.ok()) return 1;
  std::string sql = "CREATE TABLE t AS SELECT * FROM read_csv(@FILE@, header=true)";
  if (argc > 4) {
    auto text = ReadFile(argv[4]);
    if (!text.ok()) {
      std::fprintf(stderr, "%s\n", text.status().message().c_str());
      return 1;
    }
    sql = *text;
  }
  for (size_t at; (at = sql.find("@FILE@")) != std::string::npos;) {
    sql.replace(at, 6, QuoteLiteral(argv[1]));
  }
  Status st = conn->Execute(sql);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.message().c_str());
    return 1;
  }
  auto rows = conn->Query("SELECT count(*) FROM t");
  int64_t n = rows.ok() ? rows->ScalarInt() : -1;
  // The load is done when the database is closed (its checkpoint written), as
  // a `sluice run` process's time includes closing its warehouse.
  *conn = DuckDbConnection();
  *db = DuckDbDatabase();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%.3f %lld\n", secs, static_cast<long long>(n));
  return 0;
}
