// sluice run / plan / test: requests to the engine, rendered as a summary.
#include <fmt/format.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>

#include "cli/commands.h"
#include "cli/output.h"
#include "core/strings.h"
#include "orchestrate/runner.h"

namespace sluice {
namespace {

// A task's field, which the report leaves out at its default
// (RunReport::ToJson): null then, which iterates as empty.
const nlohmann::json& Field(const nlohmann::json& task, const char* key) {
  static const nlohmann::json kLeftOut;
  auto it = task.find(key);
  return it != task.end() ? *it : kLeftOut;
}

std::string Seconds(int64_t ms) { return fmt::format("{:.2f}s", static_cast<double>(ms) / 1000.0); }

// `sluice test`: one line per check (result, failing rows, a sample row),
// then the count of checks; nothing is built.
void PrintTestReport(const nlohmann::json& result) {
  nlohmann::json rows = nlohmann::json::array();
  int checks = 0, passed = 0, failed = 0, warned = 0;
  for (const auto& t : result["tasks"]) {
    if (!t.value("error", "").empty() && Field(t, "checks").empty()) {
      rows.push_back({t["asset"], "-", "-", "error", nullptr, t.value("error", "")});
      ++failed;
      continue;
    }
    for (const auto& c : Field(t, "checks")) {
      ++checks;
      std::string status = c.value("status", "");
      std::string severity = c.value("severity", "error");
      bool pass = status == "pass";
      passed += pass;
      if (!pass) (severity == "warn" ? warned : failed) += 1;
      std::string sample;
      if (c.contains("sample") && c["sample"].is_array() && !c["sample"].empty()) {
        sample = c["sample"][0].dump();
      } else if (!pass) {
        sample = c.value("message", "");
      }
      rows.push_back({t["asset"], c["name"], severity, pass ? "pass" : status,
                      c.contains("failing_rows") ? c["failing_rows"] : nlohmann::json(nullptr),
                      sample});
    }
  }
  std::fputs(
      RenderTable({"asset", "check", "severity", "result", "failing", "sample"}, rows, 60).c_str(),
      stdout);
  // What did not pass, in full (the table clips).
  for (const auto& t : result["tasks"]) {
    for (const auto& c : Field(t, "checks")) {
      if (c.value("status", "") == "pass") continue;
      std::printf("  check %s [%s]: %s\n", c.value("name", "").c_str(),
                  c.value("severity", "").c_str(), c.value("message", "").c_str());
    }
  }
  std::printf("\ntest %lld: %d checks: %d passed, %d failed, %d warned, %s\n",
              static_cast<long long>(result.value("run_id", int64_t{0})), checks, passed, failed,
              warned, Seconds(result.value("ms", int64_t{0})).c_str());
}

void PrintReport(const nlohmann::json& result, const std::string& mode, bool verbose) {
  if (mode == "test") return PrintTestReport(result);
  const nlohmann::json& tasks = result["tasks"];
  std::vector<std::string> columns;
  nlohmann::json rows = nlohmann::json::array();
  int built = 0, skipped = 0, failed = 0, exported = 0;
  int64_t total_rows = 0;
  for (const auto& t : tasks) {
    std::string status = t.value("status", "");
    if (t.value("kind", "") == "export") {
      exported += status == "success";
    } else {
      built += status == "success";
    }
    skipped += status == "skipped";
    failed += status == "failed" || status == "check_failed" || status == "upstream_failed" ||
              status == "cancelled";
    int64_t r = t.value("rows", int64_t{-1});
    if (r > 0 && status == "success" && t.value("kind", "") != "export") total_rows += r;
    if (mode == "plan") {
      // current → new when the version changes
      std::string version = t.value("version", "");
      std::string previous = t.value("previous_version", "");
      if (!previous.empty() && previous != version && !version.empty()) {
        version = previous.substr(0, 8) + " -> " + version.substr(0, 8);
      }
      rows.push_back({t["asset"], t["kind"], t["action"], t["reason"], version});
    } else {
      rows.push_back({t["asset"], t["kind"], status,
                      r >= 0 ? nlohmann::json(r) : nlohmann::json(nullptr), t["reason"],
                      Seconds(t.value("ms", int64_t{0}))});
    }
  }
  if (mode == "plan") {
    columns = {"asset", "kind", "action", "why", "version"};
  } else {
    columns = {"asset", "kind", "status", "rows", "why", "time"};
  }
  std::fputs(RenderTable(columns, rows).c_str(), stdout);
  for (const auto& t : tasks) {
    std::string err = t.value("error", "");
    if (!err.empty()) std::printf("\n%s: %s\n", t.value("asset", "").c_str(), err.c_str());
    for (const auto& c : Field(t, "checks")) {
      if (c.value("status", "") != "pass") {
        std::printf("  check %s [%s]: %s\n", c.value("name", "").c_str(),
                    c.value("severity", "").c_str(), c.value("message", "").c_str());
      }
    }
    if (t.contains("notes")) {
      for (const auto& note : Field(t, "notes")) {
        std::printf("  note: %s: %s\n", t.value("asset", "").c_str(),
                    note.get<std::string>().c_str());
      }
    }
    if (Field(t, "partitions").is_array()) {
      // The partitions that did something; unchanged ones are only counted.
      std::printf("  %s: %s\n", t.value("asset", "").c_str(), t.value("reason", "").c_str());
      int shown = 0, hidden = 0;
      for (const auto& p : Field(t, "partitions")) {
        if (p.value("action", "") == "skip") continue;
        if (++shown > 20) {
          ++hidden;
          continue;
        }
        int64_t r = p.value("rows", int64_t{-1});
        std::printf("    %s  %s  %s  %s\n", p.value("partition", "").c_str(),
                    p.value("status", "").c_str(), r >= 0 ? fmt::format("{} rows", r).c_str() : "-",
                    p.value("reason", "").c_str());
      }
      if (hidden) std::printf("    ... and %d more partitions\n", hidden);
    }
    if (verbose && t.contains("timings") && !Field(t, "timings").empty()) {
      // -v: where each task's time went.
      std::vector<std::string> parts;
      for (const auto& p : Field(t, "timings")) {
        parts.push_back(p[0].get<std::string>() + " " + std::to_string(p[1].get<int64_t>()) +
                        " ms");
      }
      std::printf("  time: %s: %s\n", t.value("asset", "").c_str(), Join(parts, ", ").c_str());
    }
    if (!Field(t, "drift").is_null()) {
      std::printf("  schema drift in %s: %s\n", t.value("asset", "").c_str(),
                  Field(t, "drift").dump().c_str());
    }
  }
  if (result.contains("repairs")) {
    for (const auto& r : result["repairs"])
      std::printf("  repaired: %s\n", r.get<std::string>().c_str());
  }
  if (mode == "plan") {
    int to_build = 0;
    for (const auto& t : tasks) to_build += t.value("action", "") != "skip";
    std::printf("\nplan: %d of %zu assets would run\n", to_build, tasks.size());
  } else {
    std::printf("\n%s %lld: %d built, %d skipped, %d failed, %lld rows%s, %s\n", mode.c_str(),
                static_cast<long long>(result.value("run_id", int64_t{0})), built, skipped, failed,
                static_cast<long long>(total_rows),
                exported ? fmt::format(", {} exported", exported).c_str() : "",
                Seconds(result.value("ms", int64_t{0})).c_str());
  }
}

// Ctrl-C on a run forwarded to the owner (`serve`) detaches: the run goes on
// there, and the message says how to follow it. A run in this process stops.
std::atomic<int64_t> g_forwarded_run{0};

extern "C" void DetachOnInterrupt(int sig) {
  if (EngineRunsHere()) {
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  // Async-signal-safe: digits by hand, one write.
  char text[200];
  size_t n = 0;
  auto put = [&](const char* s) {
    while (*s && n < sizeof(text)) text[n++] = *s++;
  };
  int64_t id = g_forwarded_run.load();
  char digits[24];
  size_t d = 0;
  for (int64_t v = id; v > 0 && d < sizeof(digits); v /= 10)
    digits[d++] = static_cast<char>('0' + v % 10);
  char id_text[24];
  for (size_t i = 0; i < d; ++i) id_text[i] = digits[d - 1 - i];
  id_text[d] = '\0';
  if (id > 0) {
    put("\ndetached: run ");
    put(id_text);
    put(" goes on in the owner; follow it with `sluice runs ");
    put(id_text);
    put("`\n");
  } else {
    put("\ndetached: the run stays queued in the owner; see `sluice runs`\n");
  }
  ssize_t ignored = ::write(STDERR_FILENO, text, n);
  (void)ignored;
  ::_exit(130);
}

int RunLike(const GlobalOptions& global, const CommandArgs& args, const std::string& mode) {
  // A backfill is a run, recorded as a backfill.
  const std::string cmd = mode == "backfill" ? "run" : mode;
  nlohmann::json request = {{"cmd", cmd}, {"select", args.select}};
  if (mode == "backfill") request["command"] = "backfill";
  if (!args.partition.empty()) request["partition"] = args.partition;
  if (cmd == "run" && args.rerun > 0) {
    request["rerun"] = args.rerun;
    if (args.select.empty()) request.erase("select");
  }
  if (cmd == "run") {
    if (args.full_refresh) request["full_refresh"] = true;
    request["threads"] = args.threads;
    nlohmann::json vars = nlohmann::json::object();
    for (const std::string& v : args.vars) {
      size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0) {
        return ReportError(global, "--var expects NAME=VALUE, got '" + v + "'", kExitUsage);
      }
      vars[v.substr(0, eq)] = v.substr(eq + 1);
    }
    if (!vars.empty()) request["vars"] = vars;
  }
  EventSink events = ProgressPrinter(global);
  nlohmann::json shown = ProgressEventTypes(global);
  if (shown.is_array()) {
    if (cmd == "run") shown.push_back("run_start");  // its id, for Ctrl-C's message
    request["events"] = shown;
  }
  if (cmd == "run") {
    events = [printer = std::move(events)](const nlohmann::json& e) {
      if (e.value("type", "") == "run_start") g_forwarded_run = e.value("run_id", int64_t{0});
      if (printer) printer(e);
    };
    struct sigaction action = {};
    action.sa_handler = DetachOnInterrupt;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, nullptr);
  }
  nlohmann::json response = CallEngine(global, request, events);
  int code = response.value("exit_code", 1);
  if (!response.value("ok", false)) return ReportError(global, response.value("error", ""), code);
  if (global.json) {
    RunReport::FillTaskDefaults(response["result"]);
    std::printf("%s\n", response["result"].dump(2).c_str());
  } else {
    PrintReport(response["result"], mode, global.verbose > 0);
  }
  // The process ends now: a report of 10,000 tasks (200,000 values) is left
  // to the exit instead of freed value by value, a third of a plan's time here.
  static nlohmann::json* const kLeftToExit = new nlohmann::json();
  *kLeftToExit = std::move(response);
  return code;
}

}  // namespace

// sluice backfill: a run (or with --dry-run, a plan) over a range of
// partitions. It resumes where it stopped: partitions already built with the
// same inputs are unchanged and skipped.
int CmdBackfill(const GlobalOptions& global, const CommandArgs& args) {
  CommandArgs run = args;
  run.partition = args.from == args.to ? args.from : args.from + ".." + args.to;
  if (args.dry_run) return RunLike(global, run, "plan");
  return RunLike(global, run, "backfill");
}

int CmdRun(const GlobalOptions& global, const CommandArgs& args) {
  return RunLike(global, args, "run");
}
int CmdPlan(const GlobalOptions& global, const CommandArgs& args) {
  return RunLike(global, args, "plan");
}
int CmdTest(const GlobalOptions& global, const CommandArgs& args) {
  return RunLike(global, args, "test");
}

}  // namespace sluice
