#include "cli/cli.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>

#include "cli/commands.h"
#include "core/log.h"
#include "core/strings.h"
#include "core/test_hooks.h"
#include "warehouse/duckdb.h"

namespace sluice {
namespace {

using Setup = void (*)(CLI::App*, CommandArgs*);
using Handler = int (*)(const GlobalOptions&, const CommandArgs&);

void SelectArgs(CLI::App* app, CommandArgs* a) {
  app->add_option("selectors", a->select,
                  "Assets to select: name, +name (with upstream), name+ (with downstream), "
                  "tag:x, source:NAME, source:*");
}

struct CommandDef {
  const char* name;
  const char* help;
  Setup setup;
  Handler run;
};

const CommandDef kCommands[] = {
    {"init", "Scaffold a project",
     [](CLI::App* app, CommandArgs* a) {
       app->add_option("dir", a->dir, "Folder to create")->required();
       app->add_option("--example", a->example, "Start from an example project (transit)");
     },
     CmdInit},
    {"validate", "Load the project and report every error with file:line",
     [](CLI::App*, CommandArgs*) {}, CmdValidate},
    {"plan", "Show what would run, and why",
     [](CLI::App* app, CommandArgs* a) {
       SelectArgs(app, a);
       app->add_option("--partition", a->partition, "Partitions to plan: A or A..B");
     },
     CmdPlan},
    {"run", "Build the selected assets (all by default)",
     [](CLI::App* app, CommandArgs* a) {
       SelectArgs(app, a);
       app->add_flag("--full-refresh", a->full_refresh, "Rebuild even unchanged assets");
       app->add_option("--partition", a->partition,
                       "Partitions of partitioned sources to run: A or A..B (inclusive)");
       app->add_option("--threads", a->threads, "Assets built in parallel")
           ->check(CLI::Range(1, 64));
       app->add_option("--var", a->vars,
                       "NAME=VALUE: a var('NAME') for this run only (repeatable)");
       app->add_option("--rerun", a->rerun,
                       "RUN: run again what did not end well in that run (failed, cancelled, "
                       "skipped for a failed upstream, interrupted)");
     },
     CmdRun},
    {"test", "Run the checks of the selected assets on their published versions", SelectArgs,
     CmdTest},
    {"query", "Read the warehouse with one SELECT (published tables, external tables, _sluice.*)",
     [](CLI::App* app, CommandArgs* a) {
       app->add_option("sql", a->sql, "The SQL to run")->required();
       app->add_option("--format", a->format, "table, csv or json")
           ->check(CLI::IsMember({"table", "csv", "json"}));
       app->add_option("--max-rows", a->max_rows,
                       "Rows read at most (default 10000; 0: no cap); a capped result says so")
           ->check(CLI::NonNegativeNumber);
       app->add_option("--timeout", a->timeout_seconds,
                       "Seconds before the read is stopped (default 300; 0: none)")
           ->check(CLI::NonNegativeNumber);
     },
     CmdQuery},
    {"serve", "Run the schedules and the HTTP API (and own the environment) until Ctrl-C",
     [](CLI::App* app, CommandArgs* a) {
       app->add_option("--listen", a->listen,
                       "Serve the HTTP API on HOST:PORT (instead of server: listen; 'off': none)");
     },
     CmdServe},
    {"schedules", "List the schedules: paused or not, the last tick and the next",
     [](CLI::App*, CommandArgs*) {}, CmdSchedules},
    {"pause", "Pause an asset's schedule (serve gives it no ticks until resumed)",
     [](CLI::App* app, CommandArgs* a) {
       app->add_option("asset", a->asset, "The scheduled asset")->required();
     },
     CmdPause},
    {"resume", "Resume a paused schedule (missed ticks follow its misfire policy)",
     [](CLI::App* app, CommandArgs* a) {
       app->add_option("asset", a->asset, "The scheduled asset")->required();
     },
     CmdResume},
    {"runs", "List recent runs, or one run's tasks",
     [](CLI::App* app, CommandArgs* a) {
       app->add_option("id", a->run_id, "Show this run's tasks");
       app->add_option("--limit", a->limit, "How many runs");
     },
     CmdRuns},
    {"logs", "Show the log of each task attempt of a run (one asset's with ASSET)",
     [](CLI::App* app, CommandArgs* a) {
       app->add_option("run", a->run_id, "The run's id (sluice runs)")->required();
       app->add_option("asset", a->asset, "Only this asset's attempts");
     },
     CmdLogs},
    {"backfill",
     "Run the partitions from --from to --to of partitioned sources (and what reads them)",
     [](CLI::App* app, CommandArgs* a) {
       SelectArgs(app, a);
       app->add_option("--from", a->from, "First partition (e.g. 2026-01-01)")->required();
       app->add_option("--to", a->to, "Last partition, inclusive")->required();
       app->add_flag("--dry-run", a->dry_run, "Show what would run, run nothing");
       app->add_flag("--full-refresh", a->full_refresh, "Rebuild even unchanged partitions");
       app->add_option("--threads", a->threads, "Assets built in parallel")
           ->check(CLI::Range(1, 64));
     },
     CmdBackfill},
    {"cancel", "Stop a run: queued, it never starts; running, its tasks stop",
     [](CLI::App* app, CommandArgs* a) {
       app->add_option("run", a->run_id, "The run's id (sluice runs)")->required();
     },
     CmdCancel},
    {"check",
     "Check a file (or URL) against a source's config: decode, clean, check; loads nothing. "
     "A database source: read its tables now and check them",
     [](CLI::App* app, CommandArgs* a) {
       app->add_option("source", a->asset, "Source (or source table) name")->required();
       app->add_option("file", a->target,
                       "A local file or an http(s) URL (none for a database source)");
       app->add_option("--limit", a->limit, "Issue rows listed per table");
     },
     CmdCheck},
    {"rollback", "Publish an older version of an asset again",
     [](CLI::App* app, CommandArgs* a) {
       app->add_option("asset", a->asset, "Asset name")->required();
       app->add_option("--to", a->target, "Version id (or a prefix); default: the previous one");
       app->add_option("--partition", a->partition,
                       "The partition to roll back, for a partitioned source");
     },
     CmdRollback},
    {"export", "Write the project's exports (all, or those named) from what is published now",
     [](CLI::App* app, CommandArgs* a) {
       app->add_option("names", a->select, "Exports to write (default: all)");
     },
     CmdExport},
    {"lineage", "Show an asset's upstream and downstream assets (--columns: its columns' sources)",
     [](CLI::App* app, CommandArgs* a) {
       app->add_option("asset", a->asset, "Asset name");
       app->add_flag("--columns", a->columns,
                     "For each column, the upstream columns that feed it (from the model's SQL)");
     },
     CmdLineage},
};

}  // namespace

int RunCli(int argc, char** argv) {
  CLI::App app{"Sluice: collect, keep, clean, model, check and serve data, in one binary."};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("sluice ") + SLUICE_VERSION +
                                        (TestHooksEnabled() ? " (test build: fault hooks)" : ""));
  GlobalOptions global;
  CommandArgs args;
  app.add_option("--project", global.project, "Project folder (default: nearest with sluice.yaml)")
      ->envname("SLUICE_PROJECT");
  app.add_option("--env", global.env, "Environment")->envname("SLUICE_ENV");
  app.add_flag("--json", global.json, "Machine-readable output");
  app.add_flag("-v,--verbose", global.verbose, "More log output (repeat for debug)");
  app.add_flag("--log-json", global.log_json, "Log as JSON lines");
  app.fallthrough();

  const CommandDef* chosen = nullptr;
  for (const CommandDef& def : kCommands) {
    CLI::App* sub = app.add_subcommand(def.name, def.help);
    def.setup(sub, &args);
    sub->callback([&chosen, &def] { chosen = &def; });
  }
  // An unknown command is named, with the closest one (CLI11 would only say
  // that a subcommand is required).
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--project" || arg == "--env") {
      ++i;
      continue;
    }
    if (!arg.empty() && arg[0] == '-') continue;
    std::vector<std::string> names;
    for (const CommandDef& def : kCommands) names.push_back(def.name);
    if (std::find(names.begin(), names.end(), arg) == names.end()) {
      std::fprintf(stderr, "error: unknown command '%s'%s; commands: %s\n", arg.c_str(),
                   DidYouMeanHint(arg, names).c_str(), Join(names, ", ").c_str());
      return kExitUsage;
    }
    break;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }

  LogOptions log;
  log.level = global.verbose >= 2   ? LogLevel::kDebug
              : global.verbose == 1 ? LogLevel::kInfo
                                    : LogLevel::kWarn;
  log.json_lines = global.log_json;
  ConfigureLogging(log);
  Status version = CheckDuckDbVersion();
  if (!version.ok()) return ReportError(global, version.message(), kExitUsage);
  if (!chosen) return kExitUsage;
  return chosen->run(global, args);
}

}  // namespace sluice
