// The HTTP API's router (DESIGN.md §4). Each route checks the caller's role,
// then becomes the engine request the CLI sends over the owner's socket for
// the same thing (engine/engine.h) — one set of handlers behind both
// transports — and maps the engine's answer to a status: an error's kind
// (invalid, not_found, unavailable, ...) picks 400/404/503..., and every
// error is application/problem+json.
//
// Auth: with no `tokens:` configured the API is open (bind it to loopback);
// otherwise `Authorization: Bearer TOKEN` is hashed (SHA-256) and compared
// with the configured hashes in constant time. Roles: viewer reads,
// operator also starts runs, admin may do everything. 401 without a valid
// token, 403 when the token's role is too low. Token material is never logged.
//
// Thread-safe: Handle() is called concurrently from the server's handler threads.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/project.h"
#include "core/metrics.h"
#include "engine/engine.h"
#include "engine/http_server.h"
#include "server/cache.h"

namespace sluice {

class ApiRouter {
 public:
  // `health` answers /healthz's details (the scheduler's view); may be null.
  ApiRouter(Engine* engine, ServerSpec spec, std::function<nlohmann::json()> health);
  ServerResponse Handle(const ServerRequest& request) const;
  // A dataset read the response cache answers, from memory alone (the
  // publications and the project held by the engine): for the HTTP
  // server's I/O thread (HttpServerOptions::answer_at_once), so a hit
  // skips the handler pool. nullopt: Handle() answers it (a miss, an
  // error, anything not in memory).
  std::optional<ServerResponse> AnswerAtOnce(const ServerRequest& request) const;
  // The response cache's counts (for /metrics).
  ResponseCache::Stats CacheStats() const { return cache_->stats(); }

 private:
  struct Caller {
    ApiRole role = ApiRole::kAdmin;
    std::string name;  // the token's name; "" when the API is open
  };
  // Refused (with why) when a browser on another site sent a request that
  // changes something, or when a tokenless loopback API is reached under
  // another host name (DNS rebinding).
  Result<bool> FromThisSite(const ServerRequest& request) const;
  // The caller, or the 401 to answer.
  Result<Caller> Authenticate(const ServerRequest& request) const;
  // GET /api/v1/data/{table}: a cached answer when its key (the query and
  // the publications it reads) is known, a 304 when the client has it.
  ServerResponse Data(const ServerRequest& request, const std::string& table) const;
  // The cached answer (or 304) for a data request whose key the engine gave.
  std::optional<ServerResponse> FromCache(const ServerRequest& request,
                                          const KeyMemo::Keyed& keyed) const;
  // /api/v1/assets[/{name}], /lineage, /issues, /fetches.
  ServerResponse Catalog(const ServerRequest& request,
                         const std::vector<std::string>& segments) const;
  // POST /api/v1/check/{source}: the body is the file, or {"url": ...}
  // when the project allows it; the report of `sluice check`.
  ServerResponse Check(const ServerRequest& request, const std::string& source) const;
  // GET / and /ui/{file}: the web UI's embedded files, with ETags (304).
  ServerResponse Static(const ServerRequest& request, const std::string& name) const;
  // GET /api/v1/events: server-sent events of runs and tasks as they
  // happen (after Last-Event-ID or ?after=N); each stream ends after
  // kEventStreamSeconds and the client reconnects.
  ServerResponse Events(const ServerRequest& request) const;
  // POST /api/v1/query {"sql", "limit"}: the read `sluice query` makes
  // (one read-only statement over published relations), as JSON rows.
  ServerResponse Query(const ServerRequest& request) const;
  // POST /api/v1/plan {"select", ...}: what a run would do, and why.
  ServerResponse Plan(const ServerRequest& request) const;
  // POST /api/v1/assets/{name}/rollback {"to": VERSION}.
  ServerResponse Rollback(const ServerRequest& request, const std::string& asset) const;
  // /metrics: Prometheus text.
  ServerResponse Metrics() const;
  // The request metrics: one more request of route answered with status, since t0.
  void CountRequest(const ServerRequest& request, const std::string& route, int status,
                    std::chrono::steady_clock::time_point t0) const;
  // Handle without the request metrics; sets *label to the matched route's pattern.
  ServerResponse Dispatch(const ServerRequest& request, std::string* label) const;

  Engine* engine_;
  ServerSpec spec_;
  std::function<nlohmann::json()> health_;
  std::unique_ptr<ResponseCache> cache_;
  std::unique_ptr<KeyMemo> memo_;                  // the keys of data requests seen (AnswerAtOnce)
  static constexpr int64_t kMaxQueryRows = 10000;  // rows a /query answer holds at most
  static constexpr int64_t kQueryTimeoutSeconds = 60;  // a /query's read is interrupted after
  static constexpr int kMaxQueries = 4;                // /query reads at once (then 503)
  mutable std::atomic<int> queries_{0};
  static constexpr int kMaxEventStreams = 4;  // event streams open at once (each holds a handler)
  static constexpr int kEventStreamSeconds = 15;  // a stream's life (the read timeout bounds it)
  mutable std::atomic<int> event_streams_{0};
  static constexpr int kMaxStreams = 4;  // answers streamed at once (the rest whole)
  mutable std::atomic<int> streams_{0};
  mutable MetricsRegistry metrics_;  // requests by route, method and status; their durations
};

// An engine response as HTTP: "result" with `ok_status`, or a problem whose
// status follows the error's kind.
ServerResponse EngineToHttp(const nlohmann::json& response, int ok_status = 200);

}  // namespace sluice
