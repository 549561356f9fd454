#include "engine/dataset.h"

#include "warehouse/encode.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <tuple>

#include "core/redact.h"
#include "core/strings.h"

namespace sluice {
namespace {

using nlohmann::json;

struct OpName {
  FilterOp op;
  const char* name;
};

constexpr OpName kOps[] = {
    {FilterOp::kEq, "eq"},   {FilterOp::kNe, "ne"},     {FilterOp::kGt, "gt"},
    {FilterOp::kGte, "gte"}, {FilterOp::kLt, "lt"},     {FilterOp::kLte, "lte"},
    {FilterOp::kIn, "in"},   {FilterOp::kLike, "like"}, {FilterOp::kIsNull, "isnull"},
};

const char* OpNameOf(FilterOp op) {
  for (const OpName& o : kOps) {
    if (o.op == op) return o.name;
  }
  return "eq";
}

std::optional<FilterOp> ParseOp(const std::string& name) {
  for (const OpName& o : kOps) {
    if (name == o.name) return o.op;
  }
  return std::nullopt;
}

const std::vector<std::string> kControls = {"_select", "_sort",  "_limit",
                                            "_offset", "_after", "_format"};

// The catalog's spelling of a column (names are case-insensitive, as in SQL).
class ColumnNames {
 public:
  explicit ColumnNames(const std::vector<DataColumn>& columns) {
    for (const DataColumn& c : columns) {
      names_.push_back(c.name);
      by_lower_.emplace(ToLower(c.name), c.name);
    }
  }
  Result<std::string> Find(const std::string& name, const std::string& param) const {
    auto it = by_lower_.find(ToLower(name));
    if (it != by_lower_.end()) return it->second;
    std::string hint = DidYouMeanHint(name, names_);
    return Status::Invalid(param + ": the table has no column '" + name + "'" +
                           (hint.empty() ? "; its columns: " + Join(names_, ", ") : hint));
  }

 private:
  std::vector<std::string> names_;
  std::map<std::string, std::string> by_lower_;
};

Result<int64_t> ParseCount(const std::string& param, const std::string& text, int64_t min,
                           int64_t max) {
  bool digits = !text.empty() && text.size() <= 18 &&
                std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  int64_t n = digits ? std::stoll(text) : -1;
  if (!digits || n < min || n > max) {
    return Status::Invalid(param + ": expected a whole number from " + std::to_string(min) +
                           " to " + std::to_string(max) + ", got '" + text + "'");
  }
  return n;
}

}  // namespace

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out = Base64Encode(bytes);
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

const char* DataFormatName(DataFormat format) {
  switch (format) {
    case DataFormat::kCsv:
      return "csv";
    case DataFormat::kGeoJson:
      return "geojson";
    case DataFormat::kParquet:
      return "parquet";
    default:
      return "json";
  }
}

const char* DataContentType(DataFormat format) {
  switch (format) {
    case DataFormat::kCsv:
      return "text/csv; charset=utf-8";
    case DataFormat::kGeoJson:
      return "application/geo+json";
    case DataFormat::kParquet:
      return "application/vnd.apache.parquet";
    default:
      return "application/json";
  }
}

std::string EncodeCursor(const std::vector<std::optional<std::string>>& values) {
  json array = json::array();
  for (const auto& v : values) array.push_back(v ? json(*v) : json(nullptr));
  return Base64UrlEncode(array.dump(-1, ' ', false, json::error_handler_t::replace));
}

Result<std::vector<std::optional<std::string>>> DecodeCursor(const std::string& cursor,
                                                             size_t expected) {
  const Status bad = Status::Invalid(
      "_after: not a cursor of this query (pass the `next` value of the page before, with the "
      "same _sort)");
  std::optional<std::string> text = Base64UrlDecode(cursor);
  if (!text) return bad;
  json array = json::parse(*text, nullptr, false);
  if (!array.is_array() || array.size() != expected) return bad;
  std::vector<std::optional<std::string>> out;
  for (const json& v : array) {
    if (v.is_null()) {
      out.emplace_back(std::nullopt);
    } else if (v.is_string()) {
      out.emplace_back(v.get<std::string>());
    } else {
      return bad;
    }
  }
  return out;
}

std::optional<std::pair<std::string, std::string>> CoordinateColumns(
    const std::vector<DataColumn>& columns) {
  std::vector<std::string> names;
  for (const DataColumn& c : columns) names.push_back(c.name);
  return CoordinateColumnsOf(names);
}

Result<DataQuery> ParseDataQuery(const std::string& table,
                                 const std::map<std::string, std::string>& params,
                                 const std::vector<DataColumn>& columns,
                                 const std::vector<std::string>& key, const DataLimits& limits) {
  DataQuery q;
  q.table = table;
  q.limit = limits.default_limit;
  ColumnNames names(columns);
  std::optional<std::string> after;
  for (const auto& [param, value] : params) {
    const bool control = std::find(kControls.begin(), kControls.end(), param) != kControls.end();
    // Asked only of an unknown _name (a failed Find builds a did-you-mean
    // hint: not for every _limit). (A copy: clang 14 cannot capture a
    // structured binding.)
    auto column_like = [&names, param = param] {
      std::string base = param;
      size_t cut = param.rfind("__");
      if (cut != std::string::npos && cut > 0 && ParseOp(param.substr(cut + 2))) {
        base = param.substr(0, cut);
      }
      return names.Find(base, param).ok();
    };
    if (!control && !param.empty() && param[0] == '_' && !column_like()) {
      std::string hint = DidYouMeanHint(param, kControls);
      return Status::Invalid("unknown parameter '" + param + "'" +
                             (hint.empty() ? "; the table's controls are " + Join(kControls, ", ") +
                                                 ", and it has no column of that name"
                                           : hint));
    }
    if (control) {
      if (param == "_select") {
        for (const std::string& part : Split(value, ',')) {
          ASSIGN_OR_RETURN(std::string name, names.Find(Trim(part), "_select"));
          if (std::find(q.select.begin(), q.select.end(), name) != q.select.end()) {
            return Status::Invalid("_select: the column '" + name + "' is named twice");
          }
          q.select.push_back(name);
        }
      } else if (param == "_sort") {
        for (const std::string& raw : Split(value, ',')) {
          std::string part = Trim(raw);
          DataSort s;
          if (!part.empty() && part[0] == '-') {
            s.descending = true;
            part = part.substr(1);
          }
          ASSIGN_OR_RETURN(s.column, names.Find(part, "_sort"));
          for (const DataSort& other : q.sort) {
            if (other.column == s.column)
              return Status::Invalid("_sort: the column '" + s.column + "' is named twice");
          }
          q.sort.push_back(s);
        }
      } else if (param == "_limit") {
        ASSIGN_OR_RETURN(q.limit, ParseCount("_limit", value, 1, limits.max_limit));
      } else if (param == "_offset") {
        ASSIGN_OR_RETURN(q.offset, ParseCount("_offset", value, 0, int64_t{1} << 40));
      } else if (param == "_after") {
        after = value;
      } else if (param == "_format") {
        std::string f = ToLower(value);
        if (f == "json") {
          q.format = DataFormat::kJson;
        } else if (f == "csv") {
          q.format = DataFormat::kCsv;
        } else if (f == "geojson") {
          q.format = DataFormat::kGeoJson;
        } else if (f == "parquet") {
          q.format = DataFormat::kParquet;
        } else {
          return Status::Invalid("_format: expected json, csv, geojson or parquet, got '" + value +
                                 "'");
        }
      }
      continue;
    }
    DataFilter f;
    std::string column = param;
    size_t cut = param.rfind("__");
    if (cut != std::string::npos && cut > 0) {
      if (std::optional<FilterOp> op = ParseOp(param.substr(cut + 2))) {
        f.op = *op;
        column = param.substr(0, cut);
      }
    }
    ASSIGN_OR_RETURN(f.column, names.Find(column, param));
    if (f.op == FilterOp::kIn) {
      for (const std::string& v : Split(value, ',')) f.values.push_back(v);
    } else if (f.op == FilterOp::kIsNull) {
      std::string v = ToLower(value);
      if (v != "true" && v != "false" && v != "1" && v != "0") {
        return Status::Invalid(param + ": expected true or false, got '" + value + "'");
      }
      f.is_null = v == "true" || v == "1";
    } else {
      f.values.push_back(value);
    }
    q.filters.push_back(std::move(f));
  }
  std::sort(q.filters.begin(), q.filters.end(), [](const DataFilter& a, const DataFilter& b) {
    return std::tie(a.column, a.op, a.values, a.is_null) <
           std::tie(b.column, b.op, b.values, b.is_null);
  });
  // A total order: the key's columns end it (and are the order when none
  // is asked for); without a whole key, every other column does.
  auto add_to_order = [&](const std::string& name) {
    bool named = std::any_of(q.sort.begin(), q.sort.end(),
                             [&](const DataSort& s) { return s.column == name; });
    if (!named) q.sort.push_back({name, false});
  };
  std::vector<std::string> key_columns;
  for (const std::string& k : key) {
    Result<std::string> name = names.Find(k, "key");
    if (name.ok()) key_columns.push_back(*name);
  }
  q.cursor = !key.empty() && key_columns.size() == key.size();
  if (q.cursor) {
    for (const std::string& k : key_columns) add_to_order(k);
  } else {
    for (const DataColumn& c : columns) add_to_order(c.name);
  }
  if (after) {
    if (!q.cursor) {
      return Status::Invalid(
          "_after: paging by cursor needs the table's key (it declares none, or its key is not "
          "among its published columns); page with _offset");
    }
    if (params.count("_offset")) {
      return Status::Invalid(
          "_after and _offset together: the cursor already says where the "
          "page starts; drop _offset");
    }
    ASSIGN_OR_RETURN(q.after, DecodeCursor(*after, q.sort.size()));
  }
  if (q.format == DataFormat::kGeoJson) {
    auto coords = CoordinateColumns(columns);
    if (!coords) {
      return Status::Invalid(
          "_format=geojson: the table has no coordinate columns (lon/lat, longitude/latitude, "
          "x/y, or a shared prefix such as stop_lon/stop_lat)");
    }
    q.lon_column = coords->first;
    q.lat_column = coords->second;
    if (!q.select.empty()) {
      for (const std::string& c : {q.lon_column, q.lat_column}) {
        if (std::find(q.select.begin(), q.select.end(), c) == q.select.end()) q.select.push_back(c);
      }
    }
  }
  return q;
}

std::string DataQuery::Normalized() const {
  json filters_json = json::array();
  for (const DataFilter& f : filters) {
    filters_json.push_back({f.column, OpNameOf(f.op), f.values, f.is_null});
  }
  json sort_json = json::array();
  for (const DataSort& s : sort) sort_json.push_back({s.column, s.descending});
  json after_json = nullptr;
  if (after) {
    after_json = json::array();
    for (const auto& v : *after) after_json.push_back(v ? json(*v) : json(nullptr));
  }
  json all = {{"table", table},   {"select", select},    {"filters", filters_json},
              {"cursor", cursor}, {"sort", sort_json},   {"limit", limit},
              {"offset", offset}, {"after", after_json}, {"format", DataFormatName(format)}};
  return all.dump(-1, ' ', false, json::error_handler_t::replace);
}

BoundSql BuildDataSql(const DataQuery& q) {
  BoundSql out;
  auto param = [&](const std::optional<std::string>& value) {
    out.params.push_back(value);
    return "$" + std::to_string(out.params.size());
  };
  std::vector<std::string> select;
  if (q.select.empty()) {
    select.push_back("*");
  } else {
    for (const std::string& c : q.select) select.push_back(QuoteIdent(c));
  }
  // The sort columns again, last, as the engine's text (which casts back
  // exactly), for the `next` cursor (not shown).
  for (size_t i = 0; q.cursor && i < q.sort.size(); ++i) {
    select.push_back("CAST(" + QuoteIdent(q.sort[i].column) + " AS VARCHAR) AS " +
                     QuoteIdent("_sluice_sort_" + std::to_string(i)));
  }
  std::vector<std::string> where;
  for (const DataFilter& f : q.filters) {
    std::string c = QuoteIdent(f.column);
    switch (f.op) {
      case FilterOp::kEq:
        where.push_back(c + " = " + param(f.values[0]));
        break;
      case FilterOp::kNe:
        where.push_back(c + " <> " + param(f.values[0]));
        break;
      case FilterOp::kGt:
        where.push_back(c + " > " + param(f.values[0]));
        break;
      case FilterOp::kGte:
        where.push_back(c + " >= " + param(f.values[0]));
        break;
      case FilterOp::kLt:
        where.push_back(c + " < " + param(f.values[0]));
        break;
      case FilterOp::kLte:
        where.push_back(c + " <= " + param(f.values[0]));
        break;
      case FilterOp::kIn: {
        std::vector<std::string> list;
        for (const std::string& v : f.values) list.push_back(param(v));
        where.push_back(c + " IN (" + Join(list, ", ") + ")");
        break;
      }
      case FilterOp::kLike:
        where.push_back("CAST(" + c + " AS VARCHAR) LIKE " + param(f.values[0]));
        break;
      case FilterOp::kIsNull:
        where.push_back(c + (f.is_null ? " IS NULL" : " IS NOT NULL"));
        break;
    }
  }
  if (q.after) {
    // Rows after the cursor in the order below (NULLS LAST either way): on
    // the first sort column that differs, further along.
    std::vector<std::string> alternatives;
    for (size_t i = 0; i < q.sort.size(); ++i) {
      const std::optional<std::string>& v = (*q.after)[i];
      if (!v) continue;  // nothing sorts after NULL on this column
      std::vector<std::string> terms;
      for (size_t j = 0; j < i; ++j) {
        const std::optional<std::string>& w = (*q.after)[j];
        std::string c = QuoteIdent(q.sort[j].column);
        terms.push_back(w ? c + " IS NOT DISTINCT FROM " + param(w) : c + " IS NULL");
      }
      std::string c = QuoteIdent(q.sort[i].column);
      terms.push_back("(" + c + (q.sort[i].descending ? " < " : " > ") + param(v) + " OR " + c +
                      " IS NULL)");
      alternatives.push_back("(" + Join(terms, " AND ") + ")");
    }
    where.push_back(alternatives.empty() ? "FALSE" : "(" + Join(alternatives, " OR ") + ")");
  }
  out.sql = "SELECT " + Join(select, ", ") + " FROM " + QuoteIdent(q.table);
  if (!where.empty()) out.sql += " WHERE " + Join(where, " AND ");
  if (!q.sort.empty()) {
    std::vector<std::string> order;
    for (const DataSort& s : q.sort) {
      order.push_back(QuoteIdent(s.column) + (s.descending ? " DESC" : " ASC") + " NULLS LAST");
    }
    out.sql += " ORDER BY " + Join(order, ", ");
  }
  out.sql += " LIMIT " + std::to_string(q.limit + 1);
  if (q.offset > 0) out.sql += " OFFSET " + std::to_string(q.offset);
  return out;
}

}  // namespace sluice
