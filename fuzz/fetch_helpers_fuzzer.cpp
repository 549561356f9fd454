// Fuzzes what the fetcher parses from servers: Link headers, Retry-After
// values and JSON paths over response bodies.
#include <cstdint>
#include <string>

#include "ingest/fetcher.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  (void)sluice::NextLink(text);
  (void)sluice::RetryAfterSeconds(text, 1795523696LL * 1000000);
  size_t split = text.find('\n');
  std::string path = split == std::string::npos ? "data" : text.substr(0, split);
  std::string body = split == std::string::npos ? text : text.substr(split + 1);
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
  if (!doc.is_discarded()) (void)sluice::JsonAtPath(doc, path);
  // Fetch settings as a source's YAML would give them.
  sluice::SourceSpec source;
  source.fetch.options = {{"timeout", path}, {"rate_limit", path}, {"backoff", path}};
  source.fetch.paginate = {{"type", "cursor"}, {"cursor_path", path}};
  (void)sluice::ParseFetchSettings(source);
  return 0;
}
