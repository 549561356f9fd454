// One owner process per environment (DESIGN.md §5). DuckDB lets one process
// open a database file, so the first Sluice command that needs a state folder
// (<project>/.sluice/<env>) takes an exclusive flock on <state_dir>/owner,
// records how to reach it there, and serves the engine API on a Unix socket;
// every other command sends its request to that owner instead.
//
// Wire protocol (newline-delimited JSON, one exchange per connection): the
// client writes one request line; the owner writes zero or more
// {"type":"event","event":{...}} lines, then one
// {"type":"response","response":{...}} line, and closes. A malformed request
// or a handler that throws gets {"ok":false,"error":"..."}. A connection
// closed without a response line means the owner went away.
//
// Thread-safety: OwnerLease is not itself shared between threads; its serving
// thread runs `handler` concurrently, one thread per connection, so the
// handler must be thread-safe. The EventSink given to a handler may be called
// from several threads. ReadOwnerInfo, SendToOwner and Dispatch are safe to
// call from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/events.h"
#include "core/status.h"
#include "engine/http_server.h"

namespace sluice {

// Handles one request; may call `events` many times; returns the final response.
using RequestHandler =
    std::function<nlohmann::json(const nlohmann::json& request, const EventSink& events)>;

// The engine API over HTTP (DESIGN §5: one server stack for the socket and
// the TCP port): POST kEnginePath with the request as a JSON object; the
// answer streams as newline-delimited JSON (chunked) — a line
// {"type":"event","event":…} for each event as the handler sends it, then
// {"type":"response","response":…}. Every line passes through the redactor.
// The owner's local socket serves it; `serve`'s router (server/api.h) serves
// it there as well, beside the HTTP API, and never on its TCP port.
inline constexpr const char* kEnginePath = "/api/v1/engine";
ServerResponse ServeEngineRequest(const RequestHandler& handler, const ServerRequest& request);
// A router of kEnginePath alone (404 elsewhere): a short-lived owner's.
HttpHandler EngineEndpoint(RequestHandler handler);

struct OwnerInfo {
  int64_t pid = 0;
  std::string command;
  std::string socket_path;
  std::string started_at;  // UTC, "2026-01-02T03:04:05.678Z"
};

// Where the owner of state_dir listens, in a private (0700) folder:
// <abs state_dir>/sock/owner.sock when it fits sun_path, else
// /tmp/sluice-<uid>/<first 16 hex of sha256(abs state_dir)>.sock.
std::string OwnerSocketPath(const std::string& state_dir);

// Ownership of one state folder; move-only. Destruction releases it.
class OwnerLease {
 public:
  // Becomes the owner of state_dir (created if needed): flock on
  // <state_dir>/owner (non-blocking), OwnerInfo written into it, socket bound
  // (a stale one removed first, 0600 in a 0700 folder), and an HTTP server
  // (engine/http_server.h) started on it that answers with `handler`:
  // connections from other users are refused. Busy when another open file
  // (another process, or another lease in this one) holds the lock.
  static Result<OwnerLease> TryAcquire(const std::string& state_dir, const std::string& command,
                                       HttpHandler handler);
  // The same, serving the engine API alone (EngineEndpoint(handler)).
  static Result<OwnerLease> TryAcquire(const std::string& state_dir, const std::string& command,
                                       RequestHandler handler);

  OwnerLease(OwnerLease&&) noexcept;
  OwnerLease& operator=(OwnerLease&&) noexcept;
  OwnerLease(const OwnerLease&) = delete;
  OwnerLease& operator=(const OwnerLease&) = delete;
  ~OwnerLease();

  // Stops accepting, drops connections that have not sent a request yet, waits
  // for in-flight requests to finish, removes the socket, runs `before_unlock`
  // (the owner closes its warehouse there: DuckDB's file lock must be gone
  // before another process can become the owner), clears the owner file and
  // releases the lock. Idempotent.
  void Release(const std::function<void()>& before_unlock = nullptr);
  // Valid until the lease is destroyed (also after Release).
  const OwnerInfo& info() const;

 private:
  struct State;  // the lock, the socket and the serving threads (owner.cpp)
  explicit OwnerLease(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Reads <state_dir>/owner. NotFound when there is none (no file, or empty:
// released, or the owner is still starting); DataError when unparsable.
Result<OwnerInfo> ReadOwnerInfo(const std::string& state_dir);

// Sends one request to the owner's socket (POST kEnginePath), passes every
// event to `events` (may be null), and returns the final response. Errors:
//   NotFound  when nobody listens (no socket, connection refused);
//   IOError   when the owner closed the connection before the final response
//             (or answered 503: it is stopping);
//   Refused   when the socket is served by another user.
Result<nlohmann::json> SendToOwner(const std::string& socket_path, const nlohmann::json& request,
                                   const EventSink& events);

// The loop every command uses: become the owner and run `local` in-process
// (while the lease serves other processes with `serve_others`), or forward the
// request to the current owner. As the owner, `close` runs before the lease
// is released (it closes what the lease protects). Retries with backoff
// (10..200 ms) while the owner is starting or exiting, until timeout_ms; then
// Busy, naming the owner. A forwarded request that loses its owner mid-way is
// sent again to the next owner, so requests should be safe to repeat.
Result<nlohmann::json> Dispatch(const std::string& state_dir, const std::string& command,
                                const nlohmann::json& request, const RequestHandler& local,
                                const RequestHandler& serve_others, const EventSink& events,
                                const std::function<void()>& close = nullptr,
                                int timeout_ms = 10000);

}  // namespace sluice
