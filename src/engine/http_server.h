// The HTTP transport of the owner (DESIGN.md §4, §5): Boost.Beast over Asio,
// on `sluice serve`'s TCP port and on every owner's local socket alike.
// A few I/O threads hold every keep-alive connection asynchronously; each
// complete request is handed to a bounded pool of handler threads (a handler
// may wait on the warehouse), and its response is written back on the I/O
// side. What a request means is not decided here: the handler (server/api.h,
// or engine/owner.h's EngineEndpoint) routes it to the engine.
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
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace sluice {

// Lets a handler send its answer in chunks (Transfer-Encoding: chunked) as
// it produces it, instead of returning it whole: Start() sends the status
// and headers and waits for them; each Write() queues one chunk, written in
// order while the handler goes on, and waits only while 1 MiB is queued
// (false: the client is gone or too slow — stop producing). A handler that
// started still returns; the answer ends once its queue is written, and
// its ServerResponse is ignored but for `stream_failed`, which ends the
// connection without the last chunk, so the client sees a cut answer,
// never a complete wrong one. One thread at a time (the caller serialises).
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
  std::string remote;  // "127.0.0.1:54321", or "local"
  // Came in on the owner's local socket, from this user (checked by the
  // kernel's peer credentials): the CLI of the same account.
  bool local = false;
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
  bool tcp = true;  // listen on host:port
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port (see HttpServer::port())
  // A listening AF_UNIX socket to serve as well (the owner's, DESIGN §5):
  // the server takes it over and closes it. Each connection's peer must be
  // this process's user (else it is closed at once); its requests are
  // marked `local`. -1: none.
  int local_fd = -1;
  int io_threads = 2;  // at most the CPUs the process may run on
  // Room for the streams that hold a handler while a client reads (at most
  // 4 dataset answers and 4 event streams, server/api.h) and the rest.
  int handler_threads = 16;
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = size_t{16} << 20;
  int read_timeout_ms = 30000;   // to receive one whole request
  int write_timeout_ms = 60000;  // to send one whole response
  int max_connections = 4096;
  // Answers a request on the I/O thread itself, before the handler pool,
  // when it can without waiting for anything (a cache hit); nullopt sends
  // the request on to the handler. Must never block. Null: none.
  std::function<std::optional<ServerResponse>(const ServerRequest&)> answer_at_once;
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
