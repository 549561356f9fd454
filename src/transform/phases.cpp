#include "transform/phases.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/strings.h"

namespace sluice {

std::string CreateTableSql(const std::string& physical, bool replace) {
  const bool temp = physical.rfind("temp.", 0) == 0;
  return std::string(replace ? "CREATE OR REPLACE " : "CREATE ") +
         (temp ? "TEMP TABLE " : "TABLE ") + physical;
}
namespace {

std::string Lit(const std::string& s) { return QuoteLiteral(s); }
std::string Id(const std::string& s) { return QuoteIdent(s); }

std::string JsonText(const nlohmann::json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// The name of the column holding one phase of a field.
std::string Phase(const char* phase, const std::string& field) {
  return Id(std::string("__") + phase + "_" + field);
}

// Text x without leading and trailing whitespace: spaces, tabs, line breaks
// and Unicode spaces (no-break, em, ideographic...). DuckDB's one-argument
// trim strips the Unicode space separators, fast; only values holding a tab
// or line break (rare, and the cheap test) pay for the pattern.
std::string Trimmed(const std::string& x) {
  return fmt::format(
      R"(CASE WHEN contains({0}, chr(9)) OR contains({0}, chr(10)) OR contains({0}, chr(13)) THEN regexp_replace({0}, '^[\s\p{{Z}}]+|[\s\p{{Z}}]+$', '', 'g') ELSE trim({0}) END)",
      x);
}

// The SQL converting text x to the field type; NULL when it does not convert.
Result<std::string> Convert(const std::string& type, const std::string& x,
                            const nlohmann::json& options) {
  const std::string num = R"('[+-]?((\d{1,3}(,\d{3})+|\d+)(\.\d*)?|\.\d+)')";
  auto formats = [&](const char* fallback_cast) -> std::string {
    if (options.contains("formats") && options["formats"].is_array() &&
        !options["formats"].empty()) {
      std::vector<std::string> list;
      for (const auto& f : options["formats"]) list.push_back(Lit(JsonText(f)));
      std::string parsed = "try_strptime(" + x + ", [" + Join(list, ", ") + "])";
      return std::string(fallback_cast) == "DATE" ? "CAST(" + parsed + " AS DATE)" : parsed;
    }
    return std::string("TRY_CAST(") + x + " AS " + fallback_cast + ")";
  };
  if (type.empty() || type == "text") return x;
  if (type == "integer" || type == "bigint") {
    // Plain digits cast directly; only values with a separator or a decimal
    // point pay for the pattern (which also rejects "1,2,3").
    return fmt::format(
        R"(CASE WHEN NOT contains({0}, ',') AND NOT contains({0}, '.') THEN TRY_CAST({0} AS {1}) WHEN regexp_full_match({0}, '[+-]?(\d{{1,3}}(,\d{{3}})+|\d+)(\.0+)?') THEN TRY_CAST(regexp_replace(regexp_replace({0}, ',', '', 'g'), '\.0+$', '') AS {1}) END)",
        x, type == "integer" ? "INTEGER" : "BIGINT");
  }
  if (type == "decimal") {
    return fmt::format(
        R"(CASE WHEN NOT contains({0}, ',') THEN TRY_CAST({0} AS DECIMAL(38, 10)) WHEN regexp_full_match({0}, {1}) THEN TRY_CAST(replace({0}, ',', '') AS DECIMAL(38, 10)) END)",
        x, num);
  }
  if (type == "double") {
    return fmt::format(
        R"(CASE WHEN regexp_full_match({0}, '[+-]?((\d{{1,3}}(,\d{{3}})+|\d+)(\.\d*)?|\.\d+)([eE][+-]?\d+)?') THEN TRY_CAST(replace({0}, ',', '') AS DOUBLE) END)",
        x);
  }
  if (type == "boolean") {
    return fmt::format(
        "CASE WHEN lower({0}) IN ('true', 't', 'yes', 'y', '1', 'on') THEN true "
        "WHEN lower({0}) IN ('false', 'f', 'no', 'n', '0', 'off') THEN false END",
        x);
  }
  if (type == "date") return formats("DATE");
  if (type == "datetime") return formats("TIMESTAMP");
  if (type == "time") return "TRY_CAST(" + x + " AS TIME)";
  if (type == "uri") {
    return fmt::format(
        R"(CASE WHEN regexp_full_match({0}, '[A-Za-z][A-Za-z0-9+.-]*://\S+') THEN {0} END)", x);
  }
  if (type == "latitude" || type == "longitude") {
    int bound = type == "latitude" ? 90 : 180;
    return fmt::format(
        "CASE WHEN TRY_CAST({0} AS DOUBLE) BETWEEN -{1} AND {1} THEN TRY_CAST({0} AS DOUBLE) END",
        x, bound);
  }
  if (type == "json") return fmt::format("CASE WHEN json_valid({0}) THEN CAST({0} AS JSON) END", x);
  if (type == "category") {
    std::string sql = "CASE lower(" + x + ")";
    if (!options.contains("values") || !options["values"].is_array()) {
      return Status::Invalid("type category needs values: [...]");
    }
    for (const auto& v : options["values"]) {
      std::string value = JsonText(v);
      std::string lower;
      for (char c : value) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      sql += " WHEN " + Lit(lower) + " THEN " + Lit(value);
    }
    return sql + " END";
  }
  return Status::Invalid("unknown field type '" + type + "'");
}

std::string Describe(const std::string& type) {
  if (type == "uri") return "URI (scheme://...)";
  if (type == "category") return "value of the category";
  return type;
}

}  // namespace

std::string StorageType(const std::string& t) {
  if (t == "integer") return "INTEGER";
  if (t == "bigint") return "BIGINT";
  if (t == "decimal") return "DECIMAL(38, 10)";
  if (t == "double" || t == "latitude" || t == "longitude") return "DOUBLE";
  if (t == "boolean") return "BOOLEAN";
  if (t == "date") return "DATE";
  if (t == "datetime") return "TIMESTAMP";
  if (t == "time") return "TIME";
  if (t == "json") return "JSON";
  return "VARCHAR";
}

std::string IssueTableDdl() {
  return "CREATE TABLE IF NOT EXISTS _sluice.issues ("
         "  asset VARCHAR NOT NULL, version_id VARCHAR NOT NULL, object_sha256 VARCHAR,"
         "  record BIGINT, field VARCHAR, issue_type VARCHAR NOT NULL, value VARCHAR,"
         "  message VARCHAR, severity VARCHAR NOT NULL,"
         "  logged_at TIMESTAMP DEFAULT current_timestamp)";
}

Result<PhaseSql> CompilePhases(const TableSpec& table, const std::vector<PhaseInput>& inputs,
                               const std::vector<std::string>& input_columns,
                               const std::map<std::string, FieldSpec>& fields,
                               const PhaseTargets& targets, int issue_rows_per_kind) {
  const std::string& physical = targets.physical;
  PhaseSql out;
  if (inputs.empty()) return Status::Invalid("no raw objects to clean");
  std::set<std::string> present(input_columns.begin(), input_columns.end());
  std::map<std::string, std::string> lower_present;
  for (const std::string& c : input_columns) {
    std::string l;
    for (char ch : c) l += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    lower_present[l] = c;
  }
  auto find_input = [&](const std::string& name, const SourceLoc& loc) -> Result<std::string> {
    if (present.count(name)) return name;
    std::string l;
    for (char ch : name) l += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    auto it = lower_present.find(l);
    if (it != lower_present.end()) return it->second;  // header case differs: accept it
    return Status::Invalid(loc.ToString() + ": input column '" + name + "' is not in the data" +
                           DidYouMeanHint(name, input_columns) +
                           "; its columns are: " + Join(input_columns, ", "));
  };

  // raw: every object's rows, in file order. Record numbers are not computed
  // here: a window over the scan would run the whole pass on one thread.
  // The build keeps every row in order (DuckDB preserves insertion order
  // through scans, projections and UNION ALL), so a row's record number is
  // its rowid less its object's first rowid, plus one (see firsts below).
  std::vector<std::string> reads;
  for (size_t i = 0; i < inputs.size(); ++i) {
    reads.push_back(fmt::format("SELECT *, {} AS \"__obj\", {} AS \"__ord\" FROM {}",
                                Lit(inputs[i].object_sha256), i, inputs[i].read_sql));
  }
  // normalise: trim, null tokens; skip patterns.
  std::vector<std::string> null_tokens = {Lit("")};
  for (const std::string& v : table.null_values) null_tokens.push_back(Lit(v));
  std::vector<std::string> norm_cols;
  std::vector<std::string> whole_row;
  std::vector<std::string> trim_cols;
  for (const std::string& c : input_columns) {
    trim_cols.push_back(Trimmed("CAST(" + Id(c) + " AS VARCHAR)") + " AS " + Id(c));
    norm_cols.push_back("CASE WHEN " + Id(c) + " IN (" + Join(null_tokens, ", ") +
                        ") THEN NULL ELSE " + Id(c) + " END AS " + Id(c));
    whole_row.push_back("coalesce(" + Id(c) + ", '')");
  }
  std::string skip = "false";
  if (!table.skip_patterns.empty()) {
    std::vector<std::string> tests;
    for (const std::string& p : table.skip_patterns) {
      tests.push_back("regexp_matches(concat_ws(',', " + Join(whole_row, ", ") + "), " + Lit(p) +
                      ")");
    }
    skip = Join(tests, " OR ");
  }

  // map, patch, harmonise, default — per field.
  std::set<std::string> used_inputs;
  std::vector<std::string> mapped, patched, converted, ranged, defaulted;
  std::vector<std::string> issue_structs;  // per-value issues, found in one pass
  std::vector<std::string> issue_conds;  // their conditions: the list is built only when one holds
  std::vector<std::string> bad;          // a value that failed its type or range
  std::set<std::string> field_names;
  std::map<std::string, std::string> field_types;
  for (const ColumnSpec& col : table.columns) field_types[col.field] = col.type;
  for (const ColumnSpec& col : table.columns) {
    const std::string& f = col.field;
    if (!field_names.insert(f).second) {
      return Status::Invalid(col.loc.ToString() + ": field '" + f +
                             "' is mapped twice; give one input column each field");
    }
    std::string m;
    if (col.options.contains("value")) {
      // A constant for every row of this source (the publishing organisation).
      m = Lit(JsonText(col.options["value"]));
    } else {
      ASSIGN_OR_RETURN(std::string input, find_input(col.input, col.loc));
      used_inputs.insert(input);
      m = Id(input);
    }
    if (col.options.contains("concat")) {
      ASSIGN_OR_RETURN(std::string input, find_input(col.input, col.loc));
      std::vector<std::string> parts = {Id(input)};
      for (const auto& extra : col.options["concat"]) {
        ASSIGN_OR_RETURN(std::string other, find_input(JsonText(extra), col.loc));
        used_inputs.insert(other);
        parts.push_back(Id(other));
      }
      m = "nullif(concat_ws(' ', " + Join(parts, ", ") + "), '')";
    }
    mapped.push_back(m + " AS " + Phase("m", f));
    std::string p = Phase("m", f);
    if (col.options.contains("patch") && col.options["patch"].is_object()) {
      for (const auto& [pattern, replacement] : col.options["patch"].items()) {
        p = "regexp_replace(" + p + ", " + Lit(pattern) + ", " + Lit(JsonText(replacement)) +
            ", 'g')";
      }
    }
    patched.push_back(p + " AS " + Phase("p", f));
    // A field's fields.yaml entry gives what the column does not say (category values).
    nlohmann::json options = col.options;
    auto field_spec = fields.find(f);
    if (!options.contains("values") && field_spec != fields.end() &&
        !field_spec->second.values.empty()) {
      options["values"] = field_spec->second.values;
    }
    ASSIGN_OR_RETURN(std::string c, Convert(col.type, Phase("p", f), options));
    std::string storage = StorageType(col.type);
    converted.push_back("CAST(" + c + " AS " + storage + ") AS " + Phase("c", f));
    std::string r = Phase("c", f);
    std::string range_text;
    if (col.options.contains("range") && col.options["range"].is_array() &&
        col.options["range"].size() == 2) {
      const nlohmann::json& lo = col.options["range"][0];
      const nlohmann::json& hi = col.options["range"][1];
      std::vector<std::string> conds;
      if (!lo.is_null())
        conds.push_back(Phase("c", f) + " >= CAST(" + Lit(JsonText(lo)) + " AS " + storage + ")");
      if (!hi.is_null())
        conds.push_back(Phase("c", f) + " <= CAST(" + Lit(JsonText(hi)) + " AS " + storage + ")");
      if (!conds.empty())
        r = "CASE WHEN " + Join(conds, " AND ") + " THEN " + Phase("c", f) + " END";
      range_text = "[" + (lo.is_null() ? "" : JsonText(lo)) + ", " +
                   (hi.is_null() ? "" : JsonText(hi)) + "]";
    }
    ranged.push_back(r + " AS " + Phase("t", f));
    std::string d = Phase("t", f);
    std::string default_text;
    // default: fills a missing value; with default_on_invalid: true, also one
    // that failed its type or range (otherwise that stays null, and logged).
    const bool default_invalid = col.options.value("default_on_invalid", false);
    const std::string missing = Phase("p", f) + " IS NULL";
    if (col.options.contains("default")) {
      const nlohmann::json& def = col.options["default"];
      std::string value;
      if (def.is_object() && def.contains("field")) {
        std::string other = JsonText(def["field"]);
        if (!field_types.count(other)) {
          return Status::Invalid(col.loc.ToString() + ": default: field '" + other +
                                 "' is not one of this table's fields");
        }
        value = "TRY_CAST(" + Phase("t", other) + " AS " + storage + ")";
        default_text = "field " + other;
      } else {
        value = "CAST(" + Lit(JsonText(def)) + " AS " + storage + ")";
        default_text = JsonText(def);
      }
      d = default_invalid
              ? "coalesce(" + Phase("t", f) + ", " + value + ")"
              : "CASE WHEN " + missing + " THEN " + value + " ELSE " + Phase("t", f) + " END";
    }
    defaulted.push_back(d + " AS " + Id(f));

    // The issue conditions over the phase columns of this field.
    bool patched_field = p != Phase("m", f);
    bool has_range = !range_text.empty();
    bool has_default = !default_text.empty();
    auto spec = fields.find(f);
    bool has_pattern = spec != fields.end() && !spec->second.pattern.empty();
    bool typed = !col.type.empty() && col.type != "text";
    std::string text = patched_field ? Phase("p", f) : Phase("m", f);
    std::string conv = has_range || has_default ? Phase("c", f) : Id(f);
    std::string after_range = has_default ? Phase("t", f) : Id(f);
    auto issue = [&](const std::string& when, const std::string& type, const std::string& value,
                     const std::string& message, const char* severity) {
      issue_conds.push_back("(" + when + ")");
      issue_structs.push_back(fmt::format(
          "CASE WHEN {} THEN {{'field': {}, 'issue_type': {}, 'value': CAST({} AS VARCHAR), "
          "'message': {}, 'severity': '{}'}} END",
          when, Lit(f), Lit(type), value, message, severity));
    };
    if (patched_field) {
      issue(Phase("m", f) + " IS DISTINCT FROM " + Phase("p", f), "patched", Phase("m", f),
            "'patched to ''' || coalesce(" + Phase("p", f) + ", 'null') || ''''", "info");
    }
    if (typed) bad.push_back("(" + text + " IS NOT NULL AND " + conv + " IS NULL)");
    if (has_range) bad.push_back("(" + conv + " IS NOT NULL AND " + after_range + " IS NULL)");
    if (typed) {
      issue(text + " IS NOT NULL AND " + conv + " IS NULL", "invalid_" + col.type, text,
            "'''' || " + text + " || ''' is not a valid " + Describe(col.type) + "; set to null'",
            "warn");
    }
    if (has_range) {
      issue(conv + " IS NOT NULL AND " + after_range + " IS NULL", "out_of_range", text,
            "'''' || " + text + " || ''' is outside the range " + range_text + "; set to null'",
            "warn");
    }
    if (has_default) {
      issue(Phase("t", f) + " IS NULL AND " + Id(f) + " IS NOT NULL", "defaulted", text,
            Lit(std::string(default_invalid ? "no usable value" : "missing") +
                "; set to the default (" + default_text + ")"),
            "info");
    }
    if (has_pattern) {
      issue(text + " IS NOT NULL AND NOT regexp_full_match(" + text + ", " +
                Lit(spec->second.pattern) + ")",
            "pattern_mismatch", text,
            "'''' || " + text + " || ''' does not match the pattern of field " + f +
                " in fields.yaml (kept)'",
            "warn");
    }
  }
  // Unlisted input columns keep their names, unless columns_only.
  std::vector<std::string> unlisted;
  if (!table.columns_only) {
    for (const std::string& c : input_columns) {
      if (used_inputs.count(c)) continue;
      if (field_names.count(c)) {
        return Status::Invalid(table.loc.ToString() + ": input column '" + c +
                               "' has the name of a field another column maps to; map it too, "
                               "or set columns_only: true");
      }
      unlisted.push_back(c);
    }
  }
  for (const ColumnSpec& col : table.columns) out.fields.push_back(col.field);
  for (const std::string& c : unlisted) out.fields.push_back(c);
  for (const std::string& c : input_columns) {
    if (!used_inputs.count(c)) out.unmapped.push_back(c);
  }

  std::vector<std::string> carry = {"\"__obj\"", "\"__ord\"", "\"__skip\""};
  std::vector<std::string> unlisted_ids;
  for (const std::string& c : unlisted) unlisted_ids.push_back(Id(c));
  auto with = [](std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  std::vector<std::string> field_ids;
  for (const std::string& f : out.fields) field_ids.push_back(Id(f));
  std::vector<std::string> key_ids;
  for (const std::string& k : table.key) {
    if (!std::count(out.fields.begin(), out.fields.end(), k)) {
      return Status::Invalid(table.loc.ToString() + ": key column '" + k +
                             "' is not one of the cleaned columns (" + Join(out.fields, ", ") +
                             ")");
    }
    key_ids.push_back(Id(k));
  }

  // One pass: every phase, with flags (skipped, filtered out, bad) and the
  // row's value issues as a list, straight into the build's table, every row
  // kept so that rowids stay record numbers. What the flags mark is then
  // logged and deleted, and the flag columns dropped.
  std::string bad_expr = bad.empty() ? "false" : "(" + Join(bad, " OR ") + ")";
  std::string issues_expr =
      issue_structs.empty()
          ? "CAST([] AS STRUCT(field VARCHAR, issue_type VARCHAR, value VARCHAR, message "
            "VARCHAR, severity VARCHAR)[])"
          : "CASE WHEN " + Join(issue_conds, " OR ") + " THEN list_filter([" +
                Join(issue_structs, ", ") + "], x -> x IS NOT NULL) ELSE [] END";
  std::string out_expr =
      table.filter.empty() ? "false" : "NOT coalesce((" + table.filter + "), false)";
  std::string sql = CreateTableSql(physical) + " AS\nWITH raw AS (" +
                    Join(reads, " UNION ALL BY NAME ") +
                    "),\ntrimmed AS (SELECT \"__obj\", \"__ord\", " + Join(trim_cols, ", ") +
                    " FROM raw),\nnorm AS (SELECT \"__obj\", \"__ord\", " + Join(norm_cols, ", ") +
                    " FROM trimmed),\n";
  sql += "mapped AS (SELECT " + Join(with(with(carry, mapped), unlisted_ids), ", ") +
         " FROM (SELECT *, (" + skip + ") AS \"__skip\" FROM norm)),\n";
  sql += "patched AS (SELECT *" + (patched.empty() ? "" : ", " + Join(patched, ", ")) +
         " FROM mapped),\n";
  sql += "converted AS (SELECT *" + (converted.empty() ? "" : ", " + Join(converted, ", ")) +
         " FROM patched),\n";
  sql += "ranged AS (SELECT *" + (ranged.empty() ? "" : ", " + Join(ranged, ", ")) +
         " FROM converted),\n";
  sql += "final AS (SELECT *" + (defaulted.empty() ? "" : ", " + Join(defaulted, ", ")) +
         " FROM ranged)\n";
  sql += "SELECT \"__obj\", \"__ord\", \"__skip\", " + out_expr + " AS \"__out\", " + bad_expr +
         " AS \"__bad\", " + issues_expr + " AS \"__issues\", " + Join(field_ids, ", ") +
         " FROM final";
  out.build = sql;

  // Each object's first rowid: a row's record number is rowid - first + 1.
  const std::string firsts =
      "\"__firsts\" AS (SELECT \"__obj\" AS \"__o\", min(rowid) AS \"__first\" FROM " + physical +
      " GROUP BY 1)";
  const std::string kept = "NOT \"__skip\" AND NOT \"__out\"";
  std::string aside =
      table.quarantine ? "(\"__skip\" OR \"__out\" OR \"__bad\")" : "(\"__skip\" OR \"__out\")";
  if (!key_ids.empty()) {
    // De-duplicate: the last row (last object, last record) of each key wins;
    // the others, with their winner's record, go into a temp table that the
    // issue log and the delete read.
    std::vector<std::string> key_text;
    for (const std::string& k : key_ids) {
      key_text.push_back("coalesce(CAST(" + k + " AS VARCHAR), 'null')");
    }
    out.dedup =
        "CREATE OR REPLACE TEMP TABLE \"__sluice_dups\" AS WITH " + firsts +
        ",\nranked AS (SELECT rowid AS \"__r\", \"__obj\", \"__ord\", concat_ws(',', " +
        Join(key_text, ", ") +
        ") AS \"__key\", row_number() OVER w AS \"__n\", first_value(\"__obj\") OVER w AS "
        "\"__wobj\", first_value(rowid) OVER w AS \"__wr\" FROM " +
        physical + " WHERE NOT " + aside + " WINDOW w AS (PARTITION BY " + Join(key_ids, ", ") +
        " ORDER BY \"__ord\" DESC, rowid DESC))\n"
        "SELECT \"__r\", \"__obj\", \"__ord\", \"__key\", \"__wr\" - \"__first\" + 1 AS "
        "\"__winner\" FROM ranked JOIN \"__firsts\" ON \"__o\" = \"__wobj\" WHERE \"__n\" > 1";
  }

  std::vector<std::string> issue_selects;
  issue_selects.push_back(
      "SELECT \"__obj\", \"__ord\", \"__r\", i.field, i.issue_type, i.value, i.message, "
      "i.severity FROM (SELECT \"__obj\", \"__ord\", rowid AS \"__r\", unnest(\"__issues\") AS "
      "i FROM " +
      physical + " WHERE " + kept + " AND len(\"__issues\") > 0)");
  if (!key_ids.empty()) {
    issue_selects.push_back(
        "SELECT \"__obj\", \"__ord\", \"__r\", " + Lit(Join(table.key, ",")) +
        ", 'duplicate', \"__key\", 'duplicate key; dropped for the later row (record ' || "
        "\"__winner\" || ')', 'warn' FROM temp.\"__sluice_dups\"");
  }
  if (!table.skip_patterns.empty()) {
    issue_selects.push_back(
        "SELECT \"__obj\", \"__ord\", rowid, NULL, 'skipped_row', NULL, 'row matches a "
        "skip_patterns entry; skipped', 'info' FROM " +
        physical + " WHERE \"__skip\"");
  }
  out.issues = fmt::format(
      "INSERT INTO _sluice.issues (asset, version_id, object_sha256, record, field, issue_type, "
      "value, message, severity)\n"
      "WITH {},\nfound(obj, ord, r, field, issue_type, value, message, severity) AS ({}),\n"
      "numbered AS (SELECT * EXCLUDE (r, \"__o\", \"__first\"), r - \"__first\" + 1 AS rec FROM "
      "found JOIN \"__firsts\" ON \"__o\" = obj),\n"
      "ranked AS (SELECT *, row_number() OVER (PARTITION BY obj, field, issue_type ORDER BY "
      "rec) AS n, count(*) OVER (PARTITION BY obj, field, issue_type) AS total FROM numbered)\n"
      "SELECT {}, {}, obj, rec, field, issue_type, value, message, severity FROM "
      "ranked WHERE n <= {}\n"
      "UNION ALL SELECT {}, {}, obj, NULL, field, issue_type, NULL, "
      "(total - {}) || ' more ' || issue_type || ' issues in this object not listed', severity "
      "FROM ranked WHERE n = {}",
      firsts, Join(issue_selects, "\nUNION ALL "), Lit(targets.asset), Lit(targets.version),
      issue_rows_per_kind, Lit(targets.asset), Lit(targets.version), issue_rows_per_kind,
      issue_rows_per_kind + 1);
  if (table.quarantine && !bad.empty()) {
    std::vector<std::string> qualified;
    for (const std::string& f : field_ids) qualified.push_back("t." + f);
    // Rows with a failed value go aside whole instead of keeping nulls.
    out.quarantine =
        "CREATE OR REPLACE TABLE " + targets.quarantine + " AS WITH " + firsts +
        "\nSELECT t.\"__obj\" AS object_sha256, t.rowid - \"__first\" + 1 AS record, " +
        Join(qualified, ", ") + " FROM " + physical +
        " t JOIN \"__firsts\" ON \"__o\" = t.\"__obj\" WHERE "
        "t.\"__bad\" AND NOT t.\"__skip\" AND NOT t.\"__out\" ORDER BY t.rowid";
  }
  out.finalize =
      "DELETE FROM " + physical + " WHERE \"__skip\" OR \"__out\"" +
      std::string(table.quarantine ? " OR \"__bad\"" : "") +
      (key_ids.empty() ? "" : " OR rowid IN (SELECT \"__r\" FROM temp.\"__sluice_dups\")");
  for (const char* c : {"__obj", "__ord", "__skip", "__out", "__bad", "__issues"}) {
    out.finalize += ";\nALTER TABLE " + physical + " DROP COLUMN " + Id(c);
  }
  if (!key_ids.empty()) out.finalize += ";\nDROP TABLE temp.\"__sluice_dups\"";
  return out;
}

}  // namespace sluice
