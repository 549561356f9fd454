// Decoders turn a raw object into rows. Each format registers itself in the
// decoder registry; a decoder whose format DuckDB reads natively compiles to
// a table-function call (read_csv, read_json, read_parquet) so the engine's
// own parallel readers do the work. Thread-safe after start-up.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace sluice {

struct DecodeRequest {
  std::string path;                                   // local file of the raw object
  std::string format;                                 // csv | tsv | json | ndjson | parquet | ...
  nlohmann::json options = nlohmann::json::object();  // the source/table `options:`
  bool all_text = false;  // load every column as text (sources with `columns:`)
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // A SQL table expression that reads the object, e.g. read_csv('...', header=true).
  virtual Result<std::string> TableSql(const DecodeRequest& request) const = 0;
  // The file extension raw objects of this format are stored with.
  virtual std::string Extension() const = 0;
};

using DecoderFactory = std::function<std::unique_ptr<Decoder>()>;

// The decoders compiled into Sluice (see duckdb_decoders.cpp).
std::vector<std::pair<std::string, DecoderFactory>> BuiltinDecoders();
// Registers (or replaces) a decoder for a format name.
bool RegisterDecoder(const std::string& format, DecoderFactory factory);
// The decoder for format, or an error listing the known ones.
Result<const Decoder*> FindDecoder(const std::string& format);
std::vector<std::string> RegisteredFormats();

}  // namespace sluice
