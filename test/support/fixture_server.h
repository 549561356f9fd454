// A real HTTP server on 127.0.0.1 for tests: serves a fixture folder and
// injects the faults collection code must survive. Used in-process by unit
// tests and as the `fixture_server` binary by data-driven cases and the demo.
//
// Routes (N, K: query parameters; <path> is relative to the root):
//   /files/<path>             the file, with ETag and Last-Modified; answers
//                             conditional requests with 304; compressed when
//                             the client accepts gzip (text and JSON types)
//   /fail/<key>/<path>        ?times=N&status=500: the first N requests for
//                             key fail with status, then the file is served
//   /throttle/<key>/<path>    ?times=N&retry_after=S: 429 with Retry-After
//   /slow/<path>              ?chunk=K&delay_ms=D: K bytes every D ms
//   /stall/<path>             sends half the file, then nothing for 60 s
//   /gate/<n>/<path>          the file once n requests for gates wait at once
//                             (proof that a client fetches side by side);
//                             503 naming how many came when 10 s pass first
//   /truncate/<path>          announces the whole length, sends half, closes
//   /html_error               200 text/html, an error page
//   /as_html/<path>           the file, labelled text/html
//   /redirect/<path>          302 to /files/<path>
//   /redirect_to              ?url=U: 302 to U (an absolute URL, any scheme)
//   /echo                     a tiny CSV, remembering the request's headers and
//                             query parameters (LastEcho)
//   /loop/<n>                 302 to /loop/<n+1>, forever
//   /auth/bearer/<path>       401 unless "Authorization: Bearer <token>"
//   /auth/basic/<path>        401 unless Basic <user:password>
//   /pages/<style>/<path>     the JSON array in <path> in pages of ?per_page
//                             (default 10), style page (?page=1..), offset
//                             (?offset=&limit=), cursor (?cursor=; next token
//                             at meta.next_cursor), next_url (full next URL at
//                             links.next, echoing every query parameter — a
//                             key included — as APIs do) or link (Link
//                             header rel="next"); records under "data"
//   /census/<path>            a Census-style API over an array-of-arrays file:
//                             ?get=A,B&for=state:*&key=K (401 without the key)
//   POST /post/<path>         the file, remembering the request body (LastPostBody)
//   /stats                    {"<route key>": requests} as JSON; /stats/reset
#pragma once

#include <memory>
#include <string>

namespace sluice::testing {

struct FixtureServerOptions {
  std::string root;     // the folder served
  std::string token;    // expected bearer token
  std::string basic;    // expected "user:password"
  std::string api_key;  // the Census-style API's key
  int port = 0;         // 0 = any free port
  // HTTPS with this certificate and key (PEM files) instead of plain HTTP.
  std::string tls_cert, tls_key;
};

class FixtureServer {
 public:
  explicit FixtureServer(FixtureServerOptions options);
  ~FixtureServer();
  FixtureServer(const FixtureServer&) = delete;
  FixtureServer& operator=(const FixtureServer&) = delete;

  // Binds 127.0.0.1 and serves on a background thread; false if it cannot bind.
  bool Start();
  void Stop();
  int port() const;
  std::string Url(const std::string& path) const;  // "http(s)://127.0.0.1:<port>/<path>"
  // Requests seen for a stats key (e.g. "fail/k", "files/a.csv").
  int Count(const std::string& key) const;
  // "<body>|<content type>" of the last POST to /post/<path>.
  std::string LastPostBody() const;
  // "Name: value" lines and "?param=value" lines of the last /echo request.
  std::string LastEcho() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::testing
