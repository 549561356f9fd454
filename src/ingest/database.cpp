#include "ingest/database.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "core/fs.h"
#include "core/hash.h"
#include "core/redact.h"
#include "core/strings.h"
#include "ingest/decoder.h"

namespace sluice {
namespace {

constexpr size_t kBufferBytes = 1 << 20;

struct Scheme {
  const char* prefix;
  DatabaseDriverFactory factory;
};

const std::vector<Scheme>& Schemes() {
  static const std::vector<Scheme> schemes = {
      {"postgresql://", NewPostgresDriver}, {"postgres://", NewPostgresDriver},
      {"mysql://", NewMariaDbDriver},       {"mariadb://", NewMariaDbDriver},
      {"sqlite:", NewSqliteDriver},
  };
  return schemes;
}

// libpq's key=value form: "host=... dbname=..." (no scheme).
bool IsConninfo(const std::string& url) {
  return url.find("://") == std::string::npos && url.find('=') != std::string::npos &&
         (url.find("dbname=") != std::string::npos || url.find("host=") != std::string::npos);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The password of a scheme://user:password@host URL ("" when none), as
// written (percent-encoded) and decoded.
std::pair<std::string, std::string> UrlPassword(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return {};
  size_t start = scheme + 3;
  size_t end = url.find_first_of("/?#", start);
  std::string authority = url.substr(start, end == std::string::npos ? end : end - start);
  size_t at = authority.rfind('@');
  if (at == std::string::npos) return {};
  std::string userinfo = authority.substr(0, at);
  size_t colon = userinfo.find(':');
  if (colon == std::string::npos) return {};
  std::string raw = userinfo.substr(colon + 1);
  return {raw, PercentDecode(raw)};
}

// password=... in a query string or a key=value conninfo: (start, end) of the value.
std::vector<std::pair<size_t, size_t>> PasswordParams(const std::string& url) {
  std::vector<std::pair<size_t, size_t>> found;
  for (size_t at = url.find("password="); at != std::string::npos;
       at = url.find("password=", at + 1)) {
    if (at > 0 && std::isalnum(static_cast<unsigned char>(url[at - 1]))) continue;
    size_t start = at + 9, end = start;
    if (start < url.size() && url[start] == '\'') {
      end = start + 1;
      while (end < url.size() && url[end] != '\'') end += url[end] == '\\' ? 2 : 1;
      end = std::min(url.size(), end + 1);
    } else {
      while (end < url.size() && url[end] != '&' && url[end] != ' ') ++end;
    }
    found.push_back({start, end});
  }
  return found;
}

}  // namespace

std::string PercentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool IsTimeCursorType(const std::string& t) {
  return t == "DATE" || t == "TIMESTAMP" || t == "TIMESTAMP WITH TIME ZONE" || t == "TIMESTAMPTZ" ||
         StartsWith(t, "TIMESTAMP_");
}

bool IsPostgresUrl(const std::string& url) {
  return IsConninfo(url) || StartsWith(url, "postgresql://") || StartsWith(url, "postgres://");
}

bool IsDatabaseUrl(const std::string& url) {
  if (IsConninfo(url)) return true;
  for (const Scheme& s : Schemes()) {
    if (StartsWith(url, s.prefix)) return true;
  }
  return false;
}

std::vector<std::string> DatabaseSchemes() {
  return {"postgresql://", "postgres://", "mysql://", "mariadb://", "sqlite:PATH"};
}

std::string DisplayDatabaseUrl(const std::string& url) {
  std::string out = url;
  auto [raw, decoded] = UrlPassword(out);
  if (!raw.empty()) {
    size_t scheme = out.find("://") + 3;
    size_t at = out.find(":" + raw + "@", scheme);
    if (at != std::string::npos) out.erase(at, raw.size() + 1);
  }
  std::vector<std::pair<size_t, size_t>> params = PasswordParams(out);
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    out.replace(it->first, it->second - it->first, std::string(kRedacted));
  }
  return out;
}

void RegisterDatabaseSecrets(const std::string& url) {
  auto [raw, decoded] = UrlPassword(url);
  if (!raw.empty()) {
    RegisterSecretForm(raw);
    RegisterSecretForm(decoded);
  }
  for (const auto& [start, end] : PasswordParams(url)) {
    std::string value = url.substr(start, end - start);
    if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'') {
      value = value.substr(1, value.size() - 2);
    }
    if (!value.empty()) {
      RegisterSecretForm(value);
      RegisterSecretForm(PercentDecode(value));
    }
  }
}

nlohmann::json DbColumnsToJson(const std::vector<DbColumn>& columns) {
  nlohmann::json out = nlohmann::json::array();
  for (const DbColumn& c : columns) {
    nlohmann::json j = {{"name", c.name}, {"source_type", c.source_type}, {"type", c.type}};
    if (c.encoding == DbEncoding::kHex) j["encoding"] = "hex";
    if (c.encoding == DbEncoding::kFit) j["encoding"] = "fit";
    out.push_back(std::move(j));
  }
  return out;
}

Result<std::vector<DbColumn>> DbColumnsFromJson(const nlohmann::json& json) {
  if (!json.is_array() || json.empty()) {
    return Status::Invalid("a database extract's columns: expected a non-empty list");
  }
  std::vector<DbColumn> out;
  for (const auto& j : json) {
    if (!j.is_object() || !j.contains("name") || !j["name"].is_string() || !j.contains("type") ||
        !j["type"].is_string()) {
      return Status::Invalid("a database extract's columns: each needs a name and a type");
    }
    DbColumn c;
    c.name = j["name"].get<std::string>();
    c.type = j["type"].get<std::string>();
    c.source_type = j.value("source_type", "");
    std::string encoding = j.value("encoding", "");
    if (encoding == "hex") c.encoding = DbEncoding::kHex;
    if (encoding == "fit") c.encoding = DbEncoding::kFit;
    out.push_back(std::move(c));
  }
  return out;
}

// PostgreSQL: by the base type's oid (a domain is read as its base type).
DbColumn MapPostgresType(const std::string& name, const std::string& formatted, uint32_t oid,
                         int32_t typmod, char category, char typtype) {
  DbColumn c;
  c.name = name;
  c.source_type = formatted;
  c.type = "VARCHAR";
  switch (oid) {
    case 16:
      c.type = "BOOLEAN";
      break;
    case 17:
      c.type = "BLOB";
      c.encoding = DbEncoding::kHex;
      break;
    case 20:
      c.type = "BIGINT";
      break;
    case 21:
      c.type = "SMALLINT";
      break;
    case 23:
      c.type = "INTEGER";
      break;
    case 26:
      c.type = "UINTEGER";
      break;  // oid
    case 700:
      c.type = "FLOAT";
      break;
    case 701:
      c.type = "DOUBLE";
      break;
    case 790:
      c.type = "DECIMAL(18,2)";
      break;  // money, selected as numeric
    case 1700: {
      // numeric(p,s): typmod = ((p << 16) | s) + 4; -1 when unconstrained.
      if (typmod >= 4) {
        int precision = ((typmod - 4) >> 16) & 0xffff;
        int scale = (typmod - 4) & 0xffff;
        if (precision >= 1 && precision <= 38 && scale >= 0 && scale <= precision) {
          c.type = "DECIMAL(" + std::to_string(precision) + "," + std::to_string(scale) + ")";
          break;
        }
      }
      c.type = "VARCHAR";
      c.encoding = DbEncoding::kFit;
      break;
    }
    case 1082:
      c.type = "DATE";
      break;
    case 1083:
      c.type = "TIME";
      break;
    case 1266:
      c.type = "TIMETZ";
      break;
    case 1114:
      c.type = "TIMESTAMP";
      break;
    case 1184:
      c.type = "TIMESTAMPTZ";
      break;
    case 1186:
      c.type = "INTERVAL";
      break;
    case 2950:
      c.type = "UUID";
      break;
    case 114:
    case 3802:
      c.type = "JSON";
      break;
    default:
      // Arrays and composite types become JSON (to_json on the server);
      // enums, ranges, network and text types keep their text.
      if (category == 'A' || typtype == 'c') c.type = "JSON";
      break;
  }
  return c;
}

// MariaDB Connector/C's enum_field_types, numbered as mariadb_com.h does.
DbColumn MapMariaDbType(const MariaDbField& f) {
  DbColumn c;
  c.name = f.name;
  c.type = "VARCHAR";
  auto sized = [&](const char* s, const char* u) { return std::string(f.is_unsigned ? u : s); };
  const std::string unsigned_suffix = f.is_unsigned ? " unsigned" : "";
  switch (f.type) {
    case 1:  // TINY
      c.type = sized("TINYINT", "UTINYINT");
      c.source_type = "tinyint" + unsigned_suffix;
      break;
    case 2:  // SHORT
      c.type = sized("SMALLINT", "USMALLINT");
      c.source_type = "smallint" + unsigned_suffix;
      break;
    case 9:  // INT24
      c.type = sized("INTEGER", "UINTEGER");
      c.source_type = "mediumint" + unsigned_suffix;
      break;
    case 3:  // LONG
      c.type = sized("INTEGER", "UINTEGER");
      c.source_type = "int" + unsigned_suffix;
      break;
    case 8:  // LONGLONG
      c.type = sized("BIGINT", "UBIGINT");
      c.source_type = "bigint" + unsigned_suffix;
      break;
    case 13:  // YEAR
      c.type = "SMALLINT";
      c.source_type = "year";
      break;
    case 4:  // FLOAT
      c.type = "FLOAT";
      c.source_type = "float";
      break;
    case 5:  // DOUBLE
      c.type = "DOUBLE";
      c.source_type = "double";
      break;
    case 0:      // DECIMAL
    case 246: {  // NEWDECIMAL
      // length = precision + (a point when scale > 0) + (a sign unless unsigned)
      int64_t precision =
          static_cast<int64_t>(f.length) - (f.decimals > 0 ? 1 : 0) - (f.is_unsigned ? 0 : 1);
      c.source_type = "decimal(" + std::to_string(precision) + "," + std::to_string(f.decimals) +
                      ")" + unsigned_suffix;
      if (precision >= 1 && precision <= 38 && f.decimals <= precision) {
        c.type = "DECIMAL(" + std::to_string(precision) + "," + std::to_string(f.decimals) + ")";
      } else {
        c.encoding = DbEncoding::kFit;
      }
      break;
    }
    case 10:  // DATE
    case 14:  // NEWDATE
      c.type = "DATE";
      c.source_type = "date";
      break;
    case 12:  // DATETIME
      c.type = "TIMESTAMP";
      c.source_type = "datetime";
      break;
    case 7:  // TIMESTAMP: stored in UTC; read in a +00:00 session and said so
      c.type = "TIMESTAMPTZ";
      c.source_type = "timestamp";
      break;
    case 11:  // TIME: a duration of -838:59:59 to 838:59:59, not a time of day
      c.type = "INTERVAL";
      c.source_type = "time";
      break;
    case 16:  // BIT
      c.type = "UBIGINT";
      c.source_type = "bit";
      break;
    case 245:  // JSON (MySQL; MariaDB's json is longtext)
      c.type = "JSON";
      c.source_type = "json";
      break;
    case 255:  // GEOMETRY: its WKB with the SRID first
      c.type = "BLOB";
      c.encoding = DbEncoding::kHex;
      c.source_type = "geometry";
      break;
    case 247:  // ENUM
    case 248:  // SET
      c.source_type = f.type == 247 ? "enum" : "set";
      break;
    case 6:  // NULL
      c.source_type = "null";
      break;
    default:  // VARCHAR, VAR_STRING, STRING, the BLOBs: bytes or text by charset
      if (f.binary) {
        c.type = "BLOB";
        c.encoding = DbEncoding::kHex;
        c.source_type = "binary";
      } else {
        c.source_type = "text";
      }
      break;
  }
  return c;
}

struct CsvFileWriter::Hasher {
  Sha256 sha;
};

CsvFileWriter::CsvFileWriter(int fd) : fd_(fd), hasher_(std::make_unique<Hasher>()) {
  buffer_.reserve(kBufferBytes + 4096);
}

CsvFileWriter::~CsvFileWriter() = default;

Status CsvFileWriter::Flush() {
  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IOError(std::string("writing a database extract: ") + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  hasher_->sha.Update(buffer_.data(), buffer_.size());
  bytes_ += buffer_.size();
  buffer_.clear();
  return Status::Ok();
}

Status CsvFileWriter::Put(const char* data, size_t size) {
  buffer_.append(data, size);
  if (buffer_.size() >= kBufferBytes) return Flush();
  return Status::Ok();
}

Status CsvFileWriter::Null() {
  if (row_started_) buffer_ += ',';
  row_started_ = true;
  return Status::Ok();
}

Status CsvFileWriter::Text(const char* data, size_t size) {
  if (row_started_) buffer_ += ',';
  row_started_ = true;
  bool quote = size == 0;
  for (size_t i = 0; i < size && !quote; ++i) {
    char ch = data[i];
    quote = ch == ',' || ch == '"' || ch == '\n' || ch == '\r';
  }
  if (!quote) return Put(data, size);
  buffer_ += '"';
  size_t from = 0;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == '"') {
      buffer_.append(data + from, i - from + 1);
      buffer_ += '"';
      from = i + 1;
    }
  }
  buffer_.append(data + from, size - from);
  buffer_ += '"';
  if (buffer_.size() >= kBufferBytes) return Flush();
  return Status::Ok();
}

Status CsvFileWriter::Hex(const unsigned char* data, size_t size) {
  static const char kDigits[] = "0123456789abcdef";
  if (row_started_) buffer_ += ',';
  row_started_ = true;
  if (size == 0) {
    buffer_ += "\"\"";
    return Status::Ok();
  }
  for (size_t i = 0; i < size; ++i) {
    buffer_ += kDigits[data[i] >> 4];
    buffer_ += kDigits[data[i] & 15];
    if (buffer_.size() >= kBufferBytes) RETURN_IF_ERROR(Flush());
  }
  return Status::Ok();
}

Status CsvFileWriter::EndRow() {
  buffer_ += '\n';
  row_started_ = false;
  last_row_ = row_start_;
  row_start_ = bytes_ + buffer_.size();
  if (buffer_.size() >= kBufferBytes) return Flush();
  return Status::Ok();
}

Status CsvFileWriter::Raw(const char* data, size_t size) {
  last_row_ = bytes_ + buffer_.size();
  return Put(data, size);
}

std::string PageOrder(const DbRequest::Page& page, const std::string& alias,
                      const std::function<std::string(const std::string&)>& ident) {
  if (page.key.empty() || page.mode == DbRequest::Page::kNullKeys ||
      page.mode == DbRequest::Page::kEqual) {
    return "";
  }
  std::vector<std::string> order;
  for (const std::string& k : page.key) {
    order.push_back((alias.empty() ? "" : alias + ".") + ident(k) +
                    (page.mode == DbRequest::Page::kDescending ? " DESC" : ""));
  }
  return " ORDER BY " + Join(order, ", ");
}

std::optional<std::string> NumberLiteral(const std::string& value, const std::string& duck_type) {
  const bool number = duck_type.find("INT") != std::string::npos ||
                      StartsWith(duck_type, "DECIMAL") || duck_type == "DOUBLE" ||
                      duck_type == "FLOAT";
  if (!number || value.empty()) return std::nullopt;
  size_t i = value[0] == '-' ? 1 : 0;
  bool digits = false, dot = false;
  for (; i < value.size(); ++i) {
    if (std::isdigit(static_cast<unsigned char>(value[i]))) {
      digits = true;
    } else if (value[i] == '.' && !dot) {
      dot = true;
    } else {
      return std::nullopt;
    }
  }
  if (!digits) return std::nullopt;
  return value;
}

std::string PageSql(const std::string& sql, const DbRequest::Page& page,
                    const std::function<std::string(const std::string&)>& ident,
                    const std::function<std::string(const std::string&)>& literal) {
  if (page.key.empty()) return sql;
  std::vector<std::string> cols, values, present, missing;
  for (const std::string& k : page.key) {
    cols.push_back("pg_." + ident(k));
    present.push_back("pg_." + ident(k) + " IS NOT NULL");
    missing.push_back("pg_." + ident(k) + " IS NULL");
  }
  for (size_t i = 0; i < page.after.size(); ++i) {
    const std::string type = i < page.types.size() ? page.types[i] : "";
    std::optional<std::string> number = NumberLiteral(page.after[i], type);
    values.push_back(number ? *number : literal(page.after[i]));
  }
  std::string where;
  switch (page.mode) {
    case DbRequest::Page::kDescending:
      where = " WHERE " + Join(present, " AND ");
      break;
    case DbRequest::Page::kNullKeys:
      where = " WHERE " + Join(missing, " OR ");
      break;
    case DbRequest::Page::kEqual:
      where = " WHERE (" + Join(cols, ", ") + ") = (" + Join(values, ", ") + ")";
      break;
    case DbRequest::Page::kAfter:
      if (!values.empty()) {
        where = " WHERE (" + Join(cols, ", ") + ") > (" + Join(values, ", ") + ")";
      }
      break;
  }
  return "SELECT * FROM (" + sql + "\n) AS pg_" + where + PageOrder(page, "pg_", ident) +
         (page.limit > 0 ? " LIMIT " + std::to_string(page.limit) : "");
}

namespace {

// The CSV record that starts at `offset` in `path`: its fields, an
// unquoted empty one as NULL.
Result<std::vector<std::optional<std::string>>> ReadCsvRecord(const std::string& path,
                                                              uint64_t offset) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("cannot read " + path + ": " + std::strerror(errno));
  std::string data;
  char buf[65536];
  for (off_t at = static_cast<off_t>(offset);;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
    at += n;
  }
  ::close(fd);
  std::vector<std::optional<std::string>> fields;
  std::string field;
  bool quoted = false, in_quotes = false;
  size_t i = 0;
  for (; i < data.size(); ++i) {
    char c = data[i];
    if (in_quotes) {
      if (c == '"' && i + 1 < data.size() && data[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        in_quotes = false;
      } else {
        field += c;
      }
      continue;
    }
    if (c == '"') {
      quoted = in_quotes = true;
    } else if (c == ',' || c == '\n' || c == '\r') {
      if (quoted || !field.empty()) {
        fields.emplace_back(field);
      } else {
        fields.emplace_back(std::nullopt);
      }
      field.clear();
      quoted = false;
      if (c != ',') break;
    } else {
      field += c;
    }
  }
  if (i == data.size() && (quoted || !field.empty())) fields.emplace_back(field);
  return fields;
}

}  // namespace

Result<std::string> CsvFileWriter::Finish() {
  RETURN_IF_ERROR(Flush());
  return hasher_->sha.HexDigest();
}

Result<std::vector<std::string>> SplitRelationName(const std::string& name) {
  std::vector<std::string> parts;
  std::string current;
  bool quoted = false;
  for (size_t i = 0; i < name.size(); ++i) {
    char ch = name[i];
    if (ch == '"') {
      if (quoted && i + 1 < name.size() && name[i + 1] == '"') {
        current += '"';
        ++i;
      } else {
        quoted = !quoted;
      }
    } else if (ch == '.' && !quoted) {
      parts.push_back(current);
      current.clear();
    } else {
      current += ch;
    }
  }
  parts.push_back(current);
  if (quoted || parts.size() > 3 ||
      std::any_of(parts.begin(), parts.end(), [](const std::string& p) { return p.empty(); })) {
    return Status::Invalid("table: '" + name +
                           "' is not a table name; write table or schema.table (quote a name "
                           "with dots in it: \"my.table\")");
  }
  return parts;
}

Status DatabaseError(const DbRequest& req, const std::string& what, const std::string& detail) {
  std::string d = Trim(detail);
  return Status::DataError(
      Redact(what + " (" + DisplayDatabaseUrl(req.url) + ")" + (d.empty() ? "" : ": " + d)));
}

Result<std::vector<DbTableInfo>> ListTables(const DbRequest& req, const std::string& schema) {
  RegisterDatabaseSecrets(req.url);
  if (IsPostgresUrl(req.url)) return ListPostgresTables(req, schema);
  if (StartsWith(req.url, "mysql://") || StartsWith(req.url, "mariadb://")) {
    return ListMariaDbTables(req, schema);
  }
  return Status::Invalid("schema: lists the tables of a PostgreSQL or MariaDB schema; " +
                         DisplayDatabaseUrl(req.url) +
                         " is neither (list its tables under tables:)");
}

Result<DbExtract> ExtractToFile(const DbRequest& req, const std::string& path) {
  RegisterDatabaseSecrets(req.url);
  std::unique_ptr<DatabaseDriver> driver;
  if (IsConninfo(req.url)) driver = NewPostgresDriver();
  for (const Scheme& s : Schemes()) {
    if (!driver && StartsWith(req.url, s.prefix)) driver = s.factory();
  }
  if (!driver) {
    return Status::Invalid("database: url '" + DisplayDatabaseUrl(req.url) +
                           "' names no database this build reads; use one of " +
                           Join(DatabaseSchemes(), ", "));
  }
  if (req.table.empty() == req.query.empty()) {
    return Status::Invalid("database: set exactly one of table: and query:");
  }
  if ((!req.snapshot.empty() || !req.constants.empty()) && !IsPostgresUrl(req.url)) {
    return Status::Internal("a snapshot and constant columns are read from PostgreSQL only");
  }
  if (!req.since.column.empty() && req.since.lookback_seconds > 0 &&
      !IsTimeCursorType(req.since.type)) {
    return Status::Invalid("incremental: lookback: applies to date and time cursors; cursor " +
                           req.since.column + " is " + req.since.type +
                           " (remove lookback:, or use a time column as the cursor)");
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status::IOError("cannot create " + path + ": " + std::strerror(errno));
  }
  uint64_t offset = 0;
  Result<DbExtract> out = [&]() -> Result<DbExtract> {
    CsvFileWriter writer(fd);
    ASSIGN_OR_RETURN(DbExtract extract, driver->Extract(req, writer));
    ASSIGN_OR_RETURN(extract.sha256, writer.Finish());
    extract.bytes = writer.bytes();
    offset = writer.last_row_offset();
    return extract;
  }();
  ::close(fd);
  if (out.ok() && !req.page.key.empty() && out->rows > 0) {
    Result<std::vector<std::optional<std::string>>> last = ReadCsvRecord(path, offset);
    if (!last.ok()) {
      out = last.status();
    } else {
      out->last_row = std::move(*last);
    }
  }
  if (!out.ok()) ::unlink(path.c_str());
  return out;
}

}  // namespace sluice

namespace sluice {
namespace {

// Reads a database extract back with the types the extraction recorded
// (options.columns): nothing is sniffed or inferred.
class DatabaseDecoder final : public Decoder {
 public:
  Result<std::string> TableSql(const DecodeRequest& req) const override {
    auto it = req.options.find("columns");
    if (it == req.options.end()) {
      return Status::Internal(
          "a database extract is read with the columns its extraction recorded");
    }
    ASSIGN_OR_RETURN(std::vector<DbColumn> columns, DbColumnsFromJson(*it));
    std::vector<std::string> types, select;
    for (const DbColumn& c : columns) {
      bool text = req.all_text || c.encoding != DbEncoding::kPlain;
      types.push_back(QuoteLiteral(c.name) + ": " + QuoteLiteral(text ? "VARCHAR" : c.type));
      std::string id = QuoteIdent(c.name);
      if (c.encoding == DbEncoding::kHex && !req.all_text) {
        select.push_back("unhex(" + id + ") AS " + id);
      } else {
        select.push_back(id);
      }
    }
    // Columns the read adds to every row (_op, _extracted_at): {name, type, value}.
    if (auto k = req.options.find("constants"); k != req.options.end() && k->is_array()) {
      for (const auto& c : *k) {
        select.push_back("CAST(" + QuoteLiteral(c.value("value", "")) + " AS " +
                         c.value("type", "VARCHAR") + ") AS " + QuoteIdent(c.value("name", "")));
      }
    }
    return "(SELECT " + Join(select, ", ") + " FROM read_csv(" + QuoteLiteral(req.path) +
           ", header=true, auto_detect=false, delim=',', quote='\"', escape='\"', "
           "allow_quoted_nulls=false, max_line_size=8388608, columns={" +
           Join(types, ", ") + "}))";
  }
  std::string Extension() const override { return "csv"; }
};

}  // namespace

std::unique_ptr<Decoder> NewDatabaseDecoder() { return std::make_unique<DatabaseDecoder>(); }

}  // namespace sluice
