// Notifications: webhooks told when a run fails, a check fails, data is late,
// or an asset that failed is good again (`notify:` in sluice.yaml). The
// payload is Slack-compatible ({"text": ...}) with the details beside it
// ({"sluice": {...}}); every text is redacted before it is sent, and the
// webhook's URL (usually a secret itself) is never logged.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/project.h"
#include "core/status.h"
#include "ingest/http_client.h"

namespace sluice {

struct Notification {
  NotifyEvent event;
  std::string text;  // one line a person reads
  nlohmann::json detail = nlohmann::json::object();
};

// What a finished run (RunReport::ToJson) has to say. `previous` holds each
// asset's status in the run before, for `recovered`: an asset whose last
// run failed and that succeeded (or was skipped as unchanged) now.
std::vector<Notification> NotificationsOf(const nlohmann::json& run_report,
                                          const std::string& project,
                                          const std::map<std::string, std::string>& previous);

// The JSON body a webhook receives.
nlohmann::json WebhookPayload(const Notification& n, const std::string& project, int64_t run_id);

struct DeliveryOptions {
  int attempts = 3;           // a 5xx, a 429 or a transport error is tried again
  int64_t backoff_ms = 1000;  // doubled after each attempt
  int64_t timeout_ms = 10000;
  std::string tmp_dir;  // where a response body is written, then removed
};

// POSTs a JSON body (Content-Type application/json, then `headers`); a
// 5xx, a 429 or a transport error is tried again, options.attempts in all,
// with doubling backoff; no redirects.
Status PostJson(HttpClient& client, const std::string& url, const std::string& body,
                const std::vector<std::pair<std::string, std::string>>& headers,
                const DeliveryOptions& options);

// Sends each notification to every webhook that subscribed to its event.
// Returns one error per delivery that failed after its attempts, naming the
// notify entry by file:line (never by URL).
std::vector<Status> Deliver(const std::vector<Notification>& notifications,
                            const std::vector<NotifySpec>& hooks,
                            const std::vector<SecretProvider>& secrets, const std::string& project,
                            int64_t run_id, HttpClient& client, const DeliveryOptions& options);

}  // namespace sluice
