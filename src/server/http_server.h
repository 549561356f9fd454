// The HTTP transport of `sluice serve` (DESIGN.md §4): Boost.Beast over Asio.
// A few I/O threads hold every keep-alive connection asynchronously; each
// complete request is handed to a bounded pool of handler threads (a handler
// may wait on the warehouse), and its response is written back on the I/O
// side. What a request means is not decided here: the handler (server/api.h)
// routes it to the engine, the same handlers the CLI reaches over the owner's
// socket.
//
// Limits: request headers and body sizes, a read timeout per request (a slow
// or idle client is dropped, never a thread held), a cap on connections.
// Stop() is graceful: no new connections, idle ones closed, requests in
// flight answered (with Connection: close) within a grace period.
//
// Thread-safety: Start() and Stop() from one thread; the handler is called
// concurrently from the handler threads and must be thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace sluice {

// Lets a handler send its answer in chunks (Transfer-Encoding: chunked) as
// it produces it, instead of returning it whole: Start() sends the status
// and headers, each Write() one chunk and waits until the connection took
// it (false: the client is gone or too slow — stop producing). A handler
// that started still returns; its ServerResponse is then ignored but for
// `stream_failed`, which ends the connection without the last chunk, so
// the client sees a cut answer, never a complete wrong one. Used from the
// handler's thread only.
class ChunkedWriter {
 public:
  virtual ~ChunkedWriter() = default;
  virtual bool Start(int status, const std::string& content_type,
                     const std::vector<std::pair<std::string, std::string>>& headers) = 0;
  virtual bool Write(std::string_view chunk) = 0;
  virtual bool started() const = 0;
};

struct ServerRequest {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // percent-decoded, without the query string
  std::map<std::string, std::string> query;    // decoded; a repeated key keeps the last
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string remote;  // "127.0.0.1:54321"
  // Null when the client cannot take chunks (HTTP/1.0, HEAD).
  ChunkedWriter* writer = nullptr;
  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct ServerResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  std::string body;
  bool stream_failed = false;  // after ChunkedWriter::Start: the answer is cut short
};

// An error as RFC 9457 application/problem+json: {type, title, status, detail};
// the detail passes through the redactor.
ServerResponse ProblemResponse(int status, const std::string& title, const std::string& detail);

using HttpHandler = std::function<ServerResponse(const ServerRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port (see HttpServer::port())
  int io_threads = 2;
  // Room for the streams that hold a handler while a client reads (at most
  // 4 dataset answers and 4 event streams, server/api.h) and the rest.
  int handler_threads = 16;
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = size_t{16} << 20;
  int read_timeout_ms = 30000;   // to receive one whole request
  int write_timeout_ms = 60000;  // to send one whole response
  int max_connections = 4096;
};

// "a%20b" -> "a b"; '+' -> ' ' when form is set (query strings). nullopt-like:
// InvalidArgument on a malformed escape.
Result<std::string> PercentDecode(const std::string& text, bool form);

class HttpServer {
 public:
  // Binds and starts serving. IOError naming the address when it cannot bind
  // (in use, not local, no permission).
  static Result<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                   HttpHandler handler);
  ~HttpServer();  // Stop(0) when still running
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound port (the chosen one when options.port was 0).
  int port() const;
  // Graceful stop: waits up to grace_ms for requests in flight. Idempotent.
  void Stop(int grace_ms = 10000);

  struct Impl;  // the listener, sessions and threads (http_server.cpp)

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice
