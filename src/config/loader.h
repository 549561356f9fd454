// Loads a project folder into a validated Project (see project.h and
// DESIGN.md §2): sluice.yaml, fields.yaml, sources/*.yaml|yml, models/*.sql
// (+ models/<name>.yaml), seeds/*.csv (+ seeds/<name>.yaml).
//
// Contract: LoadProject never throws and never stops at the first problem; it
// reports every error it finds, each with a file relative to the root and a
// 1-based line, sorted by file then line. ${secret:NAME} references are kept
// unresolved. Model SQL is only scanned (header block, emptiness, template
// syntax); YAML is parsed only where a header exists, so a project of 10,000
// plain models loads in well under 200 ms.
// Thread-safety: pure functions of the file system; safe from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/project.h"
#include "core/status.h"

namespace sluice {

struct LoadedProject {
  Project project;
  std::vector<ConfigError> errors;
  bool ok() const { return errors.empty(); }
};

// Loads and validates the project whose sluice.yaml is in root.
LoadedProject LoadProject(const std::string& root);
// Only sluice.yaml (name, environments, secrets, defaults, ...): what a
// command needs to find and open its environment, without reading every asset.
LoadedProject LoadProjectSettings(const std::string& root);

// The nearest folder at or above `start` that holds sluice.yaml; NotFound
// with a hint otherwise.
Result<std::string> FindProjectRoot(const std::string& start);

// Vocabularies, in the order messages list them.
const std::vector<std::string>& KnownFormats();     // csv tsv json ndjson parquet html_table zip
const std::vector<std::string>& KnownFieldTypes();  // text integer ... json
const std::vector<std::string>& KnownCheckTypes();  // not_null unique ... sql

// The format a path, URL or zip member name implies by its extension
// (".txt" and ".csv" -> csv, ".csv.gz" -> csv, ...); "" when it implies none.
std::string GuessFormat(std::string_view path_or_url);

}  // namespace sluice
