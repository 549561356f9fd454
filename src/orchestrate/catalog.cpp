#include "orchestrate/catalog.h"

#include <fnmatch.h>

#include <nlohmann/json.hpp>

#include <set>

#include "config/template.h"
#include "core/fs.h"
#include "core/redact.h"
#include "core/strings.h"
#include "ingest/database.h"
#include "orchestrate/check_file.h"

namespace sluice {
namespace {

bool Matches(const std::vector<std::string>& globs, const std::string& name) {
  for (const std::string& g : globs) {
    if (::fnmatch(g.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

// The asset name a table gets: lower case, [a-z0-9_], not starting with a digit.
std::string AssetName(const std::string& table) {
  std::string out;
  for (char c : table) {
    unsigned char u = static_cast<unsigned char>(std::tolower(static_cast<unsigned char>(c)));
    out += (std::isalnum(u) || u == '_') && u < 128 ? static_cast<char>(u) : '_';
  }
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "t_" + out;
  return out;
}

// "schema.table", quoted where a part is not a plain identifier.
std::string Relation(const std::string& schema, const std::string& table) {
  auto part = [](const std::string& p) {
    bool plain = !p.empty() && !std::isdigit(static_cast<unsigned char>(p[0]));
    for (char c : p) {
      plain = plain && (std::islower(static_cast<unsigned char>(c)) ||
                        std::isdigit(static_cast<unsigned char>(c)) || c == '_');
    }
    if (plain) return p;
    std::string q = "\"";
    for (char c : p) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  return part(schema) + "." + part(table);
}

const EnvironmentSpec* EnvOf(const Project& project, const std::string& env) {
  auto it = project.environments.find(env);
  return it == project.environments.end() ? nullptr : &it->second;
}

// The relation a tables: entry reads, as (schema, table); schema "" when
// it names none.
std::pair<std::string, std::string> SplitRelation(const std::string& relation) {
  Result<std::vector<std::string>> parts = SplitRelationName(relation);
  if (!parts.ok() || parts->empty()) return {"", relation};
  if (parts->size() == 1) return {"", parts->front()};
  return {(*parts)[parts->size() - 2], parts->back()};
}

// The tables a listing makes into assets of `src`, and why any are left
// out (a name two tables would share, a table capture cannot read).
struct Selection {
  std::vector<TableSpec> tables;
  std::vector<std::string> skipped;
};

Selection Select(const SourceSpec& src, const nlohmann::json& listing) {
  Selection out;
  const DatabaseSpec& db = *src.database;
  std::set<std::string> names;
  std::set<std::pair<std::string, std::string>> read;  // what tables: reads already
  for (const TableSpec& t : src.tables) {
    names.insert(t.name);
    auto [schema, table] = SplitRelation(t.db_table);
    read.insert({schema.empty() ? db.schema : schema, table});
  }
  for (const auto& entry : listing["tables"]) {
    if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string()) continue;
    const std::string table = entry["name"].get<std::string>();
    if (table.empty()) continue;
    if (!db.include.empty() && !Matches(db.include, table)) continue;
    if (Matches(db.exclude, table)) continue;
    if (read.count({db.schema, table})) continue;  // tables: says how to read it
    const std::string name = AssetName(table);
    if (names.count(name)) {
      out.skipped.push_back(table + " (its asset name " + name +
                            " is taken: list it under tables: with a name of its own, or "
                            "exclude: it)");
      continue;
    }
    TableSpec t;
    t.name = name;
    t.loc = db.loc;
    t.format = src.format;
    t.format_options = src.format_options;
    t.description = "table " + table + " of schema " + db.schema;
    t.db_table = Relation(db.schema, table);
    if (entry.contains("key") && entry["key"].is_array()) {
      for (const auto& k : entry["key"]) {
        if (k.is_string()) t.key.push_back(k.get<std::string>());
      }
    }
    if (db.cdc && t.key.empty()) {
      out.skipped.push_back(table +
                            " (no primary key, which change capture matches changes "
                            "on: list it under tables: with a key:, or exclude: it)");
      continue;
    }
    if (db.cdc && entry.value("partitioned", false)) {
      out.skipped.push_back(table +
                            " (partitioned: its changes arrive under its partitions' "
                            "names; list those under tables:, or exclude: it)");
      continue;
    }
    names.insert(name);
    out.tables.push_back(std::move(t));
  }
  return out;
}

}  // namespace

std::string CatalogPath(const std::string& state_dir, const std::string& source) {
  return JoinPath(JoinPath(state_dir, "catalog"), source + ".json");
}

void RefreshCatalogs(const Project& project, const std::string& env,
                     std::vector<std::string>* notes) {
  const EnvironmentSpec* spec = EnvOf(project, env);
  if (!spec) return;
  for (const SourceSpec& src : project.sources) {
    if (!src.database || src.database->schema.empty()) continue;
    const std::string& schema = src.database->schema;
    TemplateContext ctx;
    ctx.vars = project.vars;
    ctx.env = env;
    TableSpec none;
    Result<DbRequest> req = DatabaseRequestOf(project, src, none, ctx);
    Result<std::vector<DbTableInfo>> tables =
        req.ok() ? ListTables(*req, schema) : Result<std::vector<DbTableInfo>>(req.status());
    if (!tables.ok()) {
      notes->push_back(Redact(src.name + ": cannot list the tables of schema " + schema +
                              " (the last listing stands): " + tables.status().message()));
      continue;
    }
    nlohmann::json listing = {{"schema", schema}, {"tables", nlohmann::json::array()}};
    for (const DbTableInfo& t : *tables) {
      nlohmann::json entry = {{"name", t.name}, {"key", t.key}};
      if (t.partitioned) entry["partitioned"] = true;
      listing["tables"].push_back(std::move(entry));
    }
    if (tables->empty()) {
      notes->push_back(src.name + ": schema " + schema +
                       " has no tables the url's user may see (is the name right?)");
    }
    const std::string path = CatalogPath(spec->state_dir, src.name);
    std::set<std::string> before, now;
    if (Result<std::string> text = ReadFile(path); text.ok()) {
      nlohmann::json old = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
      if (old.is_object() && old.value("schema", "") == schema && old.contains("tables")) {
        for (const auto& t : old["tables"]) {
          if (t.is_object() && t.contains("name") && t["name"].is_string()) {
            before.insert(t["name"].get<std::string>());
          }
        }
      }
      if (old == listing) continue;
    }
    for (const DbTableInfo& t : *tables) now.insert(t.name);
    std::vector<std::string> added, gone;
    for (const std::string& t : now) {
      if (!before.count(t)) added.push_back(t);
    }
    for (const std::string& t : before) {
      if (!now.count(t)) gone.push_back(t);
    }
    Status made = MakeDirs(JoinPath(spec->state_dir, "catalog"));
    if (made.ok()) made = WriteFileAtomic(path, listing.dump(2) + "\n");
    if (!made.ok()) {
      notes->push_back(src.name + ": cannot keep the listing of schema " + schema + ": " +
                       made.message());
      continue;
    }
    if (!added.empty()) {
      notes->push_back(src.name + ": schema " + schema +
                       " lists new table(s): " + Join(added, ", "));
    }
    Selection chosen = Select(src, listing);
    if (!chosen.skipped.empty()) {
      notes->push_back(src.name + ": left out of schema " + schema + ": " +
                       Join(chosen.skipped, "; "));
    }
    if (!gone.empty()) {
      notes->push_back(src.name + ": schema " + schema + " no longer lists: " + Join(gone, ", ") +
                       " (their published tables stay, and are no longer read)");
    }
  }
}

void ExpandSchemaSources(Project* project, const std::string& env) {
  const EnvironmentSpec* spec = EnvOf(*project, env);
  if (!spec) return;
  for (SourceSpec& src : project->sources) {
    if (!src.database || src.database->schema.empty()) continue;
    const DatabaseSpec& db = *src.database;
    Result<std::string> text = ReadFile(CatalogPath(spec->state_dir, src.name));
    nlohmann::json listing =
        text.ok() ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
    if (!listing.is_object() || listing.value("schema", "") != db.schema ||
        !listing.contains("tables") || !listing["tables"].is_array()) {
      // Not listed yet (or unreadable): `run` and `plan` list it before
      // they load the project; until then the source has no tables.
      continue;
    }
    Selection chosen = Select(src, listing);
    for (TableSpec& t : chosen.tables) src.tables.push_back(std::move(t));
  }
}

}  // namespace sluice
