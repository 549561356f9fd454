#include "warehouse/render.h"

#include <vector>

#include "core/strings.h"

namespace sluice {
namespace {

// A logical type handle owned for the scope (children of nested types).
class OwnedType {
 public:
  explicit OwnedType(duckdb_logical_type t) : t_(t) {}
  ~OwnedType() {
    if (t_) duckdb_destroy_logical_type(&t_);
  }
  OwnedType(const OwnedType&) = delete;
  OwnedType& operator=(const OwnedType&) = delete;
  duckdb_logical_type get() const { return t_; }

 private:
  duckdb_logical_type t_;
};

std::string TakeString(char* s) {
  std::string out = s ? s : "";
  if (s) duckdb_free(s);
  return out;
}

// Names in STRUCT(...) and UNION(...) are quoted when DuckDB would need it.
std::string MemberName(const std::string& name) {
  bool plain = !name.empty();
  for (char c : name) {
    plain = plain && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
  }
  return plain ? name : QuoteIdent(name);
}

const char* ScalarTypeName(duckdb_type id) {
  switch (id) {
    case DUCKDB_TYPE_BOOLEAN:
      return "BOOLEAN";
    case DUCKDB_TYPE_TINYINT:
      return "TINYINT";
    case DUCKDB_TYPE_SMALLINT:
      return "SMALLINT";
    case DUCKDB_TYPE_INTEGER:
      return "INTEGER";
    case DUCKDB_TYPE_BIGINT:
      return "BIGINT";
    case DUCKDB_TYPE_UTINYINT:
      return "UTINYINT";
    case DUCKDB_TYPE_USMALLINT:
      return "USMALLINT";
    case DUCKDB_TYPE_UINTEGER:
      return "UINTEGER";
    case DUCKDB_TYPE_UBIGINT:
      return "UBIGINT";
    case DUCKDB_TYPE_HUGEINT:
      return "HUGEINT";
    case DUCKDB_TYPE_UHUGEINT:
      return "UHUGEINT";
    case DUCKDB_TYPE_FLOAT:
      return "FLOAT";
    case DUCKDB_TYPE_DOUBLE:
      return "DOUBLE";
    case DUCKDB_TYPE_TIMESTAMP:
      return "TIMESTAMP";
    case DUCKDB_TYPE_TIMESTAMP_S:
      return "TIMESTAMP_S";
    case DUCKDB_TYPE_TIMESTAMP_MS:
      return "TIMESTAMP_MS";
    case DUCKDB_TYPE_TIMESTAMP_NS:
      return "TIMESTAMP_NS";
    case DUCKDB_TYPE_TIMESTAMP_TZ:
      return "TIMESTAMP WITH TIME ZONE";
    case DUCKDB_TYPE_DATE:
      return "DATE";
    case DUCKDB_TYPE_TIME:
      return "TIME";
    case DUCKDB_TYPE_TIME_TZ:
      return "TIME WITH TIME ZONE";
    case DUCKDB_TYPE_INTERVAL:
      return "INTERVAL";
    case DUCKDB_TYPE_VARCHAR:
      return "VARCHAR";
    case DUCKDB_TYPE_BLOB:
      return "BLOB";
    case DUCKDB_TYPE_UUID:
      return "UUID";
    case DUCKDB_TYPE_BIT:
      return "BIT";
    case DUCKDB_TYPE_BIGNUM:
      return "BIGNUM";
    case DUCKDB_TYPE_TIME_NS:
      return "TIME_NS";
    case DUCKDB_TYPE_SQLNULL:
      return "\"NULL\"";
    case DUCKDB_TYPE_ENUM:
      return "ENUM";
    default:
      return nullptr;
  }
}

bool IsNested(duckdb_type id) {
  return id == DUCKDB_TYPE_LIST || id == DUCKDB_TYPE_STRUCT || id == DUCKDB_TYPE_MAP ||
         id == DUCKDB_TYPE_ARRAY || id == DUCKDB_TYPE_UNION;
}

// Exact numbers that JSON readers hold without loss (64 bits or fewer);
// wider ones (HUGEINT, BIGNUM, DECIMAL(19..38)) are written as strings.
bool IsJsonNumber(duckdb_logical_type type) {
  duckdb_type id = duckdb_get_type_id(type);
  if (id == DUCKDB_TYPE_DECIMAL) return duckdb_decimal_width(type) <= 18;
  switch (id) {
    case DUCKDB_TYPE_TINYINT:
    case DUCKDB_TYPE_SMALLINT:
    case DUCKDB_TYPE_INTEGER:
    case DUCKDB_TYPE_BIGINT:
    case DUCKDB_TYPE_UTINYINT:
    case DUCKDB_TYPE_USMALLINT:
    case DUCKDB_TYPE_UINTEGER:
    case DUCKDB_TYPE_UBIGINT:
      return true;
    default:
      return false;
  }
}

}  // namespace

nlohmann::json RenderedJsonValue(const std::optional<std::string_view>& value, JsonKind kind) {
  if (!value) return nullptr;
  if (kind == JsonKind::kLiteral) {
    nlohmann::json v = nlohmann::json::parse(*value, nullptr, /*allow_exceptions=*/false);
    if (!v.is_discarded()) return v;
  }
  return std::string(*value);
}

std::string LogicalTypeName(duckdb_logical_type type) {
  duckdb_type id = duckdb_get_type_id(type);
  std::string alias = TakeString(duckdb_logical_type_get_alias(type));
  if (!alias.empty()) return alias;
  switch (id) {
    case DUCKDB_TYPE_DECIMAL:
      return "DECIMAL(" + std::to_string(duckdb_decimal_width(type)) + "," +
             std::to_string(duckdb_decimal_scale(type)) + ")";
    case DUCKDB_TYPE_LIST: {
      OwnedType child(duckdb_list_type_child_type(type));
      return LogicalTypeName(child.get()) + "[]";
    }
    case DUCKDB_TYPE_ARRAY: {
      OwnedType child(duckdb_array_type_child_type(type));
      return LogicalTypeName(child.get()) + "[" +
             std::to_string(duckdb_array_type_array_size(type)) + "]";
    }
    case DUCKDB_TYPE_MAP: {
      OwnedType key(duckdb_map_type_key_type(type));
      OwnedType value(duckdb_map_type_value_type(type));
      return "MAP(" + LogicalTypeName(key.get()) + ", " + LogicalTypeName(value.get()) + ")";
    }
    case DUCKDB_TYPE_STRUCT:
    case DUCKDB_TYPE_UNION: {
      bool is_struct = id == DUCKDB_TYPE_STRUCT;
      idx_t n =
          is_struct ? duckdb_struct_type_child_count(type) : duckdb_union_type_member_count(type);
      std::vector<std::string> members;
      for (idx_t i = 0; i < n; ++i) {
        std::string name = TakeString(is_struct ? duckdb_struct_type_child_name(type, i)
                                                : duckdb_union_type_member_name(type, i));
        OwnedType child(is_struct ? duckdb_struct_type_child_type(type, i)
                                  : duckdb_union_type_member_type(type, i));
        members.push_back(MemberName(name) + " " + LogicalTypeName(child.get()));
      }
      return std::string(is_struct ? "STRUCT(" : "UNION(") + Join(members, ", ") + ")";
    }
    default: {
      const char* name = ScalarTypeName(id);
      return name ? name : "UNKNOWN";
    }
  }
}

RenderedColumn RenderColumn(size_t position, const std::string& name, duckdb_logical_type type,
                            RenderFormat format) {
  RenderedColumn col;
  col.name = name;
  col.type = LogicalTypeName(type);
  const std::string ref = "#" + std::to_string(position);
  const std::string as_text = "CAST(" + ref + " AS VARCHAR)";
  duckdb_type id = duckdb_get_type_id(type);
  if (format == RenderFormat::kText) {
    col.sql = id == DUCKDB_TYPE_VARCHAR ? ref : as_text;
    return col;
  }
  if (id == DUCKDB_TYPE_VARCHAR) {
    col.sql = ref;
  } else if (id == DUCKDB_TYPE_BOOLEAN || IsJsonNumber(type)) {
    col.json = JsonKind::kLiteral;
    col.sql = as_text;
  } else if (id == DUCKDB_TYPE_FLOAT || id == DUCKDB_TYPE_DOUBLE) {
    // nan and inf are not JSON numbers: they are written as the strings "nan", "inf".
    col.json = JsonKind::kLiteral;
    col.sql = "CASE WHEN isfinite(" + ref + ") THEN " + as_text + " ELSE to_json(" + as_text +
              ")::VARCHAR END";
  } else if (IsNested(id)) {
    col.json = JsonKind::kLiteral;
    col.sql = "to_json(" + ref + ")::VARCHAR";
  } else {
    col.sql = as_text;
  }
  return col;
}

}  // namespace sluice
