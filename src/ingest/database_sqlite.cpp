// SQLite: the file opened read-only, the rows read in one transaction.
// SQLite's columns hold any storage class whatever their declared type, so
// a column's type is settled after every value is seen: the declared type
// when each value fits it, else the narrowest that holds them all (an
// INTEGER column holding text is read as VARCHAR, and the run says so).
// Reals are written in their shortest round-trip form.
//
// URL: sqlite:PATH (relative to the project), sqlite:///ABSOLUTE/PATH
#include <sqlite3.h>

#include <charconv>
#include <set>

#include "core/clock.h"
#include "core/fs.h"
#include "core/strings.h"
#include "ingest/database.h"

namespace sluice {
namespace {

struct Sqlite3Closer {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};

bool IsDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// YYYY-MM-DD of a day the calendar has (DuckDB refuses 2024-02-30, 0000-…).
bool IsIsoDate(std::string_view v) {
  if (!(v.size() == 10 && IsDigits(v.substr(0, 4)) && v[4] == '-' && IsDigits(v.substr(5, 2)) &&
        v[7] == '-' && IsDigits(v.substr(8, 2)))) {
    return false;
  }
  int y = std::stoi(std::string(v.substr(0, 4))), m = std::stoi(std::string(v.substr(5, 2))),
      d = std::stoi(std::string(v.substr(8, 2)));
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1 || m < 1 || m > 12 || d < 1) return false;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return d <= kDays[m - 1] + (m == 2 && leap ? 1 : 0);
}

// YYYY-MM-DD[ T]HH:MM[:SS[.fraction]]
bool IsIsoTimestamp(std::string_view v) {
  if (v.size() < 16 || !IsIsoDate(v.substr(0, 10)) || (v[10] != ' ' && v[10] != 'T')) return false;
  std::string_view t = v.substr(11);
  if (!(IsDigits(t.substr(0, 2)) && t[2] == ':' && IsDigits(t.substr(3, 2)))) return false;
  if (std::stoi(std::string(t.substr(0, 2))) > 23 || std::stoi(std::string(t.substr(3, 2))) > 59) {
    return false;
  }
  t = t.substr(5);
  if (t.empty()) return true;
  if (t.size() < 3 || t[0] != ':' || !IsDigits(t.substr(1, 2))) return false;
  t = t.substr(3);
  if (t.empty()) return true;
  return t[0] == '.' && IsDigits(t.substr(1));
}

// What a column held, counted while it streamed.
struct Seen {
  std::string declared;  // upper case
  int64_t ints = 0, reals = 0, texts = 0, blobs = 0;
  int64_t dates = 0, timestamps = 0;  // texts that are ISO dates / timestamps
  bool only_bits = true;              // every integer 0 or 1
};

// SQLite's affinity rules (https://sqlite.org/datatype3.html, 3.1).
enum class Affinity { kInteger, kText, kBlob, kReal, kNumeric };
Affinity AffinityOf(const std::string& d) {
  if (d.find("INT") != std::string::npos) return Affinity::kInteger;
  if (d.find("CHAR") != std::string::npos || d.find("CLOB") != std::string::npos ||
      d.find("TEXT") != std::string::npos) {
    return Affinity::kText;
  }
  if (d.empty() || d.find("BLOB") != std::string::npos) return Affinity::kBlob;
  if (d.find("REAL") != std::string::npos || d.find("FLOA") != std::string::npos ||
      d.find("DOUB") != std::string::npos) {
    return Affinity::kReal;
  }
  return Affinity::kNumeric;
}

// The column's type, and a note when its values did not fit what it declares.
std::pair<DbColumn, std::string> Settle(const std::string& name, const Seen& s) {
  DbColumn c;
  c.name = name;
  c.source_type = s.declared.empty() ? "(none)" : ToLower(s.declared);
  Affinity a = AffinityOf(s.declared);
  bool date_like =
      s.declared.find("DATE") != std::string::npos || s.declared.find("TIME") != std::string::npos;
  std::string wanted;
  if (s.blobs > 0) {
    c.type = s.ints + s.reals + s.texts == 0 ? "BLOB" : "VARCHAR";
    if (c.type == "BLOB") c.encoding = DbEncoding::kHex;
    if (c.type == "VARCHAR") {
      return {c, "column " + name + " mixes blobs with other values; read as text, blobs as hex"};
    }
    return {c, ""};
  }
  if (s.texts > 0) {
    if (date_like && s.ints + s.reals == 0 && s.dates == s.texts) {
      c.type = s.declared.find("TIME") != std::string::npos ? "TIMESTAMP" : "DATE";
    } else if (date_like && s.ints + s.reals == 0 && s.timestamps + s.dates == s.texts) {
      c.type = "TIMESTAMP";
    } else {
      c.type = "VARCHAR";
    }
    if (c.type == "VARCHAR" && a != Affinity::kText && a != Affinity::kBlob && !date_like) {
      return {c, "column " + name + " is declared " + s.declared + " but holds text in " +
                     std::to_string(s.texts) + " row(s); read as VARCHAR"};
    }
    return {c, ""};
  }
  if (s.reals > 0) {
    c.type = "DOUBLE";
    if (a == Affinity::kInteger) {
      return {c, "column " + name + " is declared " + s.declared + " but holds reals in " +
                     std::to_string(s.reals) + " row(s); read as DOUBLE"};
    }
    return {c, ""};
  }
  if (s.ints > 0) {
    if (s.declared.find("BOOL") != std::string::npos && s.only_bits) {
      c.type = "BOOLEAN";
    } else if (a == Affinity::kReal) {
      c.type = "DOUBLE";
    } else {
      c.type = a == Affinity::kText ? "VARCHAR" : "BIGINT";
    }
    return {c, ""};
  }
  // Only nulls: what it declares.
  switch (a) {
    case Affinity::kInteger:
      c.type = "BIGINT";
      break;
    case Affinity::kReal:
      c.type = "DOUBLE";
      break;
    case Affinity::kBlob:
      c.type = s.declared.empty() ? "VARCHAR" : "BLOB";
      if (c.type == "BLOB") c.encoding = DbEncoding::kHex;
      break;
    default:
      c.type = "VARCHAR";
      break;
  }
  return {c, ""};
}

class SqliteDriver final : public DatabaseDriver {
 public:
  Result<DbExtract> Extract(const DbRequest& req, CsvFileWriter& out) const override {
    std::string path = req.url.substr(7);  // after "sqlite:"
    if (StartsWith(path, "//")) path = path.substr(2);
    if (path.empty()) {
      return Status::Invalid("database: url: sqlite: needs a path, e.g. sqlite:data/shop.db");
    }
    if (path[0] != '/') path = JoinPath(req.project_root, path);
    if (!FileExists(path)) {
      return DatabaseError(req, "no SQLite database at " + path,
                           "check the path in the url (relative paths start at the project)");
    }
    sqlite3* raw = nullptr;
    int rc =
        sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
    std::unique_ptr<sqlite3, Sqlite3Closer> db(raw);
    if (rc != SQLITE_OK) {
      return DatabaseError(req, "cannot open the SQLite database " + path,
                           raw ? sqlite3_errmsg(raw) : "out of memory");
    }
    sqlite3_busy_timeout(db.get(), 5000);
    struct Progress {
      const DbRequest* req;
      int64_t deadline;
      bool cancelled = false, late = false;
    } progress{&req, req.timeout_seconds > 0 ? MonotonicMillis() + req.timeout_seconds * 1000 : 0};
    sqlite3_progress_handler(
        db.get(), 100000,
        [](void* p) -> int {
          auto* pr = static_cast<Progress*>(p);
          pr->cancelled = pr->req->cancel && pr->req->cancel->load();
          pr->late = pr->deadline > 0 && MonotonicMillis() > pr->deadline;
          return pr->cancelled || pr->late ? 1 : 0;
        },
        &progress);
    if (sqlite3_exec(db.get(), "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) {
      return DatabaseError(req, "SQLite cannot begin a read", sqlite3_errmsg(db.get()));
    }
    std::string sql;
    if (!req.table.empty()) {
      ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitRelationName(req.table));
      std::vector<std::string> quoted;
      for (const std::string& p : parts) quoted.push_back(QuoteIdent(p));
      sql = "SELECT * FROM " + Join(quoted, ".");
    } else {
      sql = StripStatementEnd(req.query);
    }
    if (!req.only_columns.empty()) {
      std::vector<std::string> cols;
      for (const std::string& c : req.only_columns) cols.push_back(QuoteIdent(c));
      sql = "SELECT " + Join(cols, ", ") + " FROM (" + sql + "\n)";
    }
    if (!req.since.column.empty()) {
      // The cursor bound as its own type: SQLite orders numbers before text.
      std::string bound = "?1";
      if (req.since.lookback_seconds > 0) {
        bound = "datetime(?1, '-" + std::to_string(req.since.lookback_seconds) + " seconds')";
      }
      sql = "SELECT * FROM (" + sql + "\n) WHERE " + QuoteIdent(req.since.column) + " >= " + bound;
    }
    sql = PageSql(
        sql, req.page, [](const std::string& n) { return QuoteIdent(n); },
        [](const std::string& v) { return QuoteLiteral(v); });
    sqlite3_stmt* stmt_raw = nullptr;
    const char* tail = nullptr;
    rc = sqlite3_prepare_v2(db.get(), sql.c_str(), static_cast<int>(sql.size()), &stmt_raw, &tail);
    std::unique_ptr<sqlite3_stmt, StmtFinalizer> stmt(stmt_raw);
    if (rc != SQLITE_OK || !stmt) {
      std::string m = rc == SQLITE_OK ? "it holds no statement" : sqlite3_errmsg(db.get());
      return DatabaseError(req, "SQLite cannot read " + What(req),
                           m + (m.find("no such table") != std::string::npos
                                    ? " (check the name in table: or query:)"
                                    : ""));
    }
    if (!req.since.column.empty()) {
      const std::string& t = req.since.type;
      const std::string& v = req.since.value;
      if (t == "BIGINT" || t == "INTEGER" || t == "SMALLINT" || t == "TINYINT" || t == "BOOLEAN") {
        if (t == "BOOLEAN") {
          sqlite3_bind_int64(stmt.get(), 1, v == "true" ? 1 : 0);
        } else {
          sqlite3_bind_int64(stmt.get(), 1, std::stoll(v));
        }
      } else if (t == "DOUBLE" || t == "FLOAT" || StartsWith(t, "DECIMAL")) {
        sqlite3_bind_double(stmt.get(), 1, std::stod(v));
      } else {
        sqlite3_bind_text(stmt.get(), 1, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
      }
    }
    if (tail && !Trim(std::string(tail)).empty() && Trim(std::string(tail)) != ";") {
      return DatabaseError(req, "query: holds more than one statement", "write one SELECT");
    }
    if (!sqlite3_stmt_readonly(stmt.get())) {
      return DatabaseError(req, "query: would change the database", "write a SELECT");
    }
    int n = sqlite3_column_count(stmt.get());
    if (n == 0) {
      return DatabaseError(req, What(req) + " returns no columns",
                           "write a SELECT that returns rows");
    }
    std::vector<std::string> names;
    std::vector<Seen> seen(static_cast<size_t>(n));
    std::set<std::string> unique;
    for (int i = 0; i < n; ++i) {
      names.push_back(sqlite3_column_name(stmt.get(), i));
      if (!unique.insert(names.back()).second) {
        return DatabaseError(req, What(req) + " returns the column '" + names.back() + "' twice",
                             "give each column of the query its own name (AS ...)");
      }
      const char* decl = sqlite3_column_decltype(stmt.get(), i);
      std::string declared = decl ? decl : "";
      for (char& ch : declared)
        ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      seen[static_cast<size_t>(i)].declared = declared;
      RETURN_IF_ERROR(out.Text(names.back().data(), names.back().size()));
    }
    RETURN_IF_ERROR(out.EndRow());
    DbExtract extract;
    char number[64];
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      for (int i = 0; i < n; ++i) {
        Seen& s = seen[static_cast<size_t>(i)];
        switch (sqlite3_column_type(stmt.get(), i)) {
          case SQLITE_NULL:
            RETURN_IF_ERROR(out.Null());
            break;
          case SQLITE_INTEGER: {
            int64_t v = sqlite3_column_int64(stmt.get(), i);
            ++s.ints;
            if (v != 0 && v != 1) s.only_bits = false;
            auto r = std::to_chars(number, number + sizeof number, v);
            RETURN_IF_ERROR(out.Text(number, static_cast<size_t>(r.ptr - number)));
            break;
          }
          case SQLITE_FLOAT: {
            double v = sqlite3_column_double(stmt.get(), i);
            ++s.reals;
            auto r = std::to_chars(number, number + sizeof number, v);  // shortest round trip
            RETURN_IF_ERROR(out.Text(number, static_cast<size_t>(r.ptr - number)));
            break;
          }
          case SQLITE_TEXT: {
            const char* v = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), i));
            size_t len = static_cast<size_t>(sqlite3_column_bytes(stmt.get(), i));
            std::string_view view(v ? v : "", v ? len : 0);
            ++s.texts;
            if (IsIsoDate(view))
              ++s.dates;
            else if (IsIsoTimestamp(view))
              ++s.timestamps;
            RETURN_IF_ERROR(out.Text(view.data(), view.size()));
            break;
          }
          default: {  // SQLITE_BLOB
            const void* v = sqlite3_column_blob(stmt.get(), i);
            size_t len = static_cast<size_t>(sqlite3_column_bytes(stmt.get(), i));
            ++s.blobs;
            RETURN_IF_ERROR(out.Hex(static_cast<const unsigned char*>(v), len));
            break;
          }
        }
      }
      RETURN_IF_ERROR(out.EndRow());
      ++extract.rows;
    }
    if (rc != SQLITE_DONE) {
      if (progress.cancelled)
        return Status::Cancelled("the run was cancelled while reading " + What(req));
      if (progress.late) {
        return Status(StatusCode::kTimeout, "reading " + What(req) + " took longer than " +
                                                std::to_string(req.timeout_seconds) +
                                                "s (raise timeout: or defaults.timeout)");
      }
      return DatabaseError(req, "SQLite stopped reading " + What(req), sqlite3_errmsg(db.get()));
    }
    for (int i = 0; i < n; ++i) {
      auto [column, note] = Settle(names[static_cast<size_t>(i)], seen[static_cast<size_t>(i)]);
      extract.columns.push_back(std::move(column));
      if (!note.empty()) extract.notes.push_back(note);
    }
    return extract;
  }

 private:
  static std::string What(const DbRequest& req) {
    return req.table.empty() ? std::string("the query") : "table " + req.table;
  }
};

}  // namespace

std::unique_ptr<DatabaseDriver> NewSqliteDriver() { return std::make_unique<SqliteDriver>(); }

}  // namespace sluice
