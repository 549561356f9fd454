#include "ingest/html_table.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gumbo.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <set>

#include "core/fs.h"
#include "core/hash.h"
#include "core/strings.h"
#include "ingest/decoder.h"

namespace sluice {
namespace {

struct GumboDeleter {
  void operator()(GumboOutput* out) const { gumbo_destroy_output(&kGumboDefaultOptions, out); }
};

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool IsElement(const GumboNode* n, GumboTag tag) {
  return n->type == GUMBO_NODE_ELEMENT && n->v.element.tag == tag;
}

std::string Attr(const GumboNode* n, const char* name) {
  const GumboAttribute* a = gumbo_get_attribute(&n->v.element.attributes, name);
  return a ? a->value : "";
}

// Collapses runs of whitespace (including non-breaking spaces) to one space.
std::string Collapse(const std::string& s) {
  std::string out;
  bool space = false;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    bool ws = std::isspace(c) != 0;
    if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xA0) {
      ws = true;
      ++i;
    }
    if (ws) {
      space = !out.empty();
    } else {
      if (space) out += ' ';
      space = false;
      out += static_cast<char>(c);
    }
  }
  return out;
}

bool IsFootnoteMarker(const std::string& text) {
  std::string t = Collapse(text);
  return t.size() >= 3 && t.front() == '[' && t.back() == ']';
}

// A header's text without footnote markers written as plain text
// ("Population[1]", "Area [a]"), as <sup> markers are dropped too.
std::string StripFootnotes(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '[') {
      size_t close = text.find(']', i);
      if (close != std::string::npos && close - i >= 2 && close - i <= 5 &&
          IsFootnoteMarker(text.substr(i, close - i + 1))) {
        bool word_marker = true;  // [1], [a], [12], [note] is a word, kept
        for (size_t k = i + 1; k < close; ++k) {
          word_marker = word_marker && std::isalnum(static_cast<unsigned char>(text[k]));
        }
        bool letters = close - i - 1 > 1 && std::isalpha(static_cast<unsigned char>(text[i + 1]));
        if (word_marker && !letters) {
          i = close;
          continue;
        }
      }
    }
    out += text[i];
  }
  return Collapse(out);
}

void TextOf(const GumboNode* n, std::string* out) {
  if (n->type == GUMBO_NODE_TEXT || n->type == GUMBO_NODE_WHITESPACE ||
      n->type == GUMBO_NODE_CDATA) {
    *out += n->v.text.text;
    return;
  }
  if (n->type != GUMBO_NODE_ELEMENT) return;
  GumboTag tag = n->v.element.tag;
  if (tag == GUMBO_TAG_SCRIPT || tag == GUMBO_TAG_STYLE || tag == GUMBO_TAG_TABLE) return;
  if (tag == GUMBO_TAG_BR) {
    *out += ' ';
    return;
  }
  if (tag == GUMBO_TAG_SUP) {
    std::string inner;
    const GumboVector& kids = n->v.element.children;
    for (unsigned i = 0; i < kids.length; ++i)
      TextOf(static_cast<GumboNode*>(kids.data[i]), &inner);
    if (!IsFootnoteMarker(inner)) *out += inner;
    return;
  }
  bool block = tag == GUMBO_TAG_P || tag == GUMBO_TAG_DIV || tag == GUMBO_TAG_LI;
  if (block) *out += ' ';
  const GumboVector& kids = n->v.element.children;
  for (unsigned i = 0; i < kids.length; ++i) TextOf(static_cast<GumboNode*>(kids.data[i]), out);
  if (block) *out += ' ';
}

void FindTables(const GumboNode* n, std::vector<const GumboNode*>* tables) {
  if (n->type != GUMBO_NODE_ELEMENT) return;
  if (n->v.element.tag == GUMBO_TAG_TABLE) tables->push_back(n);
  const GumboVector& kids = n->v.element.children;
  for (unsigned i = 0; i < kids.length; ++i)
    FindTables(static_cast<GumboNode*>(kids.data[i]), tables);
}

struct RawRow {
  const GumboNode* tr;
  bool in_thead;
};

// The rows of this table only (not of tables nested in its cells).
std::vector<RawRow> RowsOf(const GumboNode* table) {
  std::vector<RawRow> rows;
  const GumboVector& kids = table->v.element.children;
  for (unsigned i = 0; i < kids.length; ++i) {
    auto* k = static_cast<GumboNode*>(kids.data[i]);
    if (IsElement(k, GUMBO_TAG_TR)) {
      rows.push_back({k, false});
    } else if (IsElement(k, GUMBO_TAG_THEAD) || IsElement(k, GUMBO_TAG_TBODY) ||
               IsElement(k, GUMBO_TAG_TFOOT)) {
      const GumboVector& section = k->v.element.children;
      for (unsigned j = 0; j < section.length; ++j) {
        auto* r = static_cast<GumboNode*>(section.data[j]);
        if (IsElement(r, GUMBO_TAG_TR)) rows.push_back({r, IsElement(k, GUMBO_TAG_THEAD)});
      }
    }
  }
  return rows;
}

std::string CaptionOf(const GumboNode* table) {
  const GumboVector& kids = table->v.element.children;
  for (unsigned i = 0; i < kids.length; ++i) {
    auto* k = static_cast<GumboNode*>(kids.data[i]);
    if (IsElement(k, GUMBO_TAG_CAPTION)) {
      std::string text;
      TextOf(k, &text);
      return Collapse(text);
    }
  }
  return "";
}

struct Cell {
  std::string text;
  bool header = false;
};

int SpanOf(const GumboNode* cell, const char* attr) {
  std::string v = Attr(cell, attr);
  int n = 1;
  if (!v.empty()) n = std::atoi(v.c_str());
  return std::clamp(n, 1, 1000);
}

// How far a table's spans may expand it: a page of a few kilobytes whose
// cells each span 1,000 columns and rows (the most a browser honours for
// colspan) became a table of 100,000s of columns, seconds of work (found
// by fuzz/html_table_fuzzer.cpp). At most a spreadsheet's columns, and
// this many cells (rows times columns).
constexpr size_t kMaxGridColumns = 16'384;
constexpr size_t kMaxGridCells = 5'000'000;

// The table as a grid, spans expanded; `header_rows` is how many leading rows
// are headers.
Result<std::vector<std::vector<Cell>>> Grid(const GumboNode* table, size_t* header_rows) {
  std::vector<RawRow> raw = RowsOf(table);
  size_t width = 0;
  std::vector<std::vector<Cell>> grid(raw.size());
  std::vector<std::vector<bool>> taken(raw.size());
  *header_rows = 0;
  bool headers_done = false;
  for (size_t r = 0; r < raw.size(); ++r) {
    const GumboVector& kids = raw[r].tr->v.element.children;
    size_t col = 0;
    bool all_th = true, any_cell = false;
    for (unsigned i = 0; i < kids.length; ++i) {
      auto* c = static_cast<GumboNode*>(kids.data[i]);
      bool th = IsElement(c, GUMBO_TAG_TH);
      if (!th && !IsElement(c, GUMBO_TAG_TD)) continue;
      any_cell = true;
      all_th = all_th && th;
      while (col < taken[r].size() && taken[r][col]) ++col;
      std::string text;
      TextOf(c, &text);
      Cell cell{Collapse(text), th};
      int colspan = SpanOf(c, "colspan"), rowspan = SpanOf(c, "rowspan");
      width = std::max(width, col + static_cast<size_t>(colspan));
      if (width > kMaxGridColumns || width * raw.size() > kMaxGridCells) {
        return Status::DataError(fmt::format(
            "the table's rowspan and colspan attributes make it {} columns wide by {} rows (at "
            "row {}), over the {} columns or {} cells read from one table; choose another "
            "table with options.table",
            width, raw.size(), r + 1, kMaxGridColumns, kMaxGridCells));
      }
      for (size_t dr = 0; dr < static_cast<size_t>(rowspan) && r + dr < raw.size(); ++dr) {
        auto& row = grid[r + dr];
        auto& used = taken[r + dr];
        size_t need = col + static_cast<size_t>(colspan);
        if (row.size() < need) row.resize(need);
        if (used.size() < need) used.resize(need, false);
        for (size_t dc = 0; dc < static_cast<size_t>(colspan); ++dc) {
          row[col + dc] = cell;
          used[col + dc] = true;
        }
      }
      col += static_cast<size_t>(colspan);
    }
    if (!headers_done && any_cell && (raw[r].in_thead || all_th)) {
      *header_rows = r + 1;
    } else if (any_cell) {
      headers_done = true;
    }
  }
  // Drop rows without cells.
  std::vector<std::vector<Cell>> out;
  size_t headers = 0;
  for (size_t r = 0; r < grid.size(); ++r) {
    if (grid[r].empty()) continue;
    if (r < *header_rows) ++headers;
    out.push_back(std::move(grid[r]));
  }
  *header_rows = headers;
  return out;
}

std::string Describe(size_t index, const GumboNode* table) {
  std::string id = Attr(table, "id");
  std::string caption = CaptionOf(table);
  size_t headers = 0;
  auto expanded = Grid(table, &headers);
  if (!expanded.ok()) {
    return fmt::format("{}{} (too large to read)", index, id.empty() ? "" : " #" + id);
  }
  const auto& grid = *expanded;
  std::vector<std::string> first;
  if (!grid.empty()) {
    for (size_t i = 0; i < grid[0].size() && i < 4; ++i) first.push_back(grid[0][i].text);
  }
  return fmt::format("{}{}{} ({} rows: {})", index, id.empty() ? "" : " #" + id,
                     caption.empty() ? "" : " \"" + caption + "\"", grid.size(),
                     Join(first, " | "));
}

}  // namespace

Result<HtmlTable> ExtractHtmlTable(const std::string& html, const nlohmann::json& selector,
                                   bool header) {
  std::unique_ptr<GumboOutput, GumboDeleter> doc(
      gumbo_parse_with_options(&kGumboDefaultOptions, html.data(), html.size()));
  if (!doc) return Status::DataError("cannot parse the HTML page");
  std::vector<const GumboNode*> tables;
  FindTables(doc->root, &tables);
  if (tables.empty()) return Status::DataError("the page has no <table>");
  const GumboNode* chosen = nullptr;
  if (selector.is_null()) {
    for (const GumboNode* t : tables) {
      size_t headers = 0;
      if (Grid(t, &headers).ok() && headers > 0) {
        chosen = t;
        break;
      }
    }
    if (!chosen) chosen = tables.front();
  } else if (selector.is_number_integer()) {
    int64_t i = selector.get<int64_t>();
    if (i >= 0 && static_cast<size_t>(i) < tables.size()) chosen = tables[static_cast<size_t>(i)];
  } else if (selector.is_string()) {
    std::string want = selector.get<std::string>();
    for (const GumboNode* t : tables) {
      if (!want.empty() && want[0] == '#' ? Attr(t, "id") == want.substr(1)
                                          : Lower(CaptionOf(t)) == Lower(Collapse(want))) {
        chosen = t;
        break;
      }
    }
  }
  if (!chosen) {
    std::vector<std::string> found;
    for (size_t i = 0; i < tables.size() && i < 20; ++i) found.push_back(Describe(i, tables[i]));
    return Status::DataError(fmt::format(
        "no table matches options.table = {}; set it to an index, \"#id\" or a caption. The page "
        "has {} table(s): {}",
        selector.dump(), tables.size(), Join(found, "; ")));
  }
  size_t header_rows = 0;
  ASSIGN_OR_RETURN(std::vector<std::vector<Cell>> grid, Grid(chosen, &header_rows));
  if (!header) header_rows = 0;
  if (header && header_rows == 0 && !grid.empty()) header_rows = 1;  // first row names columns
  size_t width = 0;
  for (const auto& row : grid) width = std::max(width, row.size());
  HtmlTable out;
  std::set<std::string> used;
  std::map<std::string, int> next_suffix;  // lowered name -> the next _N to try
  for (size_t c = 0; c < width; ++c) {
    std::vector<std::string> parts;
    for (size_t r = 0; r < header_rows && r < grid.size(); ++r) {
      std::string t = c < grid[r].size() ? StripFootnotes(grid[r][c].text) : "";
      if (!t.empty() && (parts.empty() || parts.back() != t)) parts.push_back(t);
    }
    std::string name = parts.empty() ? "column" + std::to_string(c + 1) : Join(parts, " ");
    // The next suffix to try is kept per name: a header spanning 10,000
    // columns is 10,000 columns of one name (trying _2, _3, ... from the
    // start each time took seconds, found by fuzz/html_table_fuzzer.cpp).
    std::string unique = name;
    if (used.count(Lower(unique))) {
      int& n = next_suffix[Lower(name)];
      if (n < 2) n = 2;
      do {
        unique = name + "_" + std::to_string(n++);
      } while (used.count(Lower(unique)));
    }
    used.insert(Lower(unique));
    out.columns.push_back(unique);
  }
  for (size_t r = header_rows; r < grid.size(); ++r) {
    std::vector<std::string> row(width);
    for (size_t c = 0; c < grid[r].size(); ++c) row[c] = grid[r][c].text;
    out.rows.push_back(std::move(row));
  }
  return out;
}

namespace {

std::string CsvField(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// format: html_table. The chosen table is written once as CSV into the
// derived cache (keyed by the page's content and the options) and read from
// there; the raw page is untouched.
class HtmlTableDecoder final : public Decoder {
 public:
  Result<std::string> TableSql(const DecodeRequest& req) const override {
    ASSIGN_OR_RETURN(DecodePlan plan, Plan(req));
    return plan.sql;
  }
  // The CSV is read like any CSV source (rejects kept, types widened when a
  // value does not fit), with its dialect stated.
  Result<DecodePlan> Plan(const DecodeRequest& req) const override {
    ASSIGN_OR_RETURN(std::string csv, WriteCsv(req));
    ASSIGN_OR_RETURN(const Decoder* reader, FindDecoder("csv"));
    DecodeRequest read = req;
    read.path = csv;
    read.format = "csv";
    read.options = {{"header", true}, {"delimiter", ","}, {"quote", "\""}, {"escape", "\""}};
    return reader->Plan(read);
  }
  std::string Extension() const override { return "html"; }

 private:
  // The chosen table as CSV in the derived cache, written once per page and options.
  static Result<std::string> WriteCsv(const DecodeRequest& req) {
    nlohmann::json selector = req.options.contains("table") ? req.options["table"] : nullptr;
    bool header = !req.options.is_object() || req.options.value("header", true);
    ASSIGN_OR_RETURN(std::string page_sha, Sha256File(req.path));
    std::string key = Sha256Hex(page_sha + "\n" + selector.dump() + (header ? "h" : "n"));
    std::string dir = req.cache_dir.empty() ? Dirname(req.path) : JoinPath(req.cache_dir, "html");
    std::string csv = JoinPath(dir, key.substr(0, 32) + ".csv");
    if (FileExists(csv)) return csv;
    ASSIGN_OR_RETURN(std::string html, ReadFile(req.path));
    Result<HtmlTable> table = ExtractHtmlTable(html, selector, header);
    if (!table.ok()) return table.status();
    std::string text;
    std::vector<std::string> cols;
    for (const std::string& c : table->columns) cols.push_back(CsvField(c));
    text += Join(cols, ",") + "\n";
    for (const auto& row : table->rows) {
      std::vector<std::string> cells;
      for (const std::string& c : row) cells.push_back(CsvField(c));
      text += Join(cells, ",") + "\n";
    }
    RETURN_IF_ERROR(MakeDirs(dir));
    RETURN_IF_ERROR(WriteFileAtomic(csv, text));
    return csv;
  }
};

}  // namespace

std::unique_ptr<Decoder> NewHtmlTableDecoder() { return std::make_unique<HtmlTableDecoder>(); }

}  // namespace sluice
