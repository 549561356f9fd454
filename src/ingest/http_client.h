// The HTTP client collection uses (STYLE: an interface, because tests swap in
// fault-injecting ones; the real one is libcurl). One Send is one attempt:
// retries, pagination and guards live in the fetcher above it. The body
// streams to a file while it is hashed, so a 1 GB download never sits in
// memory. Thread-safe: each Send uses its own handle.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace sluice {

struct HttpRequest {
  std::string method = "GET";  // GET | POST
  std::string url;             // with its query string, secrets substituted
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;        // POST body
  std::string basic_auth;  // "user:password", "" = none
  int64_t connect_timeout_ms = 30000;
  int64_t timeout_ms = 0;            // the whole transfer; 0 = none
  int64_t stall_timeout_ms = 60000;  // no byte received for this long; 0 = none
  int max_redirects = 10;
  uint64_t max_bytes = 0;         // abort when the (decoded) body grows past it; 0 = none
  std::string if_none_match;      // an ETag, for a conditional request
  std::string if_modified_since;  // an HTTP date, for a conditional request
  std::string body_path;          // where the body is written (created or truncated)
  std::string ca_file;            // PEM certificates to trust instead of the system's; "" = system
};

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names; the final response's
  std::string effective_url;                   // after redirects
  uint64_t bytes = 0;                          // body bytes written (decoded)
  std::string sha256;                          // of the body as written
  std::optional<uint64_t> utf8_invalid_at;     // first byte that is not UTF-8, if any
  int redirects = 0;
  std::string Header(const std::string& lower_name) const;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // One attempt. A transport failure is an error Status (kTimeout for
  // timeouts and stalls, kIOError for connection and protocol errors,
  // kDataError for a body over max_bytes, kRefused for a redirect from https
  // to anything else: the request's credentials are never sent in clear);
  // any HTTP status is a response.
  virtual Result<HttpResponse> Send(const HttpRequest& request) = 0;
};

// The libcurl client (HTTP/1.1 and HTTPS, compressed responses accepted).
std::unique_ptr<HttpClient> NewCurlHttpClient();

}  // namespace sluice
