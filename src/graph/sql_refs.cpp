#include "graph/sql_refs.h"

#include <duckdb.h>

#include <nlohmann/json.hpp>

#include <array>
#include <set>
#include <utility>

#include "core/strings.h"

namespace sluice {
namespace {

using nlohmann::json;

// Functions whose result changes from one call to the next. DuckDB parses
// current_date, current_timestamp, localtime... without parentheses as column
// references (bound to the function later), so both forms are checked.
constexpr std::array<std::string_view, 23> kNondeterministic = {"now",
                                                                "current_timestamp",
                                                                "current_date",
                                                                "current_time",
                                                                "localtime",
                                                                "localtimestamp",
                                                                "get_current_time",
                                                                "get_current_timestamp",
                                                                "today",
                                                                "transaction_timestamp",
                                                                "current_localtime",
                                                                "current_localtimestamp",
                                                                "random",
                                                                "uuid",
                                                                "uuidv4",
                                                                "uuidv7",
                                                                "gen_random_uuid",
                                                                "setseed",
                                                                "nextval",
                                                                "currval",
                                                                "txid_current",
                                                                "current_transaction_id",
                                                                "statement_timestamp"};

// Table functions that read the files named by their first argument.
constexpr std::array<std::string_view, 11> kFileReaders = {
    "parquet_scan",        "parquet_metadata", "parquet_schema", "parquet_file_metadata",
    "parquet_kv_metadata", "sniff_csv",        "glob",           "delta_scan",
    "iceberg_scan",        "st_read",          "read_xlsx"};

// Column references DuckDB turns into calls when no column has the name.
constexpr std::array<std::string_view, 5> kKeywordFunctions = {
    "current_timestamp", "current_date", "current_time", "localtime", "localtimestamp"};

template <size_t N>
bool Contains(const std::array<std::string_view, N>& set, std::string_view name) {
  for (std::string_view s : set) {
    if (s == name) return true;
  }
  return false;
}

bool IsFileReader(const std::string& name) {
  return StartsWith(name, "read_") || Contains(kFileReaders, name);
}

// A bare name DuckDB's replacement scan would read as a file: FROM "x.csv".
bool LooksLikePath(std::string_view name) {
  if (name.find('/') != std::string_view::npos) return true;
  if (name.find('*') != std::string_view::npos) return true;
  static constexpr std::array<std::string_view, 10> kExtensions = {
      ".csv", ".tsv", ".parquet", ".json", ".ndjson", ".jsonl", ".gz", ".zst", ".txt", ".xlsx"};
  std::string lower = ToLower(name);
  for (std::string_view ext : kExtensions) {
    if (EndsWith(lower, ext)) return true;
  }
  return false;
}

// CTE names visible at a point of the tree; a chain towards the outer query.
struct Scope {
  std::vector<std::string> names;
  const Scope* parent = nullptr;

  bool Has(const std::string& name) const {
    for (const Scope* s = this; s != nullptr; s = s->parent) {
      for (const std::string& n : s->names) {
        if (n == name) return true;
      }
    }
    return false;
  }
};

std::string StringField(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

class RefWalker {
 public:
  explicit RefWalker(std::string_view sql) : sql_(sql) {}

  void Walk(const json& node, const Scope* scope) {
    if (node.is_array()) {
      for (const json& child : node) Walk(child, scope);
      return;
    }
    if (!node.is_object()) return;

    // A query node's WITH clause: CTE i sees CTEs 0..i-1 (and itself only when
    // recursive, see RECURSIVE_CTE_NODE); the node's body sees them all.
    Scope cte_scope{{}, scope};
    auto cte_map = node.find("cte_map");
    if (cte_map != node.end() && cte_map->is_object()) {
      auto entries = cte_map->find("map");
      if (entries != cte_map->end() && entries->is_array() && !entries->empty()) {
        for (const json& entry : *entries) {
          if (!entry.is_object()) continue;
          auto value = entry.find("value");
          if (value != entry.end()) Walk(*value, &cte_scope);
          cte_scope.names.push_back(ToLower(StringField(entry, "key")));
        }
        scope = &cte_scope;
      }
    }

    const std::string type = StringField(node, "type");
    const std::string cls = StringField(node, "class");
    Scope recursive_scope{{}, scope};
    if (type == "RECURSIVE_CTE_NODE") {
      recursive_scope.names.push_back(ToLower(StringField(node, "cte_name")));
      scope = &recursive_scope;
    } else if (type == "BASE_TABLE" && cls.empty()) {
      AddTable(node, scope);
      return;
    } else if (type == "TABLE_FUNCTION" && cls.empty()) {
      auto function = node.find("function");
      if (function != node.end() && function->is_object()) AddFileArgs(*function);
    } else if (cls == "CONSTANT") {
      return;
    } else if (cls == "FUNCTION" || cls == "WINDOW") {
      AddFunction(node);
    } else if (cls == "COLUMN_REF") {
      auto names = node.find("column_names");
      if (names != node.end() && names->is_array() && names->size() == 1 &&
          (*names)[0].is_string()) {
        std::string name = ToLower((*names)[0].get<std::string>());
        if (Contains(kKeywordFunctions, name)) {
          functions_.insert(name);
          nondeterministic_ = true;
        }
      }
      return;
    }

    for (auto it = node.begin(); it != node.end(); ++it) {
      if (it.key() == "cte_map") continue;
      if (it->is_structured()) Walk(*it, scope);
    }
  }

  SqlRefs Finish() && {
    SqlRefs refs;
    refs.tables.assign(tables_.begin(), tables_.end());
    refs.files.assign(files_.begin(), files_.end());
    refs.functions.assign(functions_.begin(), functions_.end());
    refs.nondeterministic = nondeterministic_;
    return refs;
  }

 private:
  void AddTable(const json& node, const Scope* scope) {
    std::string table = StringField(node, "table_name");
    std::string schema = StringField(node, "schema_name");
    std::string catalog = StringField(node, "catalog_name");
    if (table.empty()) return;
    if (schema.empty() && catalog.empty()) {
      if (QuotedAt(node) == '\'' || LooksLikePath(table)) {
        files_.insert(table);
        return;
      }
      if (scope != nullptr && scope->Has(ToLower(table)))
        return;  // a CTE in scope, not a dependency
    }
    std::string name;
    if (!catalog.empty()) name += catalog + ".";
    if (!schema.empty()) name += schema + ".";
    tables_.insert(ToLower(name + table));
  }

  // The character where the node starts in the SQL text ('\0' when unknown).
  char QuotedAt(const json& node) const {
    auto loc = node.find("query_location");
    if (loc == node.end() || !loc->is_number_unsigned()) return '\0';
    uint64_t offset = loc->get<uint64_t>();
    return offset < sql_.size() ? sql_[offset] : '\0';
  }

  void AddFunction(const json& node) {
    auto op = node.find("is_operator");
    if (op != node.end() && op->is_boolean() && op->get<bool>()) return;
    std::string name = ToLower(StringField(node, "function_name"));
    if (name.empty()) return;
    functions_.insert(name);
    if (Contains(kNondeterministic, name)) nondeterministic_ = true;
  }

  // read_csv('a.csv'), read_parquet(['a', 'b']): literal paths become files.
  void AddFileArgs(const json& function) {
    if (!IsFileReader(ToLower(StringField(function, "function_name")))) return;
    auto children = function.find("children");
    if (children == function.end() || !children->is_array() || children->empty()) return;
    const json& first = (*children)[0];
    if (StringField(first, "class") == "CONSTANT") {
      AddLiteralFile(first);
    } else if (StringField(first, "class") == "FUNCTION" &&
               ToLower(StringField(first, "function_name")) == "list_value") {
      auto items = first.find("children");
      if (items == first.end() || !items->is_array()) return;
      for (const json& item : *items) {
        if (StringField(item, "class") == "CONSTANT") AddLiteralFile(item);
      }
    }
  }

  void AddLiteralFile(const json& constant) {
    auto value = constant.find("value");
    if (value == constant.end() || !value->is_object()) return;
    auto text = value->find("value");
    if (text != value->end() && text->is_string()) files_.insert(text->get<std::string>());
  }

  std::string_view sql_;
  std::set<std::string> tables_;
  std::set<std::string> files_;
  std::set<std::string> functions_;
  bool nondeterministic_ = false;
};

// Owns the statements of duckdb_extract_statements.
class ExtractedStatements {
 public:
  ExtractedStatements() = default;
  ~ExtractedStatements() {
    if (extracted_) duckdb_destroy_extracted(&extracted_);
  }
  ExtractedStatements(const ExtractedStatements&) = delete;
  ExtractedStatements& operator=(const ExtractedStatements&) = delete;

  duckdb_extracted_statements* out() { return &extracted_; }
  std::string Error() const {
    const char* err = extracted_ ? duckdb_extract_statements_error(extracted_) : nullptr;
    return err ? err : "";
  }

 private:
  duckdb_extracted_statements extracted_ = nullptr;
};

bool HasTemplateSyntax(std::string_view sql) {
  return sql.find("{{") != std::string_view::npos || sql.find("{%") != std::string_view::npos;
}

}  // namespace

Result<SqlRefs> RefsFromJson(std::string_view sql, std::string_view text) {
  json tree = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (tree.is_discarded() || !tree.is_object()) {
    return Status::Internal("json_serialize_sql returned invalid JSON");
  }
  auto error = tree.find("error");
  if (error != tree.end() && error->is_boolean() && error->get<bool>()) {
    return Status::Invalid(StringField(tree, "error_message"));
  }
  auto statements = tree.find("statements");
  if (statements == tree.end() || !statements->is_array()) {
    return Status::Internal("json_serialize_sql output has no statements");
  }
  if (statements->size() != 1) {
    return Status::Invalid("a model must be a single SELECT statement, found " +
                           std::to_string(statements->size()) + " statements");
  }
  RefWalker walker(sql);
  walker.Walk((*statements)[0], nullptr);
  return std::move(walker).Finish();
}

Result<SqlParser> SqlParser::Create() { return SqlParser(); }

// DuckDB is opened on the first parse: a warm parse cache never needs it.
Status SqlParser::EnsureOpen() {
  if (serialize_.valid()) return Status::Ok();
  DuckDbOptions options;
  options.memory_limit = "256MB";
  options.threads = 1;
  ASSIGN_OR_RETURN(db_, DuckDbDatabase::Open(":memory:", options));
  ASSIGN_OR_RETURN(conn_, db_.Connect());
  ASSIGN_OR_RETURN(serialize_, conn_.Prepare("SELECT json_serialize_sql(?::VARCHAR)"));
  return Status::Ok();
}

Result<std::string> SqlParser::SerializeToJson(const std::string& sql) {
  RETURN_IF_ERROR(EnsureOpen());
  RETURN_IF_ERROR(serialize_.Bind(1, sql));
  ASSIGN_OR_RETURN(QueryResult result, serialize_.Execute());
  std::optional<std::string> text = result.Scalar();
  if (!text) return Status::Internal("json_serialize_sql returned no value");
  return std::move(*text);
}

Result<SqlRefs> SqlParser::Parse(const std::string& sql) {
  ASSIGN_OR_RETURN(std::string text, SerializeToJson(sql));
  Result<SqlRefs> refs = RefsFromJson(sql, text);
  if (refs.ok() || refs.status().code() != StatusCode::kInvalidArgument) return refs;

  json tree = json::parse(text, nullptr, /*allow_exceptions=*/false);
  std::string error_type = tree.is_object() ? StringField(tree, "error_type") : "";
  if (error_type == "parser") return ParseErrorDetail(sql, refs.status().message());
  if (error_type == "not implemented") {
    return Status::Invalid(
        "a model must be a single SELECT statement (DuckDB: " + refs.status().message() + ")");
  }
  return refs;
}

// json_serialize_sql reports a parse error by offset only; DuckDB's parser
// proper gives the message users know, with "LINE n:" and a caret.
Status SqlParser::ParseErrorDetail(const std::string& sql, const std::string& fallback) {
  ExtractedStatements extracted;
  idx_t count = duckdb_extract_statements(conn_.handle(), sql.c_str(), extracted.out());
  std::string message = count == 0 ? extracted.Error() : "";
  if (message.empty()) message = "Parser Error: " + fallback;
  if (HasTemplateSyntax(sql)) message += "\n(template syntax must be rendered before parsing)";
  return Status::Invalid(message);
}

}  // namespace sluice
