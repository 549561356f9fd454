#include "support/fixture_server.h"

#include <httplib.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace sluice::testing {
namespace {

std::string ReadAll(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  *ok = static_cast<bool>(in);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string ContentTypeOf(const std::string& path) {
  auto ends = [&](const char* ext) {
    std::string e(ext);
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  if (ends(".csv")) return "text/csv";
  if (ends(".tsv")) return "text/tab-separated-values";
  if (ends(".json")) return "application/json";
  if (ends(".ndjson")) return "application/x-ndjson";
  if (ends(".html") || ends(".htm")) return "text/html; charset=utf-8";
  if (ends(".zip")) return "application/zip";
  if (ends(".txt")) return "text/plain";
  return "application/octet-stream";
}

std::string HttpDate(time_t t) {
  char buf[64];
  struct tm tm;
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

// Rejects paths that would leave the root.
bool SafePath(const std::string& rel) {
  return !rel.empty() && rel[0] != '/' && rel.find("..") == std::string::npos;
}

std::string UrlEncode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string Base64(const std::string& in) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                 (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += table[(v >> s) & 63];
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += i + 1 < in.size() ? table[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace

struct FixtureServer::Impl {
  FixtureServerOptions opt;
  std::unique_ptr<httplib::Server> server;  // an SSLServer with a certificate
  std::thread thread;
  int port = 0;
  std::atomic<bool> stopping{false};
  mutable std::mutex mu;
  std::map<std::string, int> counts;         // GUARDED_BY(mu)
  std::string last_body, last_content_type;  // of the last POST; GUARDED_BY(mu)
  std::string last_echo;                     // of the last /echo request; GUARDED_BY(mu)
  // /gate: requests waiting, and how many groups of them have been let through.
  size_t gate_waiting = 0, gate_opened = 0;  // GUARDED_BY(mu)
  std::condition_variable gate_cv;
  // /crowd: requests in flight now; the most at once is counts["crowd_peak"].
  int crowd = 0;  // GUARDED_BY(mu)
  // Parsed JSON files for the paging routes, by path and mtime (benchmarks
  // page through large files; parsing them per request would measure that).
  std::map<std::string, std::pair<int64_t, std::shared_ptr<const nlohmann::json>>>
      json_cache;  // GUARDED_BY(mu)

  std::shared_ptr<const nlohmann::json> LoadJson(const std::string& rel) {
    if (!SafePath(rel)) return nullptr;
    std::string path = opt.root + "/" + rel;
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return nullptr;
    int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    {
      std::lock_guard lock(mu);
      auto it = json_cache.find(path);
      if (it != json_cache.end() && it->second.first == mtime) return it->second.second;
    }
    bool ok = false;
    std::string text = ReadAll(path, &ok);
    if (!ok) return nullptr;
    auto doc = std::make_shared<const nlohmann::json>(nlohmann::json::parse(text, nullptr, false));
    std::lock_guard lock(mu);
    json_cache[path] = {mtime, doc};
    return doc;
  }

  int Bump(const std::string& key) {
    std::lock_guard lock(mu);
    return ++counts[key];
  }

  // Waits up to ms, returning early (false) when the server stops.
  bool Sleep(int ms) {
    for (int waited = 0; waited < ms; waited += 20) {
      if (stopping) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return !stopping;
  }

  // The file a streaming route sends, or null (and a 404) when missing.
  std::shared_ptr<std::string> LoadBody(const std::string& rel, httplib::Response& res) {
    bool ok = false;
    auto body = std::make_shared<std::string>(SafePath(rel) ? ReadAll(opt.root + "/" + rel, &ok)
                                                            : std::string());
    if (!ok) {
      res.status = 404;
      return nullptr;
    }
    return body;
  }

  // Serves root/rel with validators; false (and a 404) when missing.
  bool ServeFile(const httplib::Request& req, httplib::Response& res, const std::string& rel,
                 const std::string& content_type = "") {
    if (!SafePath(rel)) {
      res.status = 400;
      return false;
    }
    std::string path = opt.root + "/" + rel;
    bool ok = false;
    std::string body = ReadAll(path, &ok);
    if (!ok) {
      res.status = 404;
      res.set_content("not found: " + rel, "text/plain");
      return false;
    }
    struct stat st;
    ::stat(path.c_str(), &st);
    std::string etag = "\"" + std::to_string(std::hash<std::string>{}(body)) + "\"";
    std::string modified = HttpDate(st.st_mtime);
    res.set_header("ETag", etag);
    res.set_header("Last-Modified", modified);
    if ((req.has_header("If-None-Match") && req.get_header_value("If-None-Match") == etag) ||
        (!req.has_header("If-None-Match") && req.has_header("If-Modified-Since") &&
         req.get_header_value("If-Modified-Since") == modified)) {
      res.status = 304;
      return true;
    }
    res.set_content(body, content_type.empty() ? ContentTypeOf(rel) : content_type);
    return true;
  }

  std::string Base() const {
    return std::string(opt.tls_cert.empty() ? "http" : "https") +
           "://127.0.0.1:" + std::to_string(port);
  }

  void Routes() {
    server->Get(R"(/files/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      Bump("files/" + req.matches[1].str());
      ServeFile(req, res, req.matches[1]);
    });
    server->Get(R"(/as_html/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      Bump("as_html");
      ServeFile(req, res, req.matches[1], "text/html");
    });
    server->Get("/html_error", [this](const httplib::Request&, httplib::Response& res) {
      Bump("html_error");
      res.set_content(
          "<!DOCTYPE html>\n<html><head><title>Service temporarily unavailable</title></head>"
          "<body><h1>We'll be back soon</h1><p>Maintenance in progress.</p></body></html>\n",
          "text/html; charset=utf-8");
    });
    server->Get(
        R"(/fail/([^/]+)/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
          int n = Bump("fail/" + req.matches[1].str());
          int times = req.has_param("times") ? std::stoi(req.get_param_value("times")) : 1;
          int status = req.has_param("status") ? std::stoi(req.get_param_value("status")) : 500;
          if (n <= times) {
            res.status = status;
            res.set_content("injected failure " + std::to_string(n), "text/plain");
            return;
          }
          ServeFile(req, res, req.matches[2]);
        });
    server->Get(
        R"(/throttle/([^/]+)/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
          int n = Bump("throttle/" + req.matches[1].str());
          int times = req.has_param("times") ? std::stoi(req.get_param_value("times")) : 1;
          if (n <= times) {
            res.status = 429;
            res.set_header("Retry-After",
                           req.has_param("retry_after") ? req.get_param_value("retry_after") : "1");
            res.set_content("slow down", "text/plain");
            return;
          }
          ServeFile(req, res, req.matches[2]);
        });
    server->Get(R"(/slow/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      Bump("slow");
      auto body = LoadBody(req.matches[1], res);
      if (!body) return;
      size_t chunk = req.has_param("chunk") ? std::stoul(req.get_param_value("chunk")) : 64;
      int delay = req.has_param("delay_ms") ? std::stoi(req.get_param_value("delay_ms")) : 100;
      res.set_content_provider(
          body->size(), ContentTypeOf(req.matches[1]),
          [this, body, chunk, delay](size_t offset, size_t, httplib::DataSink& sink) {
            if (!Sleep(delay)) return false;
            size_t n = std::min(chunk, body->size() - offset);
            sink.write(body->data() + offset, n);
            return true;
          });
    });
    server->Get(R"(/gate/(\d+)/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      Bump("gate");
      size_t n = std::stoul(req.matches[1].str());
      {
        std::unique_lock lock(mu);
        size_t group = gate_opened;
        if (++gate_waiting >= n) {
          gate_waiting = 0;
          ++gate_opened;
          gate_cv.notify_all();
        } else if (!gate_cv.wait_for(lock, std::chrono::seconds(10),
                                     [&] { return gate_opened != group; })) {
          size_t came = gate_waiting--;
          res.status = 503;
          res.set_content("only " + std::to_string(came) + " of " + std::to_string(n) +
                              " requests waited at the gate together",
                          "text/plain");
          return;
        }
      }
      ServeFile(req, res, req.matches[2]);
    });
    // Each request stays 300 ms; /stats says how many were ever in flight at once.
    server->Get(R"(/crowd/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard lock(mu);
        ++crowd;
        counts["crowd_peak"] = std::max(counts["crowd_peak"], crowd);
      }
      Sleep(300);
      {
        std::lock_guard lock(mu);
        --crowd;
      }
      ServeFile(req, res, req.matches[1]);
    });
    server->Get(R"(/stall/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      Bump("stall");
      auto body = LoadBody(req.matches[1], res);
      if (!body) return;
      res.set_content_provider(body->size(), ContentTypeOf(req.matches[1]),
                               [this, body](size_t offset, size_t, httplib::DataSink& sink) {
                                 if (offset == 0) {
                                   sink.write(body->data(), body->size() / 2);
                                   return true;
                                 }
                                 Sleep(60000);
                                 return false;
                               });
    });
    server->Get(R"(/truncate/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      Bump("truncate");
      auto body = LoadBody(req.matches[1], res);
      if (!body) return;
      res.set_content_provider(body->size(), ContentTypeOf(req.matches[1]),
                               [body](size_t offset, size_t, httplib::DataSink& sink) {
                                 if (offset > 0) return false;  // close mid-body
                                 sink.write(body->data(), body->size() / 2);
                                 return true;
                               });
    });
    server->Get("/redirect_to", [this](const httplib::Request& req, httplib::Response& res) {
      Bump("redirect_to");
      res.set_redirect(req.get_param_value("url"));
    });
    server->Get("/echo", [this](const httplib::Request& req, httplib::Response& res) {
      Bump("echo");
      std::string seen;
      for (const auto& [name, value] : req.headers) seen += name + ": " + value + "\n";
      for (const auto& [name, value] : req.params) seen += "?" + name + "=" + value + "\n";
      {
        std::lock_guard lock(mu);
        last_echo = seen;
      }
      res.set_content("id\n1\n", "text/csv");
    });
    server->Get(R"(/redirect/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      Bump("redirect");
      res.set_redirect("/files/" + req.matches[1].str());
    });
    server->Get(R"(/loop/(\d+))", [this](const httplib::Request& req, httplib::Response& res) {
      Bump("loop");
      res.set_redirect("/loop/" + std::to_string(std::stoi(req.matches[1]) + 1));
    });
    server->Get(R"(/auth/bearer/(.+))",
                [this](const httplib::Request& req, httplib::Response& res) {
                  Bump("auth/bearer");
                  if (req.get_header_value("Authorization") != "Bearer " + opt.token) {
                    res.status = 401;
                    res.set_content("{\"error\": \"invalid token\"}", "application/json");
                    return;
                  }
                  ServeFile(req, res, req.matches[1]);
                });
    server->Get(R"(/auth/basic/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      Bump("auth/basic");
      std::string expected = "Basic " + Base64(opt.basic);
      if (req.get_header_value("Authorization") != expected) {
        res.status = 401;
        res.set_header("WWW-Authenticate", "Basic realm=\"fixtures\"");
        res.set_content("{\"error\": \"unauthorized\"}", "application/json");
        return;
      }
      ServeFile(req, res, req.matches[1]);
    });
    server->Get(R"(/pages/(page|offset|cursor|next_url|link)/(.+))",
                [this](const httplib::Request& req, httplib::Response& res) {
                  Pages(req, res, req.matches[1], req.matches[2]);
                });
    server->Get(R"(/census/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      Census(req, res, req.matches[1]);
    });
    server->Post(R"(/post/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      Bump("post");
      {
        std::lock_guard lock(mu);
        last_body = req.body;
        last_content_type = req.get_header_value("Content-Type");
      }
      ServeFile(req, res, req.matches[1]);
    });
    server->Get("/stats", [this](const httplib::Request&, httplib::Response& res) {
      std::lock_guard lock(mu);
      res.set_content(nlohmann::json(counts).dump(), "application/json");
    });
    server->Get("/stats/reset", [this](const httplib::Request&, httplib::Response& res) {
      std::lock_guard lock(mu);
      counts.clear();
      res.set_content("{}", "application/json");
    });
  }

  void Pages(const httplib::Request& req, httplib::Response& res, const std::string& style,
             const std::string& rel) {
    Bump("pages/" + style);
    std::shared_ptr<const nlohmann::json> doc = LoadJson(rel);
    if (!doc || !doc->is_array()) {
      res.status = 404;
      res.set_content("no JSON array at " + rel, "text/plain");
      return;
    }
    const nlohmann::json& all = *doc;
    auto param = [&](const char* name, size_t fallback) -> size_t {
      return req.has_param(name) ? std::stoul(req.get_param_value(name)) : fallback;
    };
    size_t per_page = param(style == "offset" ? "limit" : "per_page", 10);
    size_t begin = 0;
    if (style == "page" || style == "link" || style == "next_url") {
      begin = (std::max<size_t>(param("page", 1), 1) - 1) * per_page;
    } else if (style == "offset") {
      begin = param("offset", 0);
    } else if (style == "cursor" && req.has_param("cursor")) {
      std::string c = req.get_param_value("cursor");
      if (c.size() < 2 || c[0] != 'c') {
        res.status = 400;
        res.set_content("{\"error\": \"bad cursor\"}", "application/json");
        return;
      }
      begin = std::stoul(c.substr(1));
    }
    nlohmann::json page = nlohmann::json::array();
    for (size_t i = begin; i < all.size() && i < begin + per_page; ++i) page.push_back(all[i]);
    bool more = begin + per_page < all.size();
    nlohmann::json out = {{"data", page}, {"total", all.size()}};
    if (style == "cursor") {
      out["meta"] = {{"next_cursor", more ? nlohmann::json("c" + std::to_string(begin + per_page))
                                          : nlohmann::json(nullptr)}};
    }
    size_t next_page = begin / std::max<size_t>(per_page, 1) + 2;
    std::string next;
    if (more && (style == "next_url" || style == "link")) {
      // Echo every parameter back, as APIs do (API keys included).
      next = Base() + "/pages/" + style + "/" + rel + "?";
      for (const auto& [k, v] : req.params) {
        if (k != "page") next += UrlEncode(k) + "=" + UrlEncode(v) + "&";
      }
      next += "page=" + std::to_string(next_page);
    }
    if (style == "next_url") {
      out["links"] = {{"next", more ? nlohmann::json(next) : nlohmann::json(nullptr)}};
    }
    if (style == "link" && more) res.set_header("Link", "<" + next + ">; rel=\"next\"");
    res.set_content(out.dump(), "application/json");
  }

  void Census(const httplib::Request& req, httplib::Response& res, const std::string& rel) {
    Bump("census");
    if (!opt.api_key.empty() && req.get_param_value("key") != opt.api_key) {
      res.status = 401;
      res.set_content(
          "<html><head><title>Invalid Key</title></head><body>A valid <em>key</em> must be "
          "included with each data API request.</body></html>",
          "text/html");
      return;
    }
    bool ok = false;
    std::string text = SafePath(rel) ? ReadAll(opt.root + "/" + rel, &ok) : "";
    nlohmann::json all = ok ? nlohmann::json::parse(text, nullptr, false) : nlohmann::json();
    if (!all.is_array() || all.empty() || !all[0].is_array()) {
      res.status = 404;
      res.set_content("error: unknown dataset", "text/plain");
      return;
    }
    std::vector<std::string> wanted;
    std::string get = req.get_param_value("get");
    for (size_t start = 0; start <= get.size();) {
      size_t comma = get.find(',', start);
      if (comma == std::string::npos) comma = get.size();
      if (comma > start) wanted.push_back(get.substr(start, comma - start));
      start = comma + 1;
    }
    std::string geo = req.get_param_value("for");
    geo = geo.substr(0, geo.find(':'));
    if (!geo.empty()) wanted.push_back(geo);
    std::vector<size_t> idx;
    for (const std::string& w : wanted) {
      size_t i = 0;
      while (i < all[0].size() && all[0][i] != w) ++i;
      if (i == all[0].size()) {
        res.status = 400;
        res.set_content("error: unknown variable '" + w + "'", "text/plain");
        return;
      }
      idx.push_back(i);
    }
    nlohmann::json out = nlohmann::json::array();
    for (const auto& row : all) {
      nlohmann::json r = nlohmann::json::array();
      for (size_t i : idx) r.push_back(row[i]);
      out.push_back(r);
    }
    res.set_content(out.dump(), "application/json;charset=utf-8");
  }
};

FixtureServer::FixtureServer(FixtureServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(options);
  if (impl_->opt.tls_cert.empty()) {
    impl_->server = std::make_unique<httplib::Server>();
  } else {
    impl_->server = std::make_unique<httplib::SSLServer>(impl_->opt.tls_cert.c_str(),
                                                         impl_->opt.tls_key.c_str());
  }
  impl_->Routes();
}

std::string FixtureServer::LastEcho() const {
  std::lock_guard lock(impl_->mu);
  return impl_->last_echo;
}

FixtureServer::~FixtureServer() { Stop(); }

bool FixtureServer::Start() {
  int port = impl_->opt.port;
  if (port == 0) {
    port = impl_->server->bind_to_any_port("127.0.0.1");
  } else if (!impl_->server->bind_to_port("127.0.0.1", port)) {
    port = -1;
  }
  if (port <= 0) return false;
  impl_->port = port;
  impl_->thread = std::thread([this] { impl_->server->listen_after_bind(); });
  return true;
}

void FixtureServer::Stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->stopping = true;
  impl_->server->stop();
  impl_->thread.join();
}

int FixtureServer::port() const { return impl_->port; }

std::string FixtureServer::Url(const std::string& path) const { return impl_->Base() + "/" + path; }

std::string FixtureServer::LastPostBody() const {
  std::lock_guard lock(impl_->mu);
  return impl_->last_body + "|" + impl_->last_content_type;
}

int FixtureServer::Count(const std::string& key) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->counts.find(key);
  return it == impl_->counts.end() ? 0 : it->second;
}

}  // namespace sluice::testing
