// Notifications: which events a run report gives, and their delivery to a
// real HTTP receiver on 127.0.0.1 (retried on 5xx, never retried on 4xx, the
// secret in the URL never in an error or a payload).
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/redact.h"
#include "core/secrets.h"
#include "notify/notifier.h"

namespace sluice {
namespace {

nlohmann::json Report() {
  return nlohmann::json::parse(R"json({
    "run_id": 7,
    "tasks": [
      {"asset": "stops", "status": "failed", "error": "HTTP 503 from the feed", "checks": []},
      {"asset": "trips", "status": "upstream_failed", "error": "", "checks": []},
      {"asset": "routes", "status": "check_failed", "error": "",
       "checks": [{"name": "not_null(route_id)", "severity": "error", "status": "fail",
                   "failing_rows": 3, "message": "3 rows"},
                  {"name": "unique(route_id)", "severity": "warn", "status": "fail",
                   "failing_rows": 1, "message": "1 row"}]},
      {"asset": "feed", "status": "success", "error": "",
       "checks": [{"name": "freshness(feed)", "severity": "warn", "status": "fail",
                   "failing_rows": 0, "message": "the last successful fetch is 3h old"}]},
      {"asset": "calendar", "status": "skipped", "error": "", "checks": []}
    ]})json");
}

TEST(NotifyTest, EventsOfARun) {
  std::vector<Notification> n =
      NotificationsOf(Report(), "transit", {{"calendar", "failed"}, {"feed", "success"}});
  ASSERT_EQ(n.size(), 4u);
  EXPECT_EQ(n[0].event, NotifyEvent::kRunFailed);
  EXPECT_EQ(n[0].text,
            "Sluice transit, run 7: 2 failed: stops: HTTP 503 from the feed; trips (upstream "
            "failed)");
  EXPECT_EQ(n[1].event, NotifyEvent::kCheckFailed);  // the warn-level check is not one
  EXPECT_EQ(n[1].text,
            "Sluice transit, run 7: 1 check(s) failed: routes: not_null(route_id) (3 failing "
            "rows)");
  EXPECT_EQ(n[2].event, NotifyEvent::kFreshnessLate);
  EXPECT_EQ(n[2].text, "Sluice transit, run 7: late data: the last successful fetch is 3h old");
  EXPECT_EQ(n[3].event, NotifyEvent::kRecovered);
  EXPECT_EQ(n[3].text, "Sluice transit, run 7: recovered: calendar");
  // A clean run after a clean run says nothing.
  nlohmann::json quiet = {{"run_id", 8},
                          {"tasks", {{{"asset", "a"}, {"status", "success"}, {"checks", {}}}}}};
  EXPECT_TRUE(NotificationsOf(quiet, "transit", {{"a", "success"}}).empty());
}

// A webhook receiver: fails the first `fail_first` posts with `status`.
class Receiver {
 public:
  Receiver(int fail_first, int status) : fail_first_(fail_first), status_(status) {
    server_.Post("/hook/(.*)", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      ++posts_;
      if (posts_ <= fail_first_) {
        res.status = status_;
        return;
      }
      bodies_.push_back(req.body);
      paths_.push_back(req.path);
      res.set_content("ok", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/hook/" + path;
  }
  int posts() {
    std::lock_guard lock(mu_);
    return posts_;
  }
  std::vector<std::string> bodies() {
    std::lock_guard lock(mu_);
    return bodies_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  int fail_first_, status_;
  std::mutex mu_;
  int posts_ = 0;
  std::vector<std::string> bodies_, paths_;
};

class DeliverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::filesystem::temp_directory_path() / ("sluice-notify-" + std::to_string(::getpid()));
    std::filesystem::create_directories(tmp_);
    options_.tmp_dir = tmp_.string();
    options_.backoff_ms = 10;
    options_.timeout_ms = 5000;
    ::setenv("SLUICE_TEST_HOOK_TOKEN", "T0ken-0f-the-hook", 1);
    client_ = NewCurlHttpClient();
  }
  void TearDown() override {
    ::unsetenv("SLUICE_TEST_HOOK_TOKEN");
    std::filesystem::remove_all(tmp_);
  }
  NotifySpec Hook(const std::string& url, std::vector<NotifyEvent> on) {
    NotifySpec s;
    s.webhook = url;
    s.on = std::move(on);
    s.loc = SourceLoc{"sluice.yaml", 9};
    return s;
  }
  std::filesystem::path tmp_;
  DeliveryOptions options_;
  std::unique_ptr<HttpClient> client_;
  std::vector<SecretProvider> secrets_{{SecretProvider::Kind::kEnv, ""}};
};

TEST_F(DeliverTest, ASlackCompatiblePayloadToEachSubscribedHookRetriedOn5xx) {
  Receiver hook(2, 503);
  std::vector<Notification> n =
      NotificationsOf(Report(), "transit", {{"calendar", "check_failed"}});
  std::vector<NotifySpec> hooks = {Hook(hook.Url("${secret:SLUICE_TEST_HOOK_TOKEN}"),
                                        {NotifyEvent::kRunFailed, NotifyEvent::kRecovered})};
  std::vector<Status> failures = Deliver(n, hooks, secrets_, "transit", 7, *client_, options_);
  EXPECT_TRUE(failures.empty()) << failures[0].message();
  std::vector<std::string> bodies = hook.bodies();
  ASSERT_EQ(bodies.size(), 2u);  // run_failed (after two 503s) and recovered
  EXPECT_EQ(hook.posts(), 4);
  nlohmann::json first = nlohmann::json::parse(bodies[0]);
  EXPECT_EQ(first["text"], n[0].text);
  EXPECT_EQ(first["sluice"]["event"], "run_failed");
  EXPECT_EQ(first["sluice"]["run_id"], 7);
  EXPECT_EQ(first["sluice"]["detail"]["tasks"][0]["asset"], "stops");
  EXPECT_EQ(nlohmann::json::parse(bodies[1])["sluice"]["event"], "recovered");
  EXPECT_TRUE(std::filesystem::is_empty(tmp_));  // response bodies removed
}

// An error longer than a payload keeps, cut inside a character of several
// bytes or holding bytes that are not UTF-8 (a program's output), and a
// secret at the cut: delivered all the same, as valid JSON, without it.
TEST_F(DeliverTest, LongNonUtf8AndSecretBearingErrorsAreDeliveredClean) {
  Receiver hook(0, 200);
  RegisterSecret("T0ken-0f-the-hook");
  std::string cut_in_a_character = std::string(299, 'x') + "\xC3\xA9 and more";
  std::string not_utf8 = "exit 1: caf\xE9 \xFF";
  std::string secret_at_cut = std::string(295, 'y') + "T0ken-0f-the-hook" + std::string(50, 'z');
  nlohmann::json report = {{"run_id", 9},
                           {"tasks",
                            {{{"asset", "a"}, {"status", "failed"}, {"error", cut_in_a_character}},
                             {{"asset", "b"}, {"status", "failed"}, {"error", not_utf8}},
                             {{"asset", "c"}, {"status", "failed"}, {"error", secret_at_cut}}}}};
  std::vector<Notification> n = NotificationsOf(report, "transit", {});
  std::vector<NotifySpec> hooks = {Hook(hook.Url("x"), {NotifyEvent::kRunFailed})};
  std::vector<Status> failures = Deliver(n, hooks, secrets_, "transit", 9, *client_, options_);
  ClearSecretsForTest();
  EXPECT_TRUE(failures.empty()) << failures[0].message();
  std::vector<std::string> bodies = hook.bodies();
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_EQ(bodies[0].find("T0ken"), std::string::npos);
  nlohmann::json body = nlohmann::json::parse(bodies[0]);  // valid JSON
  const auto& tasks = body["sluice"]["detail"]["tasks"];
  ASSERT_EQ(tasks.size(), 3u);
  EXPECT_EQ(tasks[0]["error"], std::string(299, 'x') + "...");  // the character left whole
  EXPECT_EQ(tasks[2]["error"].get<std::string>().find(std::string(295, 'y') + "***"), 0u);
}

TEST_F(DeliverTest, A4xxIsNotRetriedAndTheErrorNamesTheEntryNotTheUrl) {
  Receiver hook(100, 404);
  std::vector<Notification> n = NotificationsOf(Report(), "transit", {});
  std::vector<NotifySpec> hooks = {
      Hook(hook.Url("${secret:SLUICE_TEST_HOOK_TOKEN}"), {NotifyEvent::kCheckFailed})};
  std::vector<Status> failures = Deliver(n, hooks, secrets_, "transit", 7, *client_, options_);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(hook.posts(), 1);
  EXPECT_EQ(failures[0].message(),
            "notify entry at sluice.yaml:9: check_failed not delivered after 3 attempt(s): "
            "HTTP 404");
}

TEST_F(DeliverTest, AnUnreachableHookFailsAfterItsAttemptsWithoutTheSecret) {
  std::vector<Notification> n = NotificationsOf(Report(), "transit", {});
  // Nothing listens on port 9 (discard) on loopback here.
  std::vector<NotifySpec> hooks = {
      Hook("http://127.0.0.1:9/hook/${secret:SLUICE_TEST_HOOK_TOKEN}", {NotifyEvent::kRunFailed})};
  std::vector<Status> failures = Deliver(n, hooks, secrets_, "transit", 7, *client_, options_);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_NE(failures[0].message().find("run_failed not delivered after 3 attempt(s)"),
            std::string::npos)
      << failures[0].message();
  EXPECT_EQ(failures[0].message().find("T0ken-0f-the-hook"), std::string::npos);
}

}  // namespace
}  // namespace sluice
