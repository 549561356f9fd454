// Exports (DESIGN §3, publish/): the project's `exports:` written as files —
// CSV, JSON, GeoJSON, Parquet or SQLite — under the environment's publish
// folder, with a Frictionless Data Package catalog (datapackage.json:
// each file's schema from its column types, row count, bytes and SHA-256).
//
// Layout: ROOT/current is a symlink to ROOT/versions/<id>/, which holds every
// export's file and datapackage.json. A change is written into a new
// version folder (the files not written again are hard links to the
// current version's), made durable, then `current` is swapped by one
// rename: whoever opens ROOT/current/... gets a whole file of a whole set,
// old or new, and a crash at any point leaves the previous set current. The
// newest versions stay (a consumer reading one finishes), older ones go.
//
// Thread-compatible: one PublishFolder commits at a time (the engine
// serialises its exports).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "config/project.h"
#include "core/fs.h"
#include "core/status.h"
#include "warehouse/warehouse.h"

namespace sluice {

// One written file, as datapackage.json describes it.
struct ExportFile {
  std::string name;
  std::string path;  // relative to the version folder
  ExportFormat format = ExportFormat::kCsv;
  int64_t rows = 0;
  int64_t bytes = 0;
  std::string sha256;
  std::vector<std::pair<std::string, std::string>> columns;  // name, DuckDB type
};

// Writes the rows of `sql` (one SELECT) as spec.format into `file` (which
// must not exist; its folder must), durably. A failure removes the file.
Result<ExportFile> WriteExportFile(WarehouseSession& session, const ExportSpec& spec,
                                   const std::string& sql, const std::string& file);

// The SELECT list that writes columns to Parquet without loss: Parquet has
// no 128-bit integers (DuckDB would write doubles, dropping digits; a sum
// of BIGINTs is one), so they go as DECIMAL(38,0), and a wider value fails
// rather than lose any. Columns named in `skip` are left out; `written`
// gets each written column's name and type.
std::string ParquetSelectList(const std::vector<std::string>& names,
                              const std::vector<std::string>& types,
                              const std::vector<std::string>& skip = {},
                              std::vector<std::pair<std::string, std::string>>* written = nullptr);

// The Frictionless Table Schema type of a DuckDB type ("integer", "number",
// "string", "datetime", ...), and its field descriptor.
nlohmann::json TableSchemaField(const std::string& name, const std::string& duckdb_type);

// The Data Package resource describing a written file; `sluice` is kept
// under the resource's "sluice" property (what it was made from).
nlohmann::json DataResource(const ExportFile& file, const ExportSpec& spec,
                            const std::vector<std::string>& key, nlohmann::json sluice);

class PublishFolder {
 public:
  explicit PublishFolder(std::string root) : root_(std::move(root)) {}
  const std::string& root() const { return root_; }
  // ROOT/current: what consumers read.
  std::string CurrentDir() const;
  // The current datapackage.json, or null when nothing is published yet (or
  // it cannot be read: then every export is written again).
  nlohmann::json CurrentPackage() const;
  // A fresh staging folder for a new version's files. Takes the folder's
  // lock (ROOT/.lock, for other processes too: waits up to a minute) until
  // Commit or Abort, and removes staging folders a crash left.
  Result<std::string> Begin();
  // Publishes a staging folder: each of `carry` (paths of the current
  // version) hard-linked in unless written anew, `package` written as
  // datapackage.json, everything made durable, then `current` swapped.
  // An error means the previous version is still current; once swapped,
  // the commit stands (a failing sync after it is only logged). Versions
  // beyond the newest `keep` are removed, never the current one.
  Result<bool> Commit(const std::string& staging, const std::vector<std::string>& carry,
                      const nlohmann::json& package, int keep = 3);
  // Removes a staging folder that will not be committed.
  void Abort(const std::string& staging);
  // Nothing is published any more: `current` goes (the project has no
  // exports left); the versions stay until pruned.
  Status Unpublish();

 private:
  void Prune(int keep);
  std::string root_;
  FileLock lock_;  // from Begin to Commit or Abort
};

}  // namespace sluice
