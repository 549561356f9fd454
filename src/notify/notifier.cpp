#include "notify/notifier.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "core/fs.h"
#include "core/log.h"
#include "core/redact.h"
#include "core/secrets.h"
#include "core/strings.h"

namespace sluice {
namespace {

constexpr size_t kMaxErrorText = 300;

// Redacted first (a secret cut short would no longer be found), then cut at
// the start of a UTF-8 character.
std::string Clip(const std::string& text) {
  std::string clipped = Redact(text);
  if (clipped.size() <= kMaxErrorText) return clipped;
  size_t cut = kMaxErrorText;
  while (cut > 0 && (static_cast<unsigned char>(clipped[cut]) & 0xC0) == 0x80) --cut;
  clipped.resize(cut);
  return clipped + "...";
}

bool IsFreshness(const nlohmann::json& check) {
  return StartsWith(check.value("name", ""), "freshness(");
}

bool Failed(const std::string& status) {
  return status == "failed" || status == "check_failed" || status == "upstream_failed";
}

}  // namespace

std::vector<Notification> NotificationsOf(const nlohmann::json& report, const std::string& project,
                                          const std::map<std::string, std::string>& previous) {
  std::vector<Notification> out;
  if (!report.is_object() || !report.contains("tasks")) return out;
  int64_t run_id = report.value("run_id", int64_t{0});
  std::string run = "run " + std::to_string(run_id);
  nlohmann::json failed = nlohmann::json::array(), checks = nlohmann::json::array(),
                 late = nlohmann::json::array(), recovered = nlohmann::json::array();
  std::vector<std::string> failed_text, check_text, late_text, recovered_names;
  for (const auto& t : report["tasks"]) {
    std::string asset = t.value("asset", "");
    std::string status = t.value("status", "");
    if (status == "failed" || status == "upstream_failed") {
      std::string error = Clip(t.value("error", ""));
      failed.push_back({{"asset", asset}, {"status", status}, {"error", error}});
      failed_text.push_back(asset +
                            (status == "upstream_failed" ? " (upstream failed)" : ": " + error));
    }
    for (const auto& c : t.value("checks", nlohmann::json::array())) {
      if (c.value("status", "") == "pass") continue;
      nlohmann::json entry = {{"asset", asset},
                              {"check", c.value("name", "")},
                              {"severity", c.value("severity", "")},
                              {"failing_rows", c.value("failing_rows", int64_t{0})},
                              {"message", Clip(c.value("message", ""))}};
      if (IsFreshness(c)) {
        late.push_back(entry);
        late_text.push_back(Clip(c.value("message", "")));
      } else if (c.value("severity", "error") == "error") {
        checks.push_back(entry);
        check_text.push_back(asset + ": " + c.value("name", "") + " (" +
                             std::to_string(c.value("failing_rows", int64_t{0})) +
                             " failing rows)");
      }
    }
    auto before = previous.find(asset);
    if (before != previous.end() && Failed(before->second) &&
        (status == "success" || status == "skipped")) {
      recovered.push_back({{"asset", asset}, {"was", before->second}});
      recovered_names.push_back(asset);
    }
  }
  std::string head = "Sluice " + project + ", " + run + ": ";
  if (!failed.empty()) {
    out.push_back({NotifyEvent::kRunFailed,
                   head + std::to_string(failed.size()) + " failed: " + Join(failed_text, "; "),
                   {{"tasks", failed}}});
  }
  if (!checks.empty()) {
    out.push_back(
        {NotifyEvent::kCheckFailed,
         head + std::to_string(checks.size()) + " check(s) failed: " + Join(check_text, "; "),
         {{"checks", checks}}});
  }
  if (!late.empty()) {
    out.push_back({NotifyEvent::kFreshnessLate,
                   head + "late data: " + Join(late_text, "; "),
                   {{"checks", late}}});
  }
  if (!recovered.empty()) {
    out.push_back({NotifyEvent::kRecovered,
                   head + "recovered: " + Join(recovered_names, ", "),
                   {{"assets", recovered}}});
  }
  return out;
}

nlohmann::json WebhookPayload(const Notification& n, const std::string& project, int64_t run_id) {
  // Redacted here, before JSON escapes anything (core/redact.h).
  nlohmann::json detail = RedactJson(n.detail);
  return {{"text", Redact(n.text)},
          {"sluice",
           {{"event", NotifyEventName(n.event)},
            {"project", project},
            {"run_id", run_id},
            {"detail", detail}}}};
}

Status PostJson(HttpClient& client, const std::string& url, const std::string& body,
                const std::vector<std::pair<std::string, std::string>>& headers,
                const DeliveryOptions& options) {
  static std::atomic<uint64_t> counter{0};
  HttpRequest req;
  req.method = "POST";
  req.url = url;
  req.headers = {{"Content-Type", "application/json"}};
  req.headers.insert(req.headers.end(), headers.begin(), headers.end());
  req.body = body;
  req.timeout_ms = options.timeout_ms;
  req.connect_timeout_ms = std::min<int64_t>(options.timeout_ms, 5000);
  req.max_redirects = 0;  // a receiver that moves is a configuration error
  req.max_bytes = 1 << 20;
  req.body_path = JoinPath(options.tmp_dir,
                           "post-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  Status last = Status::Ok();
  int64_t backoff = options.backoff_ms;
  for (int attempt = 1; attempt <= options.attempts; ++attempt) {
    Result<HttpResponse> resp = client.Send(req);
    bool again = false;
    if (!resp.ok()) {
      last = resp.status();
      again = resp.status().code() != StatusCode::kRefused;
    } else if (resp->status >= 200 && resp->status < 300) {
      last = Status::Ok();
    } else {
      last = Status::IOError("HTTP " + std::to_string(resp->status));
      again = resp->status == 429 || resp->status >= 500;
    }
    if (last.ok() || !again || attempt == options.attempts) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
    backoff *= 2;
  }
  ::unlink(req.body_path.c_str());
  return last;
}

std::vector<Status> Deliver(const std::vector<Notification>& notifications,
                            const std::vector<NotifySpec>& hooks,
                            const std::vector<SecretProvider>& secrets, const std::string& project,
                            int64_t run_id, HttpClient& client, const DeliveryOptions& options) {
  std::vector<Status> failures;
  SecretResolver resolver(secrets);
  for (const NotifySpec& hook : hooks) {
    std::string where = "notify entry at " + hook.loc.ToString();
    Result<std::string> url = resolver.Substitute(hook.webhook);
    if (!url.ok()) {
      failures.push_back(Status::Invalid(where + ": " + url.status().message()));
      continue;
    }
    for (const Notification& n : notifications) {
      if (std::find(hook.on.begin(), hook.on.end(), n.event) == hook.on.end()) continue;
      Status last;
      try {  // one notification's trouble never stops the others
        // Text that is not UTF-8 (a program's output) is replaced, never thrown on.
        last = PostJson(client, *url,
                        WebhookPayload(n, project, run_id)
                            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                        {}, options);
      } catch (const std::exception& e) {
        last = Status::Internal(e.what());
      }
      if (!last.ok()) {
        // The URL may hold the secret: the entry is named by where it is written.
        failures.push_back(Status::IOError(
            where + ": " + NotifyEventName(n.event) + " not delivered after " +
            std::to_string(options.attempts) + " attempt(s): " + Redact(last.message())));
      } else {
        LOG_INFO("notify", "{}: {} delivered", where, NotifyEventName(n.event));
      }
    }
  }
  return failures;
}

}  // namespace sluice
