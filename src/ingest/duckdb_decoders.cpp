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
#include "core/hash.h"
#include "core/strings.h"
#include "ingest/database.h"
#include "ingest/decoder.h"
#include "ingest/gtfs_realtime.h"
#include "ingest/html_table.h"
#include "ingest/stream_nats.h"

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

// CSV and TSV through DuckDB's read_csv. A plain read is exactly what the
// engine does by default: its sniffer decides the header, delimiter, quoting
// and types unless the source sets them, so Sluice loads what DuckDB loads.
// When a plain read fails, the loader asks the sniffer what it chose
// (SniffSql) and reads again, guarded: that dialect and those types stated,
// what the reader cannot load kept aside (store_rejects) for the loader to
// judge: a value that does not fit a type (its column widens) or a row broken
// in structure (the load fails, or skips and logs it).
class CsvDecoder final : public Decoder {
 public:
  explicit CsvDecoder(std::string delimiter) : delimiter_(std::move(delimiter)) {}

  // The plain read.
  Result<std::string> TableSql(const DecodeRequest& req) const override {
    std::string sql = "read_csv(" + FilesArg(req) + UserOptions(req, /*for_sniff=*/false);
    if (!req.paths.empty()) sql += ", union_by_name=true";
    if (AllText(req)) sql += ", all_varchar=true";
    return sql + ", filename=false)";
  }

  std::optional<std::string> SniffSql(const DecodeRequest& req) const override {
    Result<Settled> settled = Settle(req);
    if (!settled.ok()) return std::nullopt;
    const DecodeRequest& r = settled->request;
    return "SELECT json_object('delim', Delimiter, 'quote', Quote, 'escape', Escape, "
           "'new_line', NewLineDelimiter, 'comment', Comment, 'skip', SkipRows, 'header', "
           "HasHeader, 'columns', Columns, 'dateformat', DateFormat, 'timestampformat', "
           "TimestampFormat)::VARCHAR FROM sniff_csv(" +
           QuoteLiteral(r.path) + UserOptions(r, /*for_sniff=*/true) +
           (r.keep_rejects ? ", ignore_errors=true" : "") + ")";
  }

  Result<DecodePlan> Plan(const DecodeRequest& req) const override {
    if (!req.paths.empty()) {
      // Several files: each with its own reading (encoding, dialect), by name.
      DecodePlan all;
      std::vector<std::string> reads;
      for (const std::string& file : req.paths) {
        DecodeRequest one = req;
        one.paths.clear();
        one.path = file;
        ASSIGN_OR_RETURN(DecodePlan p, Plan(one));
        reads.push_back("SELECT * FROM " + p.sql);
        for (const std::string& note : p.notes) all.notes.push_back(Basename(file) + ": " + note);
        all.rejects.insert(all.rejects.end(), p.rejects.begin(), p.rejects.end());
      }
      all.sql = "(" + Join(reads, " UNION ALL BY NAME ") + ")";
      return all;
    }
    ASSIGN_OR_RETURN(Settled settled, Settle(req));
    DecodePlan plan;
    plan.notes = std::move(settled.notes);
    const DecodeRequest& r = settled.request;
    if (!r.keep_rejects) {
      ASSIGN_OR_RETURN(plan.sql, TableSql(r));
      return plan;
    }
    ASSIGN_OR_RETURN(std::string guarded, GuardedSql(r));
    static std::atomic<uint64_t> counter{0};
    uint64_t n = counter.fetch_add(1);
    RejectTables rejects{"sluice_rejects_" + std::to_string(n),
                         "sluice_reject_scans_" + std::to_string(n)};
    plan.sql = guarded + ", store_rejects=true, rejects_table=" + QuoteLiteral(rejects.errors) +
               ", rejects_scan=" + QuoteLiteral(rejects.scans) + ")";
    plan.rejects.push_back(std::move(rejects));
    return plan;
  }

  // Each object is read on its own (its own dialect, encoding and rejects).
  bool ReadsManyFiles(const DecodeRequest&) const override { return false; }

  std::string Extension() const override { return delimiter_ == "\t" ? "tsv" : "csv"; }

 private:
  struct Settled {
    DecodeRequest request;  // options normalised; path the file actually read
    std::vector<std::string> notes;
  };

  // Settles the encoding: a UTF-16 byte-order mark is read as UTF-16; a file
  // that is not UTF-8 and says nothing is read as Windows-1252 through a
  // UTF-8 copy in the derived cache, with a note. Checks `ragged`.
  static Result<Settled> Settle(const DecodeRequest& req) {
    Settled out{req, {}};
    DecodeRequest& r = out.request;
    if (!r.options.is_object()) r.options = nlohmann::json::object();
    if (r.options.contains("encoding")) {
      const nlohmann::json& e = r.options["encoding"];
      std::string name = ToLower(e.is_string() ? e.get<std::string>() : e.dump());
      if (name == "utf8" || name == "utf-8") {
        r.options["encoding"] = "utf-8";
      } else if (name == "latin1" || name == "latin-1" || name == "iso-8859-1" ||
                 name == "iso8859-1") {
        r.options["encoding"] = "latin-1";
      } else if (name == "utf16" || name == "utf-16") {
        r.options["encoding"] = "utf-16";
      } else {
        return Status::Invalid("options.encoding: '" + name +
                               "' is not supported; use utf-8, latin-1 or utf-16");
      }
    } else {
      std::string head = ReadHead(req.path, 2);
      if (head == "\xFF\xFE" || head == "\xFE\xFF") {
        r.options["encoding"] = "utf-16";
        out.notes.push_back(
            "starts with a UTF-16 byte-order mark: read as UTF-16 (set options.encoding to say "
            "so)");
      } else {
        ASSIGN_OR_RETURN(std::optional<Utf8Error> bad, FindInvalidUtf8(req.path));
        if (bad) {
          std::string dir = req.cache_dir.empty() ? Dirname(req.path) : req.cache_dir;
          std::string copy = JoinPath(JoinPath(dir, "utf8"),
                                      Sha256Hex(req.path).substr(0, 16) + "-" + Basename(req.path));
          if (!FileExists(copy)) RETURN_IF_ERROR(TranscodeWindows1252(req.path, copy));
          r.path = copy;
          out.notes.push_back("not valid UTF-8 (line " + std::to_string(bad->line) + ", byte " +
                              std::to_string(bad->offset) +
                              "): read as Windows-1252 (Latin-1); set options.encoding "
                              "(utf-8, latin-1 or utf-16) to say which it is");
        }
      }
    }
    std::string ragged = r.options.value("ragged", "report");
    if (ragged != "report" && ragged != "pad") {
      return Status::Invalid("options.ragged: '" + ragged +
                             "': use report (rows with too many or too few fields are set aside) "
                             "or pad (missing fields are null)");
    }
    return out;
  }

  // Every column as text: a source with columns:, or options: {all_varchar: true}.
  static bool AllText(const DecodeRequest& req) {
    return req.all_text || (req.options.is_object() && req.options.value("all_varchar", false));
  }

  // The source's options as read_csv (or sniff_csv) parameters.
  std::string UserOptions(const DecodeRequest& req, bool for_sniff) const {
    // Sluice option name -> read_csv parameter.
    static const std::map<std::string, std::string> kMap = {{"delimiter", "delim"},
                                                            {"header", "header"},
                                                            {"quote", "quote"},
                                                            {"escape", "escape"},
                                                            {"encoding", "encoding"},
                                                            {"skip", "skip"},
                                                            {"sample_size", "sample_size"},
                                                            {"date_format", "dateformat"},
                                                            {"timestamp_format", "timestampformat"},
                                                            {"compression", "compression"}};
    std::string sql;
    bool has_delim = false;
    for (const auto& [key, value] : req.options.items()) {
      auto it = kMap.find(key);
      if (it == kMap.end()) continue;  // options for other stages (records, table...)
      has_delim |= key == "delimiter";
      sql += ", " + it->second + "=" + Literal(value);
    }
    if (!has_delim && !delimiter_.empty()) sql += ", delim=" + QuoteLiteral(delimiter_);
    if (!for_sniff && req.options.value("ragged", "report") == "pad") sql += ", null_padding=true";
    return sql;
  }

  // A guarded read without its closing parenthesis: the sniffed dialect and
  // types stated (nothing guessed twice), text where asked.
  static Result<std::string> GuardedSql(const DecodeRequest& r) {
    const nlohmann::json& d = r.dialect;
    if (!d.is_object() || !d.contains("columns") || !d["columns"].is_array() ||
        d["columns"].empty()) {
      return Status::DataError(r.path + ": DuckDB's sniffer found no columns in the file");
    }
    auto text = [&](const char* key) {
      std::string v = d.contains(key) && d[key].is_string() ? d[key].get<std::string>() : "";
      return v == "(empty)" ? std::string() : v;
    };
    std::string sql = "read_csv(" + QuoteLiteral(r.path) +
                      ", auto_detect=false, delim=" + QuoteLiteral(text("delim")) +
                      ", quote=" + QuoteLiteral(text("quote")) +
                      ", escape=" + QuoteLiteral(text("escape")) +
                      ", new_line=" + QuoteLiteral(text("new_line")) +
                      ", comment=" + QuoteLiteral(text("comment")) +
                      ", skip=" + std::to_string(d.value("skip", 0)) +
                      ", header=" + (d.value("header", true) ? "true" : "false");
    std::vector<std::string> columns;
    for (const auto& c : d["columns"]) {
      std::string name = c.value("name", "");
      std::string type = c.value("type", "VARCHAR");
      if (AllText(r) ||
          std::find(r.text_columns.begin(), r.text_columns.end(), name) != r.text_columns.end()) {
        type = "VARCHAR";
      }
      columns.push_back(QuoteLiteral(name) + ": " + QuoteLiteral(type));
    }
    sql += ", columns={" + Join(columns, ", ") + "}";
    if (!text("dateformat").empty()) sql += ", dateformat=" + QuoteLiteral(text("dateformat"));
    if (!text("timestampformat").empty()) {
      sql += ", timestampformat=" + QuoteLiteral(text("timestampformat"));
    }
    for (const char* key : {"encoding", "compression"}) {
      if (r.options.contains(key)) sql += std::string(", ") + key + "=" + Literal(r.options[key]);
    }
    if (r.options.value("ragged", "report") == "pad") sql += ", null_padding=true";
    return sql + ", filename=false";
  }

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
      std::string sql = "(SELECT unnest(" + expr + ", max_depth := 2) FROM read_json(" +
                        FilesArg(req) +
                        ", format='auto', maximum_object_size=" + std::to_string(max_object) +
                        (req.sample_all ? ", sample_size=-1" : "") + ") r)";
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
    if (req.sample_all) {
      sql += ", sample_size=-1";
    } else if (req.options.contains("sample_size")) {
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
      {"gtfs-rt", NewGtfsRealtimeDecoder},
      {"database", NewDatabaseDecoder},
      {"messages", NewMessagesDecoder},
  };
}
}  // namespace sluice
