#include "warehouse/encode.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>

#include "core/strings.h"

namespace sluice {
namespace {

// Whether a JSON-rendered value is a number (a coordinate).
bool IsJsonNumber(const std::optional<std::string_view>& value, JsonKind kind) {
  if (!value || kind != JsonKind::kLiteral || value->empty()) return false;
  char c = (*value)[0];
  return c == '-' || (c >= '0' && c <= '9');
}

}  // namespace

RenderFormat RenderFormatFor(RowFormat format) {
  return format == RowFormat::kCsv ? RenderFormat::kText : RenderFormat::kJson;
}

void AppendJsonString(std::string& out, std::string_view text) {
  out += nlohmann::json(std::string(text))
             .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void AppendJsonValue(std::string& out, const std::optional<std::string_view>& value,
                     JsonKind kind) {
  if (!value) {
    out += "null";
  } else if (kind == JsonKind::kLiteral) {
    out.append(value->data(), value->size());
  } else {
    AppendJsonString(out, *value);
  }
}

void AppendCsvField(std::string& out, std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) {
    out.append(text.data(), text.size());
    return;
  }
  out += '"';
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

std::optional<std::pair<std::string, std::string>> CoordinateColumnsOf(
    const std::vector<std::string>& names) {
  std::map<std::string, std::string> by_lower;
  for (const std::string& n : names) by_lower.emplace(ToLower(n), n);
  static const std::vector<std::pair<std::string, std::string>> kPairs = {
      {"lon", "lat"}, {"lng", "lat"}, {"long", "lat"}, {"longitude", "latitude"}, {"x", "y"}};
  for (const auto& [lon, lat] : kPairs) {
    if (by_lower.count(lon) && by_lower.count(lat))
      return std::make_pair(by_lower[lon], by_lower[lat]);
  }
  // stop_lon / stop_lat, site_longitude / site_latitude: a shared prefix.
  for (const std::string& n : names) {
    std::string lower = ToLower(n);
    for (const auto& [lon, lat] : kPairs) {
      const std::string suffix = "_" + lon;
      if (lower.size() <= suffix.size() ||
          lower.compare(lower.size() - suffix.size(), suffix.size(), suffix) != 0) {
        continue;
      }
      std::string other = lower.substr(0, lower.size() - suffix.size()) + "_" + lat;
      if (by_lower.count(other)) return std::make_pair(n, by_lower[other]);
    }
  }
  return std::nullopt;
}

Result<RowEncoder> RowEncoder::Create(RowFormat format, std::vector<RenderedColumn> columns,
                                      size_t visible, const std::string& lon,
                                      const std::string& lat) {
  RowEncoder e;
  e.format_ = format;
  e.visible_ = std::min(visible, columns.size());
  e.columns_ = std::move(columns);
  for (size_t i = 0; i < e.visible_; ++i) {
    std::string n;
    AppendJsonString(n, e.columns_[i].name);
    e.names_json_.push_back(std::move(n));
    if (e.columns_[i].name == lon) e.lon_ = i;
    if (e.columns_[i].name == lat) e.lat_ = i;
  }
  if (format == RowFormat::kGeoJson && (e.lon_ == SIZE_MAX || e.lat_ == SIZE_MAX)) {
    return Status::Invalid("the coordinate columns " + lon + "/" + lat + " are not in the result");
  }
  return e;
}

void RowEncoder::Header(std::string& out) const {
  if (format_ != RowFormat::kCsv) return;
  for (size_t i = 0; i < visible_; ++i) {
    if (i) out += ',';
    AppendCsvField(out, columns_[i].name);
  }
  out += "\r\n";
}

void RowEncoder::Row(const std::vector<std::optional<std::string_view>>& row, std::string& out) {
  if (format_ == RowFormat::kCsv) {
    for (size_t i = 0; i < visible_; ++i) {
      if (i) out += ',';
      if (row[i]) AppendCsvField(out, *row[i]);
    }
    out += "\r\n";
  } else if (format_ == RowFormat::kGeoJson) {
    if (rows_) out += separator_;
    out += "{\"type\":\"Feature\",\"geometry\":";
    if (IsJsonNumber(row[lon_], columns_[lon_].json) &&
        IsJsonNumber(row[lat_], columns_[lat_].json)) {
      out += "{\"type\":\"Point\",\"coordinates\":[";
      out.append(row[lon_]->data(), row[lon_]->size());
      out += ',';
      out.append(row[lat_]->data(), row[lat_]->size());
      out += "]}";
    } else {
      out += "null";
    }
    out += ",\"properties\":{";
    bool first = true;
    for (size_t i = 0; i < visible_; ++i) {
      if (i == lon_ || i == lat_) continue;
      if (!first) out += ',';
      first = false;
      out += names_json_[i];
      out += ':';
      AppendJsonValue(out, row[i], columns_[i].json);
    }
    out += "}}";
  } else {
    if (rows_) out += separator_;
    out += '{';
    for (size_t i = 0; i < visible_; ++i) {
      if (i) out += ',';
      out += names_json_[i];
      out += ':';
      AppendJsonValue(out, row[i], columns_[i].json);
    }
    out += '}';
  }
  ++rows_;
}

}  // namespace sluice
