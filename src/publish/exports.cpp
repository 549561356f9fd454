#include "publish/exports.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <thread>

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
  // On lines of its own: a query that ends in a comment or a ';' still nests.
  const std::string from = "(\n" + StripStatementEnd(sql) + "\n) AS q";
  ASSIGN_OR_RETURN(QueryResult shape, session.Query("DESCRIBE SELECT * FROM " + from));
  std::vector<std::string> names, types;
  for (const auto& row : shape.rows) {
    names.push_back(row.at(0).value_or(""));
    types.push_back(row.at(1).value_or(""));
  }
  std::string select = ParquetSelectList(names, types, {}, &out->columns);
  ASSIGN_OR_RETURN(QueryResult copied,
                   session.Query("COPY (SELECT " + select + " FROM " + from + ") TO " +
                                 QuoteLiteral(path) + " (FORMAT parquet, COMPRESSION zstd)"));
  out->rows = copied.ScalarInt();
  return HashFile(path, out);
}

// A type with every 128-bit integer in it (nested too) made DECIMAL(38,0);
// quoted names (a struct's fields) are left as they are.
std::string WithoutWideIntegers(const std::string& type, bool* changed) {
  std::string out;
  for (size_t i = 0; i < type.size();) {
    if (type[i] == '"') {
      size_t end = type.find('"', i + 1);
      while (end != std::string::npos && end + 1 < type.size() && type[end + 1] == '"') {
        end = type.find('"', end + 2);
      }
      end = end == std::string::npos ? type.size() : end + 1;
      out.append(type, i, end - i);
      i = end;
      continue;
    }
    size_t j = i;
    while (j < type.size() &&
           (std::isalnum(static_cast<unsigned char>(type[j])) || type[j] == '_')) {
      ++j;
    }
    if (j == i) {
      out += type[i++];
      continue;
    }
    std::string word = Upper(type.substr(i, j - i));
    if (word == "HUGEINT" || word == "UHUGEINT" || word == "INT128" || word == "UINT128") {
      out += "DECIMAL(38,0)";
      *changed = true;
    } else {
      out.append(type, i, j - i);
    }
    i = j;
  }
  return out;
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
    RETURN_IF_ERROR(
        db.Exec("CREATE TABLE " + QuoteIdent(spec.name) + " (" + Join(defs, ", ") + ")"));
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

// A file or a folder with all it holds; nothing there is fine.
Status RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return Status::IOError(path + ": cannot remove: " + ec.message());
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
    bool changed = false;
    std::string type = WithoutWideIntegers(types[i], &changed);
    select.push_back(changed ? "CAST(" + QuoteIdent(names[i]) + " AS " + type + ") AS " +
                                   QuoteIdent(names[i])
                             : QuoteIdent(names[i]));
    if (written) written->emplace_back(names[i], type);
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
  // CSV and SQLite hold nested values as DuckDB's text, not JSON: strings there.
  const bool nested_text =
      file.format == ExportFormat::kCsv || file.format == ExportFormat::kSqlite;
  json fields = json::array();
  for (const auto& [name, type] : file.columns) {
    json field = TableSchemaField(name, type);
    if (nested_text && (field["type"] == "array" || field["type"] == "object")) {
      field["type"] = "string";
    }
    fields.push_back(std::move(field));
  }
  json schema = {{"fields", fields}};
  if (!key.empty()) schema["primaryKey"] = key;
  // NULL is an empty field in CSV (an empty string too: they read alike).
  if (file.format == ExportFormat::kCsv) schema["missingValues"] = {""};
  // A tabular data resource's file is CSV (Frictionless v1); the others
  // are data resources with a schema.
  bool tabular = file.format == ExportFormat::kCsv;
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
  std::string where = JoinPath(CurrentDir(), "datapackage.json");
  Result<std::string> text = ReadFile(where);
  if (!text.ok()) return nullptr;
  json package = json::parse(*text, nullptr, false);
  if (!package.is_object() || !package.contains("resources") || !package["resources"].is_array()) {
    LOG_WARN("publish", "{}: not a data package; every export is written again", where);
    return nullptr;
  }
  // Only resources as Sluice writes them are carried on: a name, a relative
  // path inside the version, the object it keeps under "sluice".
  json kept = json::array();
  for (const json& r : package["resources"]) {
    bool ok = r.is_object() && r.contains("name") && r["name"].is_string() && r.contains("path") &&
              r["path"].is_string() && r.contains("sluice") && r["sluice"].is_object();
    if (ok) {
      std::string path = r["path"].get<std::string>();
      ok = !path.empty() && path[0] != '/';
      for (const std::string& part : Split(path, '/')) ok = ok && !part.empty() && part != "..";
    }
    if (ok) {
      kept.push_back(r);
    } else {
      LOG_WARN("publish", "{}: a resource not as Sluice writes it is dropped: {}", where,
               r.dump(-1, ' ', false, json::error_handler_t::replace).substr(0, 200));
    }
  }
  package["resources"] = std::move(kept);
  return package;
}

Result<std::string> PublishFolder::Begin() {
  RETURN_IF_ERROR(MakeDirs(JoinPath(root_, "versions")));
  // One writer at a time, across processes too (two environments pointed
  // at one folder would otherwise interleave their versions).
  std::string lock_path = JoinPath(root_, ".lock");
  for (int i = 0;; ++i) {
    Result<FileLock> lock = FileLock::TryAcquire(lock_path);
    if (lock.ok()) {
      lock_ = std::move(*lock);
      break;
    }
    if (lock.status().code() != StatusCode::kBusy || i >= 600) return lock.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // Under the lock no other version is being written: what a crash left goes.
  std::string versions = JoinPath(root_, "versions");
  for (const std::string& name : ListDir(versions)) {
    if (name.empty() || name[0] != '.') continue;
    Status st = RemoveTree(JoinPath(versions, name));
    if (!st.ok()) LOG_WARN("publish", "{}", st.message());
  }
  std::string staging =
      JoinPath(versions, ".staging-" + std::to_string(::getpid()) + "-" + RandomHex(4));
  if (::mkdir(staging.c_str(), 0755) != 0) {
    lock_ = FileLock();
    return Errno("cannot create", staging);
  }
  return staging;
}

void PublishFolder::Abort(const std::string& staging) {
  Status st = RemoveTree(staging);
  if (!st.ok()) LOG_WARN("publish", "{}", st.message());
  lock_ = FileLock();
}

Status PublishFolder::Unpublish() {
  RETURN_IF_ERROR(MakeDirs(root_));
  Result<FileLock> lock = FileLock::TryAcquire(JoinPath(root_, ".lock"));
  if (!lock.ok()) return lock.status();
  if (::unlink(CurrentDir().c_str()) != 0 && errno != ENOENT) {
    return Errno("cannot remove", CurrentDir());
  }
  return FsyncDir(root_);
}

namespace {

// Every folder under dir made durable, the deepest first, then dir itself:
// each entry a new version holds survives a power loss once it is named.
Status SyncTree(const std::string& dir) {
  for (const std::string& name : ListDir(dir)) {
    std::string path = JoinPath(dir, name);
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) RETURN_IF_ERROR(SyncTree(path));
  }
  return FsyncDir(dir);
}

}  // namespace

Result<bool> PublishFolder::Commit(const std::string& staging,
                                   const std::vector<std::string>& carry, const json& package,
                                   int keep) {
  struct Unlock {
    FileLock* lock;
    ~Unlock() { *lock = FileLock(); }
  } unlock{&lock_};
  std::string current = CurrentDir();
  // Files not written anew: the current version's, linked (same bytes,
  // no copy).
  for (const std::string& path : carry) {
    std::string to = JoinPath(staging, path);
    if (FileExists(to)) continue;
    RETURN_IF_ERROR(MakeDirs(Dirname(to)));
    std::string from = JoinPath(current, path);
    if (::link(from.c_str(), to.c_str()) != 0) {
      return Errno("cannot link " + from + " into the new version", to);
    }
  }
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(staging, "datapackage.json"), package.dump(2) + "\n"));
  RETURN_IF_ERROR(SyncTree(staging));
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
  std::string link_tmp = JoinPath(root_, ".current.tmp");
  ::unlink(link_tmp.c_str());
  Status named = FsyncDir(versions);
  if (named.ok() && ::symlink((std::string("versions/") + id).c_str(), link_tmp.c_str()) != 0) {
    named = Errno("cannot create a symlink", link_tmp);
  }
  // The swap: one rename replaces the link consumers follow.
  if (named.ok() && SysRename(link_tmp.c_str(), current.c_str()) != 0) {
    named = Errno("cannot swap", current);
  }
  if (!named.ok()) {
    // Never current: it goes (a version that is not current serves no one).
    ::unlink(link_tmp.c_str());
    (void)RemoveTree(final_dir);
    return named;
  }
  // Swapped: the new version is what consumers read from now on, whatever follows.
  Status synced = FsyncDir(root_);
  if (!synced.ok()) {
    LOG_WARN("publish", "{} is current, but syncing its folder failed: {}", final_dir,
             synced.message());
  }
  Prune(keep);
  return true;
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
