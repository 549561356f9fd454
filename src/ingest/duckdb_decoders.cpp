// Decoders for the formats DuckDB reads itself: CSV/TSV, JSON, NDJSON,
// Parquet. Options from the project map onto the reader's named parameters.
#include <map>

#include "core/strings.h"
#include "ingest/decoder.h"

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
    std::string sql = "read_csv(" + QuoteLiteral(req.path);
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
  std::string Extension() const override { return delimiter_ == "\t" ? "tsv" : "csv"; }

 private:
  std::string delimiter_;
};

class JsonDecoder final : public Decoder {
 public:
  explicit JsonDecoder(bool newline_delimited) : ndjson_(newline_delimited) {}

  Result<std::string> TableSql(const DecodeRequest& req) const override {
    std::string sql = "read_json(" + QuoteLiteral(req.path);
    sql += ndjson_ ? ", format='newline_delimited'" : ", format='auto'";
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

 private:
  bool ndjson_;
};

class ParquetDecoder final : public Decoder {
 public:
  Result<std::string> TableSql(const DecodeRequest& req) const override {
    std::string sql = "read_parquet(" + QuoteLiteral(req.path) + ")";
    if (req.all_text) return "(SELECT COLUMNS(*)::VARCHAR FROM " + sql + ")";
    return sql;
  }
  std::string Extension() const override { return "parquet"; }
};

}  // namespace

std::vector<std::pair<std::string, DecoderFactory>> BuiltinDecoders() {
  return {
      {"csv", [] { return std::make_unique<CsvDecoder>(""); }},
      {"tsv", [] { return std::make_unique<CsvDecoder>("\t"); }},
      {"json", [] { return std::make_unique<JsonDecoder>(false); }},
      {"ndjson", [] { return std::make_unique<JsonDecoder>(true); }},
      {"parquet", [] { return std::make_unique<ParquetDecoder>(); }},
  };
}
}  // namespace sluice
