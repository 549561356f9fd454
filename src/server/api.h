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

#include <functional>
#include <string>

#include "config/project.h"
#include "engine/engine.h"
#include "server/http_server.h"

namespace sluice {

class ApiRouter {
 public:
  // `health` answers /healthz's details (the scheduler's view); may be null.
  ApiRouter(Engine* engine, ServerSpec spec, std::function<nlohmann::json()> health);
  ServerResponse Handle(const ServerRequest& request) const;

 private:
  struct Caller {
    ApiRole role = ApiRole::kAdmin;
    std::string name;  // the token's name; "" when the API is open
  };
  // The caller, or the 401 to answer.
  Result<Caller> Authenticate(const ServerRequest& request) const;

  Engine* engine_;
  ServerSpec spec_;
  std::function<nlohmann::json()> health_;
};

// An engine response as HTTP: "result" with `ok_status`, or a problem whose
// status follows the error's kind.
ServerResponse EngineToHttp(const nlohmann::json& response, int ok_status = 200);

}  // namespace sluice
