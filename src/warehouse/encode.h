// Rendered rows (render.h) written out as CSV, JSON objects or GeoJSON
// features: the bytes the dataset API answers and the exports write come
// from this one place, so a file published under publish/ and the API's
// answer for the same rows agree byte for byte. Framing (a JSON array, an
// envelope, a FeatureCollection) is the caller's. Thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "warehouse/render.h"

namespace sluice {

enum class RowFormat { kCsv, kJson, kGeoJson };

// How values must be rendered for a format: CSV as DuckDB's text, JSON and
// GeoJSON with numbers, booleans and nested values as JSON.
RenderFormat RenderFormatFor(RowFormat format);

// A JSON string literal for text (invalid UTF-8 replaced).
void AppendJsonString(std::string& out, std::string_view text);
// A rendered value in JSON: null, the literal, or a string.
void AppendJsonValue(std::string& out, const std::optional<std::string_view>& value, JsonKind kind);
// One CSV field (RFC 4180: quoted when it holds a comma, quote or line break).
void AppendCsvField(std::string& out, std::string_view text);

// The (longitude, latitude) columns among `names`: lon/lat, lng/lat,
// long/lat, longitude/latitude, x/y, or a prefix shared by both (stop_lon /
// stop_lat). nullopt when there are none.
std::optional<std::pair<std::string, std::string>> CoordinateColumnsOf(
    const std::vector<std::string>& names);

class RowEncoder {
 public:
  // `columns` as the read reports them; only the first `visible` are
  // written (the rest are the caller's, such as hidden sort keys). GeoJSON:
  // `lon` and `lat` name the coordinate columns, which become each
  // feature's point (a row without both numbers has a null geometry).
  static Result<RowEncoder> Create(RowFormat format, std::vector<RenderedColumn> columns,
                                   size_t visible, const std::string& lon = "",
                                   const std::string& lat = "");
  // What goes between two JSON objects or features: "," (the default), or
  // ",\n" for a file read by people too.
  void set_separator(std::string separator) { separator_ = std::move(separator); }
  // CSV: the header line; nothing for the others.
  void Header(std::string& out) const;
  // One row: a CSV line (CRLF); a JSON object or a GeoJSON feature, preceded
  // by a comma after the first row.
  void Row(const std::vector<std::optional<std::string_view>>& row, std::string& out);
  int64_t rows() const { return rows_; }
  size_t visible() const { return visible_; }
  const std::vector<RenderedColumn>& columns() const { return columns_; }
  // Each visible column's name as a JSON string literal.
  const std::vector<std::string>& names_json() const { return names_json_; }

 private:
  RowFormat format_ = RowFormat::kJson;
  std::vector<RenderedColumn> columns_;
  size_t visible_ = 0;
  size_t lon_ = SIZE_MAX, lat_ = SIZE_MAX;
  std::vector<std::string> names_json_;
  int64_t rows_ = 0;
  std::string separator_ = ",";
};

}  // namespace sluice
