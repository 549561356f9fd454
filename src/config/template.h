// The small template engine used in model SQL and source URLs/headers.
//
//   {{ expr }}   expr: var('name') | var('name', 'default') | env | partition
//                      | start | end | this
//   {% if cond %} ... {% elif cond %} ... {% else %} ... {% endif %}   (nestable)
//                cond: is_incremental | not COND | an expr (truthy when non-empty;
//                      a var holding a JSON bool, null or 0 follows its value)
//
// Text outside tags is copied byte for byte; whitespace inside tags is free.
// Every error names the line (1-based within `text`, shifted by first_line-1)
// and says what to do. Only the branches taken are evaluated, but every tag is
// parsed, so a misspelt name is an error even in a branch not taken.
// Pure functions; safe to call from any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sluice {

struct TemplateContext {
  nlohmann::json vars = nlohmann::json::object();  // var('x') values
  std::string env = "dev";
  std::string partition, start, end;  // "" when unpartitioned
  std::string this_name;              // {{ this }}: the asset's public name
  bool is_incremental = false;
};

struct TemplateError {
  int line = 0;                  // 1-based, already shifted by first_line - 1
  std::string message;           // without the "line N: " prefix
  std::string ToString() const;  // "line 4: unknown template variable ..."
};

// Renders text; errors are Status::Invalid("line N: ...").
Result<std::string> RenderTemplate(std::string_view text, const TemplateContext& ctx,
                                   int first_line = 1);

// Parses text without rendering and checks every branch: syntax, known names,
// and that each var('x') without a default is set in `vars` (skipped when vars
// is null, i.e. unknown). nullopt when fine.
std::optional<TemplateError> CheckTemplate(std::string_view text, const nlohmann::json& vars,
                                           int first_line = 1);

// True when text holds a "{{" or "{%" tag opener (a cheap pre-check).
bool HasTemplateTags(std::string_view text);

}  // namespace sluice
