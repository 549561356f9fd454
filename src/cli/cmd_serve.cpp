// sluice serve: become the environment's owner and run its schedules
// (engine/service.h) and, when `server: listen` or --listen says where, the
// HTTP API (server/api.h), until SIGINT or SIGTERM. Other commands on the
// environment become requests to this process while it runs.
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>

#include <pthread.h>

#include "cli/commands.h"
#include "config/loader.h"
#include "core/clock.h"
#include "core/log.h"
#include "engine/engine.h"
#include "engine/http_server.h"
#include "engine/owner.h"
#include "engine/service.h"
#include "server/api.h"

namespace sluice {

int CmdServe(const GlobalOptions& global, const CommandArgs& args) {
  Result<std::string> root = ResolveProjectRoot(global);
  if (!root.ok()) return ReportError(global, root.status().message(), kExitUsage);
  LoadedProject loaded = LoadProjectSettings(*root);
  if (!loaded.ok()) {
    std::string text;
    for (const ConfigError& e : loaded.errors) text += e.ToString() + "\n";
    return ReportError(global, text, kExitUsage);
  }
  auto env = loaded.project.environments.find(global.env);
  if (env == loaded.project.environments.end()) {
    return ReportError(global, "unknown environment '" + global.env + "'", kExitUsage);
  }

  ServerSpec server = env->second.server;
  if (args.listen == "off") {
    server.enabled = false;
  } else if (!args.listen.empty()) {
    Result<std::pair<std::string, int>> address = ParseListenAddress(args.listen);
    if (!address.ok()) {
      return ReportError(global, "--listen: " + address.status().message(), kExitUsage);
    }
    server.enabled = true;
    server.host = address->first;
    server.port = address->second;
  }

  // Signals are taken by one thread (sigwait), so every other thread —
  // the owner's, the runs' — starts with them blocked.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Engine engine(*root, global.env);
  // Runs and plans reuse the project read before while its files are unchanged.
  engine.KeepWorkspace();
  SystemClock clock;
  Service service(&engine, *root, global.env, &clock);
  // One router for the owner's local socket (the CLI's engine API beside
  // the HTTP API) and the TCP port.
  ApiRouter router(&engine, server, [&service] { return service.Health(); });
  HttpHandler handler = [&router](const ServerRequest& r) { return router.Handle(r); };
  // A short command that owns the environment now (a `sluice run`) is waited for.
  Result<OwnerLease> lease = Status::Busy("");
  for (int attempt = 0; attempt < 100; ++attempt) {
    lease = OwnerLease::TryAcquire(env->second.state_dir, "sluice serve", handler);
    if (lease.ok() || lease.status().code() != StatusCode::kBusy) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!lease.ok()) {
    return ReportError(global,
                       lease.status().message() +
                           "; stop it first (one owner per environment; a second serve "
                           "needs another --env)",
                       kExitFailed);
  }
  std::unique_ptr<HttpServer> http;
  if (server.enabled) {
    HttpServerOptions options;
    options.host = server.host;
    options.port = server.port;
    options.answer_at_once = [&router](const ServerRequest& r) { return router.AnswerAtOnce(r); };
    Result<std::unique_ptr<HttpServer>> started = HttpServer::Start(options, handler);
    if (!started.ok()) {
      lease->Release([&engine] { engine.Close(); });
      return ReportError(global, started.status().message(), kExitFailed);
    }
    http = std::move(started).value();
    std::string host =
        server.host.find(':') != std::string::npos ? "[" + server.host + "]" : server.host;
    std::fprintf(stderr, "sluice serve: HTTP API on http://%s:%d/\n", host.c_str(), http->port());
    bool loopback = server.host == "127.0.0.1" || server.host == "::1";
    if (server.tokens.empty() && !loopback) {
      LOG_WARN("serve",
               "the API on {} asks for no token: anyone who reaches it may start runs "
               "(server: tokens)",
               server.host);
    }
  }
  // Runs submitted to the previous owner that it never started.
  Result<int> resubmitted = engine.ResubmitQueuedRuns();
  if (!resubmitted.ok()) {
    LOG_WARN("serve", "queued runs: {}", resubmitted.status().message());
  }
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig != 0) LOG_WARN("serve", "signal {}: finishing the run in progress, then stopping", sig);
    service.Stop();
  });
  std::fprintf(stderr, "sluice serve: %s (%s), pid %d; stop with Ctrl-C\n", root->c_str(),
               global.env.c_str(), static_cast<int>(::getpid()));
  Status served = service.Run();
  // Submitted runs not started yet stay queued for the next serve; no new
  // requests; those in flight are answered; the run in progress finishes
  // before the warehouse closes (Engine::Close).
  engine.BeginShutdown();
  if (http) http->Stop();
  if (!served.ok()) {
    // The waiter is still in sigwait: wake it.
    pthread_kill(waiter.native_handle(), SIGTERM);
  }
  waiter.join();
  lease->Release([&engine] { engine.Close(); });
  if (!served.ok()) return ReportError(global, served.message(), kExitUsage);
  return kExitOk;
}

}  // namespace sluice
