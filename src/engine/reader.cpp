#include "engine/reader.h"

#include <nlohmann/json.hpp>

#include <array>
#include <string_view>
#include <vector>

#include "core/strings.h"
#include "graph/sql_refs.h"
#include "warehouse/watchdog.h"

namespace sluice {
namespace {

// Table functions a read may call: they compute rows and read nothing.
constexpr std::array<std::string_view, 5> kAllowedTableFunctions = {
    "range", "generate_series", "unnest", "json_each", "json_tree"};

// Scalar functions a read may not call: they change state (sequences) or
// reveal the server's settings (paths, search path).
constexpr std::array<std::string_view, 5> kRefusedFunctions = {
    "nextval", "currval", "setval", "current_setting", "json_execute_serialized_sql"};

// Sluice's own schemas a read may reach in full.
constexpr std::array<std::string_view, 2> kReadableSchemas = {"_sluice", "_sluice_failed"};

template <size_t N>
bool Contains(const std::array<std::string_view, N>& set, std::string_view name) {
  for (std::string_view s : set) {
    if (s == name) return true;
  }
  return false;
}

// What the FROM clauses anywhere in the tree name beyond tables: table
// functions, and SHOW/DESCRIBE targets that are catalog listings (SHOW
// TABLES) rather than a query (DESCRIBE t, SUMMARIZE t: checked as queries).
struct FromClauses {
  std::vector<std::string> table_functions;
  std::vector<std::string> catalog_listings;
};

void ScanFromClauses(const nlohmann::json& node, FromClauses& out) {
  if (node.is_array()) {
    for (const auto& child : node) ScanFromClauses(child, out);
    return;
  }
  if (!node.is_object()) return;
  auto type = node.find("type");
  if (type != node.end() && type->is_string() && !node.contains("class")) {
    if (*type == "TABLE_FUNCTION") {
      auto function = node.find("function");
      if (function != node.end() && function->is_object()) {
        out.table_functions.push_back(ToLower(function->value("function_name", "")));
      }
    } else if (*type == "SHOW_REF") {
      auto query = node.find("query");
      if (query == node.end() || query->is_null()) {
        std::string target = node.value("table_name", "");
        out.catalog_listings.push_back(target.empty() ? "SHOW" : "SHOW " + target);
      }
    }
  }
  for (const auto& [key, child] : node.items()) {
    if (child.is_structured()) ScanFromClauses(child, out);
  }
}

constexpr const char* kWhatReadersReach =
    "a read reaches the project's published tables, its external: tables, _sluice.* and "
    "_sluice_failed.*";

}  // namespace

Status CheckReadStatement(const std::string& sql, const std::string& parse_tree,
                          const ReadScope& scope) {
  nlohmann::json tree = nlohmann::json::parse(parse_tree, nullptr, /*allow_exceptions=*/false);
  if (tree.is_object() && tree.value("error", false)) {
    std::string type = tree.value("error_type", "");
    std::string message = tree.value("error_message", "");
    if (type == "not implemented") {
      return Status::Refused(
          "a read takes exactly one SELECT statement; DDL, DML, ATTACH, COPY, SET, PRAGMA and "
          "the like are refused (only Sluice's publish step writes)");
    }
    std::string position = tree.value("position", "");
    return Status::Invalid("cannot parse the query: " + message +
                           (position.empty() ? "" : " (at character " + position + ")"));
  }
  Result<SqlRefs> refs = RefsFromJson(sql, parse_tree);
  if (!refs.ok()) {
    if (refs.status().code() == StatusCode::kInvalidArgument) {
      return Status::Refused(
          "a read takes exactly one SELECT statement (" +
          std::string(refs.status().message().find("statements") != std::string::npos
                          ? "found several"
                          : refs.status().message()) +
          ")");
    }
    return refs.status();
  }
  if (!refs->files.empty()) {
    return Status::Refused("a read cannot read files ('" + refs->files.front() + "'); " +
                           kWhatReadersReach);
  }
  FromClauses from;
  ScanFromClauses(tree, from);
  if (!from.catalog_listings.empty()) {
    return Status::Refused("a read cannot list the catalog (" + from.catalog_listings.front() +
                           "); select from _sluice.publications to list published assets");
  }
  for (const std::string& fn : from.table_functions) {
    if (!Contains(kAllowedTableFunctions, fn)) {
      return Status::Refused("a read cannot call the table function " + fn + "(); " +
                             kWhatReadersReach);
    }
  }
  for (const std::string& fn : refs->functions) {
    if (Contains(kRefusedFunctions, fn)) {
      return Status::Refused("a read cannot call " + fn +
                             "(): it changes state or reveals the server's settings");
    }
  }
  for (const std::string& name : refs->tables) {
    std::vector<std::string> parts = Split(name, '.');
    if (parts.size() == 3) {
      return Status::Refused("a read cannot name another database ('" + name +
                             "'); write schema.table; " + kWhatReadersReach);
    }
    if (parts.size() == 2 && Contains(kReadableSchemas, parts[0])) continue;
    std::string relation = parts.size() == 2 && parts[0] == "main" ? parts[1] : name;
    if (scope.relations.count(relation)) continue;
    std::vector<std::string> known(scope.relations.begin(), scope.relations.end());
    return Status::NotFound("'" + name + "' is not a published table of this project" +
                            DidYouMeanHint(relation, known) + "; " + kWhatReadersReach +
                            " (an asset is readable once a run has published it)");
  }
  return Status::Ok();
}

Result<ReadSummary> RunRead(WarehouseSession& session, const std::string& sql,
                            const ReadScope& scope, RenderFormat format, const ReadLimits& limits,
                            const RowVisitor& visitor) {
  // Parsing binds nothing: the text is a literal argument.
  ASSIGN_OR_RETURN(QueryResult parsed,
                   session.Query("SELECT json_serialize_sql(" + QuoteLiteral(sql) + ")"));
  std::optional<std::string> tree = parsed.Scalar();
  if (!tree) return Status::Internal("json_serialize_sql returned nothing");
  RETURN_IF_ERROR(CheckReadStatement(sql, *tree, scope));
  return RunBuiltRead(session, sql, {}, format, limits, visitor);
}

Result<ReadSummary> RunBuiltRead(WarehouseSession& session, const std::string& sql,
                                 const std::vector<std::optional<std::string>>& params,
                                 RenderFormat format, const ReadLimits& limits,
                                 const RowVisitor& visitor, const std::string& cache_tag) {
  ReadSummary summary;
  RowVisitor capped;
  capped.columns = visitor.columns;
  capped.row = [&](const std::vector<std::optional<std::string_view>>& row) {
    if (limits.max_rows > 0 && summary.rows >= limits.max_rows) {
      summary.truncated = true;
      return false;
    }
    ++summary.rows;
    return visitor.row(row);
  };
  Status st;
  bool timed_out = false;
  {
    Watchdog watchdog(&session, limits.timeout_seconds);
    st = session.Read(sql, format, capped, params, cache_tag);
    timed_out = watchdog.fired();
  }
  if (!st.ok() && timed_out) {
    return Status(StatusCode::kTimeout, "the read was stopped after " +
                                            std::to_string(limits.timeout_seconds) +
                                            " s (raise the limit with --timeout)");
  }
  RETURN_IF_ERROR(st);
  return summary;
}

}  // namespace sluice
