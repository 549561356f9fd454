#include "ingest/fetcher.h"

#include <curl/curl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "config/yaml_util.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/redact.h"
#include "core/strings.h"
#include "core/utf8.h"

namespace sluice {
namespace {

constexpr int64_t kMaxRetryAfterSeconds = 300;
constexpr int64_t kMaxBackoffMs = 60000;
constexpr int kDefaultMaxPages = 1000;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// "250ms", "2s", "1m30s", or plain seconds.
std::optional<int64_t> ParseMillis(const std::string& text) {
  std::string s = Trim(text);
  if (s.size() > 2 && s.compare(s.size() - 2, 2, "ms") == 0) {
    std::string n = s.substr(0, s.size() - 2);
    if (!n.empty() && n.size() <= 12 && std::all_of(n.begin(), n.end(), ::isdigit)) {
      return std::stoll(n);
    }
    return std::nullopt;
  }
  std::optional<int64_t> seconds = ParseDuration(s);
  if (!seconds) return std::nullopt;
  return *seconds * 1000;
}

std::string ScalarText(const nlohmann::json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// A temp file in the lake's staging area, removed unless it was moved into place.
class StagedBody {
 public:
  explicit StagedBody(std::string path) : path_(std::move(path)) {}
  ~StagedBody() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  StagedBody(const StagedBody&) = delete;
  StagedBody& operator=(const StagedBody&) = delete;
  const std::string& path() const { return path_; }
  void Released() { path_.clear(); }

 private:
  std::string path_;
};

// Spaces requests of one source: at most rate_per_second, process-wide.
void WaitForRateLimit(const std::string& source, double rate_per_second) {
  if (rate_per_second <= 0) return;
  static std::mutex mu;
  static std::map<std::string, std::chrono::steady_clock::time_point> next_allowed;
  auto interval = std::chrono::microseconds(static_cast<int64_t>(1e6 / rate_per_second));
  std::chrono::steady_clock::time_point at;
  {
    std::lock_guard lock(mu);
    auto now = std::chrono::steady_clock::now();
    auto& next = next_allowed[source];
    at = std::max(now, next);
    next = at + interval;
  }
  std::this_thread::sleep_until(at);
}

int64_t BackoffMs(int64_t base_ms, int attempt) {
  // Exponential with full jitter in [50%, 100%] of the step.
  static thread_local std::mt19937_64 rng(std::random_device{}());
  int64_t step = std::min<int64_t>(kMaxBackoffMs, base_ms << std::min(attempt - 1, 16));
  std::uniform_int_distribution<int64_t> dist(step / 2, step);
  return dist(rng);
}

bool IsHttps(const std::string& url) { return Lower(url.substr(0, 8)) == "https://"; }

// A next page the API names is a new request with all the source's
// credentials: never from https to plain http.
Status RefuseDowngrade(const SourceSpec& src, const std::string& from, const std::string& to) {
  if (!IsHttps(from) || IsHttps(to)) return Status::Ok();
  return Status::Refused(src.fetch.loc.ToString() + ": the API's next page " + Redact(to) +
                         " is not https while the listing is; refused, so that credentials are "
                         "not sent in clear");
}

// A short, single-line excerpt of a body for an error message.
std::string Excerpt(const std::string& path) {
  // Redacted first: a secret the server echoed must not survive the cut or
  // the whitespace folding below.
  std::string head = Redact(ReadHead(path, 4096));
  for (char& c : head) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  std::string out = Trim(head);
  if (out.size() > 200) {
    size_t cut = 200;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
    out = out.substr(0, cut) + "...";
  }
  return out;
}

std::string HtmlTitle(const std::string& head) {
  std::string lower = Lower(head);
  size_t open = lower.find("<title>");
  if (open == std::string::npos) return "";
  size_t close = lower.find("</title>", open);
  if (close == std::string::npos) return "";
  return Trim(head.substr(open + 7, close - open - 7));
}

bool LooksLikeHtml(const std::string& head) {
  size_t i = 0;
  if (head.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;
  while (i < head.size() && std::isspace(static_cast<unsigned char>(head[i]))) ++i;
  std::string start = Lower(head.substr(i, 15));
  return start.rfind("<!doctype html", 0) == 0 || start.rfind("<html", 0) == 0;
}

// Joins a possibly relative URL onto a base, as a browser would.
Result<std::string> ResolveUrl(const std::string& base, const std::string& ref) {
  CURLU* u = curl_url();
  if (!u) return Status::Internal("libcurl: cannot parse URLs");
  std::unique_ptr<CURLU, void (*)(CURLU*)> guard(u, curl_url_cleanup);
  if (curl_url_set(u, CURLUPART_URL, base.c_str(), 0) != CURLUE_OK ||
      curl_url_set(u, CURLUPART_URL, ref.c_str(), 0) != CURLUE_OK) {
    return Status::DataError("the API's next link '" + Redact(ref) + "' is not a URL");
  }
  char* out = nullptr;
  if (curl_url_get(u, CURLUPART_URL, &out, 0) != CURLUE_OK) {
    return Status::DataError("the API's next link '" + Redact(ref) + "' is not a URL");
  }
  std::string s(out);
  curl_free(out);
  return s;
}

std::string AddQuery(const std::string& url,
                     const std::vector<std::pair<std::string, std::string>>& params) {
  if (params.empty()) return url;
  std::string out = url;
  char sep = url.find('?') == std::string::npos ? '?' : '&';
  for (const auto& [k, v] : params) {
    out += sep;
    out += UrlEncode(k) + "=" + UrlEncode(v);
    sep = '&';
  }
  return out;
}

// The request every page starts from: url, params, headers, body, auth with
// templates rendered and secrets substituted.
struct BaseRequest {
  std::string url;  // with the configured params
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string basic_auth;
};

}  // namespace

bool IsHttpUrl(const std::string& url) {
  std::string lower = Lower(url.substr(0, 8));
  return lower.rfind("http://", 0) == 0 || lower.rfind("https://", 0) == 0;
}

std::string NextLink(const std::string& header) {
  // <url>; rel="next", <url2>; rel="last"
  size_t pos = 0;
  while (pos < header.size()) {
    size_t open = header.find('<', pos);
    if (open == std::string::npos) break;
    size_t close = header.find('>', open);
    if (close == std::string::npos) break;
    size_t end = header.find(",", close);
    // A comma inside a later <...> cannot occur before the next '<'.
    size_t next_open = header.find('<', close);
    if (end != std::string::npos && next_open != std::string::npos && end > next_open) {
      end = next_open;
    }
    std::string params = Lower(
        header.substr(close + 1, end == std::string::npos ? std::string::npos : end - close - 1));
    std::string target = header.substr(open + 1, close - open - 1);
    size_t rel = params.find("rel=");
    if (rel != std::string::npos) {
      std::string value = params.substr(rel + 4);
      if (!value.empty() && value[0] == '"') value = value.substr(1, value.find('"', 1) - 1);
      value = value.substr(0, value.find(';'));
      for (const std::string& r : Split(Trim(value), ' ')) {
        if (r == "next") return target;
      }
    }
    if (end == std::string::npos) break;
    pos = end;
  }
  return "";
}

nlohmann::json JsonAtPath(const nlohmann::json& doc, const std::string& path) {
  const nlohmann::json* cur = &doc;
  std::string p = path;
  if (p.rfind("$.", 0) == 0) p = p.substr(2);
  if (p.empty() || p == "$") return doc;
  for (const std::string& part : Split(p, '.')) {
    if (cur->is_object()) {
      auto it = cur->find(part);
      if (it == cur->end()) return nullptr;
      cur = &*it;
    } else if (cur->is_array() && !part.empty() &&
               std::all_of(part.begin(), part.end(), ::isdigit)) {
      size_t i = part.size() > 9 ? cur->size() : std::stoul(part);  // no overflow
      if (i >= cur->size()) return nullptr;
      cur = &(*cur)[i];
    } else {
      return nullptr;
    }
  }
  return *cur;
}

int64_t RetryAfterSeconds(const std::string& value, Micros now) {
  std::string v = Trim(value);
  if (v.empty()) return -1;
  if (std::all_of(v.begin(), v.end(), ::isdigit)) return v.size() > 9 ? -1 : std::stoll(v);
  struct tm tm = {};
  if (!strptime(v.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm)) return -1;
  int64_t at = timegm(&tm);
  return std::max<int64_t>(0, at - now / 1000000);
}

SourceLoc FetchSettingsErrorLoc(const SourceSpec& source, const std::string& message) {
  SourceLoc loc = source.fetch.loc;
  std::string key = message.substr(0, message.find_first_of(":."));
  if (key == "fetch") {
    size_t dot = message.find('.');
    key = message.substr(dot + 1, message.find(':') - dot - 1);
  }
  auto it = source.fetch.key_lines.find(key);
  if (it != source.fetch.key_lines.end()) loc.line = it->second;
  return loc;
}

Result<FetchSettings> ParseFetchSettings(const SourceSpec& source) {
  FetchSettings s;
  const nlohmann::json& o = source.fetch.options;
  auto millis = [&](const char* key, int64_t* out) -> Status {
    auto it = o.find(key);
    if (it == o.end()) return Status::Ok();
    std::optional<int64_t> ms = ParseMillis(ScalarText(*it));
    if (!ms || *ms < 0) {
      return Status::Invalid(fmt::format("fetch.{}: '{}' is not a duration (e.g. 30s, 5m, 250ms)",
                                         key, ScalarText(*it)));
    }
    *out = *ms;
    return Status::Ok();
  };
  if (auto it = o.find("method"); it != o.end()) {
    s.method = Lower(ScalarText(*it));
    std::transform(s.method.begin(), s.method.end(), s.method.begin(), ::toupper);
    if (s.method != "GET" && s.method != "POST") {
      return Status::Invalid("fetch.method: '" + ScalarText(*it) +
                             "' is not supported; use GET or POST");
    }
  }
  RETURN_IF_ERROR(millis("timeout", &s.timeout_ms));
  RETURN_IF_ERROR(millis("connect_timeout", &s.connect_timeout_ms));
  RETURN_IF_ERROR(millis("stall_timeout", &s.stall_timeout_ms));
  RETURN_IF_ERROR(millis("backoff", &s.backoff_ms));
  if (auto it = o.find("retries"); it != o.end()) {
    if (!it->is_number_integer() || it->get<int>() < 0 || it->get<int>() > 20) {
      return Status::Invalid("fetch.retries: expected a number from 0 to 20");
    }
    s.retries = it->get<int>();
  }
  if (auto it = o.find("max_bytes"); it != o.end() && it->is_number_integer()) {
    s.max_bytes = it->get<uint64_t>();
  }
  if (auto it = o.find("ca_file"); it != o.end() && it->is_string()) s.ca_file = *it;
  if (auto it = o.find("rate_limit"); it != o.end()) {
    // "5/s", "100/min", "2/h", or a plain number of requests per second.
    std::string text = Trim(ScalarText(*it));
    size_t slash = text.find('/');
    std::string count = text.substr(0, slash);
    std::string unit = slash == std::string::npos ? "s" : Trim(text.substr(slash + 1));
    double per = unit == "s" || unit == "sec" || unit == "second"   ? 1
                 : unit == "m" || unit == "min" || unit == "minute" ? 60
                 : unit == "h" || unit == "hour"                    ? 3600
                                                                    : 0;
    char* end = nullptr;
    double n = std::strtod(count.c_str(), &end);
    if (per == 0 || count.empty() || *end != '\0' || !(n > 0)) {
      return Status::Invalid("fetch.rate_limit: '" + text +
                             "' is not a rate; write e.g. 5/s, 100/min or 1000/h");
    }
    s.rate_per_second = n / per;
  }
  if (auto it = o.find("expect"); it != o.end() && it->is_object()) {
    if (auto ct = it->find("content_type"); ct != it->end())
      s.expect_content_type = ScalarText(*ct);
    if (auto mb = it->find("min_bytes"); mb != it->end() && mb->is_number_integer()) {
      s.min_bytes = mb->get<uint64_t>();
    }
  }
  if (auto it = o.find("auth"); it != o.end()) {
    if (!it->is_object() || (!it->contains("basic") && !it->contains("bearer"))) {
      return Status::Invalid(
          "fetch.auth: expected {basic: {username: ..., password: ...}} or "
          "{bearer: TOKEN}");
    }
  }
  s.paginate = source.fetch.paginate;
  std::string type = s.paginate.value("type", "none");
  if (type != "none") {
    static const std::map<std::string, std::vector<std::string>> kKeys = {
        {"page", {"type", "param", "start", "size_param", "size", "max_pages", "records"}},
        {"offset", {"type", "offset_param", "limit_param", "limit", "max_pages", "records"}},
        {"cursor",
         {"type", "param", "cursor_path", "next_url_path", "max_pages", "records", "size_param",
          "size"}},
        {"link", {"type", "max_pages", "records", "size_param", "size"}}};
    auto keys = kKeys.find(type);
    if (keys == kKeys.end()) {
      return Status::Invalid("paginate.type: unknown '" + type +
                             "'; supported: none, page, offset, cursor, link");
    }
    for (const auto& [k, v] : s.paginate.items()) {
      if (std::find(keys->second.begin(), keys->second.end(), k) == keys->second.end()) {
        return Status::Invalid("paginate: unknown key '" + k + "' for type " + type +
                               DidYouMeanHint(k, keys->second) +
                               "; known: " + Join(keys->second, ", "));
      }
    }
    if (type == "cursor" && !s.paginate.contains("cursor_path") &&
        !s.paginate.contains("next_url_path")) {
      return Status::Invalid(
          "paginate: type cursor needs cursor_path (where the next token "
          "is, e.g. meta.next_cursor) or next_url_path (where the next URL "
          "is, e.g. links.next)");
    }
  }
  return s;
}

namespace {

Result<BaseRequest> BuildBase(const SourceSpec& src, const TemplateContext& ctx,
                              const SecretResolver& secrets) {
  BaseRequest b;
  int line = src.fetch.loc.line;
  auto render = [&](const std::string& text) -> Result<std::string> {
    ASSIGN_OR_RETURN(std::string out, RenderTemplate(text, ctx, line));
    return secrets.Substitute(out);
  };
  auto context = [&](Status st) { return st.WithContext(src.fetch.loc.ToString()); };
  Result<std::string> url = render(src.fetch.url);
  if (!url.ok()) return context(url.status());
  std::vector<std::pair<std::string, std::string>> params;
  const nlohmann::json& o = src.fetch.options;
  if (auto it = o.find("params"); it != o.end() && it->is_object()) {
    for (const auto& [k, v] : it->items()) {
      Result<std::string> value = render(ScalarText(v));
      if (!value.ok()) return context(value.status());
      params.emplace_back(k, *value);
    }
  }
  b.url = AddQuery(*url, params);
  for (const auto& [name, value] : src.fetch.headers) {
    Result<std::string> v = render(value);
    if (!v.ok()) return context(v.status());
    b.headers.emplace_back(name, *v);
  }
  if (auto it = o.find("body"); it != o.end()) {
    Result<std::string> body = render(it->is_string() ? it->get<std::string>() : it->dump());
    if (!body.ok()) return context(body.status());
    b.body = *body;
    if (!it->is_string()) b.headers.emplace_back("Content-Type", "application/json");
  }
  if (auto it = o.find("auth"); it != o.end() && it->is_object()) {
    if (auto basic = it->find("basic"); basic != it->end() && basic->is_object()) {
      Result<std::string> user = render(ScalarText(basic->value("username", nlohmann::json(""))));
      Result<std::string> pass = render(ScalarText(basic->value("password", nlohmann::json(""))));
      if (!user.ok()) return context(user.status());
      if (!pass.ok()) return context(pass.status());
      if (pass->empty()) {
        return context(
            Status::Invalid("auth.basic.password is empty; give it, usually as ${secret:NAME}"));
      }
      b.basic_auth = *user + ":" + *pass;
      // The header carries base64("user:password"): that form is a secret too.
      RegisterSecretForm(Base64Encode(b.basic_auth));
      RegisterSecretForm(b.basic_auth);
    }
    if (auto bearer = it->find("bearer"); bearer != it->end()) {
      Result<std::string> token = render(ScalarText(*bearer));
      if (!token.ok()) return context(token.status());
      b.headers.emplace_back("Authorization", "Bearer " + *token);
    }
  }
  return b;
}

}  // namespace

Result<std::string> HttpFetcher::DisplayUrl(const HttpFetchRequest& request) {
  ASSIGN_OR_RETURN(BaseRequest base, BuildBase(*request.source, request.context, secrets_));
  return Redact(base.url);
}

Result<HttpFetchResult> HttpFetcher::Fetch(const HttpFetchRequest& request) {
  const SourceSpec& src = *request.source;
  Result<FetchSettings> parsed = ParseFetchSettings(src);
  if (!parsed.ok()) {
    return Status::Invalid(FetchSettingsErrorLoc(src, parsed.status().message()).ToString() + ": " +
                           parsed.status().message());
  }
  FetchSettings settings = std::move(*parsed);
  ASSIGN_OR_RETURN(BaseRequest base, BuildBase(src, request.context, secrets_));
  const nlohmann::json& pg = settings.paginate;
  std::string type = pg.value("type", "none");
  int max_pages = pg.value("max_pages", kDefaultMaxPages);
  std::string records_path = pg.contains("records") ? ScalarText(pg["records"])
                             : src.format_options.contains("records")
                                 ? ScalarText(src.format_options["records"])
                                 : "";
  int64_t size = pg.value("size", pg.value("limit", int64_t{0}));
  if (type == "offset" && size == 0) size = 100;

  // Conditional request: the newest successful fetch of this URL, when it
  // carried validators and its object is still in the lake.
  std::optional<FetchRecord> previous;
  if (type == "none") {
    ASSIGN_OR_RETURN(std::vector<FetchRecord> log, metadata_->ListFetches(src.name, 200));
    std::string shown = Redact(base.url);
    for (const FetchRecord& r : log) {
      if (r.partition != request.partition || r.url != shown || r.sha256.empty()) continue;
      if (!r.error.empty()) continue;  // a body kept but refused is no validator
      if (r.status != 200 && r.status != 304) continue;
      if (r.headers.value("etag", "").empty() && r.headers.value("last-modified", "").empty()) {
        break;
      }
      if (archive_->store()->Exists(r.object_path)) previous = r;
      break;
    }
  }

  HttpFetchResult result;
  // The pages' records are committed as a group (see FetchLogBatch): every
  // return below commits them, the error returns through the destructor.
  FetchLogBatch batch(archive_);
  std::string page_url = base.url;
  int64_t page_no = pg.value("start", int64_t{1});
  int64_t offset = 0;
  std::string cursor;
  std::set<std::string> seen_cursors;
  for (int page = 1;; ++page) {
    if (page > max_pages) {
      return Status::DataError(
          fmt::format("{}: fetched paginate.max_pages ({}) pages and the API still has more; raise "
                      "max_pages if that is expected",
                      src.fetch.loc.ToString(), max_pages));
    }
    // This page's URL.
    std::string url = page_url;
    std::vector<std::pair<std::string, std::string>> size_param;
    if (pg.contains("size_param") && size > 0) {
      size_param.emplace_back(ScalarText(pg["size_param"]), std::to_string(size));
    }
    if (type == "page") {
      std::vector<std::pair<std::string, std::string>> p = {
          {pg.value("param", "page"), std::to_string(page_no)}};
      if (pg.contains("size_param") && size > 0) {
        p.emplace_back(ScalarText(pg["size_param"]), std::to_string(size));
      }
      url = AddQuery(base.url, p);
    } else if (type == "offset") {
      url = AddQuery(base.url, {{pg.value("offset_param", "offset"), std::to_string(offset)},
                                {pg.value("limit_param", "limit"), std::to_string(size)}});
    } else if (type == "cursor" && pg.contains("cursor_path")) {
      std::vector<std::pair<std::string, std::string>> p = size_param;
      if (!cursor.empty()) p.emplace_back(pg.value("param", "cursor"), cursor);
      url = AddQuery(base.url, p);
    } else if (page == 1) {
      // next URL and Link styles: the API's own links carry the parameters on.
      url = AddQuery(base.url, size_param);
    }

    // Attempts.
    HttpResponse res;
    std::unique_ptr<StagedBody> body;
    int retries = settings.retries;
    if (!src.fetch.options.contains("retries") && request.default_retries >= 0) {
      retries = std::min(request.default_retries, 20);
    }
    int max_attempts = 1 + retries;
    for (int attempt = 1;; ++attempt) {
      WaitForRateLimit(src.name, settings.rate_per_second);
      body = std::make_unique<StagedBody>(archive_->NewStagingPath());
      HttpRequest req;
      req.method = settings.method;
      req.url = url;
      req.headers = base.headers;
      req.body = base.body;
      req.basic_auth = base.basic_auth;
      req.connect_timeout_ms = settings.connect_timeout_ms;
      req.timeout_ms = settings.timeout_ms;
      req.stall_timeout_ms = settings.stall_timeout_ms;
      req.max_bytes = settings.max_bytes;
      req.ca_file = settings.ca_file;
      req.body_path = body->path();
      if (previous) {
        req.if_none_match = previous->headers.value("etag", "");
        req.if_modified_since = previous->headers.value("last-modified", "");
      }
      FetchRecord rec;
      rec.source = src.name;
      rec.partition = request.partition;
      rec.url = url;
      rec.started_at = clock_->Now();
      int64_t t0 = MonotonicMillis();
      Result<HttpResponse> sent = client_->Send(req);
      ++result.requests;
      rec.duration_ms = MonotonicMillis() - t0;
      rec.headers = {{"attempt", attempt}, {"page", page}};
      bool retry = false;
      std::string failure;
      int64_t wait_ms = 0;
      if (!sent.ok()) {
        rec.error = sent.status().message();
        StatusCode code = sent.status().code();
        retry = code == StatusCode::kTimeout || code == StatusCode::kIOError;
        failure = sent.status().message();
        wait_ms = BackoffMs(settings.backoff_ms, attempt);
        (void)batch.Add(rec);
        if (!retry || attempt >= max_attempts) {
          return Status(
              code == StatusCode::kTimeout || code == StatusCode::kRefused ? code
                                                                           : StatusCode::kIOError,
              fmt::format("{}: {} {} failed after {} attempt(s): {}", src.fetch.loc.ToString(),
                          settings.method, Redact(url), attempt, failure));
        }
      } else {
        res = std::move(*sent);
        rec.status = res.status;
        for (const char* h : {"content-type", "etag", "last-modified", "content-length",
                              "retry-after", "content-encoding"}) {
          std::string v = res.Header(h);
          if (!v.empty()) rec.headers[h] = Redact(v);
        }
        if (res.redirects) rec.headers["redirects"] = res.redirects;
        if (res.status == 304 && previous) {
          rec.sha256 = previous->sha256;
          rec.object_path = previous->object_path;
          rec.bytes = previous->bytes;
          for (const char* h : {"etag", "last-modified"}) {
            if (!rec.headers.contains(h) && previous->headers.contains(h)) {
              rec.headers[h] = previous->headers[h];
            }
          }
          RETURN_IF_ERROR(batch.Add(rec));
          StoredObject obj;
          obj.sha256 = previous->sha256;
          obj.key = previous->object_path;
          obj.bytes = static_cast<uint64_t>(previous->bytes);
          obj.reused = true;
          ASSIGN_OR_RETURN(obj.local_path, archive_->store()->LocalPath(obj.key));
          result.objects.push_back(std::move(obj));
          result.not_modified = true;
          RETURN_IF_ERROR(batch.Commit());
          return result;
        }
        if (res.status == 429 || res.status >= 500) {
          retry = true;
          failure = fmt::format("HTTP {}: {}", res.status, Excerpt(body->path()));
          rec.error = failure;
          wait_ms = BackoffMs(settings.backoff_ms, attempt);
          std::string after = res.Header("retry-after");
          if (!after.empty()) {
            int64_t s = RetryAfterSeconds(after, clock_->Now());
            if (s > kMaxRetryAfterSeconds) {
              (void)batch.Add(rec);
              return Status::IOError(fmt::format(
                  "{}: {} answered {} and asks to retry after {} s (more than {} s); try later",
                  src.fetch.loc.ToString(), Redact(url), res.status, s, kMaxRetryAfterSeconds));
            }
            if (s >= 0) wait_ms = s * 1000;
          }
          (void)batch.Add(rec);
          if (attempt >= max_attempts) {
            return Status::IOError(fmt::format("{}: {} {} failed after {} attempt(s): {}",
                                               src.fetch.loc.ToString(), settings.method,
                                               Redact(url), attempt, failure));
          }
        } else if (res.status < 200 || res.status >= 300) {
          rec.error = fmt::format("HTTP {}: {}", res.status, Excerpt(body->path()));
          (void)batch.Add(rec);
          std::string hint = res.status == 401 || res.status == 403
                                 ? " (check the credentials: headers, auth or key parameters)"
                             : res.status == 404 ? " (check the URL)"
                                                 : "";
          return Status::IOError(fmt::format("{}: {} {} answered HTTP {}{}: {}",
                                             src.fetch.loc.ToString(), settings.method, Redact(url),
                                             res.status, hint, Excerpt(body->path())));
        } else {
          // Guards: what came back must be what the source expects.
          std::string ctype = Lower(res.Header("content-type"));
          std::string head = ReadHead(body->path(), 512);
          std::string problem;
          if (request.format != "html_table" &&
              (ctype.find("text/html") != std::string::npos || LooksLikeHtml(head))) {
            std::string title = HtmlTitle(head);
            problem = fmt::format(
                "the server sent an HTML page{} where {} data was expected (content-type "
                "'{}'); not loaded. Check the URL and credentials, or set format: html_table "
                "if the page is the data",
                title.empty() ? "" : " ('" + Redact(title) + "')", request.format,
                res.Header("content-type"));
          } else if (!settings.expect_content_type.empty() &&
                     ctype.find(Lower(settings.expect_content_type)) == std::string::npos) {
            problem = fmt::format("content-type '{}' is not the expected '{}' (fetch.expect)",
                                  res.Header("content-type"), settings.expect_content_type);
          } else if (res.bytes < settings.min_bytes) {
            problem = fmt::format("the body has {} bytes, fewer than fetch.expect.min_bytes ({})",
                                  res.bytes, settings.min_bytes);
          }
          if (!problem.empty()) {
            // Kept in the lake like every body (what the server sent can be
            // looked at), its fetch record marked refused; never loaded.
            bool html = problem.find("HTML page") != std::string::npos;
            Result<StoredObject> kept =
                archive_->StoreTemp(src.name, body->path(), res.sha256, res.bytes,
                                    html ? "html" : request.extension, &batch);
            std::string where;
            if (kept.ok()) {
              body->Released();
              rec.sha256 = kept->sha256;
              rec.object_path = kept->key;
              where = "; what it sent is kept in the lake as " + kept->key;
            }
            rec.error = "refused: " + problem;
            rec.bytes = static_cast<int64_t>(res.bytes);
            (void)batch.Add(rec);
            return Status::DataError(fmt::format("{}: {} {}: {}{}", src.fetch.loc.ToString(),
                                                 settings.method, Redact(url), problem, where));
          }
          Result<StoredObject> stored = archive_->StoreTemp(src.name, body->path(), res.sha256,
                                                            res.bytes, request.extension, &batch);
          if (!stored.ok()) {
            rec.error = stored.status().message();
            (void)batch.Add(rec);
            return stored.status();
          }
          body->Released();
          RememberUtf8Verdict(stored->local_path, res.utf8_invalid_at);
          rec.sha256 = stored->sha256;
          rec.object_path = stored->key;
          rec.bytes = static_cast<int64_t>(stored->bytes);
          RETURN_IF_ERROR(batch.Add(rec));
          result.objects.push_back(std::move(*stored));
          break;
        }
      }
      LOG_WARN("fetch", "{}: attempt {} of {} failed ({}); retrying in {} ms", src.name, attempt,
               max_attempts, Redact(failure), wait_ms);
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    }

    // The next page, if any.
    if (type == "none") break;
    const StoredObject& obj = result.objects.back();
    nlohmann::json doc;
    if (type != "link" || !records_path.empty()) {
      Result<std::string> text = ReadFile(obj.local_path);
      if (!text.ok()) return text.status();
      doc = nlohmann::json::parse(*text, nullptr, false);
      if (doc.is_discarded()) {
        return Status::DataError(fmt::format(
            "{}: page {} of {} is not JSON; pagination needs JSON pages (or type: link)",
            src.fetch.loc.ToString(), page, Redact(url)));
      }
    }
    auto record_count = [&]() -> Result<int64_t> {
      nlohmann::json records = records_path.empty() ? doc : JsonAtPath(doc, records_path);
      if (!records.is_array()) {
        return Status::DataError(fmt::format(
            "{}: page {} of {} has no array of records at '{}'; set paginate.records (or "
            "options.records) to where the records are, e.g. data or results",
            src.fetch.loc.ToString(), page, Redact(url),
            records_path.empty() ? "$" : records_path));
      }
      return static_cast<int64_t>(records.size());
    };
    if (type == "page" || type == "offset") {
      ASSIGN_OR_RETURN(int64_t n, record_count());
      if (n == 0) {
        // An empty page ends the listing; it holds no data, so it is not an input.
        result.objects.pop_back();
        break;
      }
      if (size > 0 && n < size) break;
      ++page_no;
      offset += n;
    } else if (type == "cursor") {
      if (!records_path.empty()) {
        ASSIGN_OR_RETURN(int64_t n, record_count());
        if (n == 0) {
          result.objects.pop_back();
          break;
        }
      }
      if (pg.contains("cursor_path")) {
        nlohmann::json next = JsonAtPath(doc, ScalarText(pg["cursor_path"]));
        if (next.is_null() || (next.is_string() && next.get<std::string>().empty())) break;
        cursor = ScalarText(next);
        if (!seen_cursors.insert(cursor).second) {
          return Status::DataError(
              fmt::format("{}: the API returned the cursor '{}' twice; stopping instead of looping",
                          src.fetch.loc.ToString(), Redact(cursor)));
        }
      } else {
        nlohmann::json next = JsonAtPath(doc, ScalarText(pg["next_url_path"]));
        if (next.is_null() || !next.is_string() || next.get<std::string>().empty()) break;
        ASSIGN_OR_RETURN(std::string resolved, ResolveUrl(url, next.get<std::string>()));
        RETURN_IF_ERROR(RefuseDowngrade(src, url, resolved));
        if (!seen_cursors.insert(resolved).second) {
          return Status::DataError(fmt::format(
              "{}: the API's next URL repeats an earlier page ({}); stopping instead of looping",
              src.fetch.loc.ToString(), Redact(resolved)));
        }
        // The next URL replaces the whole request URL, params included.
        page_url = resolved;
      }
    } else if (type == "link") {
      if (!records_path.empty()) {
        ASSIGN_OR_RETURN(int64_t n, record_count());
        if (n == 0) {
          result.objects.pop_back();
          break;
        }
      }
      std::string next = NextLink(res.Header("link"));
      if (next.empty()) break;
      ASSIGN_OR_RETURN(std::string resolved, ResolveUrl(url, next));
      RETURN_IF_ERROR(RefuseDowngrade(src, url, resolved));
      if (!seen_cursors.insert(resolved).second) {
        return Status::DataError(
            fmt::format("{}: the Link header's next page repeats an earlier one ({}); stopping",
                        src.fetch.loc.ToString(), Redact(resolved)));
      }
      page_url = resolved;
    }
  }
  RETURN_IF_ERROR(batch.Commit());
  return result;
}

}  // namespace sluice
