// Decoders for the formats DuckDB reads itself: CSV/TSV, JSON, NDJSON,
// Parquet. Options from the project map onto the reader's named parameters.
// JSON also covers the shapes APIs return: records at a path inside a
// document (`options: {records: data.items}`), and arrays of arrays whose
// first row is the header (the US Census API).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>

#include "core/fs.h"
#include "core/strings.h"
#include "ingest/decoder.h"
#include "ingest/html_table.h"

#include <optional>

namespace sluice {
namespace {

// Renders a JSON option value as a DuckDB literal.
std::string Literal(const nlohmann::json& v) {
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) return v.dump();
  if (v.is_string()) return QuoteLiteral(v.get<std::string>());
  if (v.is_array()) {
    std::vector<std::string> parts;
    for (const auto& e : v) parts.push_back(Literal(e));
    return "[" + Join(parts, ", ") + "]";
  }
  return QuoteLiteral(v.dump());
}

// The file argument of a DuckDB reader: 'a' or ['a', 'b', ...].
std::string FilesArg(const DecodeRequest& req) {
  if (req.paths.empty()) return QuoteLiteral(req.path);
  std::vector<std::string> quoted;
  quoted.reserve(req.paths.size());
  for (const std::string& p : req.paths) quoted.push_back(QuoteLiteral(p));
  return "[" + Join(quoted, ", ") + "]";
}

std::vector<std::string> FilesOf(const DecodeRequest& req) {
  return req.paths.empty() ? std::vector<std::string>{req.path} : req.paths;
}

class CsvDecoder final : public Decoder {
 public:
  explicit CsvDecoder(std::string delimiter) : delimiter_(std::move(delimiter)) {}

  Result<std::string> TableSql(const DecodeRequest& req) const override {
    // Sluice option name -> read_csv parameter.
    static const std::map<std::string, std::string> kMap = {{"delimiter", "delim"},
                                                            {"header", "header"},
                                                            {"quote", "quote"},
                                                            {"escape", "escape"},
                                                            {"encoding", "encoding"},
                                                            {"skip", "skip"},
                                                            {"all_varchar", "all_varchar"},
                                                            {"sample_size", "sample_size"},
                                                            {"date_format", "dateformat"},
                                                            {"timestamp_format", "timestampformat"},
                                                            {"compression", "compression"},
                                                            {"null_padding", "null_padding"}};
    std::string sql = "read_csv(" + FilesArg(req);
    if (!req.paths.empty()) sql += ", union_by_name=true";
    bool has_delim = false, has_header = false;
    for (const auto& [key, value] : req.options.items()) {
      auto it = kMap.find(key);
      if (it == kMap.end()) continue;  // options for other stages (records, table...)
      has_delim |= key == "delimiter";
      has_header |= key == "header";
      sql += ", " + it->second + "=" + Literal(value);
    }
    if (!has_delim && !delimiter_.empty()) sql += ", delim=" + QuoteLiteral(delimiter_);
    if (!has_header) sql += ", header=true";
    if (req.all_text) sql += ", all_varchar=true";
    sql += ", filename=false)";
    return sql;
  }
  // Checks the encoding (a file that is not UTF-8 and says nothing is read as
  // Latin-1, with a note) and asks the reader to keep ragged rows aside
  // (reported with their line numbers after the build) unless ragged: pad.
  Result<DecodePlan> Plan(const DecodeRequest& req) const override {
    static std::atomic<uint64_t> counter{0};
    DecodePlan plan;
    DecodeRequest r = req;
    if (!r.options.is_object()) r.options = nlohmann::json::object();
    std::string encoding;
    if (r.options.contains("encoding")) {
      const nlohmann::json& e = r.options["encoding"];
      std::string name = e.is_string() ? e.get<std::string>() : e.dump();
      std::string lower;
      for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower == "utf8" || lower == "utf-8") {
        encoding = "utf-8";
      } else if (lower == "latin1" || lower == "latin-1" || lower == "iso-8859-1" ||
                 lower == "iso8859-1") {
        encoding = "latin-1";
      } else if (lower == "utf16" || lower == "utf-16") {
        encoding = "utf-16";
      } else {
        return Status::Invalid("options.encoding: '" + name +
                               "' is not supported; use utf-8, latin-1 or utf-16");
      }
      r.options["encoding"] = encoding;
    } else {
      std::vector<std::string> files = FilesOf(req);
      std::vector<std::string> bad_notes;
      for (const std::string& file : files) {
        ASSIGN_OR_RETURN(std::optional<Utf8Error> bad, FindInvalidUtf8(file));
        if (bad) {
          bad_notes.push_back(
              "not valid UTF-8 (" + (files.size() > 1 ? Basename(file) + " " : std::string()) +
              "line " + std::to_string(bad->line) + ", byte " + std::to_string(bad->offset) +
              "): read as Latin-1; set options.encoding (utf-8, latin-1 or utf-16) to say "
              "which it is");
        }
      }
      if (!bad_notes.empty() && bad_notes.size() < files.size()) {
        // Mixed encodings: each file on its own, each with its own reading.
        DecodePlan mixed;
        std::vector<std::string> reads;
        for (const std::string& file : files) {
          DecodeRequest one = req;
          one.paths.clear();
          one.path = file;
          ASSIGN_OR_RETURN(DecodePlan p, Plan(one));
          reads.push_back("SELECT * FROM " + p.sql);
          for (const std::string& note : p.notes)
            mixed.notes.push_back(Basename(file) + ": " + note);
          mixed.rejects.insert(mixed.rejects.end(), p.rejects.begin(), p.rejects.end());
        }
        mixed.sql = "(" + Join(reads, " UNION ALL BY NAME ") + ")";
        return mixed;
      }
      if (!bad_notes.empty()) {
        r.options["encoding"] = "latin-1";
        plan.notes = std::move(bad_notes);
      }
    }
    std::string ragged = r.options.value("ragged", "report");
    if (ragged != "report" && ragged != "pad") {
      return Status::Invalid("options.ragged: '" + ragged +
                             "': use report (rows with too many or too few fields are set aside "
                             "and reported) or pad (missing fields are null)");
    }
    if (ragged == "pad") r.options["null_padding"] = true;
    ASSIGN_OR_RETURN(plan.sql, TableSql(r));
    if (ragged == "report") {
      uint64_t n = counter.fetch_add(1);
      std::string table = "sluice_rejects_" + std::to_string(n);
      std::string scan = "sluice_reject_scans_" + std::to_string(n);
      plan.rejects.emplace_back(table, scan);
      plan.sql.pop_back();  // the closing parenthesis
      plan.sql += ", store_rejects=true, rejects_table=" + QuoteLiteral(table) +
                  ", rejects_scan=" + QuoteLiteral(scan) + ")";
    }
    return plan;
  }

  // DuckDB keeps rejected rows only for a scan without union_by_name, so
  // several CSV objects are read together only when ragged rows are padded.
  bool ReadsManyFiles(const DecodeRequest& req) const override {
    return req.options.is_object() && req.options.value("ragged", "report") == "pad";
  }

  std::string Extension() const override { return delimiter_ == "\t" ? "tsv" : "csv"; }

 private:
  std::string delimiter_;
};

size_t SkipSpace(const std::string& s, size_t i) {
  if (i == 0 && s.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return i;
}

// The header row of an array-of-arrays document ("[[\"NAME\",\"POP\"],[...]..."),
// or nullopt when the document has another shape.
Result<std::optional<std::vector<std::string>>> ArrayOfArraysHeader(const std::string& path) {
  std::string head = ReadHead(path, 1 << 16);
  size_t i = SkipSpace(head, 0);
  if (i >= head.size() || head[i] != '[') return std::optional<std::vector<std::string>>();
  i = SkipSpace(head, i + 1);
  if (i >= head.size() || head[i] != '[') return std::optional<std::vector<std::string>>();
  // The first inner array ends at the first ']' outside a string.
  bool in_string = false;
  size_t end = i + 1;
  for (; end < head.size(); ++end) {
    char c = head[end];
    if (in_string) {
      if (c == '\\') {
        ++end;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == ']') {
      break;
    }
  }
  nlohmann::json row = end < head.size()
                           ? nlohmann::json::parse(head.substr(i, end - i + 1), nullptr, false)
                           : nlohmann::json();
  if (!row.is_array() || row.empty()) {
    return Status::DataError(path +
                             ": an array of arrays needs a header row of column names first "
                             "(as the Census API sends), within the first 64 KiB");
  }
  std::vector<std::string> names;
  for (size_t col = 0; col < row.size(); ++col) {
    std::string name = row[col].is_string() ? row[col].get<std::string>() : row[col].dump();
    names.push_back(name.empty() ? "column" + std::to_string(col) : name);
  }
  return std::optional<std::vector<std::string>>(std::move(names));
}

class JsonDecoder final : public Decoder {
 public:
  explicit JsonDecoder(bool newline_delimited) : ndjson_(newline_delimited) {}

  Result<std::string> TableSql(const DecodeRequest& req) const override {
    if (!ndjson_ && req.options.contains("records")) {
      // Records at a path: unnest the list, then its structs into columns.
      std::string expr = "r";
      const nlohmann::json& records = req.options["records"];
      std::string path = records.is_string() ? records.get<std::string>() : records.dump();
      if (path.rfind("$.", 0) == 0) path = path.substr(2);
      for (const std::string& part : Split(path, '.')) expr += "." + QuoteIdent(part);
      // The whole document is one JSON object: let the reader take all of it.
      uint64_t max_object = 16 << 20;
      for (const std::string& file : FilesOf(req)) {
        std::error_code ec;
        uint64_t size = std::filesystem::file_size(file, ec);
        if (!ec) max_object = std::max<uint64_t>(max_object, size + 1);
      }
      std::string sql =
          "(SELECT unnest(" + expr + ", max_depth := 2) FROM read_json(" + FilesArg(req) +
          ", format='auto', maximum_object_size=" + std::to_string(max_object) + ") r)";
      if (req.all_text) return "(SELECT COLUMNS(*)::VARCHAR FROM " + sql + ")";
      return sql;
    }
    if (!ndjson_) {
      ASSIGN_OR_RETURN(auto header, ArrayOfArraysHeader(req.path));
      if (header) {
        // Every value as text, as such APIs send them; rows after the header.
        std::vector<std::string> cols;
        for (size_t i = 0; i < header->size(); ++i) {
          cols.push_back("json->>" + std::to_string(i) + " AS " + QuoteIdent((*header)[i]));
        }
        return "(SELECT " + Join(cols, ", ") +
               " FROM (SELECT json, row_number() OVER () AS sluice_row FROM read_json_objects(" +
               QuoteLiteral(req.path) + ", format='array')) WHERE sluice_row > 1)";
      }
    }
    std::string sql = "read_json(" + FilesArg(req);
    sql += ndjson_ ? ", format='newline_delimited'" : ", format='auto'";
    if (!req.paths.empty()) sql += ", union_by_name=true";
    if (req.options.contains("sample_size")) {
      sql += ", sample_size=" + Literal(req.options["sample_size"]);
    }
    if (req.options.contains("compression")) {
      sql += ", compression=" + Literal(req.options["compression"]);
    }
    sql += ")";
    if (req.all_text) {
      // JSON has no "all varchar" switch: cast after reading.
      return "(SELECT COLUMNS(*)::VARCHAR FROM " + sql + ")";
    }
    return sql;
  }
  std::string Extension() const override { return ndjson_ ? "ndjson" : "json"; }
  // Arrays of arrays carry their own header per file: those are read one by one.
  bool ReadsManyFiles(const DecodeRequest& req) const override {
    return ndjson_ || (req.options.is_object() && req.options.contains("records"));
  }

 private:
  bool ndjson_;
};

class ParquetDecoder final : public Decoder {
 public:
  Result<std::string> TableSql(const DecodeRequest& req) const override {
    std::string sql =
        "read_parquet(" + FilesArg(req) + (req.paths.empty() ? ")" : ", union_by_name=true)");
    if (req.all_text) return "(SELECT COLUMNS(*)::VARCHAR FROM " + sql + ")";
    return sql;
  }
  std::string Extension() const override { return "parquet"; }
  bool ReadsManyFiles(const DecodeRequest&) const override { return true; }
};

}  // namespace

std::vector<std::pair<std::string, DecoderFactory>> BuiltinDecoders() {
  return {
      {"csv", [] { return std::make_unique<CsvDecoder>(""); }},
      {"tsv", [] { return std::make_unique<CsvDecoder>("\t"); }},
      {"json", [] { return std::make_unique<JsonDecoder>(false); }},
      {"ndjson", [] { return std::make_unique<JsonDecoder>(true); }},
      {"parquet", [] { return std::make_unique<ParquetDecoder>(); }},
      {"html_table", NewHtmlTableDecoder},
  };
}
}  // namespace sluice
