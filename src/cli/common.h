// What every command shares: global options, finding the project, sending a
// request to the engine (in-process as the environment's owner, or to the
// owner over its socket), and printing errors the same way.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "core/events.h"
#include "core/status.h"

namespace sluice {

struct GlobalOptions {
  std::string project;  // --project DIR; "" = nearest folder upward with sluice.yaml
  std::string env = "dev";
  bool json = false;  // machine-readable output
  int verbose = 0;
  bool log_json = false;  // logs as JSON lines
};

// The arguments of every command, filled by CLI11; each command reads its own.
struct CommandArgs {
  std::vector<std::string> select;
  bool full_refresh = false;
  std::string partition;
  int threads = 4;
  std::vector<std::string> vars;  // run --var NAME=VALUE
  std::string sql;
  std::string format = "table";
  int64_t max_rows = 10000;       // query: rows read at most (0: no cap)
  int64_t timeout_seconds = 300;  // query: the read is stopped after this long
  std::string dir;
  std::string example;
  std::string asset;
  bool resume = false;  // pause/resume share one handler
  std::string target;   // check: a file or URL
  int limit = 20;
  int64_t run_id = 0;
  std::string listen;    // serve --listen HOST:PORT
  int64_t rerun = 0;     // run --rerun RUN
  std::string from, to;  // backfill --from A --to B
  bool dry_run = false;  // backfill --dry-run
  bool columns = false;  // lineage --columns
};

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// The project root: --project, else the nearest folder upward with sluice.yaml.
Result<std::string> ResolveProjectRoot(const GlobalOptions& global);
// Prints an error (text, or {"ok":false,...} with --json) and returns code.
int ReportError(const GlobalOptions& global, const std::string& message, int code);
// Sends request to the environment's engine and returns its response
// ({"ok", "exit_code", "result"|"error"}). Events go to `events`. An owner
// sends only the event types in the request's "events" (an array; absent:
// all of them), none when `events` is null.
nlohmann::json CallEngine(const GlobalOptions& global, const nlohmann::json& request,
                          const EventSink& events);
// Whether CallEngine runs the request in this process (it became the owner)
// rather than forwarding it. Async-signal-safe.
bool EngineRunsHere();
// CallEngine for a command that prints one result: an error is reported
// and --json prints the result as it came, both setting *code; otherwise
// the result comes back for the command to render as text (*code set too).
std::optional<nlohmann::json> CallForText(const GlobalOptions& global,
                                          const nlohmann::json& request, int* code);
// A progress printer for run-like commands: a live line on a terminal.
EventSink ProgressPrinter(const GlobalOptions& global);
// The event types ProgressPrinter(global) shows, for a request's "events"
// (null: all of them); an owner need not send the others (a plan of 10,000
// models has 20,000 task events a printer without a terminal drops).
nlohmann::json ProgressEventTypes(const GlobalOptions& global);

}  // namespace sluice
