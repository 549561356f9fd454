#include "orchestrate/version.h"

#include "core/hash.h"

namespace sluice {
namespace {

void StripNonContent(nlohmann::json& j) {
  if (!j.is_object()) return;
  for (const char* key : {"checks", "description", "tags", "schedule", "freshness", "pool"})
    j.erase(key);
  // A column's description is documentation; its other keys are column phases.
  if (j.contains("columns") && j["columns"].is_object()) {
    for (auto& [name, column] : j["columns"].items()) {
      if (column.is_object()) column.erase("description");
    }
  }
  if (j.contains("tables") && j["tables"].is_object()) {
    for (auto& [name, table] : j["tables"].items()) StripNonContent(table);
  }
  // How many changes or messages one read takes is not what it reads.
  if (j.contains("database") && j["database"].is_object()) {
    nlohmann::json& db = j["database"];
    if (db.contains("cdc") && db["cdc"].is_object()) db["cdc"].erase("max_changes");
  }
  if (j.contains("stream") && j["stream"].is_object()) {
    for (const char* key : {"max_messages", "wait", "ack_wait"}) j["stream"].erase(key);
  }
}

}  // namespace

nlohmann::json ContentConfig(const nlohmann::json& config) {
  nlohmann::json out = config;
  StripNonContent(out);
  return out;
}

std::string Fingerprint(const nlohmann::json& normalised_config, const std::string& rendered_sql,
                        const std::string& engine_version) {
  Sha256 h;
  for (const std::string& part :
       {std::string(kCompilerVersion), engine_version, normalised_config.dump(), rendered_sql}) {
    h.Update(part);
    h.Update("\x1f", 1);
  }
  return h.HexDigest();
}

std::string VersionId(const std::string& fingerprint, const nlohmann::json& inputs) {
  return Sha256Hex(fingerprint + "\x1f" + inputs.dump()).substr(0, 16);
}

std::string ChecksHash(const std::vector<CheckSpec>& checks) {
  nlohmann::json j = nlohmann::json::array();
  for (const CheckSpec& c : checks) {
    j.push_back({c.type, c.args, c.severity == Severity::kError ? "error" : "warn"});
  }
  return Sha256Hex(j.dump()).substr(0, 16);
}

}  // namespace sluice
