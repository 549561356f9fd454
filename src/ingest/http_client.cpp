#include "ingest/http_client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <mutex>

#include <fmt/format.h>
#include "core/fs.h"
#include "core/hash.h"
#include "core/redact.h"
#include "core/utf8.h"

namespace sluice {
namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string TrimWs(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// RAII over the easy handle and the header list.
struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

struct Transfer {
  int fd = -1;
  std::string path;
  Sha256 hash;
  Utf8Scanner utf8;
  uint64_t bytes = 0;
  uint64_t max_bytes = 0;
  bool too_big = false;
  Status write_error;
  std::map<std::string, std::string> headers;
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (t->max_bytes && t->bytes + len > t->max_bytes) {
    t->too_big = true;
    return 0;  // aborts the transfer
  }
  Status st = WriteAll(t->fd, data, len, t->path);
  if (!st.ok()) {
    t->write_error = st;
    return 0;
  }
  t->hash.Update(data, len);
  t->utf8.Feed(data, len);
  t->bytes += len;
  return len;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    t->headers.clear();  // a new response (after a redirect or 100-continue)
  } else if (size_t colon = line.find(':'); colon != std::string::npos) {
    t->headers[Lower(TrimWs(line.substr(0, colon)))] = TrimWs(line.substr(colon + 1));
  }
  return size * n;
}

class CurlHttpClient : public HttpClient {
 public:
  Result<HttpResponse> Send(const HttpRequest& req) override {
    GlobalInit();
    CurlHandle curl(curl_easy_init());
    if (!curl) return Status::Internal("libcurl: cannot create a handle");
    ASSIGN_OR_RETURN(UniqueFd fd,
                     UniqueFd::Open(req.body_path, O_WRONLY | O_CREAT | O_TRUNC, 0640));
    Transfer t;
    t.fd = fd.get();
    t.path = req.body_path;
    t.max_bytes = req.max_bytes;
    CURL* c = curl.get();
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    // Never from https to http: custom headers (API keys), the query string
    // and a POST body would follow the redirect in clear.
    const bool tls = req.url.size() >= 8 && strncasecmp(req.url.c_str(), "https://", 8) == 0;
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, tls ? "https" : "http,https");
    if (!req.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, req.ca_file.c_str());
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, static_cast<long>(req.max_redirects));
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // every encoding libcurl decodes
    curl_easy_setopt(c, CURLOPT_USERAGENT, "sluice/" SLUICE_VERSION);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(req.connect_timeout_ms));
    if (req.timeout_ms > 0)
      curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout_ms));
    if (req.stall_timeout_ms > 0) {
      curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
      curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
                       std::max(1L, static_cast<long>(req.stall_timeout_ms / 1000)));
    }
    if (req.max_bytes) {
      curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(req.max_bytes));
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    if (req.method == "POST") {
      curl_easy_setopt(c, CURLOPT_POST, 1L);
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.c_str());
    }
    if (!req.basic_auth.empty()) {
      curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
      curl_easy_setopt(c, CURLOPT_USERPWD, req.basic_auth.c_str());
    }
    curl_slist* raw = nullptr;
    for (const auto& [name, value] : req.headers) {
      raw = curl_slist_append(raw, (name + ": " + value).c_str());
    }
    if (!req.if_none_match.empty()) {
      raw = curl_slist_append(raw, ("If-None-Match: " + req.if_none_match).c_str());
    }
    if (!req.if_modified_since.empty()) {
      raw = curl_slist_append(raw, ("If-Modified-Since: " + req.if_modified_since).c_str());
    }
    Slist headers(raw);
    if (raw) curl_easy_setopt(c, CURLOPT_HTTPHEADER, raw);

    CURLcode code = curl_easy_perform(c);
    if (t.too_big || code == CURLE_FILESIZE_EXCEEDED) {
      return Status::DataError(fmt::format(
          "the response body is larger than max_bytes ({} bytes); raise fetch.max_bytes if "
          "that is expected",
          req.max_bytes));
    }
    if (!t.write_error.ok()) return t.write_error;
    if (code != CURLE_OK) {
      std::string detail = errbuf[0] ? errbuf : curl_easy_strerror(code);
      std::string what = Redact(detail);
      if (code == CURLE_OPERATION_TIMEDOUT) {
        return Status(StatusCode::kTimeout, "timed out: " + what);
      }
      if (code == CURLE_UNSUPPORTED_PROTOCOL && tls) {
        return Status::Refused(
            "the server redirected from https to a URL that is not https; refused, so that "
            "credentials are not sent in clear (" +
            what + ")");
      }
      if (code == CURLE_TOO_MANY_REDIRECTS) {
        return Status::DataError(
            fmt::format("too many redirects (more than {}): {}; the server may redirect in a loop",
                        req.max_redirects, what));
      }
      return Status::IOError(fmt::format("{} (libcurl error {})", what, static_cast<int>(code)));
    }
    if (SysFsync(fd.get()) != 0) {
      return Status::IOError(req.body_path + ": fsync failed: " + strerror(errno));
    }
    HttpResponse res;
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    res.status = static_cast<int>(status);
    char* effective = nullptr;
    curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &effective);
    if (effective) res.effective_url = effective;
    long redirects = 0;
    curl_easy_getinfo(c, CURLINFO_REDIRECT_COUNT, &redirects);
    res.redirects = static_cast<int>(redirects);
    res.headers = std::move(t.headers);
    res.bytes = t.bytes;
    res.sha256 = t.hash.HexDigest();
    res.utf8_invalid_at = t.utf8.Finish();
    return res;
  }
};

}  // namespace

std::string HttpResponse::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

std::unique_ptr<HttpClient> NewCurlHttpClient() { return std::make_unique<CurlHttpClient>(); }

}  // namespace sluice
