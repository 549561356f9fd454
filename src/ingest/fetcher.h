// Collecting one source (partition) over HTTP(S): templates and secrets into
// the request, then requests with retries (exponential backoff with jitter on
// connection errors, timeouts, 429 honouring Retry-After, and 5xx), a
// per-source rate limit, guards on what came back (content type, minimum
// size, an HTML page where data was expected), conditional requests (a 304
// keeps the previous raw object, so the version does not change) and
// pagination (page, offset, cursor, next URL, Link header). Every attempt is
// written to the fetch log; every page is its own raw object, and the source's
// input is the ordered list of them. Thread-safe; sources fetch in parallel.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "config/project.h"
#include "config/template.h"
#include "core/clock.h"
#include "core/secrets.h"
#include "ingest/http_client.h"
#include "lake/raw_archive.h"
#include "metadata/metadata_store.h"

namespace sluice {

// A source's fetch: settings, parsed and checked once.
struct FetchSettings {
  std::string method = "GET";
  int64_t timeout_ms = 600000;  // per request
  int64_t connect_timeout_ms = 30000;
  int64_t stall_timeout_ms = 60000;
  int retries = 3;  // further attempts after the first, on transient failures
  int64_t backoff_ms = 1000;
  double rate_per_second = 0;  // 0 = no limit
  uint64_t max_bytes = 0;
  std::string expect_content_type;
  uint64_t min_bytes = 0;
  std::string ca_file;                                 // absolute; "" = the system's certificates
  nlohmann::json paginate = nlohmann::json::object();  // {type, ...} or {}
};

// Reads fetch: of a source. Errors start with the key ("fetch.rate_limit: ...",
// "paginate: ..."); FetchSettingsErrorLoc says where that key is written.
Result<FetchSettings> ParseFetchSettings(const SourceSpec& source);
SourceLoc FetchSettingsErrorLoc(const SourceSpec& source, const std::string& message);

// True for http:// and https:// URLs.
bool IsHttpUrl(const std::string& url);

struct HttpFetchRequest {
  const SourceSpec* source = nullptr;
  std::string partition;
  TemplateContext context;  // vars, env, partition window
  std::string format;       // the body's format, for guards (csv, json, zip, ...)
  std::string extension;    // raw objects are stored with it
  // The project's defaults.retries when set: used unless fetch.retries is.
  int default_retries = -1;
};

struct HttpFetchResult {
  std::vector<StoredObject> objects;  // one per page, in order
  bool not_modified = false;          // a 304 kept the previous object
  int requests = 0;
};

class HttpFetcher {
 public:
  HttpFetcher(HttpClient* client, RawArchive* archive, MetadataStore* metadata, const Clock* clock,
              SecretResolver secrets)
      : client_(client),
        archive_(archive),
        metadata_(metadata),
        clock_(clock),
        secrets_(std::move(secrets)) {}

  Result<HttpFetchResult> Fetch(const HttpFetchRequest& request);
  // The first request's URL as the fetch log shows it (secrets redacted), for plan.
  Result<std::string> DisplayUrl(const HttpFetchRequest& request);

 private:
  HttpClient* client_;
  RawArchive* archive_;
  MetadataStore* metadata_;
  const Clock* clock_;
  SecretResolver secrets_;
};

// Parses an RFC 8288 Link header; the target of rel="next", or "".
std::string NextLink(const std::string& link_header);
// The value at a dotted JSON path ("meta.next_cursor", "data.0.id"); null when absent.
nlohmann::json JsonAtPath(const nlohmann::json& doc, const std::string& path);
// Seconds to wait from a Retry-After value (seconds or an HTTP date); -1 when unparsable.
int64_t RetryAfterSeconds(const std::string& value, Micros now);

}  // namespace sluice
