// Decoders turn a raw object into rows. Each format registers itself in the
// decoder registry; a decoder whose format DuckDB reads natively compiles to
// a table-function call (read_csv, read_json, read_parquet) so the engine's
// own parallel readers do the work. Thread-safe after start-up.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace sluice {

struct DecodeRequest {
  std::string path;                                   // local file of the raw object
  std::string format;                                 // csv | tsv | json | ndjson | parquet | ...
  nlohmann::json options = nlohmann::json::object();  // the source/table `options:`
  bool all_text = false;  // load every column as text (sources with `columns:`)
  std::string cache_dir;  // where a decoder may write files derived from the object
  // Several objects of the same shape (an API's pages) read in one scan;
  // when set, `path` is ignored. Only for decoders that ReadsManyFiles.
  std::vector<std::string> paths;
  // Columns to read as text because a value did not fit the type the reader
  // inferred for them (CSV): the loader narrows them again afterwards.
  std::vector<std::string> text_columns;
  // Infer types from every row, not a sample (JSON, after a value did not fit).
  bool sample_all = false;
  // Guarded read (CSV, after a plain read failed): keep what cannot be read
  // aside (DuckDB's store_rejects) instead of stopping, with the dialect and
  // types the engine's own sniffer chose (`dialect`, one row of SniffSql), so
  // that the rows read are those the engine reads by default.
  bool keep_rejects = false;
  nlohmann::json dialect;
};

// Temp tables a CSV read fills with what it set aside (DuckDB's store_rejects):
// the errors, one row per problem, and the scan (dialect, inferred types).
struct RejectTables {
  std::string errors;
  std::string scans;
};

// How to read one object: the SQL, what the user must be told about it
// ("not valid UTF-8; read as Windows-1252"), and the temp tables where the
// reader puts what it could not load, to be looked at after the build.
struct DecodePlan {
  std::string sql;
  std::vector<std::string> notes;
  std::vector<RejectTables> rejects;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // A SQL table expression that reads the object, e.g. read_csv('...', header=true).
  virtual Result<std::string> TableSql(const DecodeRequest& request) const = 0;
  // The full plan; decoders that inspect the file or report override it.
  virtual Result<DecodePlan> Plan(const DecodeRequest& request) const {
    ASSIGN_OR_RETURN(std::string sql, TableSql(request));
    return DecodePlan{std::move(sql), {}, {}};
  }
  // Readers that guess a dialect (CSV): a query whose one row and column is
  // a JSON object saying what DuckDB's sniffer would choose for the request,
  // for a guarded read's `dialect`. With request.keep_rejects, the sniffer
  // tolerates rows that do not fit (for files the strict one gives up on).
  // nullopt for formats without one.
  virtual std::optional<std::string> SniffSql(const DecodeRequest& /*request*/) const {
    return std::nullopt;
  }
  // True when one read can take request.paths (several objects at once).
  virtual bool ReadsManyFiles(const DecodeRequest& /*request*/) const { return false; }
  // The file extension raw objects of this format are stored with.
  virtual std::string Extension() const = 0;
};

using DecoderFactory = std::function<std::unique_ptr<Decoder>()>;

// Where the first byte that is not UTF-8 is in a file; nullopt when it is all
// valid UTF-8. (A UTF-16 byte-order mark counts as invalid.)
struct Utf8Error {
  uint64_t offset = 0;
  uint64_t line = 0;  // 1-based
};
Result<std::optional<Utf8Error>> FindInvalidUtf8(const std::string& path);

// Writes `path`, read as Windows-1252 (Latin-1 with the printable characters
// Windows puts in 0x80-0x9F), as UTF-8 to `out_path` (temp file + rename),
// without a leading UTF-8 byte-order mark: a file that starts with one and
// then has Latin-1 bytes must not name its first column "ï»¿id".
Status TranscodeWindows1252(const std::string& path, const std::string& out_path);

// The decoders compiled into Sluice (see duckdb_decoders.cpp).
std::vector<std::pair<std::string, DecoderFactory>> BuiltinDecoders();
// Registers (or replaces) a decoder for a format name.
bool RegisterDecoder(const std::string& format, DecoderFactory factory);
// The decoder for format, or an error listing the known ones.
Result<const Decoder*> FindDecoder(const std::string& format);
std::vector<std::string> RegisteredFormats();

}  // namespace sluice
