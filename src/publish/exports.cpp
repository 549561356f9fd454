#include "publish/exports.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <map>
#include <cstring>
#include <optional>
#include <set>

#include "core/clock.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/strings.h"
#include "metadata/sqlite.h"
#include "warehouse/encode.h"

namespace sluice {
namespace {

using nlohmann::json;

constexpr size_t kFlushBytes = size_t{1} << 20;

std::string Upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

Status Errno(const std::string& what, const std::string& path) {
  return Status::IOError(path + ": " + what + ": " + std::strerror(errno));
}

// A file written in pieces while it is hashed; durable at Close().
class HashedFile {
 public:
  static Result<HashedFile> Create(const std::string& path) {
    ASSIGN_OR_RETURN(UniqueFd fd, UniqueFd::Open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC));
    HashedFile f;
    f.fd_ = std::move(fd);
    f.path_ = path;
    return f;
  }
  Status Write(std::string_view data) {
    RETURN_IF_ERROR(WriteAll(fd_.get(), data.data(), data.size(), path_));
    hash_.Update(data);
    bytes_ += static_cast<int64_t>(data.size());
    return Status::Ok();
  }
  Status Close() {
    if (SysFsync(fd_.get()) != 0) return Errno("cannot sync", path_);
    fd_ = UniqueFd();
    return Status::Ok();
  }
  std::string Hex() { return hash_.HexDigest(); }
  int64_t bytes() const { return bytes_; }

 private:
  UniqueFd fd_;
  std::string path_;
  Sha256 hash_;
  int64_t bytes_ = 0;
};

// The SHA-256 and size of a file another writer made, after syncing it.
Status HashFile(const std::string& path, ExportFile* out) {
  ASSIGN_OR_RETURN(UniqueFd fd, UniqueFd::Open(path, O_RDONLY | O_CLOEXEC));
  if (SysFsync(fd.get()) != 0) return Errno("cannot sync", path);
  Sha256 hash;
  char buf[1 << 16];
  int64_t total = 0;
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("cannot read", path);
    if (n == 0) break;
    hash.Update(buf, static_cast<size_t>(n));
    total += n;
  }
  out->sha256 = hash.HexDigest();
  out->bytes = total;
  return Status::Ok();
}

std::vector<std::pair<std::string, std::string>> ColumnsOf(const std::vector<RenderedColumn>& c) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const RenderedColumn& col : c) out.emplace_back(col.name, col.type);
  return out;
}

// CSV, JSON (an array of objects) and GeoJSON (a FeatureCollection): the
// rows rendered as the dataset API renders them.
Status WriteRendered(WarehouseSession& session, const ExportSpec& spec, const std::string& sql,
                     const std::string& path, ExportFile* out) {
  ASSIGN_OR_RETURN(HashedFile file, HashedFile::Create(path));
  const RowFormat format = spec.format == ExportFormat::kGeoJson ? RowFormat::kGeoJson
                           : spec.format == ExportFormat::kJson  ? RowFormat::kJson
                                                                 : RowFormat::kCsv;
  std::optional<RowEncoder> encoder;
  std::string buf;
  Status failed;
  RowVisitor visitor;
  visitor.columns = [&](const std::vector<RenderedColumn>& columns) -> Status {
    std::string lon = spec.lon, lat = spec.lat;
    if (format == RowFormat::kGeoJson && lon.empty()) {
      std::vector<std::string> names;
      for (const RenderedColumn& c : columns) names.push_back(c.name);
      auto found = CoordinateColumnsOf(names);
      if (!found) {
        return Status::Invalid(
            "format: geojson: no coordinate columns (lon/lat, longitude/latitude, x/y, or a "
            "shared prefix such as stop_lon/stop_lat); name them with coordinates: [LON, LAT]");
      }
      lon = found->first;
      lat = found->second;
    }
    ASSIGN_OR_RETURN(RowEncoder e, RowEncoder::Create(format, columns, columns.size(), lon, lat));
    e.set_separator(",\n");
    encoder.emplace(std::move(e));
    out->columns = ColumnsOf(columns);
    encoder->Header(buf);
    if (format == RowFormat::kJson) buf += "[\n";
    if (format == RowFormat::kGeoJson) buf += "{\"type\":\"FeatureCollection\",\"features\":[\n";
    return Status::Ok();
  };
  visitor.row = [&](const std::vector<std::optional<std::string_view>>& row) {
    encoder->Row(row, buf);
    if (buf.size() >= kFlushBytes) {
      failed = file.Write(buf);
      buf.clear();
      if (!failed.ok()) return false;
    }
    return true;
  };
  Status read = session.Read(sql, RenderFormatFor(format), visitor);
  RETURN_IF_ERROR(failed);
  RETURN_IF_ERROR(read);
  if (format == RowFormat::kJson) buf += encoder->rows() ? "\n]\n" : "]\n";
  if (format == RowFormat::kGeoJson) buf += encoder->rows() ? "\n]}\n" : "]}\n";
  RETURN_IF_ERROR(file.Write(buf));
  RETURN_IF_ERROR(file.Close());
  out->rows = encoder->rows();
  out->bytes = file.bytes();
  out->sha256 = file.Hex();
  return Status::Ok();
}

// DuckDB writes Parquet itself (typed columns, compressed).
Status WriteParquet(WarehouseSession& session, const std::string& sql, const std::string& path,
                    ExportFile* out) {
  ASSIGN_OR_RETURN(QueryResult shape, session.Query("SELECT * FROM (" + sql + ") LIMIT 0"));
  std::string select = ParquetSelectList(shape.columns, shape.types, {}, &out->columns);
  ASSIGN_OR_RETURN(QueryResult copied,
                   session.Query("COPY (SELECT " + select + " FROM (" + sql +
                                 ")) TO " + QuoteLiteral(path) + " (FORMAT parquet, COMPRESSION zstd)"));
  out->rows = copied.ScalarInt();
  return HashFile(path, out);
}

// How a DuckDB type goes into SQLite. Integers up to 64 bits: INTEGER;
// floating point: REAL; numbers SQLite cannot always hold exactly (decimals,
// 128-bit and unsigned 64-bit integers): a column without affinity, each
// value a number when it is one exactly, else its exact text (a NUMERIC
// column would round it to a REAL); everything else TEXT as DuckDB prints it.
enum class SqliteKind { kInteger, kBoolean, kReal, kExact, kText };

SqliteKind SqliteKindOf(const std::string& duckdb_type) {
  std::string t = Upper(duckdb_type);
  if (StartsWith(t, "DECIMAL")) return SqliteKind::kExact;
  static const std::set<std::string> kInts = {"TINYINT",  "SMALLINT",  "INTEGER", "BIGINT",
                                              "UTINYINT", "USMALLINT", "UINTEGER"};
  if (kInts.count(t)) return SqliteKind::kInteger;
  if (t == "BOOLEAN") return SqliteKind::kBoolean;
  if (t == "FLOAT" || t == "DOUBLE") return SqliteKind::kReal;
  if (t == "HUGEINT" || t == "UBIGINT" || t == "UHUGEINT") return SqliteKind::kExact;
  return SqliteKind::kText;
}

const char* SqliteDeclared(SqliteKind kind) {
  switch (kind) {
    case SqliteKind::kInteger:
    case SqliteKind::kBoolean:
      return " INTEGER";
    case SqliteKind::kReal:
      return " REAL";
    case SqliteKind::kExact:
      return "";  // no affinity: values stay as bound
    case SqliteKind::kText:
      return " TEXT";
  }
  return " TEXT";
}

// A decimal or wide integer's text bound as a number when that is exact.
Status BindExact(SqliteStatement& st, int idx, std::string_view text) {
  std::string s(text);
  errno = 0;
  char* end = nullptr;
  long long i = std::strtoll(s.c_str(), &end, 10);
  if (errno == 0 && end != s.c_str() && *end == '\0') return st.BindInt64(idx, i);
  // A decimal: exact as a double when it has at most 15 significant digits.
  size_t digits = 0;
  bool seen = false;
  std::string trimmed = s;
  if (trimmed.find('.') != std::string::npos) {
    while (!trimmed.empty() && trimmed.back() == '0') trimmed.pop_back();
    if (!trimmed.empty() && trimmed.back() == '.') trimmed.pop_back();
  }
  for (char c : trimmed) {
    if (c >= '1' && c <= '9') seen = true;
    if (std::isdigit(static_cast<unsigned char>(c)) && seen) ++digits;
  }
  bool numeric = !trimmed.empty() && trimmed.find_first_not_of("-0123456789.") == std::string::npos;
  if (numeric && digits <= 15) return st.BindDouble(idx, std::strtod(s.c_str(), nullptr));
  return st.BindText(idx, text);
}

// An SQLite file with one table named after the export; values bound as
// DuckDB prints them, stored with each column's affinity.
Status WriteSqlite(WarehouseSession& session, const ExportSpec& spec, const std::string& sql,
                   const std::string& path, ExportFile* out) {
  ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(path, path));
  RETURN_IF_ERROR(db.Exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; BEGIN"));
  std::optional<SqliteStatement> insert;
  std::vector<SqliteKind> kinds;
  Status failed;
  int64_t rows = 0;
  RowVisitor visitor;
  visitor.columns = [&](const std::vector<RenderedColumn>& columns) -> Status {
    out->columns = ColumnsOf(columns);
    std::vector<std::string> defs, marks;
    for (const RenderedColumn& c : columns) {
      kinds.push_back(SqliteKindOf(c.type));
      defs.push_back(QuoteIdent(c.name) + SqliteDeclared(kinds.back()));
      marks.push_back("?");
    }
    RETURN_IF_ERROR(db.Exec("CREATE TABLE " + QuoteIdent(spec.name) + " (" + Join(defs, ", ") + ")"));
    ASSIGN_OR_RETURN(SqliteStatement st, db.Prepare("INSERT INTO " + QuoteIdent(spec.name) +
                                                    " VALUES (" + Join(marks, ", ") + ")"));
    insert.emplace(std::move(st));
    return Status::Ok();
  };
  visitor.row = [&](const std::vector<std::optional<std::string_view>>& row) {
    for (size_t i = 0; i < row.size() && failed.ok(); ++i) {
      int idx = static_cast<int>(i) + 1;
      if (!row[i]) {
        failed = insert->BindNull(idx);
      } else if (kinds[i] == SqliteKind::kBoolean) {
        failed = insert->BindInt64(idx, *row[i] == "true" ? 1 : 0);
      } else if (kinds[i] == SqliteKind::kExact) {
        failed = BindExact(*insert, idx, *row[i]);
      } else {
        failed = insert->BindText(idx, *row[i]);
      }
    }
    if (failed.ok()) failed = insert->Run();
    insert->Reset();
    ++rows;
    return failed.ok();
  };
  Status read = session.Read(sql, RenderFormat::kText, visitor);
  RETURN_IF_ERROR(failed);
  RETURN_IF_ERROR(read);
  insert.reset();
  RETURN_IF_ERROR(db.Exec("COMMIT"));
  db = SqliteDb();  // closed: the file is whole
  out->rows = rows;
  return HashFile(path, out);
}

// The names in a folder, sorted (none when it cannot be read).
std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Status RemoveTree(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT ? Status::Ok() : Errno("stat", path);
  if (S_ISDIR(st.st_mode)) {
    for (const std::string& name : ListDir(path)) RETURN_IF_ERROR(RemoveTree(JoinPath(path, name)));
    if (::rmdir(path.c_str()) != 0) return Errno("cannot remove", path);
    return Status::Ok();
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Errno("cannot remove", path);
  return Status::Ok();
}

}  // namespace

std::string ParquetSelectList(const std::vector<std::string>& names,
                              const std::vector<std::string>& types,
                              const std::vector<std::string>& skip,
                              std::vector<std::pair<std::string, std::string>>* written) {
  std::vector<std::string> select;
  for (size_t i = 0; i < names.size(); ++i) {
    if (std::find(skip.begin(), skip.end(), names[i]) != skip.end()) continue;
    std::string type = Upper(types[i]);
    bool wide = type == "HUGEINT" || type == "UHUGEINT";
    select.push_back(wide ? "CAST(" + QuoteIdent(names[i]) + " AS DECIMAL(38,0)) AS " +
                                QuoteIdent(names[i])
                          : QuoteIdent(names[i]));
    if (written) written->emplace_back(names[i], wide ? "DECIMAL(38,0)" : types[i]);
  }
  return Join(select, ", ");
}

Result<ExportFile> WriteExportFile(WarehouseSession& session, const ExportSpec& spec,
                                   const std::string& sql, const std::string& file) {
  ExportFile out;
  out.name = spec.name;
  out.path = spec.path;
  out.format = spec.format;
  Status st;
  switch (spec.format) {
    case ExportFormat::kParquet:
      st = WriteParquet(session, sql, file, &out);
      break;
    case ExportFormat::kSqlite:
      st = WriteSqlite(session, spec, sql, file, &out);
      break;
    default:
      st = WriteRendered(session, spec, sql, file, &out);
  }
  if (!st.ok()) {
    ::unlink(file.c_str());
    return st;
  }
  return out;
}

json TableSchemaField(const std::string& name, const std::string& duckdb_type) {
  std::string t = Upper(duckdb_type);
  json f = {{"name", name}};
  auto is = [&](std::initializer_list<const char*> names) {
    return std::any_of(names.begin(), names.end(), [&](const char* n) { return t == n; });
  };
  if (t.find('[') != std::string::npos || StartsWith(t, "LIST") || StartsWith(t, "ARRAY")) {
    f["type"] = "array";
  } else if (StartsWith(t, "STRUCT") || StartsWith(t, "MAP")) {
    f["type"] = "object";
  } else if (StartsWith(t, "DECIMAL") || is({"FLOAT", "DOUBLE"})) {
    f["type"] = "number";
  } else if (is({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "UHUGEINT"})) {
    f["type"] = "integer";
  } else if (t == "BOOLEAN") {
    f["type"] = "boolean";
  } else if (t == "DATE") {
    f["type"] = "date";
  } else if (StartsWith(t, "TIMESTAMP")) {
    // DuckDB prints "2024-05-01 10:00:00[+00]", not the default ISO 8601 form.
    f["type"] = "datetime";
    f["format"] = "any";
  } else if (StartsWith(t, "TIME")) {
    f["type"] = "time";
    f["format"] = "any";
  } else if (t == "UUID") {
    f["type"] = "string";
    f["format"] = "uuid";
  } else if (t == "JSON") {
    f["type"] = "any";
  } else {
    f["type"] = "string";
  }
  f["sluice:type"] = duckdb_type;
  return f;
}

json DataResource(const ExportFile& file, const ExportSpec& spec,
                  const std::vector<std::string>& key, json sluice) {
  static const std::map<ExportFormat, const char*> kMediaTypes = {
      {ExportFormat::kCsv, "text/csv"},
      {ExportFormat::kJson, "application/json"},
      {ExportFormat::kGeoJson, "application/geo+json"},
      {ExportFormat::kParquet, "application/vnd.apache.parquet"},
      {ExportFormat::kSqlite, "application/vnd.sqlite3"}};
  json fields = json::array();
  for (const auto& [name, type] : file.columns) fields.push_back(TableSchemaField(name, type));
  json schema = {{"fields", fields}};
  if (!key.empty()) schema["primaryKey"] = key;
  bool tabular = file.format == ExportFormat::kCsv || file.format == ExportFormat::kJson;
  json r = {{"name", file.name},
            {"path", file.path},
            {"profile", tabular ? "tabular-data-resource" : "data-resource"},
            {"format", ExportFormatName(file.format)},
            {"mediatype", kMediaTypes.at(file.format)},
            {"bytes", file.bytes},
            {"hash", "sha256:" + file.sha256},
            {"schema", schema}};
  if (file.format != ExportFormat::kParquet && file.format != ExportFormat::kSqlite) {
    r["encoding"] = "utf-8";
  }
  if (file.format == ExportFormat::kCsv) {
    r["dialect"] = {{"delimiter", ","}, {"lineTerminator", "\r\n"}, {"header", true}};
  }
  if (!spec.description.empty()) r["description"] = spec.description;
  sluice["rows"] = file.rows;
  r["sluice"] = std::move(sluice);
  return r;
}

std::string PublishFolder::CurrentDir() const { return JoinPath(root_, "current"); }

json PublishFolder::CurrentPackage() const {
  Result<std::string> text = ReadFile(JoinPath(CurrentDir(), "datapackage.json"));
  if (!text.ok()) return nullptr;
  json package = json::parse(*text, nullptr, false);
  if (!package.is_object() || !package.contains("resources") || !package["resources"].is_array()) {
    LOG_WARN("publish", "{}: not a data package; every export is written again",
             JoinPath(CurrentDir(), "datapackage.json"));
    return nullptr;
  }
  return package;
}

Result<std::string> PublishFolder::Begin() {
  std::string versions = JoinPath(root_, "versions");
  RETURN_IF_ERROR(MakeDirs(versions));
  std::string staging =
      JoinPath(versions, ".staging-" + std::to_string(::getpid()) + "-" +
                             std::to_string(MonotonicMillis()) + "-" + RandomHex(4));
  if (::mkdir(staging.c_str(), 0755) != 0) return Errno("cannot create", staging);
  return staging;
}

void PublishFolder::Abort(const std::string& staging) {
  Status st = RemoveTree(staging);
  if (!st.ok()) LOG_WARN("publish", "{}", st.message());
}

Status PublishFolder::Commit(const std::string& staging, const std::vector<std::string>& carry,
                             const json& package, int keep) {
  std::string current = CurrentDir();
  // Files not written anew: the current version's, linked (same bytes,
  // no copy).
  std::set<std::string> made;
  for (const std::string& path : carry) {
    std::string to = JoinPath(staging, path);
    if (FileExists(to)) continue;
    RETURN_IF_ERROR(MakeDirs(Dirname(to)));
    std::string from = JoinPath(current, path);
    if (::link(from.c_str(), to.c_str()) != 0) {
      return Errno("cannot link " + from + " into the new version", to);
    }
    made.insert(Dirname(to));
  }
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(staging, "datapackage.json"), package.dump(2) + "\n"));
  for (const std::string& dir : made) RETURN_IF_ERROR(FsyncDir(dir));
  RETURN_IF_ERROR(FsyncDir(staging));
  // The version's name: one more than the newest, so they sort in order.
  std::string versions = JoinPath(root_, "versions");
  int64_t newest = 0;
  for (const std::string& name : ListDir(versions)) {
    if (name.empty() || name[0] == '.') continue;
    newest = std::max<int64_t>(newest, std::strtoll(name.c_str(), nullptr, 10));
  }
  char id[32];
  std::snprintf(id, sizeof id, "%08lld", static_cast<long long>(newest + 1));
  std::string final_dir = JoinPath(versions, id);
  if (SysRename(staging.c_str(), final_dir.c_str()) != 0) return Errno("cannot rename", staging);
  RETURN_IF_ERROR(FsyncDir(versions));
  std::string link_tmp = JoinPath(root_, ".current.tmp");
  ::unlink(link_tmp.c_str());
  if (::symlink((std::string("versions/") + id).c_str(), link_tmp.c_str()) != 0) {
    return Errno("cannot create a symlink", link_tmp);
  }
  // The swap: one rename replaces the link consumers follow.
  if (SysRename(link_tmp.c_str(), current.c_str()) != 0) return Errno("cannot swap", current);
  RETURN_IF_ERROR(FsyncDir(root_));
  Prune(keep);
  return Status::Ok();
}

void PublishFolder::Prune(int keep) {
  std::string versions = JoinPath(root_, "versions");
  std::vector<std::string> done;
  for (const std::string& name : ListDir(versions)) {
    if (!name.empty() && name[0] == '.') {
      // A staging folder a crash left behind (commits take turns: no
      // other is being written now).
      Status st = RemoveTree(JoinPath(versions, name));
      if (!st.ok()) LOG_WARN("publish", "{}", st.message());
      continue;
    }
    done.push_back(name);
  }
  // The one `current` names stays whatever its age (a failed swap leaves a
  // newer version that never became current).
  char target[4096];
  ssize_t n = ::readlink(CurrentDir().c_str(), target, sizeof target - 1);
  std::string in_use = n > 0 ? Basename(std::string(target, static_cast<size_t>(n))) : "";
  for (size_t i = 0; i + static_cast<size_t>(std::max(keep, 1)) < done.size(); ++i) {
    if (done[i] == in_use) continue;
    Status st = RemoveTree(JoinPath(versions, done[i]));
    if (!st.ok()) LOG_WARN("publish", "{}", st.message());
  }
}

}  // namespace sluice
