#include "server/api.h"

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/hash.h"
#include "core/strings.h"

namespace sluice {
namespace {

using nlohmann::json;

constexpr int kMaxRunsListed = 1000;

// The HTTP status of an engine error's kind (StatusCodeName).
int HttpStatusOf(const json& response) {
  std::string code = response.value("code", "");
  if (code == "invalid") return 400;
  if (code == "not_found") return 404;
  if (code == "refused") return 403;
  if (code == "busy") return 503;
  if (code == "timeout") return 504;
  if (code == "already_exists") return 409;
  if (code.empty()) return response.value("exit_code", 1) == 2 ? 400 : 500;
  return 500;
}

const char* TitleOf(int status) {
  switch (status) {
    case 400:
      return "Bad request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not found";
    case 405:
      return "Method not allowed";
    case 409:
      return "Conflict";
    case 503:
      return "Unavailable";
    case 504:
      return "Timed out";
    default:
      return "Internal error";
  }
}

ServerResponse JsonResponse(int status, const json& body) {
  ServerResponse response;
  response.status = status;
  response.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return response;
}

bool ConstantTimeEqual(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// "/api/v1/runs/12/log" -> {"api", "v1", "runs", "12", "log"}
std::vector<std::string> Segments(const std::string& path) {
  std::vector<std::string> out;
  for (std::string& s : Split(path, '/')) {
    if (!s.empty()) out.push_back(std::move(s));
  }
  return out;
}

// A positive run id, or nullopt.
std::optional<int64_t> ParseId(const std::string& text) {
  if (text.empty() || text.size() > 18 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  int64_t id = std::stoll(text);
  if (id <= 0) return std::nullopt;
  return id;
}

struct Route {
  const char* method;
  std::vector<std::string> pattern;  // "{id}" matches one segment
  std::optional<ApiRole> role;       // nullopt: no token needed
};

bool Matches(const std::vector<std::string>& pattern, const std::vector<std::string>& segments) {
  if (pattern.size() != segments.size()) return false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != "{id}" && pattern[i] != segments[i]) return false;
  }
  return true;
}

// Order matters only for readability: patterns do not overlap.
const std::vector<Route>& Routes() {
  static const std::vector<Route> routes = {
      {"GET", {"healthz"}, std::nullopt},
      {"GET", {"api", "v1", "runs"}, ApiRole::kViewer},
      {"POST", {"api", "v1", "runs"}, ApiRole::kOperator},
      {"GET", {"api", "v1", "runs", "{id}"}, ApiRole::kViewer},
      {"GET", {"api", "v1", "runs", "{id}", "log"}, ApiRole::kViewer},
      {"POST", {"api", "v1", "runs", "{id}", "cancel"}, ApiRole::kOperator},
  };
  return routes;
}

}  // namespace

ServerResponse EngineToHttp(const json& response, int ok_status) {
  if (response.value("ok", false)) {
    return JsonResponse(ok_status, response.contains("result") ? response["result"] : json());
  }
  int status = HttpStatusOf(response);
  ServerResponse out = ProblemResponse(status, TitleOf(status), response.value("error", ""));
  if (status == 503) out.headers.emplace_back("Retry-After", "1");
  return out;
}

ApiRouter::ApiRouter(Engine* engine, ServerSpec spec, std::function<json()> health)
    : engine_(engine), spec_(std::move(spec)), health_(std::move(health)) {}

Result<ApiRouter::Caller> ApiRouter::Authenticate(const ServerRequest& request) const {
  if (spec_.tokens.empty()) return Caller{};
  std::string header = request.Header("authorization");
  const std::string scheme = "bearer ";
  if (header.size() <= scheme.size() || ToLower(header.substr(0, scheme.size())) != scheme) {
    return Status::Refused("this API needs a token: send Authorization: Bearer TOKEN");
  }
  std::string token = Trim(header.substr(scheme.size()));
  if (token.empty())
    return Status::Refused("this API needs a token: send Authorization: Bearer TOKEN");
  std::string digest = Sha256Hex(token);
  // Every configured hash is compared, so the time taken does not say which matched.
  const ApiToken* found = nullptr;
  for (const ApiToken& t : spec_.tokens) {
    if (ConstantTimeEqual(digest, t.sha256) && found == nullptr) found = &t;
  }
  if (found == nullptr) return Status::Refused("the token is not valid for this server");
  return Caller{found->role, found->name};
}

ServerResponse ApiRouter::Handle(const ServerRequest& request) const {
  std::vector<std::string> segments = Segments(request.path);
  const Route* route = nullptr;
  std::vector<std::string> allowed;
  for (const Route& r : Routes()) {
    if (!Matches(r.pattern, segments)) continue;
    allowed.push_back(r.method);
    if (r.method == request.method) route = &r;
  }
  if (allowed.empty()) {
    return ProblemResponse(404, "Not found",
                           "no endpoint " + request.path + " (see DESIGN.md §4 for the API)");
  }
  if (route == nullptr) {
    ServerResponse out = ProblemResponse(405, "Method not allowed",
                                         request.method + " is not allowed on " + request.path);
    out.headers.emplace_back("Allow", Join(allowed, ", "));
    return out;
  }
  Caller caller;
  if (route->role) {
    Result<Caller> who = Authenticate(request);
    if (!who.ok()) {
      ServerResponse out = ProblemResponse(401, "Unauthorized", who.status().message());
      out.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"sluice\"");
      return out;
    }
    caller = *who;
    if (caller.role < *route->role) {
      return ProblemResponse(403, "Forbidden",
                             std::string("this needs the ") + ApiRoleName(*route->role) +
                                 " role; the token '" + caller.name + "' is " +
                                 ApiRoleName(caller.role));
    }
  }

  if (segments[0] == "healthz") {
    json body = {{"status", "ok"}};
    if (health_) body.update(health_());
    return JsonResponse(200, body);
  }
  // /api/v1/runs...
  if (segments.size() == 3 && request.method == "GET") {
    int limit = 20;
    auto it = request.query.find("limit");
    if (it != request.query.end()) {
      std::optional<int64_t> n = ParseId(it->second);
      if (!n || *n > kMaxRunsListed) {
        return ProblemResponse(400, "Bad request",
                               "limit: expected a number from 1 to " +
                                   std::to_string(kMaxRunsListed) + ", got '" + it->second + "'");
      }
      limit = static_cast<int>(*n);
    }
    return EngineToHttp(engine_->Handle({{"cmd", "runs"}, {"limit", limit}}, nullptr));
  }
  if (segments.size() == 3) {  // POST: start a run
    json body = json::object();
    if (!Trim(request.body).empty()) {
      body = json::parse(request.body, nullptr, false);
      if (body.is_discarded() || !body.is_object()) {
        return ProblemResponse(400, "Bad request",
                               "the body must be a JSON object such as {\"select\": [\"stops+\"]}");
      }
    }
    static const std::vector<std::string> kKeys = {"select", "full_refresh", "partition", "vars",
                                                   "rerun"};
    for (const auto& [key, value] : body.items()) {
      if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) {
        return ProblemResponse(400, "Bad request",
                               "unknown field '" + key + "'; a run takes " + Join(kKeys, ", "));
      }
    }
    body["cmd"] = "submit";
    body["trigger"] = caller.name.empty() ? "api" : "api (token " + caller.name + ")";
    ServerResponse out = EngineToHttp(engine_->Handle(body, nullptr), 202);
    if (out.status == 202) {
      json result = json::parse(out.body, nullptr, false);
      int64_t id = result.is_object() ? result.value("id", int64_t{0}) : 0;
      result["url"] = "/api/v1/runs/" + std::to_string(id);
      out.body = result.dump();
      out.headers.emplace_back("Location", "/api/v1/runs/" + std::to_string(id));
    }
    return out;
  }
  std::optional<int64_t> id = ParseId(segments[3]);
  if (!id) {
    return ProblemResponse(404, "Not found", "'" + segments[3] + "' is not a run id");
  }
  if (segments.size() == 4) {
    return EngineToHttp(engine_->Handle({{"cmd", "run_detail"}, {"id", *id}}, nullptr));
  }
  if (segments[4] == "cancel") {
    return EngineToHttp(engine_->Handle({{"cmd", "cancel"}, {"id", *id}}, nullptr));
  }
  json logs = {{"cmd", "logs"}, {"id", *id}};
  auto asset = request.query.find("asset");
  if (asset != request.query.end()) logs["asset"] = asset->second;
  return EngineToHttp(engine_->Handle(logs, nullptr));
}

}  // namespace sluice
