// The dataset API's queries (DESIGN §4: GET /api/v1/data/{table}): a URL's
// parameters parsed once into a typed DataQuery, every column name checked
// against the table's published schema, then built into one SELECT whose
// values are all bound parameters — never spliced into the SQL — and whose
// identifiers are quoted catalog names. Pure functions; thread-safe.
//
//   col=v  col__ne=v  col__gt=v  col__gte=v  col__lt=v  col__lte=v
//   col__in=a,b,c  col__like=ab%  col__isnull=true|false
//   _select=a,b  _sort=-a,b  _limit=N  _offset=N  _after=CURSOR
//   _format=json|csv|geojson|parquet
//
// A value is cast by the engine to its column's type (a wrong one is a 400
// naming the column). The order is total, so pages are stable and an
// answer is the same each time: it ends with the table's key when it
// declares one (and is the key when no _sort is given) — then `_after`
// takes the `next` cursor of the page before (keyset pagination: no rows
// skipped or repeated however deep) — else with every other column, and
// pages go by _offset. Only the six names below are controls; any other
// name, `_id` too, is a column.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace sluice {

enum class FilterOp { kEq, kNe, kGt, kGte, kLt, kLte, kIn, kLike, kIsNull };

struct DataFilter {
  std::string column;
  FilterOp op = FilterOp::kEq;
  std::vector<std::string> values;  // one, or kIn's list
  bool is_null = true;              // kIsNull: IS NULL (true) or IS NOT NULL
};

struct DataSort {
  std::string column;
  bool descending = false;
};

enum class DataFormat { kJson, kCsv, kGeoJson, kParquet };
const char* DataFormatName(DataFormat format);
const char* DataContentType(DataFormat format);

struct DataLimits {
  int64_t default_limit = 100;
  int64_t max_limit = 10000;
};

// One column of the table: its name as published, and DuckDB's type name.
struct DataColumn {
  std::string name;
  std::string type;
};

struct DataQuery {
  std::string table;                // the asset's public name
  std::vector<std::string> select;  // empty: every column
  std::vector<DataFilter> filters;  // ANDed, in a canonical order
  std::vector<DataSort> sort;       // as asked, then the key's columns not named
  int64_t limit = 100;
  int64_t offset = 0;
  // _after: the sort columns' values of the last row of the page before
  // (nullopt: NULL).
  std::optional<std::vector<std::optional<std::string>>> after;
  DataFormat format = DataFormat::kJson;
  // The order ends with the table's whole key, so a row's sort values name
  // its place exactly: pages follow a `next` cursor. Without a key the order
  // ends with every other column (rows equal in all of them are alike) and
  // pages go by _offset.
  bool cursor = false;
  // geojson: the longitude and latitude columns.
  std::string lon_column, lat_column;
  // The query in one canonical text (parameters in a fixed order): equal
  // queries give equal texts, so it keys the response cache.
  std::string Normalized() const;
};

// Parses the URL's parameters. InvalidArgument names the parameter and what
// it accepts (an unknown column has a did-you-mean).
Result<DataQuery> ParseDataQuery(const std::string& table,
                                 const std::map<std::string, std::string>& params,
                                 const std::vector<DataColumn>& columns,
                                 const std::vector<std::string>& key, const DataLimits& limits);

struct BoundSql {
  std::string sql;                                 // $1, $2, ... for every value
  std::vector<std::optional<std::string>> params;  // nullopt: NULL
};

// The SELECT for a query, fetching limit + 1 rows (the extra one says
// whether there is a next page).
BoundSql BuildDataSql(const DataQuery& query);

// The `next` cursor for a page whose last row holds these sort values (in
// the order of query.sort), and back.
std::string EncodeCursor(const std::vector<std::optional<std::string>>& values);
Result<std::vector<std::optional<std::string>>> DecodeCursor(const std::string& cursor,
                                                             size_t expected);

// Base64url without padding (RFC 4648 §5), and back (nullopt: not base64url).
std::string Base64UrlEncode(std::string_view bytes);
std::optional<std::string> Base64UrlDecode(std::string_view text);

// geojson: the (longitude, latitude) columns of a table, by name: lon/lat,
// lng/lat, longitude/latitude, x/y, or a prefix shared by both (stop_lon /
// stop_lat). nullopt when there are none.
std::optional<std::pair<std::string, std::string>> CoordinateColumns(
    const std::vector<DataColumn>& columns);

}  // namespace sluice
