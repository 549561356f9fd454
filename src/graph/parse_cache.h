// A persistent cache of SqlRefs keyed by sha256(sql + DuckDB version + walker
// version), so unchanged models are not re-parsed (DuckDB parses ~5-8k
// models/s; a warm cache answers 10k in milliseconds). The file is one text
// line per entry; a missing or corrupt file is an empty cache, never an error.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/status.h"
#include "graph/sql_refs.h"

namespace sluice {

class ParseCache {
 public:
  ParseCache(ParseCache&& other) noexcept;
  ParseCache& operator=(ParseCache&&) = delete;
  ParseCache(const ParseCache&) = delete;
  ParseCache& operator=(const ParseCache&) = delete;

  // Loads a cache file (missing file = empty cache; a corrupt file = empty
  // cache + a warning in the log, never an error).
  static ParseCache Load(const std::string& path);
  // The cached refs of sql, if any.
  std::optional<SqlRefs> Get(const std::string& sql) const;
  void Put(const std::string& sql, const SqlRefs& refs);
  // Writes the file atomically; does nothing when nothing changed since Load
  // or the last Save.
  Status Save() const;
  size_t size() const;

 private:
  explicit ParseCache(std::string path);
  std::string Key(const std::string& sql) const;

  const std::string path_;
  const std::string key_salt_;  // DuckDB version + walker version
  mutable std::mutex mu_;
  std::unordered_map<std::string, SqlRefs> entries_;  // GUARDED_BY(mu_)
  mutable bool dirty_ = false;                        // GUARDED_BY(mu_)
};

}  // namespace sluice
