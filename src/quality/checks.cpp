#include "quality/checks.h"

#include "config/template.h"

#include <fmt/format.h>

#include <map>
#include <optional>
#include <set>

#include "config/yaml_util.h"
#include "core/strings.h"

namespace sluice {
namespace {

Result<std::vector<std::string>> Columns(const nlohmann::json& args, const CheckSpec& check) {
  std::vector<std::string> cols;
  const nlohmann::json* v = &args;
  if (args.is_object() && args.contains("columns")) v = &args["columns"];
  if (args.is_object() && args.contains("column")) v = &args["column"];
  if (v->is_string()) {
    cols.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    for (const auto& c : *v) {
      if (!c.is_string()) break;
      cols.push_back(c.get<std::string>());
    }
  }
  if (cols.empty()) {
    return Status::Invalid(check.loc.ToString() + ": check " + check.type +
                           " needs a column name or a list of column names");
  }
  return cols;
}

Result<std::string> OneColumn(const CheckSpec& check) {
  ASSIGN_OR_RETURN(auto cols, Columns(check.args, check));
  return QuoteIdent(cols[0]);
}

std::string Arg(const CheckSpec& check, const char* key) {
  if (!check.args.is_object() || !check.args.contains(key)) return "";
  const auto& v = check.args[key];
  return v.is_string() ? v.get<std::string>() : v.dump();
}

std::string NumberLiteral(const nlohmann::json& v) {
  if (v.is_number()) return v.dump();
  return QuoteLiteral(v.is_string() ? v.get<std::string>() : v.dump());
}

Result<std::string> NotNull(const CheckSpec& check, const std::string& rel) {
  ASSIGN_OR_RETURN(auto cols, Columns(check.args, check));
  std::vector<std::string> terms;
  for (const auto& c : cols) terms.push_back(QuoteIdent(c) + " IS NULL");
  return "SELECT * FROM " + rel + " WHERE " + Join(terms, " OR ");
}

Result<std::string> Unique(const CheckSpec& check, const std::string& rel) {
  ASSIGN_OR_RETURN(auto cols, Columns(check.args, check));
  std::vector<std::string> quoted;
  for (const auto& c : cols) quoted.push_back(QuoteIdent(c));
  std::string list = Join(quoted, ", ");
  // As a SQL UNIQUE constraint: a key with a NULL part equals nothing.
  std::vector<std::string> present;
  for (const auto& q : quoted) present.push_back(q + " IS NOT NULL");
  return "SELECT " + list + ", count(*) AS duplicates FROM " + rel + " WHERE " +
         Join(present, " AND ") + " GROUP BY " + list + " HAVING count(*) > 1";
}

Result<std::string> RowCount(const CheckSpec& check, const std::string& rel) {
  std::vector<std::string> terms;
  if (check.args.is_object() && check.args.contains("min")) {
    terms.push_back("count(*) >= " + NumberLiteral(check.args["min"]));
  }
  if (check.args.is_object() && check.args.contains("max")) {
    terms.push_back("count(*) <= " + NumberLiteral(check.args["max"]));
  }
  if (terms.empty()) terms.push_back("count(*) >= 1");
  return "SELECT count(*) AS row_count FROM " + rel + " HAVING NOT (" + Join(terms, " AND ") + ")";
}

Result<std::string> AcceptedValues(const CheckSpec& check, const std::string& rel) {
  ASSIGN_OR_RETURN(std::string col, OneColumn(check));
  if (!check.args.contains("values") || !check.args["values"].is_array()) {
    return Status::Invalid(check.loc.ToString() + ": accepted_values needs values: [..]");
  }
  std::vector<std::string> values;
  for (const auto& v : check.args["values"]) {
    values.push_back(QuoteLiteral(v.is_string() ? v.get<std::string>() : v.dump()));
  }
  return "SELECT * FROM " + rel + " WHERE " + col + " IS NOT NULL AND CAST(" + col +
         " AS VARCHAR) NOT IN (" + Join(values, ", ") + ")";
}

Result<std::string> Range(const CheckSpec& check, const std::string& rel) {
  ASSIGN_OR_RETURN(std::string col, OneColumn(check));
  std::vector<std::string> terms;
  if (check.args.contains("min")) terms.push_back(col + " < " + NumberLiteral(check.args["min"]));
  if (check.args.contains("max")) terms.push_back(col + " > " + NumberLiteral(check.args["max"]));
  if (terms.empty()) return Status::Invalid(check.loc.ToString() + ": range needs min or max");
  return "SELECT * FROM " + rel + " WHERE " + Join(terms, " OR ");
}

Result<std::string> Regex(const CheckSpec& check, const std::string& rel) {
  ASSIGN_OR_RETURN(std::string col, OneColumn(check));
  std::string pattern = Arg(check, "pattern");
  if (pattern.empty()) return Status::Invalid(check.loc.ToString() + ": regex needs pattern:");
  return "SELECT * FROM " + rel + " WHERE " + col + " IS NOT NULL AND NOT regexp_full_match(CAST(" +
         col + " AS VARCHAR), " + QuoteLiteral(pattern) + ")";
}

std::string TextArg(const CheckSpec& check, const char* key) {
  if (check.args.is_string()) return check.args.get<std::string>();
  return Arg(check, key);
}

Result<std::string> Expression(const CheckSpec& check, const std::string& rel) {
  std::string expr = TextArg(check, "expression");
  if (expr.empty()) return Status::Invalid(check.loc.ToString() + ": expression needs SQL text");
  return "SELECT * FROM " + rel + " WHERE NOT coalesce((" + expr + "), false)";
}

Result<std::string> Sql(const CheckSpec& check, const std::string& rel) {
  std::string query = TextArg(check, "query");
  if (query.empty()) return Status::Invalid(check.loc.ToString() + ": sql needs a query");
  // {{ this }} is the relation checked (the staged build, or the public name).
  TemplateContext ctx;
  ctx.this_name = rel;
  Result<std::string> rendered = RenderTemplate(query, ctx, check.loc.line);
  if (!rendered.ok()) return rendered.status().WithContext(check.loc.file);
  return "SELECT * FROM (" + *rendered + "\n)";
}

Result<std::string> Relationships(const CheckSpec& check, const std::string& rel) {
  ASSIGN_OR_RETURN(std::string col, OneColumn(check));
  std::string to = Arg(check, "to");
  auto dot = to.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == to.size()) {
    return Status::Invalid(check.loc.ToString() + ": relationships needs to: TABLE.COLUMN");
  }
  std::string table = QuoteIdent(to.substr(0, dot));
  std::string other = QuoteIdent(to.substr(dot + 1));
  return "SELECT * FROM " + rel + " AS child WHERE child." + col +
         " IS NOT NULL AND NOT EXISTS (SELECT 1 FROM " + table + " AS parent WHERE parent." +
         other + " = child." + col + ")";
}

const std::map<std::string, CheckCompiler>& Registry() {
  static const std::map<std::string, CheckCompiler> kRegistry = {
      {"not_null", NotNull},
      {"unique", Unique},
      {"row_count", RowCount},
      {"accepted_values", AcceptedValues},
      {"range", Range},
      {"regex", Regex},
      {"expression", Expression},
      {"sql", Sql},
      {"relationships", Relationships},
  };
  return kRegistry;
}

}  // namespace

bool CheckLooksAtRows(const CheckSpec& check) {
  static const std::set<std::string> kRowChecks = {"not_null", "accepted_values", "range",
                                                   "regex",    "expression",      "relationships"};
  return kRowChecks.count(check.type) > 0;
}

std::vector<CheckOutcome> RunChecksOnChange(WarehouseSession& session,
                                            const std::vector<CheckSpec>& checks,
                                            const std::string& table, const std::string& rows) {
  std::vector<CheckSpec> by_row, whole;
  for (const CheckSpec& c : checks) (CheckLooksAtRows(c) ? by_row : whole).push_back(c);
  std::vector<CheckOutcome> row_out = RunChecks(session, by_row, rows);
  std::vector<CheckOutcome> whole_out = RunChecks(session, whole, table);
  std::vector<CheckOutcome> out;
  size_t r = 0, w = 0;
  for (const CheckSpec& c : checks) {
    out.push_back(CheckLooksAtRows(c) ? std::move(row_out[r++]) : std::move(whole_out[w++]));
  }
  return out;
}

std::vector<std::string> RegisteredCheckTypes() {
  std::vector<std::string> out;
  for (const auto& [name, fn] : Registry()) out.push_back(name);
  return out;
}

Result<std::string> CompileCheck(const CheckSpec& check, const std::string& relation) {
  auto it = Registry().find(check.type);
  if (it == Registry().end()) {
    return Status::Invalid(check.loc.ToString() + ": check type '" + check.type +
                           "' is not supported yet" +
                           DidYouMeanHint(check.type, RegisteredCheckTypes()));
  }
  return it->second(check, relation);
}

const char* CheckStatusName(CheckStatus status) {
  switch (status) {
    case CheckStatus::kPass:
      return "pass";
    case CheckStatus::kFail:
      return "fail";
    case CheckStatus::kError:
      return "error";
  }
  return "error";
}

nlohmann::json CheckOutcomeJson(const CheckOutcome& c) {
  return {{"name", c.name},
          {"severity", c.severity == Severity::kError ? "error" : "warn"},
          {"status", CheckStatusName(c.status)},
          {"failing_rows", c.failing_rows},
          {"sample", c.sample},
          {"message", c.message}};
}

CheckOutcome FreshnessOutcome(const std::string& name, const nlohmann::json& thresholds,
                              int64_t age_seconds, const std::string& what) {
  CheckOutcome o;
  o.name = name;
  auto limit = [&](const char* key) -> int64_t {
    auto it = thresholds.find(key);
    if (it == thresholds.end()) return -1;
    std::optional<int64_t> s = ParseDuration(it->is_string() ? it->get<std::string>() : it->dump());
    return s.value_or(-1);
  };
  int64_t warn = limit("warn_after"), error = limit("error_after");
  auto human = [](int64_t s) {
    if (s >= 86400) return fmt::format("{}d {}h", s / 86400, s % 86400 / 3600);
    if (s >= 3600) return fmt::format("{}h {}m", s / 3600, s % 3600 / 60);
    if (s >= 60) return fmt::format("{}m {}s", s / 60, s % 60);
    return fmt::format("{}s", s);
  };
  o.status = CheckStatus::kPass;
  o.severity = error >= 0 ? Severity::kError : Severity::kWarn;
  if (age_seconds < 0) {
    o.status = CheckStatus::kFail;
    o.failing_rows = 1;
    o.message = name + ": no " + what + " yet";
  } else if (error >= 0 && age_seconds > error) {
    o.status = CheckStatus::kFail;
    o.failing_rows = 1;
    o.message = fmt::format("{}: {} is {} old (error_after {})", name, what, human(age_seconds),
                            human(error));
  } else if (warn >= 0 && age_seconds > warn) {
    o.severity = Severity::kWarn;
    o.status = CheckStatus::kFail;
    o.failing_rows = 1;
    o.message = fmt::format("{}: {} is {} old (warn_after {})", name, what, human(age_seconds),
                            human(warn));
  }
  o.sample = nlohmann::json::array({{{"age_seconds", age_seconds}}});
  return o;
}

std::vector<CheckOutcome> RunChecks(WarehouseSession& session, const std::vector<CheckSpec>& checks,
                                    const std::string& relation) {
  std::vector<CheckOutcome> out;
  // The relation's columns: a check naming one it lacks is a clear error
  // (file:line, the columns there are), not DuckDB's binder error.
  std::vector<std::string> columns;
  std::set<std::string> lower_columns;
  if (!checks.empty()) {
    Result<QueryResult> described = session.Query("DESCRIBE SELECT * FROM " + relation);
    if (described.ok()) {
      size_t name = described->ColumnIndex("column_name");
      for (const auto& row : described->rows) {
        columns.push_back(row[name].value_or(""));
        lower_columns.insert(ToLower(columns.back()));
      }
    }
  }
  for (const CheckSpec& check : checks) {
    if (!lower_columns.empty() && check.type != "sql" && check.type != "expression" &&
        check.type != "row_count") {
      Result<std::vector<std::string>> named = Columns(check.args, check);
      std::string missing;
      if (named.ok()) {
        for (const std::string& c : *named) {
          if (!lower_columns.count(ToLower(c))) {
            missing = c;
            break;
          }
        }
      }
      if (!missing.empty()) {
        CheckOutcome o;
        o.name = check.name.empty() ? check.type : check.name;
        o.severity = check.severity;
        o.status = CheckStatus::kError;
        o.message = check.loc.ToString() + ": check " + o.name + ": no column '" + missing + "'" +
                    DidYouMeanHint(missing, columns) + "; the columns are " + Join(columns, ", ");
        out.push_back(std::move(o));
        continue;
      }
    }
    if (check.type == "freshness") {
      // The age of the newest value of a timestamp or date column.
      std::string column = check.args.value("column", "");
      Result<QueryResult> age =
          session.Query("SELECT (epoch_ms(now()) - epoch_ms(max(CAST(" + QuoteIdent(column) +
                        " AS TIMESTAMP)))) // 1000 FROM " + relation);
      if (!age.ok()) {
        CheckOutcome o;
        o.name = check.name;
        o.severity = check.severity;
        o.status = CheckStatus::kError;
        o.message = check.loc.ToString() + ": check " + check.name +
                    " failed to run: " + age.status().message();
        out.push_back(std::move(o));
        continue;
      }
      std::optional<std::string> v = age->rows.empty() ? std::nullopt : age->rows[0][0];
      out.push_back(FreshnessOutcome(check.name, check.args, v ? std::stoll(*v) : -1,
                                     "the newest " + column));
      continue;
    }
    CheckOutcome o;
    o.name = check.name.empty() ? check.type : check.name;
    o.severity = check.severity;
    Result<std::string> sql = CompileCheck(check, relation);
    if (!sql.ok()) {
      o.status = CheckStatus::kError;
      o.message = sql.status().message();
      out.push_back(std::move(o));
      continue;
    }
    Result<QueryResult> count = session.Query("SELECT count(*) FROM (" + *sql + ")");
    if (!count.ok()) {
      o.status = CheckStatus::kError;
      o.message = check.loc.ToString() + ": check " + o.name +
                  " failed to run: " + count.status().message();
      out.push_back(std::move(o));
      continue;
    }
    o.failing_rows = count->ScalarInt();
    o.status = o.failing_rows == 0 ? CheckStatus::kPass : CheckStatus::kFail;
    if (o.failing_rows > 0) {
      // Rendered as readers see values, so every column type shows.
      std::vector<std::string> names;
      RowVisitor visitor;
      visitor.columns = [&](const std::vector<RenderedColumn>& columns) {
        for (const RenderedColumn& c : columns) names.push_back(c.name);
        return Status::Ok();
      };
      visitor.row = [&](const std::vector<std::optional<std::string_view>>& row) {
        nlohmann::json obj = nlohmann::json::object();
        for (size_t i = 0; i < row.size(); ++i) {
          obj[names[i]] = row[i] ? nlohmann::json(std::string(*row[i])) : nlohmann::json(nullptr);
        }
        o.sample.push_back(std::move(obj));
        return true;
      };
      Status sampled =
          session.Read("SELECT * FROM (" + *sql + ") LIMIT 5", RenderFormat::kText, visitor);
      if (!sampled.ok()) o.sample = nlohmann::json::array();
      o.message = o.name + ": " + std::to_string(o.failing_rows) + " failing row" +
                  (o.failing_rows == 1 ? "" : "s");
    }
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace sluice
