#include "cli/output.h"

#include <algorithm>

namespace sluice {
namespace {

std::string Cell(const nlohmann::json& v, bool for_table) {
  if (v.is_null()) return for_table ? "NULL" : "";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

// Display width in code points (UTF-8 continuation bytes do not count).
size_t Width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string Clip(const std::string& s, size_t max_width) {
  if (Width(s) <= max_width) return s;
  std::string out;
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) != 0x80 && ++n > max_width - 1) break;
    out += s[i];
  }
  return out + "…";
}

}  // namespace

std::string RenderTable(const std::vector<std::string>& columns, const nlohmann::json& rows,
                        size_t max_width) {
  std::vector<size_t> widths;
  for (const auto& c : columns) widths.push_back(Width(c));
  std::vector<std::vector<std::string>> cells;
  for (const auto& row : rows) {
    std::vector<std::string> line;
    for (size_t i = 0; i < columns.size(); ++i) {
      std::string cell = Clip(Cell(row[i], true), max_width);
      for (char& ch : cell) {
        if (ch == '\n' || ch == '\r' || ch == '\t') ch = ' ';
      }
      widths[i] = std::max(widths[i], Width(cell));
      line.push_back(std::move(cell));
    }
    cells.push_back(std::move(line));
  }
  auto pad = [](const std::string& s, size_t w) { return s + std::string(w - Width(s), ' '); };
  std::string out;
  for (size_t i = 0; i < columns.size(); ++i) out += (i ? "  " : "") + pad(columns[i], widths[i]);
  out += "\n";
  for (size_t i = 0; i < columns.size(); ++i) out += (i ? "  " : "") + std::string(widths[i], '-');
  out += "\n";
  for (const auto& line : cells) {
    for (size_t i = 0; i < line.size(); ++i) out += (i ? "  " : "") + pad(line[i], widths[i]);
    out += "\n";
  }
  out += "(" + std::to_string(rows.size()) + (rows.size() == 1 ? " row)\n" : " rows)\n");
  return out;
}

std::string RenderCsv(const std::vector<std::string>& columns, const nlohmann::json& rows) {
  auto quote = [](const std::string& s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) {
      if (c == '"') out += '"';
      out += c;
    }
    return out + "\"";
  };
  std::string out;
  for (size_t i = 0; i < columns.size(); ++i) out += (i ? "," : "") + quote(columns[i]);
  out += "\n";
  for (const auto& row : rows) {
    for (size_t i = 0; i < columns.size(); ++i) out += (i ? "," : "") + quote(Cell(row[i], false));
    out += "\n";
  }
  return out;
}

nlohmann::json RowsToObjects(const std::vector<std::string>& columns, const nlohmann::json& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& row : rows) {
    nlohmann::json obj = nlohmann::json::object();
    for (size_t i = 0; i < columns.size(); ++i) obj[columns[i]] = row[i];
    out.push_back(std::move(obj));
  }
  return out;
}

}  // namespace sluice
