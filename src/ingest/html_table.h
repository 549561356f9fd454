// HTML tables as data (`format: html_table`): one <table> of a page, chosen by
// index, id or caption, parsed with gumbo. Cells that span columns or rows
// (colspan, rowspan) are repeated into every position they cover; header rows
// (<thead> rows, or leading rows of <th> cells) become column names, joined
// with a space when there are several ("Codes USPS"); cell text is the
// visible text with whitespace collapsed and footnote markers ("[a]", "[12]")
// dropped. Pure functions; the decoder writes the grid as CSV.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace sluice {

struct HtmlTable {
  std::vector<std::string> columns;            // unique, non-empty names
  std::vector<std::vector<std::string>> rows;  // every row has columns.size() cells
};

// Extracts one table from an HTML document. `selector` is null (the first
// table with header cells, else the first table), a 0-based index, "#id", or
// the table's caption (case-insensitive). With header=false, no row is taken
// as the header and columns are column1, column2, ... An unmatched selector
// is an error that lists the tables found (index, id, caption, first cells).
Result<HtmlTable> ExtractHtmlTable(const std::string& html, const nlohmann::json& selector,
                                   bool header = true);

class Decoder;
// The html_table decoder (registered in BuiltinDecoders).
std::unique_ptr<Decoder> NewHtmlTableDecoder();

}  // namespace sluice
