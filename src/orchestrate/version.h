// What a version is (DESIGN §5): version id = hash(fingerprint, input
// version ids). The fingerprint covers what decides an asset's content — the
// rendered SQL, the normalised config, Sluice's compiler version and the
// engine's version — but not its checks: a change to checks only re-runs the
// audit, tracked by a separate checks hash.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "config/project.h"

namespace sluice {

// Bumped whenever Sluice changes how it builds an asset from the same inputs.
inline constexpr const char* kCompilerVersion = "sluice-compiler-1";

std::string Fingerprint(const nlohmann::json& normalised_config, const std::string& rendered_sql,
                        const std::string& engine_version);
// 16 hex digits.
std::string VersionId(const std::string& fingerprint, const nlohmann::json& inputs);
std::string ChecksHash(const std::vector<CheckSpec>& checks);
// A config object with the keys that do not change content removed
// (checks, description, tags, schedule, freshness), also inside tables, and
// the description of each entry under columns.
nlohmann::json ContentConfig(const nlohmann::json& config);

}  // namespace sluice
