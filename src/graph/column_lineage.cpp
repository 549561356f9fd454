#include "graph/column_lineage.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "core/strings.h"

namespace sluice {
namespace {

using nlohmann::json;
using Sources = std::set<ColumnRef>;

std::string Field(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

const json& Child(const json& obj, const char* key) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

// One column a scope offers: its name, the base columns it carries, and why
// those are incomplete ("" when they are not).
struct Column {
  std::string name;
  Sources sources;
  std::string unknown;
};

// A query's output: its columns in order; `unknown` when even their list is
// not known (then `columns` holds what could be placed).
struct Output {
  std::vector<Column> columns;
  std::string unknown;
};

// A relation of a FROM clause, by the name the query calls it.
struct Relation {
  std::string alias;  // lower-case
  std::string table;  // the base table's lower-case name, when it is one
  std::vector<Column> columns;
  std::string unknown;           // why its columns are not known, or ""
  std::set<std::string> hidden;  // lower-case columns `*` skips (the right side of USING)
};

// What names resolve against: the FROM clause's relations, the select
// list's earlier aliases, lambda parameters, and the enclosing query's scope.
struct Scope {
  std::vector<Relation> relations;
  std::vector<Column> aliases;  // the select list so far (DuckDB lets later items use them)
  std::set<std::string> lambda_params;
  const Scope* outer = nullptr;
};

using Ctes = std::map<std::string, Output>;

void Merge(Column* into, const Column& from) {
  into->sources.insert(from.sources.begin(), from.sources.end());
  if (into->unknown.empty()) into->unknown = from.unknown;
}

class Resolver {
 public:
  explicit Resolver(const SchemaLookup& schema_of) : schema_of_(schema_of) {}

  Output Query(const json& node, const Ctes& outer_ctes, const Scope* outer) {
    Ctes ctes = outer_ctes;
    const json& map = Child(Child(node, "cte_map"), "map");
    if (map.is_array()) {
      for (const json& entry : map) {
        std::string name = ToLower(Field(entry, "key"));
        const json& value = Child(entry, "value");
        Output out = Query(Child(Child(value, "query"), "node"), ctes, outer);
        const json& aliases = Child(value, "aliases");
        if (aliases.is_array()) {
          for (size_t i = 0; i < aliases.size() && i < out.columns.size(); ++i) {
            if (aliases[i].is_string()) out.columns[i].name = aliases[i].get<std::string>();
          }
        }
        ctes[name] = std::move(out);
      }
    }
    const std::string type = Field(node, "type");
    if (type == "SELECT_NODE") return Select(node, ctes, outer);
    if (type == "SET_OPERATION_NODE") return SetOperation(node, ctes, outer);
    if (type == "RECURSIVE_CTE_NODE") {
      // The anchor names the columns; the recursive part feeds them too.
      Output left = Query(Child(node, "left"), ctes, outer);
      Ctes with_self = ctes;
      with_self[ToLower(Field(node, "cte_name"))] = left;
      Output right = Query(Child(node, "right"), with_self, outer);
      return Positional(std::move(left), right);
    }
    return {{}, "a query of a kind column lineage does not follow (" + type + ")"};
  }

 private:
  Output SetOperation(const json& node, const Ctes& ctes, const Scope* outer) {
    Output left = Query(Child(node, "left"), ctes, outer);
    Output right = Query(Child(node, "right"), ctes, outer);
    if (Field(node, "setop_type") == "UNION_BY_NAME") {
      if (!right.unknown.empty() && left.unknown.empty()) left.unknown = right.unknown;
      for (const Column& r : right.columns) {
        auto it = std::find_if(left.columns.begin(), left.columns.end(),
                               [&](const Column& l) { return ToLower(l.name) == ToLower(r.name); });
        if (it == left.columns.end()) {
          left.columns.push_back(r);
        } else {
          Merge(&*it, r);
        }
      }
      return left;
    }
    return Positional(std::move(left), right);
  }

  static Output Positional(Output left, const Output& right) {
    if (!right.unknown.empty() && left.unknown.empty()) left.unknown = right.unknown;
    if (left.unknown.empty() && right.columns.size() != left.columns.size()) {
      left.unknown = "the two sides of a set operation have different numbers of columns";
    }
    for (size_t i = 0; i < left.columns.size() && i < right.columns.size(); ++i) {
      Merge(&left.columns[i], right.columns[i]);
    }
    return left;
  }

  Output Select(const json& node, const Ctes& ctes, const Scope* outer) {
    Scope scope;
    scope.outer = outer;
    From(Child(node, "from_table"), ctes, &scope);
    Output out;
    const json& list = Child(node, "select_list");
    if (!list.is_array()) return {{}, "the query has no select list"};
    for (const json& item : list) {
      const json& columns_flag = Child(item, "columns");
      const bool columns_expr = columns_flag.is_boolean() && columns_flag.get<bool>();
      if (Field(item, "class") == "STAR" && (columns_expr || Child(item, "expr").is_null())) {
        Star(item, ctes, &scope, &out);
        continue;
      }
      Column c;
      c.name = Field(item, "alias");
      if (c.name.empty() && Field(item, "class") == "COLUMN_REF") {
        const json& parts = Child(item, "column_names");
        if (parts.is_array() && !parts.empty() && parts.back().is_string()) {
          c.name = parts.back().get<std::string>();
        }
      }
      Collect(item, ctes, scope, &c);
      scope.aliases.push_back(c);
      out.columns.push_back(std::move(c));
    }
    return out;
  }

  // SELECT [rel.]* [EXCLUDE (...)] [REPLACE (...)] [RENAME (...)], or COLUMNS(...).
  void Star(const json& item, const Ctes& ctes, Scope* scope, Output* out) {
    if (Child(item, "columns").is_boolean() && Child(item, "columns").get<bool>()) {
      if (out->unknown.empty()) out->unknown = "COLUMNS(...) picks columns only the engine knows";
      return;
    }
    const std::string rel = ToLower(Field(item, "relation_name"));
    std::set<std::string> exclude;
    for (const json& e : Child(item, "exclude_list")) {
      if (e.is_string()) exclude.insert(ToLower(e.get<std::string>()));
    }
    for (const json& e : Child(item, "qualified_exclude_list")) {
      if (!Field(e, "column").empty()) exclude.insert(ToLower(Field(e, "column")));
    }
    std::map<std::string, const json*> replace;
    for (const json& r : Child(item, "replace_list")) {
      if (Child(r, "key").is_string())
        replace[ToLower(Child(r, "key").get<std::string>())] = &Child(r, "value");
    }
    std::map<std::string, std::string> rename;
    for (const json& r : Child(item, "rename_list")) {
      std::string from = ToLower(Field(Child(r, "key"), "column"));
      if (!from.empty() && Child(r, "value").is_string())
        rename[from] = Child(r, "value").get<std::string>();
    }
    bool matched = rel.empty();
    for (const Relation& r : scope->relations) {
      if (!rel.empty() && r.alias != rel) continue;
      matched = true;
      if (!r.unknown.empty()) {
        if (out->unknown.empty()) {
          out->unknown = "SELECT " + (rel.empty() ? std::string("*") : rel + ".*") + " over " +
                         (r.alias.empty() ? std::string("a relation") : "'" + r.alias + "'") +
                         ", whose columns are not known: " + r.unknown;
        }
        continue;
      }
      for (const Column& col : r.columns) {
        const std::string key = ToLower(col.name);
        if (exclude.count(key) || (rel.empty() && r.hidden.count(key))) continue;
        Column c = col;
        if (auto it = replace.find(key); it != replace.end()) {
          c.sources.clear();
          c.unknown.clear();
          Collect(*it->second, ctes, *scope, &c);
        }
        if (auto it = rename.find(key); it != rename.end()) c.name = it->second;
        scope->aliases.push_back(c);
        out->columns.push_back(std::move(c));
      }
    }
    if (!matched && out->unknown.empty()) {
      out->unknown = "SELECT " + rel + ".* names no relation of the FROM clause";
    }
  }

  // The relations a FROM clause brings into scope.
  void From(const json& from, const Ctes& ctes, Scope* scope) {
    if (from.is_null()) return;
    const std::string type = Field(from, "type");
    const std::string alias = ToLower(Field(from, "alias"));
    if (type == "EMPTY") return;
    if (type == "JOIN") {
      From(Child(from, "left"), ctes, scope);
      const size_t left_end = scope->relations.size();
      From(Child(from, "right"), ctes, scope);
      std::vector<std::string> shared;
      for (const json& u : Child(from, "using_columns")) {
        if (u.is_string()) shared.push_back(ToLower(u.get<std::string>()));
      }
      if (Field(from, "ref_type") == "NATURAL") {
        // The columns both sides have (known only when both are).
        std::set<std::string> left_names;
        for (size_t i = 0; i < left_end; ++i) {
          for (const Column& c : scope->relations[i].columns) left_names.insert(ToLower(c.name));
        }
        for (size_t i = left_end; i < scope->relations.size(); ++i) {
          for (const Column& c : scope->relations[i].columns) {
            if (left_names.count(ToLower(c.name))) shared.push_back(ToLower(c.name));
          }
        }
      }
      // A USING column is one column: both sides feed it, `*` shows it once.
      for (const std::string& name : shared) {
        Column merged{name, {}, ""};
        for (const Relation& r : scope->relations) {
          for (const Column& c : r.columns) {
            if (ToLower(c.name) == name) Merge(&merged, c);
          }
        }
        for (size_t i = 0; i < scope->relations.size(); ++i) {
          Relation& r = scope->relations[i];
          if (i >= left_end) r.hidden.insert(name);
          for (Column& c : r.columns) {
            if (ToLower(c.name) == name) c.sources = merged.sources;
          }
        }
      }
      return;
    }
    Relation r;
    if (type == "BASE_TABLE") {
      const std::string table = ToLower(Field(from, "table_name"));
      const std::string schema = ToLower(Field(from, "schema_name"));
      r.alias = alias.empty() ? table : alias;
      auto cte = schema.empty() ? ctes.find(table) : ctes.end();
      if (cte != ctes.end()) {
        r.columns = cte->second.columns;
        r.unknown = cte->second.unknown;
      } else {
        const std::string name = schema.empty() || schema == "main" ? table : schema + "." + table;
        r.table = name;
        std::optional<std::vector<std::string>> columns = schema_of_(name);
        if (columns) {
          for (const std::string& c : *columns) r.columns.push_back({c, {{name, c}}, ""});
        } else {
          r.unknown = "the columns of '" + name + "' are not known (not published yet?)";
        }
      }
    } else if (type == "SUBQUERY") {
      // A LATERAL subquery may name the relations to its left.
      Output out = Query(Child(Child(from, "subquery"), "node"), ctes, scope);
      r.alias = alias;
      r.columns = std::move(out.columns);
      r.unknown = out.unknown;
    } else if (type == "EXPRESSION_LIST") {
      const json& values = Child(from, "values");
      r.alias = alias;
      if (values.is_array() && !values.empty() && values[0].is_array()) {
        for (size_t i = 0; i < values[0].size(); ++i) {
          Column c{"col" + std::to_string(i), {}, ""};
          for (const json& row : values) {
            if (row.is_array() && i < row.size()) Collect(row[i], ctes, *scope, &c);
          }
          r.columns.push_back(std::move(c));
        }
      }
    } else if (type == "TABLE_FUNCTION") {
      r.alias = alias;
      r.unknown =
          "it reads the table function " + Field(Child(from, "function"), "function_name") + "()";
    } else {
      r.alias = alias;
      r.unknown = "a FROM clause of a kind column lineage does not follow (" + type + ")";
    }
    const json& renames = Child(from, "column_name_alias");
    if (renames.is_array()) {
      for (size_t i = 0; i < renames.size() && i < r.columns.size(); ++i) {
        if (renames[i].is_string()) r.columns[i].name = renames[i].get<std::string>();
      }
      if (!r.unknown.empty() && !renames.empty()) {
        // The names are known even if where they come from is not.
        for (const json& n : renames) {
          if (n.is_string()) r.columns.push_back({n.get<std::string>(), {}, r.unknown});
        }
        r.unknown.clear();
      }
    }
    scope->relations.push_back(std::move(r));
  }

  // Adds to `into` the base columns an expression reads.
  void Collect(const json& expr, const Ctes& ctes, const Scope& scope, Column* into) {
    if (expr.is_array()) {
      for (const json& e : expr) Collect(e, ctes, scope, into);
      return;
    }
    if (!expr.is_object()) return;
    const std::string cls = Field(expr, "class");
    if (cls == "COLUMN_REF") {
      ColumnRefSources(expr, scope, into);
      return;
    }
    if (cls == "SUBQUERY") {
      Output out = Query(Child(Child(expr, "subquery"), "node"), ctes, &scope);
      for (const Column& c : out.columns) Merge(into, c);
      if (into->unknown.empty()) into->unknown = out.unknown;
      Collect(Child(expr, "child"), ctes, scope, into);  // x IN (SELECT ...)
      return;
    }
    if (cls == "STAR") {
      // COLUMNS(...) / * inside an expression: count(*) reads no column.
      if (Child(expr, "columns").is_boolean() && Child(expr, "columns").get<bool>() &&
          into->unknown.empty()) {
        into->unknown = "COLUMNS(...) picks columns only the engine knows";
      }
      return;
    }
    if (cls == "LAMBDA") {
      Scope inner = scope;
      inner.outer = &scope;
      std::vector<const json*> stack = {&Child(expr, "lhs")};
      while (!stack.empty()) {
        const json* p = stack.back();
        stack.pop_back();
        if (Field(*p, "class") == "COLUMN_REF") {
          const json& parts = Child(*p, "column_names");
          if (parts.is_array() && !parts.empty() && parts.back().is_string()) {
            inner.lambda_params.insert(ToLower(parts.back().get<std::string>()));
          }
        }
        for (const json& c : Child(*p, "children")) stack.push_back(&c);
      }
      inner.relations = scope.relations;
      inner.aliases = scope.aliases;
      Collect(Child(expr, "expr"), ctes, inner, into);
      return;
    }
    for (const auto& [key, value] : expr.items()) {
      if (value.is_object() || value.is_array()) Collect(value, ctes, scope, into);
    }
  }

  void ColumnRefSources(const json& ref, const Scope& scope, Column* into) {
    std::vector<std::string> parts;
    for (const json& p : Child(ref, "column_names")) {
      if (p.is_string()) parts.push_back(p.get<std::string>());
    }
    if (parts.empty()) return;
    for (const Scope* s = &scope; s != nullptr; s = s->outer) {
      if (parts.size() == 1 && s->lambda_params.count(ToLower(parts[0]))) return;
      if (Resolve(parts, *s, into)) return;
    }
    if (into->unknown.empty()) {
      into->unknown = "'" + Join(parts, ".") + "' names no column the query can see";
    }
  }

  // Whether `parts` names something in `scope` (then its sources are added).
  bool Resolve(const std::vector<std::string>& parts, const Scope& scope, Column* into) {
    // rel.col[.field...], schema.rel.col[.field...], then col[.field...].
    for (size_t at : {size_t{0}, size_t{1}}) {
      if (parts.size() < at + 2) break;
      const std::string rel = ToLower(parts[at]);
      for (const Relation& r : scope.relations) {
        if (r.alias != rel && r.table != rel) continue;
        const std::string& column = parts[at + 1];
        if (FindIn(r, ToLower(column), into)) return true;
        if (!r.unknown.empty()) {
          // The relation is named and its columns are not known: the column
          // is its, by name (not a guess); where it comes from is unknown.
          if (!r.table.empty()) into->sources.insert({r.table, column});
          if (into->unknown.empty()) into->unknown = r.unknown;
          return true;
        }
      }
    }
    const std::string name = ToLower(parts[0]);
    std::vector<const Relation*> having;
    for (const Relation& r : scope.relations) {
      for (const Column& c : r.columns) {
        if (ToLower(c.name) == name) {
          having.push_back(&r);
          break;
        }
      }
    }
    if (!having.empty()) {
      // Several relations with it: a USING column (merged), else DuckDB
      // refuses the ambiguity; either way each one feeds it.
      for (const Relation* r : having) FindIn(*r, name, into);
      return true;
    }
    // An earlier select-list alias.
    for (auto it = scope.aliases.rbegin(); it != scope.aliases.rend(); ++it) {
      if (ToLower(it->name) == name) {
        Merge(into, *it);
        return true;
      }
    }
    std::vector<const Relation*> unknown;
    for (const Relation& r : scope.relations) {
      if (!r.unknown.empty()) unknown.push_back(&r);
    }
    if (unknown.size() == 1 && scope.relations.size() == 1) {
      // The only relation: the column is its.
      if (!unknown[0]->table.empty()) into->sources.insert({unknown[0]->table, parts[0]});
      if (into->unknown.empty()) into->unknown = unknown[0]->unknown;
      return true;
    }
    if (!unknown.empty()) {
      if (into->unknown.empty()) {
        into->unknown = "'" + parts[0] + "' may come from " +
                        (unknown[0]->alias.empty() ? std::string("a relation")
                                                   : "'" + unknown[0]->alias + "'") +
                        ", " + unknown[0]->unknown;
      }
      return true;
    }
    return false;
  }

  static bool FindIn(const Relation& r, const std::string& name, Column* into) {
    for (const Column& c : r.columns) {
      if (ToLower(c.name) == name) {
        Merge(into, c);
        return true;
      }
    }
    return false;
  }

  const SchemaLookup& schema_of_;
};

}  // namespace

Result<QueryColumnLineage> ColumnLineageFromJson(std::string_view tree_json,
                                                 const SchemaLookup& schema_of,
                                                 const std::vector<std::string>& output_names) {
  json tree = json::parse(tree_json, nullptr, /*allow_exceptions=*/false);
  if (!tree.is_object()) return Status::Invalid("not a parse tree (invalid JSON)");
  if (tree.value("error", false)) {
    return Status::Invalid("the SQL does not parse: " + tree.value("error_message", std::string()));
  }
  const json& statements = Child(tree, "statements");
  if (!statements.is_array() || statements.size() != 1) {
    return Status::Invalid("column lineage needs exactly one SELECT statement");
  }
  Resolver resolver(schema_of);
  Output out = resolver.Query(Child(statements[0], "node"), {}, nullptr);
  QueryColumnLineage result;
  result.unknown = out.unknown;
  const bool named = out.unknown.empty() && output_names.size() == out.columns.size();
  for (size_t i = 0; i < out.columns.size(); ++i) {
    Column& c = out.columns[i];
    ColumnLineage l;
    l.column = named ? output_names[i] : c.name.empty() ? "column" + std::to_string(i) : c.name;
    l.sources.assign(c.sources.begin(), c.sources.end());
    l.unknown = c.unknown;
    result.columns.push_back(std::move(l));
  }
  return result;
}

json ColumnLineageJson(const QueryColumnLineage& lineage) {
  json columns = json::array();
  for (const ColumnLineage& c : lineage.columns) {
    json sources = json::array();
    for (const ColumnRef& s : c.sources)
      sources.push_back({{"asset", s.relation}, {"column", s.column}});
    json entry = {{"column", c.column}, {"sources", sources}};
    if (!c.unknown.empty()) entry["unknown"] = c.unknown;
    columns.push_back(std::move(entry));
  }
  return columns;
}

}  // namespace sluice
