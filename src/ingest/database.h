// Database sources (DESIGN §2): a table or a query of PostgreSQL (libpq),
// MySQL/MariaDB (MariaDB Connector/C) or SQLite read in one streaming pass
// into a file that becomes the raw object — CSV as RFC 4180 writes it, a
// header row, NULL as an unquoted empty field and empty text as "" — and the
// columns' types mapped faithfully onto DuckDB's. The types travel beside the
// object (the fetch log keeps them, and the version hashes them); the
// `database` decoder reads the object back with exactly those types, so no
// value is guessed at, rounded or dropped.
//
// Each driver registers under its URL schemes: postgresql:// postgres://
// (and libpq's key=value strings), mysql:// mariadb://, sqlite:PATH.
//
// Thread-safety: Extract may run on several threads at once, each with its
// own connection.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace sluice {

// How a column's values are written to the CSV and read back.
enum class DbEncoding {
  kPlain,  // the value's text, read as `type`
  kHex,    // bytes as hex, read back with unhex() into a BLOB
  kFit,    // numbers of unbounded precision (numeric without a typmod):
           // read as text, then typed as the narrowest DECIMAL that holds
           // every value, or kept as text when none does (said so)
};

struct DbColumn {
  std::string name;
  std::string source_type;  // as the database names it: "numeric(12,2)", "int unsigned"
  std::string type;         // DuckDB's: "DECIMAL(12,2)", "UINTEGER"
  DbEncoding encoding = DbEncoding::kPlain;
};

struct DbRequest {
  std::string url;           // secrets already substituted
  std::string table;         // "schema.table" or "table"; or
  std::string query;         // a query (templates already rendered)
  std::string project_root;  // relative sqlite: paths start here
  int64_t timeout_seconds = 0;
  int64_t connect_timeout_seconds = 10;  // PostgreSQL: how long connecting may take
  const std::atomic<bool>* cancel = nullptr;
  // An incremental read: only rows whose `since.column` is at or past
  // `since.value` less `since.lookback_seconds` (for date and time cursors).
  // `value` is as DuckDB writes the cursor's type (times in UTC, no zone);
  // `type` is that DuckDB type. An empty column: every row.
  struct Since {
    std::string column, value, type;
    int64_t lookback_seconds = 0;
  } since;
  // Only these columns of the table or query (a key scan); empty: all.
  std::vector<std::string> only_columns;
  // One page in key order (kAfter): the rows whose `key` comes after
  // `after` (each value as the driver wrote it, its DuckDB type in `types`;
  // empty: from the first), at most `limit` of them, ordered by the key.
  // kDescending: the greatest `limit` rows, greatest first (NULL keys left
  // out); kNullKeys: rows with a NULL in a key column; kEqual: rows whose
  // key equals `after`. limit 0: all.
  struct Page {
    enum Mode { kAfter, kDescending, kNullKeys, kEqual };
    std::vector<std::string> key, after, types;
    int64_t limit = 0;
    Mode mode = kAfter;
  } page;
  // PostgreSQL only: read inside this exported snapshot (a change
  // capture's starting point), and append these constant columns to every
  // row (a change capture's _op and _extracted_at).
  std::string snapshot;
  struct Constant {
    std::string name, type, value;  // type: DuckDB's
  };
  std::vector<Constant> constants;
};

// True for the DuckDB types a lookback can be subtracted from.
bool IsTimeCursorType(const std::string& duck_type);

struct DbExtract {
  std::vector<DbColumn> columns;
  int64_t rows = 0;
  uint64_t bytes = 0;
  std::string sha256;
  std::vector<std::string> notes;  // for the run summary: "3 zero dates loaded as NULL"
  // A page's last row as written (nullopt: NULL); empty when no rows.
  std::vector<std::optional<std::string>> last_row;
};

// Extracts req's table or query into a new file at `path` (hashed as it is
// written). Errors name the database (without its password) and what to do;
// nothing is left at `path` on error.
Result<DbExtract> ExtractToFile(const DbRequest& req, const std::string& path);

// A schema's base tables, each with its primary key (empty: none), sorted
// by name: PostgreSQL and MariaDB/MySQL (their own listing functions below).
struct DbTableInfo {
  std::string name;
  std::vector<std::string> key;
  bool partitioned = false;  // PostgreSQL: its rows are in its partitions
};
Result<std::vector<DbTableInfo>> ListTables(const DbRequest& req, const std::string& schema);
Result<std::vector<DbTableInfo>> ListPostgresTables(const DbRequest& req,
                                                    const std::string& schema);
Result<std::vector<DbTableInfo>> ListMariaDbTables(const DbRequest& req, const std::string& schema);

// The URL as it may be shown and logged: the password left out.
std::string DisplayDatabaseUrl(const std::string& url);
// Registers the URL's password with the redactor, so that no error, log or
// answer ever shows it.
void RegisterDatabaseSecrets(const std::string& url);
// True when `url` names a database this build can read.
bool IsDatabaseUrl(const std::string& url);
// True when `url` names a PostgreSQL database (a URL or libpq's key=value form).
bool IsPostgresUrl(const std::string& url);
std::vector<std::string> DatabaseSchemes();

// The columns as the fetch log and the decoder keep them, and back.
nlohmann::json DbColumnsToJson(const std::vector<DbColumn>& columns);
Result<std::vector<DbColumn>> DbColumnsFromJson(const nlohmann::json& json);

// Type mappings, for tests: PostgreSQL's base type (its oid, type modifier,
// pg_type.typcategory and typtype) and MariaDB's field description.
DbColumn MapPostgresType(const std::string& name, const std::string& formatted, uint32_t oid,
                         int32_t typmod, char category, char typtype);
struct MariaDbField {
  std::string name;
  int type = 0;  // enum_field_types
  bool is_unsigned = false;
  bool binary = false;  // charsetnr 63: bytes, not text
  uint64_t length = 0;
  unsigned decimals = 0;
};
DbColumn MapMariaDbType(const MariaDbField& field);

// Writes RFC 4180 CSV to a file descriptor through a buffer, hashing what
// it writes. Exposed for the drivers (and their tests).
class CsvFileWriter {
 public:
  explicit CsvFileWriter(int fd);
  ~CsvFileWriter();
  CsvFileWriter(const CsvFileWriter&) = delete;
  CsvFileWriter& operator=(const CsvFileWriter&) = delete;

  // One field of the current row; a null is an unquoted empty field.
  Status Null();
  Status Text(const char* data, size_t size);  // quoted when it must be (or is empty)
  Status Hex(const unsigned char* data, size_t size);
  Status EndRow();
  // Bytes already in CSV form (PostgreSQL's COPY stream).
  Status Raw(const char* data, size_t size);
  // Flushes; returns the SHA-256 of everything written.
  Result<std::string> Finish();
  uint64_t bytes() const { return bytes_; }
  // Where the last whole row written starts in the file (for Raw, the last
  // Raw call's bytes).
  uint64_t last_row_offset() const { return last_row_; }

 private:
  Status Put(const char* data, size_t size);
  Status Flush();
  int fd_;
  std::string buffer_;
  bool row_started_ = false;
  uint64_t bytes_ = 0;
  uint64_t row_start_ = 0, last_row_ = 0;
  struct Hasher;
  std::unique_ptr<Hasher> hasher_;
};

// A driver extracts into a CsvFileWriter and says what it wrote.
class DatabaseDriver {
 public:
  virtual ~DatabaseDriver() = default;
  virtual Result<DbExtract> Extract(const DbRequest& req, CsvFileWriter& out) const = 0;
};
using DatabaseDriverFactory = std::function<std::unique_ptr<DatabaseDriver>()>;

// The drivers of each family (database_postgres.cpp, database_mariadb.cpp,
// database_sqlite.cpp).
std::unique_ptr<DatabaseDriver> NewPostgresDriver();
std::unique_ptr<DatabaseDriver> NewMariaDbDriver();
std::unique_ptr<DatabaseDriver> NewSqliteDriver();

class Decoder;
// The `database` format: an extract read back with the types in
// options.columns (DbColumnsToJson), for the loader's decoder registry.
std::unique_ptr<Decoder> NewDatabaseDecoder();

// Shared by the drivers: `sql` limited to req.page (see DbRequest::Page),
// with the driver's identifier quoting and literal for a value's text (a
// number's bare when its DuckDB type is a number: NumberLiteral).
std::string PageSql(const std::string& sql, const DbRequest::Page& page,
                    const std::function<std::string(const std::string&)>& ident,
                    const std::function<std::string(const std::string&)>& literal);
// The value as a bare SQL number when `duck_type` is a number's and the
// text is one ("-12.5", "3"); nullopt otherwise.
std::optional<std::string> NumberLiteral(const std::string& value, const std::string& duck_type);
// "ORDER BY" the page's key over relation alias `alias` ("" when no page).
std::string PageOrder(const DbRequest::Page& page, const std::string& alias,
                      const std::function<std::string(const std::string&)>& ident);

// Shared by the drivers: %XX escapes of a URL's parts decoded.
std::string PercentDecode(const std::string& s);
// Shared by the drivers: "schema.table" as quoted identifiers, with the
// driver's quote character; an error names what is wrong with it.
Result<std::vector<std::string>> SplitRelationName(const std::string& name);
// Raises a database error the same way everywhere: where, what the server
// said (redacted), and the fix.
Status DatabaseError(const DbRequest& req, const std::string& what, const std::string& detail);

}  // namespace sluice
