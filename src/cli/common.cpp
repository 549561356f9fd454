#include "cli/common.h"

#include <algorithm>
#include <atomic>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <mutex>

#include "config/loader.h"
#include "core/hash.h"
#include "core/redact.h"
#include "engine/engine.h"
#include "engine/owner.h"
#include "engine/workspace.h"

namespace sluice {

Result<std::string> ResolveProjectRoot(const GlobalOptions& global) {
  if (!global.project.empty()) {
    std::string root = std::filesystem::absolute(global.project).lexically_normal().string();
    while (root.size() > 1 && root.back() == '/') root.pop_back();
    if (!std::filesystem::exists(root + "/sluice.yaml")) {
      return Status::NotFound(root + " has no sluice.yaml; create one with `sluice init DIR`");
    }
    return root;
  }
  return FindProjectRoot(std::filesystem::current_path().string());
}

int ReportError(const GlobalOptions& global, const std::string& message, int code) {
  std::string clean = Redact(message);
  while (!clean.empty() && clean.back() == '\n') clean.pop_back();
  if (global.json) {
    nlohmann::json j = {{"ok", false}, {"exit_code", code}, {"error", clean}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::fprintf(stderr, "error: %s\n", clean.c_str());
  }
  return code;
}

namespace {
std::atomic<bool> g_engine_here{false};
}  // namespace

bool EngineRunsHere() { return g_engine_here.load(); }

nlohmann::json CallEngine(const GlobalOptions& global, const nlohmann::json& request,
                          const EventSink& events) {
  Result<std::string> root = ResolveProjectRoot(global);
  if (!root.ok()) return ErrorResponse(root.status().message(), kExitUsage);
  LoadedProject loaded = LoadProjectSettings(*root);
  if (!loaded.ok()) {
    // Report graph errors too, as validate does.
    return ErrorResponse(LoadWorkspace(*root, global.env).ErrorText(), kExitUsage);
  }
  auto env = loaded.project.environments.find(global.env);
  if (env == loaded.project.environments.end()) {
    return ErrorResponse(
        "unknown environment '" + global.env + "'; see environments: in sluice.yaml", kExitUsage);
  }
  nlohmann::json req = request;
  if (!events) req["events"] = nlohmann::json::array();
  req["project"] = *root;
  req["env"] = global.env;
  // Sent again to the next owner if this one goes away mid-way: the id lets a
  // request that changes state (a rollback) be done once.
  if (!req.contains("request_id")) req["request_id"] = RandomHex(16);
  // The engine lives in this process only if we become the owner; it opens
  // the environment lazily, so forwarding costs nothing.
  Engine engine(*root, global.env);
  RequestHandler handler = [&engine](const nlohmann::json& r, const EventSink& ev) {
    return engine.Handle(r, ev);
  };
  RequestHandler local = [&engine](const nlohmann::json& r, const EventSink& ev) {
    g_engine_here = true;
    return engine.Handle(r, ev);
  };
  std::string command = request.value("cmd", "?");
  // As the owner, the warehouse is closed before the lease is released, so
  // the next owner never finds DuckDB's file lock still held.
  Result<nlohmann::json> response = Dispatch(env->second.state_dir, "sluice " + command, req, local,
                                             handler, events, [&engine] { engine.Close(); });
  if (!response.ok()) return ErrorResponse(response.status().message(), kExitFailed);
  return std::move(*response);  // a plan of 10,000 assets: not copied
}

std::optional<nlohmann::json> CallForText(const GlobalOptions& global,
                                          const nlohmann::json& request, int* code) {
  nlohmann::json response = CallEngine(global, request, nullptr);
  *code = response.value("exit_code", 1);
  if (!response.value("ok", false)) {
    *code = ReportError(global, response.value("error", ""), *code);
    return std::nullopt;
  }
  if (global.json) {
    std::printf("%s\n", response["result"].dump(2).c_str());
    return std::nullopt;
  }
  return std::move(response["result"]);
}

nlohmann::json ProgressEventTypes(const GlobalOptions& global) {
  if (global.json) return nlohmann::json::array();
  if (!::isatty(STDERR_FILENO)) return {"queued", "warning"};
  return nullptr;
}

EventSink ProgressPrinter(const GlobalOptions& global) {
  if (global.json) return nullptr;
  if (!::isatty(STDERR_FILENO)) {
    // No live line; a run that waits still says what it waits behind.
    return [](const nlohmann::json& e) {
      std::string type = e.value("type", "");
      if (type == "queued") std::fprintf(stderr, "%s\n", e.value("message", "").c_str());
      if (type == "warning") std::fprintf(stderr, "warning: %s\n", e.value("message", "").c_str());
    };
  }
  struct State {
    std::mutex mu;
    int total = 0;
    int done = 0;
  };
  auto state = std::make_shared<State>();
  return [state](const nlohmann::json& e) {
    std::lock_guard lock(state->mu);
    std::string type = e.value("type", "");
    if (type == "run_start") {
      state->total = e.value("tasks", 0);
    } else if (type == "task_start") {
      std::fprintf(stderr, "\r\033[K[%d/%d] %s ...", state->done, state->total,
                   e.value("asset", "").c_str());
    } else if (type == "task_end") {
      ++state->done;
      std::fprintf(stderr, "\r\033[K[%d/%d] %s %s", state->done, state->total,
                   e.value("asset", "").c_str(), e.value("status", "").c_str());
    } else if (type == "partition_end") {
      // A backfill's bar: partitions of the asset being built.
      int done = e.value("done", 0), total = std::max(1, e.value("total", 1));
      int width = 30, filled = done * width / total;
      std::fprintf(stderr, "\r\033[K%s [%s%s] %d/%d partitions (%s %s)",
                   e.value("asset", "").c_str(), std::string(filled, '#').c_str(),
                   std::string(width - filled, '.').c_str(), done, total,
                   e.value("partition", "").c_str(), e.value("status", "").c_str());
    } else if (type == "warning") {
      std::fprintf(stderr, "\r\033[Kwarning: %s\n", e.value("message", "").c_str());
    } else if (type == "queued") {
      std::fprintf(stderr, "\r\033[K%s", e.value("message", "").c_str());
    } else if (type == "run_end") {
      std::fprintf(stderr, "\r\033[K");
    }
    std::fflush(stderr);
  };
}

}  // namespace sluice
