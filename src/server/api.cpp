#include "server/api.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "engine/dataset.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/hash.h"
#include "core/redact.h"
#include "core/strings.h"
#include "engine/event_hub.h"
#include "engine/owner.h"
#include "server/web_assets.h"

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
  if (code == "data_error") return 400;
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
    case 413:
      return "Payload too large";
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
      {"GET", {}, std::nullopt},              // the web UI's page
      {"GET", {"ui", "{id}"}, std::nullopt},  // its files (no data in them)
      {"GET", {"healthz"}, std::nullopt},
      // The engine API of the CLI (engine/owner.h): on the owner's local
      // socket only, whose callers are this user (admin).
      {"POST", {"api", "v1", "engine"}, ApiRole::kAdmin},
      {"GET", {"api", "v1", "runs"}, ApiRole::kViewer},
      {"POST", {"api", "v1", "runs"}, ApiRole::kOperator},
      {"GET", {"api", "v1", "runs", "{id}"}, ApiRole::kViewer},
      {"GET", {"api", "v1", "runs", "{id}", "log"}, ApiRole::kViewer},
      {"POST", {"api", "v1", "runs", "{id}", "cancel"}, ApiRole::kOperator},
      {"GET", {"api", "v1", "data", "{id}"}, ApiRole::kViewer},
      {"GET", {"api", "v1", "assets"}, ApiRole::kViewer},
      {"GET", {"api", "v1", "assets", "{id}"}, ApiRole::kViewer},
      {"GET", {"api", "v1", "lineage"}, ApiRole::kViewer},
      {"GET", {"api", "v1", "issues"}, ApiRole::kViewer},
      {"GET", {"api", "v1", "fetches"}, ApiRole::kViewer},
      {"GET", {"metrics"}, ApiRole::kViewer},
      {"POST", {"api", "v1", "check", "{id}"}, ApiRole::kViewer},
      {"POST", {"api", "v1", "query"}, ApiRole::kViewer},
      {"POST", {"api", "v1", "plan"}, ApiRole::kViewer},
      {"POST", {"api", "v1", "assets", "{id}", "rollback"}, ApiRole::kOperator},
      {"GET", {"api", "v1", "schedules"}, ApiRole::kViewer},
      {"GET", {"api", "v1", "events"}, ApiRole::kViewer},
      {"POST", {"api", "v1", "schedules", "{id}", "pause"}, ApiRole::kOperator},
      {"POST", {"api", "v1", "schedules", "{id}", "resume"}, ApiRole::kOperator},
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
    : engine_(engine),
      spec_(std::move(spec)),
      health_(std::move(health)),
      cache_(std::make_unique<ResponseCache>(static_cast<size_t>(spec_.cache_bytes))),
      memo_(std::make_unique<KeyMemo>()) {
  metrics_.Counter("sluice_http_requests_total", "HTTP requests, by route, method and status.");
  metrics_.Histogram("sluice_http_request_duration_seconds", "HTTP request durations, by route.",
                     {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10});
}

namespace {

// Whether an If-None-Match header names etag ("*", or one of a list; weak
// validators compare by their opaque part).
bool MatchesEtag(const std::string& header, const std::string& etag) {
  if (header.empty()) return false;
  for (std::string part : Split(header, ',')) {
    part = Trim(part);
    if (part == "*") return true;
    if (StartsWith(part, "W/")) part = part.substr(2);
    if (part == etag) return true;
  }
  return false;
}

// "/api/v1/data/stops?_limit=10&_after=CURSOR" (or &_offset=N: a table
// without a key).
std::string NextPageLink(const ServerRequest& request, const std::string& cursor,
                         int64_t next_offset) {
  std::map<std::string, std::string> query = request.query;
  if (!cursor.empty()) {
    query["_after"] = cursor;
    query.erase("_offset");  // the cursor already counts the rows before it
  } else {
    query["_offset"] = std::to_string(next_offset);
  }
  std::vector<std::string> parts;
  for (const auto& [k, v] : query) parts.push_back(UrlEncode(k) + "=" + UrlEncode(v));
  return "<" + request.path + "?" + Join(parts, "&") + ">; rel=\"next\"";
}

// One of `max` streams that may hold a handler thread at once: taken when
// wanted and one is free (held), given back when it goes out of scope.
class StreamSlot {
 public:
  StreamSlot(std::atomic<int>* count, int max, bool wanted) : count_(count) {
    if (!wanted) return;
    held = ++*count_ <= max;
    if (!held) --*count_;
  }
  ~StreamSlot() {
    if (held) --*count_;
  }
  StreamSlot(const StreamSlot&) = delete;
  StreamSlot& operator=(const StreamSlot&) = delete;
  bool held = false;

 private:
  std::atomic<int>* count_;
};

ServerResponse CachedToHttp(const CachedResponse& cached, const char* cache_state) {
  ServerResponse out;
  out.status = 200;
  out.content_type = cached.content_type;
  out.body = cached.body;
  if (!cached.etag.empty()) {
    out.headers.emplace_back("ETag", cached.etag);
    // Clients may keep it, and ask again with If-None-Match each time: a
    // new publication changes the ETag, so no copy is ever stale.
    out.headers.emplace_back("Cache-Control", "no-cache");
  } else {
    out.headers.emplace_back("Cache-Control", "no-store");
  }
  if (!cached.link.empty()) out.headers.emplace_back("Link", cached.link);
  out.headers.emplace_back("X-Cache", cache_state);
  return out;
}

}  // namespace

ServerResponse ApiRouter::Check(const ServerRequest& request, const std::string& source) const {
  json ask = {{"cmd", "check"},
              {"source", source},
              {"timeout", spec_.check_timeout_seconds},
              {"memory_limit", spec_.check_memory_limit}};
  for (const auto& [key, value] : request.query) {
    if (key != "filename") {
      return ProblemResponse(400, "Bad request",
                             "unknown parameter '" + key +
                                 "'; a check takes filename (whose "
                                 "extension may tell the file's format)");
    }
    ask["filename"] = value;
  }
  if (StartsWith(ToLower(request.Header("content-type")), "application/json")) {
    json body = json::parse(request.body, nullptr, false);
    if (!body.is_object() || body.size() != 1 || !body.contains("url") ||
        !body["url"].is_string()) {
      return ProblemResponse(400, "Bad request",
                             "a JSON body is {\"url\": \"https://...\"}; to check a file, send "
                             "the file itself as the body");
    }
    if (!spec_.check_urls) {
      return ProblemResponse(403, "Forbidden",
                             "checking a URL is off (it lets callers make the server fetch "
                             "addresses); send the file itself, or turn it on with server: "
                             "{check: {urls: true}}");
    }
    std::string url = body["url"].get<std::string>();
    std::string scheme =
        ToLower(url.substr(0, url.find("://") == std::string::npos ? 0 : url.find("://")));
    if (scheme != "http" && scheme != "https") {
      return ProblemResponse(400, "Bad request", "url: expected an http(s) URL");
    }
    ask["url"] = url;
  } else {
    if (request.body.empty()) {
      return ProblemResponse(400, "Bad request", "no file: send the file as the request body");
    }
    if (static_cast<int64_t>(request.body.size()) > spec_.check_max_bytes) {
      return ProblemResponse(
          413, "Payload too large",
          "the file is " + std::to_string(request.body.size()) + " bytes; a check takes at most " +
              std::to_string(spec_.check_max_bytes) + " bytes (server: {check: {max_size: ...}})");
    }
    ask["upload"] = request.body;
  }
  return EngineToHttp(engine_->Handle(ask, nullptr));
}

// The query parameters a catalog route takes, each checked.
ServerResponse ApiRouter::Catalog(const ServerRequest& request,
                                  const std::vector<std::string>& segments) const {
  const std::string& what = segments[2];
  json ask;
  std::vector<std::string> allowed;
  if (what == "assets") {
    ask = segments.size() == 4 ? json{{"cmd", "asset"}, {"name", segments[3]}}
                               : json{{"cmd", "assets"}};
  } else if (what == "lineage") {
    ask = {{"cmd", "lineage"}};
    allowed = {"columns", "asset"};
  } else if (what == "issues") {
    ask = {{"cmd", "issues"}};
    allowed = {"asset", "source", "severity", "issue_type", "limit"};
  } else {
    ask = {{"cmd", "fetches"}};
    allowed = {"source", "limit"};
  }
  for (const auto& [key, value] : request.query) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return ProblemResponse(
          400, "Bad request",
          "unknown parameter '" + key + "'" +
              (allowed.empty() ? "; " + request.path + " takes none"
                               : "; " + request.path + " takes " + Join(allowed, ", ")));
    }
    if (key == "limit") {
      std::optional<int64_t> n = ParseId(value);
      if (!n || *n > 10000) {
        return ProblemResponse(400, "Bad request",
                               "limit: expected a number from 1 to 10000, got '" + value + "'");
      }
      ask["limit"] = *n;
    } else if (key == "columns") {
      if (value != "true" && value != "false") {
        return ProblemResponse(400, "Bad request",
                               "columns: expected true or false, got '" + value + "'");
      }
      ask["columns"] = value == "true";
    } else {
      ask[key] = value;
    }
  }
  return EngineToHttp(engine_->Handle(ask, nullptr));
}

std::optional<ServerResponse> ApiRouter::FromCache(const ServerRequest& request,
                                                   const KeyMemo::Keyed& keyed) const {
  if (!keyed.cacheable) return std::nullopt;
  std::shared_ptr<const CachedResponse> hit = cache_->Get(keyed.key);
  const std::string if_none_match = request.Header("if-none-match");
  if (!if_none_match.empty()) {
    // A hit knows its ETag; a miss works it out (the hash of the key).
    const std::string etag =
        hit && !hit->etag.empty() ? hit->etag : "\"" + Sha256Hex(keyed.key).substr(0, 32) + "\"";
    if (MatchesEtag(if_none_match, etag)) {
      ServerResponse out;
      out.status = 304;
      out.content_type.clear();
      out.headers.emplace_back("ETag", etag);
      out.headers.emplace_back("Cache-Control", "no-cache");
      return out;
    }
  }
  if (hit) return CachedToHttp(*hit, "hit");
  return std::nullopt;
}

namespace {

// A data request as the key memo knows it: the table and each query pair,
// every part preceded by its length (so no value can pass for another).
std::string MemoKeyOf(const std::string& table, const std::map<std::string, std::string>& query) {
  std::string out;
  auto add = [&out](const std::string& part) {
    out += std::to_string(part.size());
    out += ':';
    out += part;
  };
  add(table);
  for (const auto& [k, v] : query) {
    add(k);
    add(v);
  }
  return out;
}

KeyMemo::Keyed KeyedOf(const json& engine_answer) {
  const json& r = engine_answer["result"];
  return KeyMemo::Keyed{r.value("key", ""), r.value("cacheable", false)};
}

}  // namespace

std::optional<ServerResponse> ApiRouter::AnswerAtOnce(const ServerRequest& request) const {
  if (request.method != "GET") return std::nullopt;
  const std::vector<std::string> segments = Segments(request.path);
  if (segments.size() != 4 || segments[0] != "api" || segments[1] != "v1" ||
      segments[2] != "data") {
    return std::nullopt;
  }
  // Whatever would be refused is refused by the handler, with its reasons.
  if (!FromThisSite(request).ok()) return std::nullopt;
  Result<Caller> who = Authenticate(request);
  if (!who.ok() || who->role < ApiRole::kViewer) return std::nullopt;
  auto t0 = std::chrono::steady_clock::now();
  // The key of a request seen before, while nothing it was computed from
  // changed; else the engine's (the state is read first: a key computed
  // from a newer state is kept under the older one, never used).
  std::optional<Engine::DataState> state = engine_->DataStateNow();
  if (!state) return std::nullopt;
  const KeyMemo::State memo_state{state->engine, state->publications};
  const std::string memo_key = MemoKeyOf(segments[3], request.query);
  std::optional<KeyMemo::Keyed> keyed = memo_->Get(memo_key, memo_state);
  if (!keyed) {
    json params = json::object();
    for (const auto& [k, v] : request.query) params[k] = v;
    json answer = engine_->Handle({{"cmd", "data"},
                                   {"table", segments[3]},
                                   {"params", std::move(params)},
                                   {"key_only", true},
                                   {"memory_only", true}},
                                  nullptr);
    if (!answer.value("ok", false)) return std::nullopt;
    keyed = KeyedOf(answer);
    memo_->Put(memo_key, memo_state, *keyed);
  }
  std::optional<ServerResponse> out = FromCache(request, *keyed);
  if (!out) return std::nullopt;
  CountRequest(request, "/api/v1/data/{id}", out->status, t0);
  return out;
}

void ApiRouter::CountRequest(const ServerRequest& request, const std::string& route, int status,
                             std::chrono::steady_clock::time_point t0) const {
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  metrics_.Add("sluice_http_requests_total",
               {{"route", route}, {"method", request.method}, {"status", std::to_string(status)}});
  metrics_.Observe("sluice_http_request_duration_seconds", {{"route", route}}, seconds);
}

ServerResponse ApiRouter::Data(const ServerRequest& request, const std::string& table) const {
  json params = json::object();
  for (const auto& [k, v] : request.query) params[k] = v;
  json ask = {{"cmd", "data"}, {"table", table}, {"params", params}, {"key_only", true}};
  json keyed = engine_->Handle(ask, nullptr);
  if (!keyed.value("ok", false)) return EngineToHttp(keyed);
  if (std::optional<ServerResponse> cached = FromCache(request, KeyedOf(keyed))) {
    return std::move(*cached);
  }
  ask["key_only"] = false;
  // A big answer goes out in chunks as the engine renders it (no Link
  // header then: the next page is known at the end), copied into the cache
  // as it goes while it stays small enough to keep.
  struct ClientGone : std::runtime_error {
    ClientGone() : std::runtime_error("the client stopped reading the answer") {}
  };
  // What the cache takes at most (ResponseCache::Put keeps an entry up to
  // an eighth of its size).
  const size_t keep_max = static_cast<size_t>(std::max<int64_t>(0, spec_.cache_bytes / 8 - 4096));
  std::string copy;
  bool copied = true;
  EventSink sink;
  // Few answers stream at once: a stream holds a handler thread while its
  // client reads, so slow clients must not take them all (the others get
  // their answer whole).
  StreamSlot slot(&streams_, kMaxStreams, request.writer != nullptr);
  if (slot.held) {
    ask["stream_after"] = spec_.stream_after_bytes;
    sink = [&](const json& e) {
      std::string type = e.value("type", "");
      if (type == "data_head") {
        std::vector<std::pair<std::string, std::string>> headers;
        bool cacheable = e.value("cacheable", false);
        const bool keep = cacheable && spec_.cache_bytes > 0;
        if (cacheable) {
          headers.emplace_back("ETag", "\"" + Sha256Hex(e.value("key", "")).substr(0, 32) + "\"");
          headers.emplace_back("Cache-Control", "no-cache");
        } else {
          headers.emplace_back("Cache-Control", "no-store");
        }
        headers.emplace_back("X-Cache", keep ? "miss" : "off");
        if (!keep) {
          headers.emplace_back("X-Cache-Reason", cacheable ? "the server's cache is off"
                                                           : e.value("not_cached_because", ""));
        }
        if (!request.writer->Start(200, e.value("content_type", ""), headers)) throw ClientGone();
      } else if (type == "data_chunk") {
        const std::string& data = e["data"].get_ref<const std::string&>();
        if (copied && copy.size() + data.size() <= keep_max) {
          copy += data;
        } else {
          copied = false;
          copy.clear();
        }
        if (!request.writer->Write(data)) throw ClientGone();
      }
    };
  }
  json answer = engine_->Handle(ask, sink);
  if (slot.held && request.writer->started()) {
    ServerResponse out;
    out.stream_failed = !answer.value("ok", false);
    const json& r = answer.value("result", json::object());
    if (!out.stream_failed && copied && r.value("cacheable", false) && spec_.cache_bytes > 0) {
      auto cached = std::make_shared<CachedResponse>();
      cached->content_type = r.value("content_type", "application/json");
      cached->body = std::move(copy);
      cached->etag = "\"" + Sha256Hex(r.value("key", "")).substr(0, 32) + "\"";
      std::string next = r.value("next", "");
      int64_t next_offset = r.value("next_offset", int64_t{0});
      if (!next.empty() || next_offset > 0) cached->link = NextPageLink(request, next, next_offset);
      cache_->Put(r.value("key", ""), std::move(cached));
    }
    return out;
  }
  if (!answer.value("ok", false)) return EngineToHttp(answer);
  json& r = answer["result"];
  // The key the read was made under (computed before it: never newer than
  // what the read saw).
  bool cacheable = r.value("cacheable", false);
  std::string key = r.value("key", "");
  auto cached = std::make_shared<CachedResponse>();
  cached->content_type = r.value("content_type", "application/json");
  if (r.contains("body_base64")) {
    // Binary (Parquet): base64url, so that the answer stays valid JSON on any transport.
    std::optional<std::string> bytes = Base64UrlDecode(r.value("body_base64", ""));
    if (!bytes) return ProblemResponse(500, "Internal Server Error", "a binary answer was garbled");
    cached->body = std::move(*bytes);
  } else {
    cached->body = r["body"].get<std::string>();
  }
  if (cacheable) cached->etag = "\"" + Sha256Hex(key).substr(0, 32) + "\"";
  std::string next = r.value("next", "");
  int64_t next_offset = r.value("next_offset", int64_t{0});
  if (!next.empty() || next_offset > 0) cached->link = NextPageLink(request, next, next_offset);
  const bool keep = cacheable && spec_.cache_bytes > 0;
  ServerResponse out = CachedToHttp(*cached, keep ? "miss" : "off");
  if (keep) {
    cache_->Put(key, std::move(cached));
  } else {
    out.headers.emplace_back("X-Cache-Reason", cacheable ? "the server's cache is off (server: "
                                                           "{cache: off})"
                                                         : r.value("not_cached_because", ""));
  }
  return out;
}

namespace {

// The request's body as a JSON object whose keys are all in `allowed`, or
// the 400 to answer. An empty body is {}.
Result<json> BodyObject(const ServerRequest& request, const std::vector<std::string>& allowed,
                        const std::string& example) {
  json body = json::object();
  if (!Trim(request.body).empty()) {
    body = json::parse(request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      return Status::Invalid("the body must be a JSON object such as " + example);
    }
  }
  for (const auto& [key, value] : body.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return Status::Invalid("unknown field '" + key + "'; this takes " + Join(allowed, ", "));
    }
  }
  return body;
}

}  // namespace

ServerResponse ApiRouter::Static(const ServerRequest& request, const std::string& name) const {
  const WebAsset* asset = FindWebAsset(name);
  if (asset == nullptr) {
    return ProblemResponse(404, "Not found", "the web UI has no file '" + name + "'");
  }
  ServerResponse out;
  const std::string etag(asset->etag);
  // Revalidated on each load (the ETag changes with the binary's UI), so an
  // upgraded server never runs with a stale page.
  out.headers.emplace_back("ETag", etag);
  out.headers.emplace_back("Cache-Control", "no-cache");
  out.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (name == "index.html") {
    // The page runs only its own files, talks only to this server, and is
    // never framed by another site.
    out.headers.emplace_back(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src "
        "'self' data:; worker-src 'self'; frame-ancestors 'none'");
  }
  if (MatchesEtag(request.Header("if-none-match"), etag)) {
    out.status = 304;
    out.content_type.clear();
    return out;
  }
  out.status = 200;
  out.content_type = std::string(asset->content_type);
  out.body = std::string(asset->content);
  return out;
}

ServerResponse ApiRouter::Events(const ServerRequest& request) const {
  // Where the reader left off: Last-Event-ID (EventSource sends it when it
  // reconnects) or ?after=N; none: only what happens from now on.
  int64_t after = -1;
  std::string from = request.Header("last-event-id");
  if (auto it = request.query.find("after"); it != request.query.end()) from = it->second;
  for (const auto& [key, value] : request.query) {
    if (key != "after") {
      return ProblemResponse(400, "Bad request",
                             "unknown parameter '" + key + "'; /api/v1/events takes after");
    }
  }
  EventHub& hub = engine_->RunEvents();
  if (!from.empty()) {
    std::string number = from;
    bool earlier_owner = false;
    if (size_t dash = from.rfind('-'); dash != std::string::npos) {
      earlier_owner = from.substr(0, dash) != hub.boot();
      number = from.substr(dash + 1);
    }
    std::optional<int64_t> n = number == "0" ? std::optional<int64_t>(0) : ParseId(number);
    if (!n) {
      return ProblemResponse(400, "Bad request",
                             "after: expected an event id (BOOT-N, or N), got '" + from + "'");
    }
    // An id of an owner before this one: everything kept, marked missed.
    after = earlier_owner ? EventHub::kEarlierOwner : *n;
  }
  // Ids are "BOOT-SEQ": numbers from an owner before this one are told apart.
  auto id_of = [&hub](int64_t seq) { return hub.boot() + "-" + std::to_string(seq); };
  auto frame = [&id_of](const json& e) {
    json out = RedactJson(e);
    return "id: " + id_of(e.value("seq", int64_t{0})) + "\nevent: " + e.value("type", "") +
           "\ndata: " + out.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
  };
  // A client that cannot take a stream (HTTP/1.0) gets what there is now.
  StreamSlot slot(&event_streams_, kMaxEventStreams, request.writer != nullptr);
  if (!slot.held) {
    if (request.writer != nullptr) {
      ServerResponse busy =
          ProblemResponse(503, "Unavailable",
                          "too many event streams are open (" + std::to_string(kMaxEventStreams) +
                              "); poll /api/v1/runs instead, or try again");
      busy.headers.emplace_back("Retry-After", "5");
      return busy;
    }
    EventHub::Batch batch = hub.Wait(after == -1 ? 0 : after, std::chrono::milliseconds(0));
    ServerResponse out;
    out.content_type = "text/event-stream";
    if (batch.missed) out.body += "event: missed\ndata: {}\n\n";
    for (const json& e : batch.events) out.body += frame(e);
    return out;
  }
  // "From now on" is fixed before anything is sent, so nothing published
  // while the headers go out is skipped.
  if (after == -1) after = hub.Last();
  if (!request.writer->Start(200, "text/event-stream",
                             {{"Cache-Control", "no-store"}, {"X-Accel-Buffering", "no"}})) {
    return {};
  }
  // "retry": EventSource reconnects after the stream ends (each lasts a
  // while, then ends, so that no handler thread is held for long) and sends
  // Last-Event-ID: nothing is lost in between.
  if (!request.writer->Write("retry: 1000\n\n")) return {};
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(kEventStreamSeconds);
  while (std::chrono::steady_clock::now() < end) {
    // A second's wait at most: a client gone is noticed at the next write.
    EventHub::Batch batch = hub.Wait(after, std::chrono::milliseconds(1000));
    std::string text;
    if (batch.missed) text += "event: missed\ndata: {}\n\n";
    for (const json& e : batch.events) text += frame(e);
    if (!batch.events.empty()) after = batch.events.back().value("seq", after);
    if (batch.missed && batch.events.empty()) after = batch.last;
    // A quiet stream still says where it is, so a reconnect resumes there.
    if (batch.events.empty() && !batch.missed) {
      text = "id: " + id_of(after) + "\n: keep-alive\n\n";
    }
    if (!request.writer->Write(text)) return {};
    if (batch.stopped) break;
  }
  return {};
}

ServerResponse ApiRouter::Query(const ServerRequest& request) const {
  // Each query may run for a minute on the shared warehouse: few at once.
  StreamSlot slot(&queries_, kMaxQueries, true);
  if (!slot.held) {
    ServerResponse busy = ProblemResponse(
        503, "Unavailable",
        std::to_string(kMaxQueries) + " queries are running; try again when one has ended");
    busy.headers.emplace_back("Retry-After", "2");
    return busy;
  }
  Result<json> body = BodyObject(request, {"sql", "limit"}, "{\"sql\": \"select ...\"}");
  if (!body.ok()) return ProblemResponse(400, "Bad request", body.status().message());
  if (!body->contains("sql") || !(*body)["sql"].is_string()) {
    return ProblemResponse(400, "Bad request", "sql: expected the query as a string");
  }
  int64_t limit = kMaxQueryRows;
  if (body->contains("limit")) {
    const json& l = (*body)["limit"];
    if (!l.is_number_integer() || l.get<int64_t>() < 1 || l.get<int64_t>() > kMaxQueryRows) {
      return ProblemResponse(400, "Bad request",
                             "limit: expected a number from 1 to " + std::to_string(kMaxQueryRows));
    }
    limit = l.get<int64_t>();
  }
  return EngineToHttp(engine_->Handle({{"cmd", "query"},
                                       {"sql", (*body)["sql"]},
                                       {"format", "json"},
                                       {"max_rows", limit},
                                       {"timeout", kQueryTimeoutSeconds}},
                                      nullptr));
}

ServerResponse ApiRouter::Plan(const ServerRequest& request) const {
  Result<json> body = BodyObject(request, {"select", "full_refresh", "partition", "vars"},
                                 "{\"select\": [\"stops+\"]}");
  if (!body.ok()) return ProblemResponse(400, "Bad request", body.status().message());
  json ask = *body;
  ask["cmd"] = "plan";
  return EngineToHttp(engine_->Handle(ask, nullptr));
}

ServerResponse ApiRouter::Rollback(const ServerRequest& request, const std::string& asset) const {
  Result<json> body =
      BodyObject(request, {"to", "partition", "request_id"}, "{\"to\": \"VERSION\"}");
  if (!body.ok()) return ProblemResponse(400, "Bad request", body.status().message());
  // Over HTTP the version is named: a request sent twice must not roll back twice.
  if (!body->contains("to") || !(*body)["to"].is_string() ||
      (*body)["to"].get<std::string>().empty()) {
    return ProblemResponse(
        400, "Bad request",
        "to: the version to publish again (GET /api/v1/assets/" + asset + " lists them)");
  }
  for (const char* key : {"partition", "request_id"}) {
    if (body->contains(key) && !(*body)[key].is_string()) {
      return ProblemResponse(400, "Bad request", std::string(key) + ": expected a string");
    }
  }
  json ask = *body;
  ask["cmd"] = "rollback";
  ask["asset"] = asset;
  return EngineToHttp(engine_->Handle(ask, nullptr));
}

namespace {

// "Example.COM:8080" -> "example.com"; "[::1]:80" and "::1" -> "::1".
std::string HostName(std::string host) {
  host = ToLower(Trim(host));
  if (StartsWith(host, "[")) {
    size_t end = host.find(']');
    return end == std::string::npos ? host : host.substr(1, end - 1);
  }
  size_t colon = host.find(':');
  if (colon == std::string::npos || host.find(':', colon + 1) != std::string::npos) {
    return host;  // no port, or a bare IPv6 address
  }
  return host.substr(0, colon);
}

// localhost, or an IP address on loopback (127.0.0.0/8, ::1) — never a
// name that merely starts like one ("127.attacker.example").
bool IsLoopbackName(const std::string& name) {
  if (name == "localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, name.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, name.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

// "https://x" and "x:443" name the same place: the authority with the
// scheme's default port made explicit.
std::string Authority(const std::string& scheme, std::string host) {
  host = ToLower(Trim(host));
  const bool bracketed = StartsWith(host, "[");
  const size_t colon = host.rfind(':');
  const bool has_port = colon != std::string::npos && (!bracketed || host[colon - 1] == ']') &&
                        (bracketed || host.find(':') == colon);
  if (!has_port) host += scheme == "https" ? ":443" : ":80";
  return host;
}

}  // namespace

Result<bool> ApiRouter::FromThisSite(const ServerRequest& request) const {
  if (request.local) return true;  // no browser reaches the owner's socket
  // DNS rebinding: another site's name pointed at 127.0.0.1 would reach an
  // API that asks for no token; such an API answers only its own names.
  const std::string host = HostName(request.Header("host"));
  if (spec_.tokens.empty() && IsLoopbackName(HostName(spec_.host)) && !host.empty() &&
      !IsLoopbackName(host) && host != HostName(spec_.host)) {
    return Status::Refused("this API (no tokens, on loopback) answers only to localhost or " +
                           spec_.host + ", not to '" + host + "'");
  }
  if (request.method == "GET") return true;
  // Cross-site requests: a page on another site can make the browser POST
  // here (a form, a no-cors fetch); the browser says so in Sec-Fetch-Site
  // and Origin. Clients that are not browsers send neither.
  // Sec-Fetch-Site decides when the browser sends it (a proxy that
  // rewrites Host cannot fool it); else Origin against Host.
  const std::string fetch_site = ToLower(request.Header("sec-fetch-site"));
  const std::string origin = request.Header("origin");
  bool foreign = false;
  if (!fetch_site.empty()) {
    foreign = fetch_site != "same-origin" && fetch_site != "none";
  } else if (!origin.empty()) {
    const size_t sep = origin.find("://");
    if (sep == std::string::npos) {
      foreign = true;  // "null": a sandboxed or file page
    } else {
      const std::string scheme = ToLower(origin.substr(0, sep));
      foreign =
          Authority(scheme, origin.substr(sep + 3)) != Authority(scheme, request.Header("host"));
    }
  }
  if (foreign) {
    return Status::Refused("a request from another site (Origin: " + origin +
                           ") may not change anything here");
  }
  return true;
}

Result<ApiRouter::Caller> ApiRouter::Authenticate(const ServerRequest& request) const {
  // The owner's socket: this user, checked by the kernel (its peer credentials).
  if (request.local) return Caller{ApiRole::kAdmin, ""};
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
  auto t0 = std::chrono::steady_clock::now();
  std::string label = "unmatched";
  ServerResponse out = Dispatch(request, &label);
  CountRequest(request, label, out.status, t0);
  return out;
}

ServerResponse ApiRouter::Metrics() const {
  ResponseCache::Stats cache = cache_->stats();
  std::string text = metrics_.Text();
  text +=
      "# HELP sluice_cache_hits_total Dataset API answers served from the cache.\n"
      "# TYPE sluice_cache_hits_total counter\n"
      "sluice_cache_hits_total " +
      std::to_string(cache.hits) + "\n" +
      "# HELP sluice_cache_misses_total Dataset API answers not in the cache.\n"
      "# TYPE sluice_cache_misses_total counter\n"
      "sluice_cache_misses_total " +
      std::to_string(cache.misses) + "\n" +
      "# HELP sluice_cache_entries Answers in the cache.\n"
      "# TYPE sluice_cache_entries gauge\n"
      "sluice_cache_entries " +
      std::to_string(cache.entries) + "\n" +
      "# HELP sluice_cache_bytes Bytes the cache holds.\n"
      "# TYPE sluice_cache_bytes gauge\n"
      "sluice_cache_bytes " +
      std::to_string(cache.bytes) + "\n";
  json engine = engine_->Handle({{"cmd", "metrics"}}, nullptr);
  if (engine.value("ok", false)) text += engine["result"].value("text", "");
  ServerResponse out;
  out.content_type = "text/plain; version=0.0.4; charset=utf-8";
  out.body = std::move(text);
  return out;
}

ServerResponse ApiRouter::Dispatch(const ServerRequest& request, std::string* label) const {
  std::vector<std::string> segments = Segments(request.path);
  const Route* route = nullptr;
  std::vector<std::string> allowed;
  for (const Route& r : Routes()) {
    if (!Matches(r.pattern, segments)) continue;
    allowed.push_back(r.method);
    if (r.method == request.method) route = &r;
    // The route's pattern labels its metrics ("/api/v1/data/{id}"):
    // bounded, never the caller's text.
    *label = "/" + Join(r.pattern, "/");
  }
  if (allowed.empty()) {
    return ProblemResponse(404, "Not found",
                           "no endpoint " + request.path + " (see DESIGN.md §4 for the API)");
  }
  if (segments.size() == 3 && segments[2] == "engine" && !request.local) {
    return ProblemResponse(404, "Not found",
                           "no endpoint " + request.path + " (see DESIGN.md §4 for the API)");
  }
  if (route == nullptr) {
    ServerResponse out = ProblemResponse(405, "Method not allowed",
                                         request.method + " is not allowed on " + request.path);
    out.headers.emplace_back("Allow", Join(allowed, ", "));
    return out;
  }
  if (Result<bool> allowed_site = FromThisSite(request); !allowed_site.ok()) {
    return ProblemResponse(403, "Forbidden", allowed_site.status().message());
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

  if (segments.empty()) return Static(request, "index.html");
  if (segments[0] == "ui") return Static(request, segments[1]);
  if (segments[0] == "healthz") {
    json body = {{"status", "ok"}};
    if (health_) body.update(health_());
    return JsonResponse(200, body);
  }
  if (segments[0] == "metrics") return Metrics();
  if (segments[2] == "engine") {
    return ServeEngineRequest(
        [this](const json& r, const EventSink& events) { return engine_->Handle(r, events); },
        request);
  }
  if (segments[2] == "data") return Data(request, segments[3]);
  if (segments[2] == "check") return Check(request, segments[3]);
  if (segments[2] == "events") return Events(request);
  if (segments[2] == "query") return Query(request);
  if (segments[2] == "plan") return Plan(request);
  if (segments[2] == "schedules") {
    json ask = segments.size() == 3 ? json{{"cmd", "schedules"}}
                                    : json{{"cmd", segments[4]}, {"asset", segments[3]}};
    return EngineToHttp(engine_->Handle(ask, nullptr));
  }
  if (segments[2] == "assets" && segments.size() == 5) return Rollback(request, segments[3]);
  if (segments[2] != "runs") return Catalog(request, segments);
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
    static const std::vector<std::string> kKeys = {"select", "full_refresh", "partition",
                                                   "vars",   "rerun",        "backfill"};
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
