// YAML helpers for the config loader, on top of yaml-cpp (0.7). They turn
// every problem into a ConfigError with the file and 1-based line instead of
// throwing: syntax errors, unknown keys (with a did-you-mean hint), duplicate
// keys, wrong value types, malformed ${secret:NAME} references. Scalars are
// typed as YAML 1.2's core schema does (true/false, null, numbers; `yes`, `on`
// and dates stay strings). Not thread-safe per FileErrors; independent
// instances may be used from different threads.
#pragma once

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/project.h"

namespace sluice {

// Collects the errors of one file. line_offset shifts YAML lines, for YAML
// embedded in another file (a model's header block).
class FileErrors {
 public:
  FileErrors(std::string file, std::vector<ConfigError>* errors, int line_offset = 0)
      : file_(std::move(file)), errors_(errors), line_offset_(line_offset) {}

  const std::string& file() const { return file_; }
  // 1-based line of node in the file, or fallback when yaml-cpp has no mark.
  int LineOf(const YAML::Node& node, int fallback = 1) const;
  // The file's 1-based line for a 0-based yaml-cpp line.
  int FromYamlLine(int zero_based) const { return std::max(zero_based, 0) + 1 + line_offset_; }
  SourceLoc Loc(int line) const { return SourceLoc{file_, line}; }
  SourceLoc Loc(const YAML::Node& node, int fallback = 1) const {
    return Loc(LineOf(node, fallback));
  }
  void At(int line, std::string message);
  void At(const YAML::Node& node, std::string message, int fallback = 1) {
    At(LineOf(node, fallback), std::move(message));
  }
  size_t count() const { return count_; }

 private:
  std::string file_;
  std::vector<ConfigError>* errors_;
  int line_offset_;
  size_t count_ = 0;
};

// Parses text; a syntax error is reported (with its line) and gives nullopt.
std::optional<YAML::Node> ParseYaml(const std::string& text, FileErrors& errs);

// The node as JSON (YAML 1.2 core typing); silent (nesting beyond 64 levels,
// e.g. a recursive alias, becomes null).
nlohmann::json YamlToJson(const YAML::Node& node);
// YamlToJson for a whole document, reporting what no MapReader sees:
// malformed ${secret:...}, non-string keys, runaway nesting. Call once per
// document so each problem is reported once.
nlohmann::json ReadDocument(const YAML::Node& doc, FileErrors& errs);

// Reports a malformed ${secret:NAME} in text at line.
void CheckSecretRefs(std::string_view text, int line, FileErrors& errs);

struct YamlEntry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
  int line = 1;  // the key's line
};

// The entries of a mapping, checked against its known keys.
class MapReader {
 public:
  // Reports a node that is not a mapping (null counts as empty), unknown keys
  // ("unknown key 'fromat' in source (did you mean format?)") and duplicate
  // keys; `what` names the mapping in messages. known empty: any key goes.
  // Non-string keys are skipped silently: callers run YamlToJson over the
  // whole document, which reports them.
  MapReader(const YAML::Node& node, const std::vector<std::string>& known, std::string_view what,
            FileErrors& errs, int fallback_line = 1);

  bool is_map() const { return is_map_; }
  const YamlEntry* Find(std::string_view key) const;
  const std::vector<YamlEntry>& entries() const { return entries_; }

 private:
  bool is_map_ = false;
  std::vector<YamlEntry> entries_;
};

// Value readers: each reports "<key>: expected ..." at the value's line and
// returns nullopt when the value has the wrong type.
std::optional<std::string> ReadString(const YamlEntry& e, FileErrors& errs);
// A list of strings; a single string counts as a list of one.
std::optional<std::vector<std::string>> ReadStringList(const YamlEntry& e, FileErrors& errs,
                                                       std::string_view expected);
std::optional<int64_t> ReadInt(const YamlEntry& e, FileErrors& errs, int64_t min_value);
std::optional<bool> ReadBool(const YamlEntry& e, FileErrors& errs);

// Durations: 45, 30s, 30m, 2h, 1d, 1h30m -> seconds. nullopt when malformed.
std::optional<int64_t> ParseDuration(std::string_view text);
// Memory sizes DuckDB accepts: 512MB, 4GB, 1.5GiB, ... nullopt when malformed.
std::optional<std::string> NormalizeMemoryLimit(std::string_view text);
// The same sizes in bytes ("64MB" -> 64,000,000; "1GiB" -> 2^30).
std::optional<int64_t> ParseByteSize(std::string_view text);
// A DuckDB block size: 16, 32, 64, 128 or 256 KiB, written "64KB", "64KiB"
// or in bytes ("65536"); KB counts as KiB. nullopt for anything else.
std::optional<int64_t> ParseBlockSize(std::string_view text);
// [a-z_][a-z0-9_]*
bool IsLowerIdentifier(std::string_view name);

}  // namespace sluice
