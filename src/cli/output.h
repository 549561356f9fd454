// Renders rows for people (aligned table) and programs (CSV, JSON).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace sluice {

// columns + rows of JSON scalars (null prints as empty in CSV, NULL in tables).
std::string RenderTable(const std::vector<std::string>& columns, const nlohmann::json& rows,
                        size_t max_width = 48);
std::string RenderCsv(const std::vector<std::string>& columns, const nlohmann::json& rows);
// [{column: value, ...}, ...]
nlohmann::json RowsToObjects(const std::vector<std::string>& columns, const nlohmann::json& rows);

}  // namespace sluice
