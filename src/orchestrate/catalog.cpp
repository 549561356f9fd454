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
      listing["tables"].push_back({{"name", t.name}, {"key", t.key}});
    }
    const std::string path = CatalogPath(spec->state_dir, src.name);
    std::set<std::string> before, now;
    if (Result<std::string> text = ReadFile(path); text.ok()) {
      nlohmann::json old = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
      if (old.is_object() && old.value("schema", "") == schema && old.contains("tables")) {
        for (const auto& t : old["tables"]) before.insert(t.value("name", ""));
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
      notes->push_back(src.name + ": schema " + schema + " lists new table(s): " + Join(added, ", "));
    }
    if (!gone.empty()) {
      notes->push_back(src.name + ": schema " + schema + " no longer lists: " + Join(gone, ", ") +
                       " (their published tables stay, and are no longer read)");
    }
  }
}

void ExpandSchemaSources(Project* project, const std::string& env,
                         std::vector<ConfigError>* errors) {
  const EnvironmentSpec* spec = EnvOf(*project, env);
  if (!spec) return;
  for (SourceSpec& src : project->sources) {
    if (!src.database || src.database->schema.empty()) continue;
    const DatabaseSpec& db = *src.database;
    Result<std::string> text = ReadFile(CatalogPath(spec->state_dir, src.name));
    if (!text.ok()) continue;  // not listed yet: the next run or plan lists it
    nlohmann::json listing = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (!listing.is_object() || listing.value("schema", "") != db.schema ||
        !listing.contains("tables") || !listing["tables"].is_array()) {
      continue;
    }
    std::set<std::string> listed, names;
    for (const TableSpec& t : src.tables) listed.insert(t.name);
    for (const auto& entry : listing["tables"]) {
      const std::string table = entry.value("name", "");
      if (table.empty()) continue;
      if (!db.include.empty() && !Matches(db.include, table)) continue;
      if (Matches(db.exclude, table)) continue;
      const std::string name = AssetName(table);
      if (listed.count(name)) continue;  // tables: says how to read it
      if (names.count(name)) {
        errors->push_back({db.loc, "schema: table " + table + " of " + db.schema +
                                       " would be asset " + name +
                                       ", as another table of it is; list one under tables: "
                                       "with a name of its own, or exclude: it"});
        continue;
      }
      names.insert(name);
      TableSpec t;
      t.name = name;
      t.loc = db.loc;
      t.format = src.format;
      t.format_options = src.format_options;
      t.description = "table " + table + " of schema " + db.schema;
      t.db_table = Relation(db.schema, table);
      if (entry.contains("key") && entry["key"].is_array()) {
        for (const auto& k : entry["key"]) t.key.push_back(k.get<std::string>());
      }
      if (db.cdc && t.key.empty()) {
        errors->push_back({db.loc, "schema: table " + table + " of " + db.schema +
                                       " has no primary key, which change capture matches "
                                       "changes on; exclude: it, or list it under tables: "
                                       "with a key:"});
        continue;
      }
      src.tables.push_back(std::move(t));
    }
  }
}

}  // namespace sluice
