#include "orchestrate/runner.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "config/template.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/redact.h"
#include "core/strings.h"
#include "core/test_hooks.h"
#include "graph/selector.h"
#include "ingest/cdc.h"
#include "ingest/database.h"
#include "ingest/decoder.h"
#include "ingest/fetcher.h"
#include "ingest/process.h"
#include "ingest/stream_nats.h"
#include "ingest/zip_member.h"
#include "orchestrate/build_step.h"
#include "orchestrate/capture.h"
#include "orchestrate/capture_feed.h"
#include "orchestrate/check_file.h"
#include "orchestrate/partitions.h"
#include "orchestrate/planner.h"
#include "orchestrate/task_records.h"
#include "orchestrate/version.h"
#include "transform/load.h"
#include "transform/materialize.h"
#include "transform/phases.h"
#include "transform/publication.h"
#include "warehouse/watchdog.h"

namespace sluice {
namespace {

std::string StripSql(const std::string& sql) { return StripStatementEnd(sql); }

struct FetchedSource {
  std::vector<StoredObject> objects;
  std::vector<std::string> tables;  // a command source: the table of each object
  bool not_modified = false;        // an HTTP 304 kept the previous object
  // A local file's copy is loaded from the staging area while it is made
  // durable, named and logged in the background (RawArchive::StoreLocalFile):
  // the disk's write-back overlaps the engine's load. Nothing is published
  // before `durable` is done.
  std::shared_future<Status> durable;
  std::string staged;  // the staged copy, removed when the run ends
};

// An incremental table's keys, read whole (incremental: {key_scan: ...}):
// the raw object, its columns, and the source column of each key field.
struct KeyScan {
  StoredObject object;
  nlohmann::json columns;
  std::vector<std::string> inputs;
};

// One read of a stream source: its batch (holding the messages until they
// are acknowledged), the raw object, and the cursor it moves the table to.
struct StreamRead {
  StreamBatch batch;
  StoredObject object;
  uint64_t after = 0;  // the sequence the table held before
  std::string read_key;
};

// One read of a captured source's slot (or its snapshot): each table's
// raw object and columns, by table name.
struct CaptureRead {
  bool snapshot = false;
  std::string why;  // a snapshot's reason
  CdcRequest request;
  CdcRead read;
  std::string generation;
  std::map<std::string, size_t> index;  // table name -> position in request/read
  std::vector<std::string> read_keys;   // each table's CaptureReadKey, by position
  // Each table's raw objects: one file of changes (or its snapshot), or
  // the batches a stream stored (none: no changes).
  std::vector<std::vector<StoredObject>> objects;
  std::vector<nlohmann::json> columns;
  std::vector<uint64_t> ends;  // each table's cursor after this read
  bool streamed = false;       // taken from serve's stream (CaptureFeeds), not read here
  uint64_t feed_epoch = 0;     // the stream's epoch when this run read the slot itself
  // Each table's cursor as the read found it: a table whose publication
  // moved since (another run applied changes) must not apply this read.
  std::vector<nlohmann::json> seen;
};

// Temp tables a build stages, dropped however it ends.
class TempTables {
 public:
  explicit TempTables(WarehouseSession& session) : session_(session) {}
  ~TempTables() {
    for (const std::string& t : tables_) (void)session_.Execute("DROP TABLE IF EXISTS " + t);
  }
  TempTables(const TempTables&) = delete;
  TempTables& operator=(const TempTables&) = delete;
  // A new name, "temp.<prefix><n>", unique in the process.
  std::string Name(const std::string& prefix) {
    static std::atomic<uint64_t> next{0};
    tables_.push_back("temp." + QuoteIdent(prefix + std::to_string(next++)));
    return tables_.back();
  }

 private:
  WarehouseSession& session_;
  std::vector<std::string> tables_;
};

// A run's picture of the current publications: the owner's snapshot,
// shared until the run first changes it, so that a plan of 10,000 assets
// copies none of them. Reads never copy; operator[] (a change) copies once.
class PublishedMap {
 public:
  using Map = CurrentPublications::Map;
  using const_iterator = Map::const_iterator;

  void Reset(std::shared_ptr<const Map> shared) {
    shared_ = std::move(shared);
    own_.reset();
  }
  const Map& map() const {
    static const Map kEmpty;
    return own_ ? *own_ : shared_ ? *shared_ : kEmpty;
  }
  const_iterator find(const Map::key_type& key) const { return map().find(key); }
  const_iterator lower_bound(const Map::key_type& key) const { return map().lower_bound(key); }
  const_iterator begin() const { return map().begin(); }
  const_iterator end() const { return map().end(); }
  Publication& operator[](const Map::key_type& key) { return Own()[key]; }
  // The snapshot while the run has not changed its picture (null after):
  // what it holds never changes, so its publications are read in place.
  std::shared_ptr<const Map> Frozen() const { return own_ ? nullptr : shared_; }

 private:
  Map& Own() {
    if (!own_) {
      own_ = std::make_unique<Map>(map());
      shared_.reset();
    }
    return *own_;
  }
  std::shared_ptr<const Map> shared_;
  std::unique_ptr<Map> own_;
};

class Run {
 public:
  Run(const Project& project, const AssetGraph& graph, const EnvResources& res,
      const RunOptions& opt, const EventSink& events)
      : project_(project),
        graph_(graph),
        res_(res),
        opt_(opt),
        events_(events),
        http_(NewCurlHttpClient()),
        fetcher_(http_.get(), res.archive, res.metadata, res.clock,
                 SecretResolver(project.secret_providers)) {
    for (const SourceSpec& s : project.sources) {
      for (const TableSpec& t : s.tables) tables_[t.name] = {&s, &t};
    }
    for (const SourceSpec& s : project.sources) {
      if (s.partition.is_null()) continue;
      Result<PartitionScheme> scheme = ParsePartitionScheme(s.partition);
      if (scheme.ok()) schemes_[s.name] = *scheme;
    }
    for (const SeedSpec& s : project.seeds) seeds_[s.name] = &s;
    for (const ModelSpec& m : project.models) models_[m.name] = &m;
    if (!res_.limits) own_limits_.Configure(project.concurrency);
  }

  Result<RunReport> Execute() {
    int64_t t0 = MonotonicMillis();
    ASSIGN_OR_RETURN(selected_, SelectAssets(graph_, opt_.select));
    selected_set_ = std::set<std::string>(selected_.begin(), selected_.end());
    RETURN_IF_ERROR(PlanPartitions());
    RunReport report;
    {
      // Public views were repaired when the owner opened the environment
      // (RepairPublicViews); an asset whose published table was gone is not
      // among the current publications, so it builds as if never built.
      ASSIGN_OR_RETURN(auto session, res_.warehouse->Connect());
      if (res_.current) {
        ASSIGN_OR_RETURN(std::shared_ptr<const CurrentPublications::Map> current,
                         res_.current->Snapshot(*session));
        published_.Reset(std::move(current));
      } else {
        ASSIGN_OR_RETURN(CurrentPublications::Map latest, LatestPublications(*session));
        published_.Reset(std::make_shared<const CurrentPublications::Map>(std::move(latest)));
      }
      if (opt_.mode == RunMode::kRun && !res_.publisher) {
        // Until this run ends well, the warehouse is the one source of truth
        // (a shared publisher keeps the current publications at each commit).
        if (res_.current) res_.current->Invalidate();
      }
    }
    report.mode = opt_.mode == RunMode::kRun    ? "run"
                  : opt_.mode == RunMode::kPlan ? "plan"
                                                : "test";
    if (opt_.mode != RunMode::kPlan) {
      RunRecord run;
      run.command = opt_.command;
      run.args = {
          {"select", opt_.select}, {"full_refresh", opt_.full_refresh}, {"threads", opt_.threads}};
      if (!opt_.partition.empty()) run.args["partition"] = opt_.partition;
      if (!opt_.trigger.empty()) run.args["trigger"] = opt_.trigger;
      if (!opt_.tick.empty()) run.args["tick"] = opt_.tick;
      if (!opt_.vars.empty()) run.args["vars"] = opt_.vars;
      run.status = RunStatus::kRunning;
      run.started_at = res_.clock->Now();
      if (opt_.run_id != 0 && opt_.mode == RunMode::kRun) {
        run_id_ = opt_.run_id;
        RETURN_IF_ERROR(res_.metadata->StartRun(run_id_, run.started_at));
      } else {
        ASSIGN_OR_RETURN(run_id_, res_.metadata->BeginRun(run));
      }
    }
    report.run_id = run_id_;
    Emit({{"type", "run_start"}, {"run_id", run_id_}, {"tasks", selected_.size()}});

    if (opt_.mode == RunMode::kRun) {
      ExecuteGraph();
    } else {
      for (const std::string& name : selected_) RunTaskGuarded(name);
    }

    FinishFetches();
    if (opt_.mode == RunMode::kRun) {
      FinishCaptures();
      FinishStreams();
    }
    RecordViews();
    if (opt_.mode == RunMode::kRun) {
      PruneTaskLogs();
      // Retention of run records: the newest defaults.keep_runs stay.
      Result<int64_t> pruned = res_.metadata->PruneRuns(project_.defaults.keep_runs);
      if (!pruned.ok()) LOG_WARN("runner", "pruning old runs: {}", pruned.status().message());
    }
    if (opt_.mode == RunMode::kRun && res_.current && !res_.publisher) {
      std::lock_guard lock(mu_);
      res_.current->Set(published_.map());
    }
    int failed = 0;
    report.tasks.reserve(selected_.size());
    for (const std::string& name : selected_) {
      TaskOutcome& o = outcomes_.at(name);
      if (EndedBadly(o.status)) ++failed;
      report.tasks.push_back(std::move(o));
    }
    // Cancelled only when a task was (as the run's status says below).
    const bool cancelled_run =
        std::any_of(report.tasks.begin(), report.tasks.end(),
                    [](const TaskOutcome& t) { return t.status == TaskStatus::kCancelled; });
    if (opt_.mode == RunMode::kRun && opt_.after && !cancelled_run) {
      std::vector<TaskOutcome> more;
      try {
        more = opt_.after(report.tasks);
      } catch (const std::exception& e) {
        TaskOutcome o;
        o.asset = "export:*";
        o.kind = "export";
        o.action = TaskAction::kExport;
        o.status = TaskStatus::kFailed;
        o.error = e.what();
        more.push_back(std::move(o));
      }
      for (TaskOutcome& o : more) {
        if (EndedBadly(o.status)) ++failed;
        RecordEnd(o);
        report.tasks.push_back(std::move(o));
      }
    }
    report.exit_code = failed ? 1 : 0;
    report.ms = MonotonicMillis() - t0;
    if (opt_.mode != RunMode::kPlan) {
      int built = 0, skipped = 0, checks = 0, passed = 0, warned = 0, exported = 0;
      for (const auto& t : report.tasks) {
        (t.kind == "export" ? exported : built) += t.status == TaskStatus::kSuccess;
        skipped += t.status == TaskStatus::kSkipped;
        for (const CheckOutcome& c : t.checks) {
          ++checks;
          passed += c.status == CheckStatus::kPass;
          warned += c.status != CheckStatus::kPass && !c.Blocks();
        }
      }
      // `sluice test` builds nothing: its summary counts checks.
      std::string summary =
          opt_.mode == RunMode::kTest
              ? fmt::format("{} checks: {} passed, {} failed, {} warned", checks, passed,
                            checks - passed - warned, warned)
              : fmt::format("{} built, {} skipped, {} failed", built, skipped, failed) +
                    (exported ? fmt::format(", {} exported", exported) : "");
      // Cancelled only when a task was: a cancel after the last task is too late.
      bool cancelled =
          std::any_of(report.tasks.begin(), report.tasks.end(),
                      [](const TaskOutcome& t) { return t.status == TaskStatus::kCancelled; });
      if (cancelled) summary += "; cancelled";
      records_.Close();  // every task's record before the run's end
      RETURN_IF_ERROR(res_.metadata->FinishRun(run_id_,
                                               cancelled ? RunStatus::kCancelled
                                               : failed  ? RunStatus::kFailed
                                                         : RunStatus::kSuccess,
                                               report.exit_code, summary, res_.clock->Now()));
    }
    Emit({{"type", "run_end"}, {"run_id", run_id_}, {"exit_code", report.exit_code}});
    return report;
  }

 private:
  void Emit(const nlohmann::json& event) {
    if (events_) events_(event);
  }
  // Whether an event of this type goes anywhere (RunOptions::event_types).
  bool Wants(std::string_view type) const {
    return events_ && (!opt_.event_types || opt_.event_types->contains(type));
  }

  // The run's publisher, read from the warehouse at its first use: a run
  // that builds nothing reads nothing (a scan of _sluice_v and of every
  // publication, 0.2 s at 10,000 assets).
  Result<Publisher*> GetPublisher() {
    std::lock_guard lock(publisher_mu_);
    if (res_.publisher) {
      if (!shared_publisher_) {
        ASSIGN_OR_RETURN(auto session, res_.warehouse->Connect());
        ASSIGN_OR_RETURN(shared_publisher_, res_.publisher->Get(*session));
      }
      return shared_publisher_;
    }
    if (!publisher_) {
      ASSIGN_OR_RETURN(auto session, res_.warehouse->Connect());
      ASSIGN_OR_RETURN(publisher_, Publisher::Load(*session, *res_.clock));
    }
    return publisher_.get();
  }

  // DuckDB's text of the public views this run repointed, recorded in one
  // statement (one scan of the catalog) for RepairPublicViews.
  void RecordViews() {
    std::lock_guard lock(publisher_mu_);  // the tasks are done; for form
    Publisher* publisher = shared_publisher_ ? shared_publisher_ : publisher_.get();
    if (!publisher) return;
    // A shared publisher: what any run repointed since the last record.
    std::vector<std::string> assets =
        shared_publisher_ ? publisher->TakeRepointed() : publisher->Repointed();
    if (assets.empty()) return;
    auto [publications, transactions] = publisher->Commits();
    LOG_INFO("runner", "{} publications in {} transactions", publications, transactions);
    Result<std::unique_ptr<WarehouseSession>> session = res_.warehouse->Connect();
    Status st = session.ok() ? RecordPublicViews(**session, assets) : session.status();
    // Unrecorded views are re-created as published by the next repair.
    if (!st.ok()) LOG_WARN("runner", "cannot record the public views: {}", st.message());
  }

  // The pool a task joins (orchestrate/executor.h).
  std::string PoolOf(const AssetNode& node) const {
    if (node.kind == AssetKind::kSource) return PoolOfSource(*tables_.at(node.name).first);
    if (node.kind == AssetKind::kModel) return models_.at(node.name)->pool;
    return "";
  }

  // The owner's limits, or this run's own from the project.
  ConcurrencyLimits& Limits() { return res_.limits ? *res_.limits : own_limits_; }

  // Every selected task in dependency order on --threads workers, within
  // the owner's concurrency limits (executor.h).
  void ExecuteGraph() {
    std::vector<GraphTask> tasks(selected_.size());
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < selected_.size(); ++i) index[selected_[i]] = i;
    for (size_t i = 0; i < selected_.size(); ++i) {
      const AssetNode* node = graph_.Find(selected_[i]);
      tasks[i].pool = PoolOf(*node);
      for (const std::string& up : node->upstream) {
        auto it = index.find(up);
        if (it == index.end()) continue;
        ++tasks[i].upstream;
        tasks[it->second].downstream.push_back(i);
      }
    }
    // A cancelled run's tasks leave without waiting for room: they only
    // record that they were cancelled.
    std::unique_ptr<ReadyQueue> queue =
        NewInMemoryReadyQueue(&Limits(), [this] { return Cancelled(); });
    sluice::ExecuteGraph(tasks, opt_.threads, *queue,
                         [&](size_t i) { RunTaskGuarded(selected_[i]); });
  }

  bool Cancelled() const { return opt_.control && opt_.control->cancelled(); }

  // A model that asked for it builds from the last published versions of the
  // upstreams that failed this run, when each has one.
  bool BuildsOnStaleInputs(const AssetNode& node, const std::vector<std::string>& failed_up) {
    if (node.kind != AssetKind::kModel || !models_.at(node.name)->build_on_stale_inputs)
      return false;
    std::lock_guard lock(mu_);
    for (const std::string& up : failed_up) {
      if (CombinedVersionLocked(up).empty()) return false;
    }
    return true;
  }

  // RunTask at a thread boundary: whatever escapes it (a throwing event
  // sink, a failed record) still leaves the task an outcome, failed, so its
  // downstream does not build as if it had succeeded.
  void RunTaskGuarded(const std::string& name) {
    std::string what;
    try {
      RunTask(name);
      return;
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
      what = "an unknown exception";
    }
    LOG_ERROR("runner", "task {} ended with an exception: {}", name, what);
    std::lock_guard lock(mu_);
    if (outcomes_.count(name)) return;
    TaskOutcome o;
    o.asset = name;
    o.kind = AssetKindName(graph_.Find(name)->kind);
    o.action = TaskAction::kBuild;
    o.status = TaskStatus::kFailed;
    o.error = "internal error (please report it): " + Redact(what);
    outcomes_[name] = std::move(o);
  }

  // Runs one asset's task; records its outcome.
  void RunTask(const std::string& name) {
    const AssetNode* node = graph_.Find(name);
    TaskOutcome o;
    o.asset = name;
    o.kind = AssetKindName(node->kind);
    int64_t t0 = MonotonicMillis();
    std::vector<std::string> failed_up;
    {
      std::lock_guard lock(mu_);
      for (const std::string& up : node->upstream) {
        auto it = outcomes_.find(up);
        if (it != outcomes_.end() && (it->second.status == TaskStatus::kFailed ||
                                      it->second.status == TaskStatus::kCheckFailed ||
                                      it->second.status == TaskStatus::kUpstreamFailed)) {
          failed_up.push_back(up);
        }
      }
    }
    if (Cancelled()) {
      o.status = TaskStatus::kCancelled;
      o.action = TaskAction::kSkip;
      o.reason = "the run was cancelled before this task started";
    } else if (!failed_up.empty() && !BuildsOnStaleInputs(*node, failed_up)) {
      o.status = TaskStatus::kUpstreamFailed;
      o.action = TaskAction::kSkip;
      o.reason = "upstream failed: " + Join(failed_up, ", ");
    } else {
      if (!failed_up.empty()) {
        o.notes.push_back("built from the last good version of " + Join(failed_up, ", ") +
                          " (failed in this run; on_upstream_failure: last_good)");
      }
      if (Wants("task_start")) Emit({{"type", "task_start"}, {"asset", name}});
      // One log per task attempt (`sluice logs`); plan writes none.
      std::optional<TaskLog> log;
      if (opt_.mode != RunMode::kPlan) {
        log.emplace(TaskLogPath(name, 1), ShortTaskLogsPath());
        log->Write(fmt::format("{} {} {} (run {}, {}): started", FormatTimestamp(res_.clock->Now()),
                               o.kind, name, run_id_, opt_.command));
      }
      // A task's unexpected exception is its own failure, never the end of
      // the process (the owner serves others, and a serve runs for months).
      Status st;
      try {
        MaybeCrash("task", name);
        st = opt_.mode == RunMode::kTest ? TestTask(*node, o) : BuildTask(*node, o);
        // A fetch that was not stored is the task's failure, also when the
        // task skipped (and its freshness reads the fetch log next).
        if (st.ok() && opt_.mode == RunMode::kRun) st = WaitDurable(*node, nullptr);
      } catch (const std::exception& e) {
        st = Status::Internal(std::string("internal error (please report it): ") + e.what());
      } catch (...) {
        st = Status::Internal("internal error (please report it): an unknown exception");
      }
      if (!st.ok()) {
        o.status = TaskStatus::kFailed;
        o.error = Redact(st.message());
        // Interrupted by `sluice cancel`, not broken (another error stays itself).
        if (Cancelled() &&
            (st.code() == StatusCode::kCancelled ||
             st.message().find("nterrupt") != std::string::npos ||
             st.message().find("cancelled; its process group") != std::string::npos)) {
          o.status = TaskStatus::kCancelled;
          o.error = "cancelled while it ran (" + o.error + ")";
        }
      } else if (opt_.mode != RunMode::kPlan) {
        SourceFreshness(*node, o);
      }
      // Recorded with the task (metadata, `sluice runs`), not only printed.
      if (!failed_up.empty()) o.reason += "; stale inputs: " + Join(failed_up, ", ");
      if (log) {
        std::string line = fmt::format(
            "{} {}: {} ({}), {}{} ms", FormatTimestamp(res_.clock->Now()), name,
            TaskStatusName(o.status), o.reason, o.rows >= 0 ? fmt::format("{} rows, ", o.rows) : "",
            MonotonicMillis() - t0);
        for (const auto& [phase, ms] : o.timings) line += fmt::format("; {} {} ms", phase, ms);
        for (const CheckOutcome& c : o.checks) {
          line += "\n  check " + c.name + ": " + CheckStatusName(c.status) +
                  (c.message.empty() ? "" : ": " + c.message);
        }
        if (!o.error.empty()) line += "\n  error: " + o.error;
        if (o.status == TaskStatus::kSkipped && o.checks.empty() && o.notes.empty()) {
          log->Discard();  // unchanged: nothing happened worth a file
        } else {
          log->Write(line);
        }
      }
    }
    o.ms = MonotonicMillis() - t0;
    RecordEnd(o);
    ForgetFinishedChunks(name);
    std::lock_guard lock(mu_);
    outcomes_[name] = std::move(o);
  }

  // A task's end: its record in metadata (not for plan) and the task_end event.
  void RecordEnd(const TaskOutcome& o) {
    if (opt_.mode != RunMode::kPlan) {
      TaskRecord rec;
      rec.run_id = run_id_;
      rec.asset = o.asset;
      rec.attempt = std::max(1, o.attempts);
      rec.status = TaskStatusName(o.status);
      rec.reason = o.reason;
      rec.version_id = o.version_id;
      rec.rows = o.rows;
      rec.started_at = res_.clock->Now() - o.ms * 1000;
      rec.ended_at = res_.clock->Now();
      rec.error = o.error;
      records_.Add(std::move(rec));
    }
    if (!Wants("task_end")) return;
    Emit({{"type", "task_end"},
          {"asset", o.asset},
          {"status", TaskStatusName(o.status)},
          {"reason", o.reason},
          {"rows", o.rows},
          {"ms", o.ms},
          {"error", o.error}});
  }

  // Retention: the task logs of the newest defaults.keep_logs runs stay
  // (this one among them); older runs' folders go.
  void PruneTaskLogs() {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path dir = JoinPath(res_.env->state_dir, "logs");
    std::vector<int64_t> runs;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c));
          })) {
        runs.push_back(std::stoll(name));
      }
    }
    std::sort(runs.rbegin(), runs.rend());
    // Runs still going (runs overlap in the owner) keep theirs.
    std::set<int64_t> going;
    for (RunStatus status : {RunStatus::kRunning, RunStatus::kQueued}) {
      Result<std::vector<RunRecord>> listed = res_.metadata->ListRunsWithStatus(status);
      if (!listed.ok()) return;  // unknown: remove nothing this time
      for (const RunRecord& r : *listed) going.insert(r.id);
    }
    for (size_t i = static_cast<size_t>(std::max(1, project_.defaults.keep_logs)); i < runs.size();
         ++i) {
      if (runs[i] >= run_id_ || going.count(runs[i])) continue;
      fs::remove_all(dir / std::to_string(runs[i]), ec);
      if (ec) LOG_WARN("runner", "cannot remove the logs of run {}: {}", runs[i], ec.message());
    }
  }

  // Where a task attempt's log goes: <state>/logs/<run>/<asset>.<attempt>.log.
  std::string TaskLogPath(const std::string& asset, int attempt) const {
    return JoinPath(JoinPath(JoinPath(res_.env->state_dir, "logs"), std::to_string(run_id_)),
                    asset + "." + std::to_string(attempt) + ".log");
  }

  // Where task logs of a start and an outcome line only go, as blocks of
  // one file (core/log.h): <state>/logs/<run>/short-logs.
  std::string ShortTaskLogsPath() const {
    return JoinPath(JoinPath(JoinPath(res_.env->state_dir, "logs"), std::to_string(run_id_)),
                    kShortTaskLogs);
  }

  // The run's clock as a SQL TIMESTAMP.
  std::string NowLiteral() const {
    return "make_timestamp(" + std::to_string(res_.clock->Now()) + ")";
  }

  // incremental and snapshot models after their first build: the model's new
  // rows are staged as a batch, the batch is audited, then the live table is
  // changed, re-checked and published in one transaction (DESIGN §5); a
  // failed audit or check leaves it exactly as it was.
  Status BuildInPlace(const AssetNode& node, const ModelSpec& model, TaskOutcome& o,
                      const std::string& version, const nlohmann::json& inputs,
                      const std::string& checks_hash, const Publication& prev,
                      WarehouseSession& session) {
    int64_t start = MonotonicMillis();
    o.attempts = 1;
    std::string sql = StripSql(node.sql);
    if (model.materialized == "incremental") {
      TemplateContext ctx;
      ctx.vars = project_.vars;
      ctx.env = res_.env->name;
      ctx.this_name = model.name;
      ctx.is_incremental = true;
      ASSIGN_OR_RETURN(sql, RenderTemplate(model.sql, ctx, model.sql_first_line));
      sql = StripSql(sql);
    }
    TempTables temp(session);
    std::string batch = temp.Name("sluice_batch_");
    Status staged = [&]() -> Status {
      Watchdog watchdog(&session, project_.defaults.timeout_seconds);
      return session.Execute("DROP TABLE IF EXISTS " + batch + "; CREATE TEMP TABLE " + batch +
                             " AS " + sql);
    }();
    if (!staged.ok()) {
      return staged.WithContext(ErrorLoc(node, staged).ToString() + ": building the batch of " +
                                node.name + " failed");
    }
    ASSIGN_OR_RETURN(QueryResult batch_rows, session.Query("SELECT count(*) FROM " + batch));
    std::string strategy = model.materialized == "snapshot" ? "snapshot" : model.strategy;
    o.reason += fmt::format(" ({} {} rows)", strategy, batch_rows.ScalarInt());
    std::vector<std::string> partition_by;
    if (model.partition_by.is_string()) partition_by.push_back(model.partition_by);
    if (model.partition_by.is_array()) {
      for (const auto& p : model.partition_by) partition_by.push_back(p.get<std::string>());
    }
    return ApplyBatch(node, strategy, model.key, partition_by, batch, o, version, inputs,
                      checks_hash, prev, session, start, nullptr);
  }

  // Changes the live table of an in-place asset by a staged batch — audited
  // first (a key twice or null in one batch is an error), applied by
  // `strategy`, re-checked and published in one transaction — or leaves it
  // exactly as it was. `next_cursor`, when set, gives the publication's
  // cursor (an incremental database read's), computed from the batch.
  Status ApplyBatch(
      const AssetNode& node, const std::string& strategy, const std::vector<std::string>& key,
      const std::vector<std::string>& partition_by, const std::string& batch, TaskOutcome& o,
      const std::string& version, const nlohmann::json& inputs, const std::string& checks_hash,
      const Publication& prev, WarehouseSession& session, int64_t start,
      const std::function<Result<nlohmann::json>(WarehouseSession&, const std::string&)>&
          next_cursor,
      const std::vector<std::string>* given_statements = nullptr,
      const std::string& changed_rows = "") {
    ASSIGN_OR_RETURN(Publisher * publisher, GetPublisher());
    BuildEnv env = MakeBuildEnv(publisher);
    BuildTarget target = MakeTarget(node, "", version, prev.fingerprint, checks_hash, inputs);
    InPlaceBatch in_place;
    in_place.strategy = strategy;
    in_place.key = key;
    in_place.partition_by = partition_by;
    in_place.relation = batch;
    if (given_statements) in_place.statements = *given_statements;
    in_place.changed_rows = changed_rows;
    in_place.next_cursor = next_cursor;
    in_place.now_literal = NowLiteral();
    in_place.where = node.loc.ToString();
    ASSIGN_OR_RETURN(InPlaceOutcome applied,
                     ApplyInPlace(env, session, target, prev, in_place, start));
    o.status = applied.status;
    o.error = std::move(applied.error);
    o.checks = std::move(applied.checks);
    if (!applied.published) return Status::Ok();
    o.drift = std::move(applied.drift);
    o.rows = applied.published->rows;
    std::lock_guard lock(mu_);
    NoteVersionLocked(node.name, "", version);
    published_[{node.name, ""}] = std::move(*applied.published);
    return Status::Ok();
  }

  // What the build step needs of this run (build_step.h).
  BuildEnv MakeBuildEnv(Publisher* publisher) {
    BuildEnv env;
    env.publisher = publisher;
    env.metadata = res_.metadata;
    env.clock = res_.clock;
    env.run_id = run_id_;
    env.keep_versions = project_.defaults.keep_versions;
    env.cancelled = [this] { return Cancelled(); };
    env.record_checks = [this](const std::string& asset, const std::string& version,
                               const std::vector<CheckOutcome>& checks) {
      RecordChecks(asset, version, checks);
    };
    return env;
  }

  BuildTarget MakeTarget(const AssetNode& node, const std::string& partition,
                         const std::string& version, const std::string& fingerprint,
                         const std::string& checks_hash, const nlohmann::json& inputs) {
    BuildTarget target;
    target.asset = node.name;
    target.partition = partition;
    target.version = version;
    target.fingerprint = fingerprint;
    target.checks_hash = checks_hash;
    target.inputs = inputs;
    target.checks = &ChecksOf(node);
    return target;
  }

  static std::string AddColumnSql(const std::string& table, const std::string& column,
                                  const std::string& type) {
    return "ALTER TABLE " + table + " ADD COLUMN " + QuoteIdent(column) + " " + type;
  }

  // The type DuckDB gives a column that holds values of both (a UNION's):
  // DECIMAL(2,1) and DECIMAL(4,3) make DECIMAL(4,3). "" when it has none.
  static Result<std::string> CommonType(WarehouseSession& session, const std::string& a,
                                        const std::string& b) {
    ASSIGN_OR_RETURN(
        QueryResult common,
        session.Query("SELECT typeof(x) FROM (SELECT CAST(NULL AS " + a +
                      ") AS x UNION ALL SELECT CAST(NULL AS " + b + ") AS x) LIMIT 1"));
    return common.rows.empty() || !common.rows[0][0] ? std::string() : *common.rows[0][0];
  }

  // A batch's columns take the live table's types, when every value keeps
  // its value in them. A value that would change (a wider number) widens
  // the table's column instead, to the type that holds both (DuckDB's
  // common type) when every value of both keeps its value there; one that
  // holds neither (text where numbers were) fails the read, with the fix.
  // A column the table lacks goes in `added` (name, type), for the caller
  // to add; without `added` the read fails. The ALTER TABLE statements go in
  // `statements`, to run first in the publication's transaction; what was
  // done in `notes`.
  using NewColumns = std::vector<std::pair<std::string, std::string>>;
  Status AlignBatchTypes(WarehouseSession& session, const AssetNode& node, const std::string& batch,
                         const Publication& prev, std::vector<std::string>* statements,
                         std::vector<std::string>* notes, NewColumns* added) {
    std::map<std::string, std::string> live;
    for (const auto& c : prev.schema) live[c.value("name", "")] = c.value("type", "");
    ASSIGN_OR_RETURN(nlohmann::json schema, DescribeRelation(session, batch));
    std::vector<std::string> refused, misfits;
    const std::string fix = "; the table is unchanged: read it whole with `sluice run " +
                            node.name + " --full-refresh`";
    // How many non-null values of `id` in `relation` change when cast to `type` and back.
    auto changed = [&](const std::string& relation, const std::string& id, const std::string& from,
                       const std::string& type) -> Result<QueryResult> {
      return session.Query("SELECT count(*), CAST(any_value(" + id + ") AS VARCHAR) FROM " +
                           relation + " WHERE " + id + " IS NOT NULL AND TRY_CAST(TRY_CAST(" + id +
                           " AS " + type + ") AS " + from + ") IS DISTINCT FROM " + id);
    };
    for (const auto& c : schema) {
      std::string name = c.value("name", ""), type = c.value("type", "");
      auto it = live.find(name);
      if (it == live.end()) {
        if (added) {
          added->emplace_back(name, type);
        } else {
          refused.push_back(name);
        }
        continue;
      }
      if (it->second == type) continue;
      std::string id = QuoteIdent(name);
      ASSIGN_OR_RETURN(QueryResult lost, changed(batch, id, type, it->second));
      if (lost.ScalarInt() == 0) {
        RETURN_IF_ERROR(session.Execute("ALTER TABLE " + batch + " ALTER COLUMN " + id +
                                        " SET DATA TYPE " + it->second));
        continue;
      }
      // Widen: the common type of both, if it keeps every value of each.
      ASSIGN_OR_RETURN(std::string wide, CommonType(session, it->second, type));
      bool ok =
          !wide.empty() && wide != it->second && (wide != "VARCHAR" || it->second == "VARCHAR");
      if (ok) {
        ASSIGN_OR_RETURN(QueryResult old_lost, changed(prev.physical, id, it->second, wide));
        ASSIGN_OR_RETURN(QueryResult new_lost, changed(batch, id, type, wide));
        ok = old_lost.ScalarInt() == 0 && new_lost.ScalarInt() == 0;
      }
      if (!ok) {
        // Values that are not of the table's type at all say it best.
        ASSIGN_OR_RETURN(
            QueryResult alien,
            session.Query("SELECT count(*), CAST(any_value(" + id + ") AS VARCHAR) FROM " + batch +
                          " WHERE " + id + " IS NOT NULL AND TRY_CAST(" + id + " AS " + it->second +
                          ") IS NULL"));
        const QueryResult& shown = alien.ScalarInt() > 0 ? alien : lost;
        misfits.push_back(fmt::format("{} ({} in the table; {} new value(s) such as {} are {})",
                                      name, it->second, shown.ScalarInt(),
                                      shown.rows[0][1].value_or("?"), type));
        continue;
      }
      RETURN_IF_ERROR(session.Execute("ALTER TABLE " + batch + " ALTER COLUMN " + id +
                                      " SET DATA TYPE " + wide));
      statements->push_back("ALTER TABLE " + prev.physical + " ALTER COLUMN " + id +
                            " SET DATA TYPE " + wide);
      notes->push_back("column " + name + " widened from " + it->second + " to " + wide +
                       " (new values such as " + lost.rows[0][1].value_or("?") + ")");
    }
    if (!refused.empty()) {
      return Status::DataError("column(s) " + Join(refused, ", ") + " of " + node.name +
                               " are new in the database" + fix);
    }
    if (!misfits.empty()) {
      return Status::DataError("the new rows of " + node.name +
                               " do not fit the table's column types, nor a wider type that "
                               "holds the old values too: " +
                               Join(misfits, "; ") + fix);
    }
    return Status::Ok();
  }

  // A read that changes nothing: the published version stays, and the task
  // says why it was skipped.
  Status KeepPublished(const AssetNode& node, const Publication& prev, const std::string& why,
                       TaskOutcome& o) {
    o.action = TaskAction::kSkip;
    o.status = TaskStatus::kSkipped;
    o.reason = why;
    o.rows = prev.rows;
    o.version_id = prev.version_id;
    std::lock_guard lock(mu_);
    NoteVersionLocked(node.name, "", prev.version_id);
    return Status::Ok();
  }

  // A chunked read that finished is done with once its table's task ends,
  // however it ended (a failed check must see the source again next time).
  void ForgetFinishedChunks(const std::string& asset) {
    if (opt_.mode == RunMode::kPlan || !res_.env) return;
    const std::string path = JoinPath(JoinPath(res_.env->state_dir, "resume"), asset + ".json");
    Result<std::string> text = ReadFile(path);
    if (!text.ok()) return;
    nlohmann::json state = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (state.is_object() && state.value("complete", false)) {
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
  }

  // The columns a read adds to a database table's rows.
  static bool IsReadColumn(const std::string& name) {
    return name == "_op" || name == "_extracted_at";
  }

  // Columns new at the source of an incrementally read table: read for
  // every row (the key and those columns: one narrow read of the whole
  // table, kept in the raw lake like a key scan), loaded, and — after the
  // columns are added with a type that holds both reads' values — set on
  // the table's rows by key (`statements`, to run in the publication's
  // transaction). The batch's columns take the same types.
  Status FillNewColumns(WarehouseSession& session, const AssetNode& node, const SourceSpec& src,
                        const TableSpec& table, const std::string& batch, const Publication& prev,
                        const NewColumns& added, TempTables& temp,
                        std::vector<std::string>* statements, TaskOutcome& o) {
    std::vector<std::string> read = table.key, names;
    for (const auto& c : added) {
      read.push_back(c.first);
      names.push_back(c.first);
    }
    ASSIGN_OR_RETURN(DatabaseExtract fill,
                     ExtractDatabaseTable(src, table, "", {}, read, "new columns"));
    ASSIGN_OR_RETURN(const Decoder* decoder, FindDecoder("database"));
    ASSIGN_OR_RETURN(
        std::string rows,
        decoder->TableSql(
            {fill.object.local_path, "database", {{"columns", fill.columns}}, false, ""}));
    const std::string loaded = temp.Name("sluice_fill_");
    Status staged = session.Execute("CREATE TEMP TABLE " + loaded + " AS SELECT * FROM " + rows);
    if (!staged.ok()) {
      return staged.WithContext(node.loc.ToString() + ": loading the new columns of " + node.name);
    }
    ASSIGN_OR_RETURN(std::vector<std::string> fitted,
                     FitNumericColumns(session, fill.columns, loaded));
    for (std::string& note : fitted) o.notes.push_back(std::move(note));
    std::map<std::string, std::string> live;
    for (const auto& c : prev.schema) live[c.value("name", "")] = c.value("type", "");
    ASSIGN_OR_RETURN(nlohmann::json filled_schema, DescribeRelation(session, loaded));
    std::map<std::string, std::string> filled_types;
    for (const auto& c : filled_schema) filled_types[c.value("name", "")] = c.value("type", "");
    std::vector<std::string> set, match;
    for (const auto& [name, type] : added) {
      // The type that holds the batch's values and every row's.
      const std::string id = QuoteIdent(name);
      ASSIGN_OR_RETURN(std::string wide, CommonType(session, type, filled_types[name]));
      if (wide.empty()) wide = type;
      RETURN_IF_ERROR(session.Execute("ALTER TABLE " + batch + " ALTER COLUMN " + id +
                                      " SET DATA TYPE " + wide));
      RETURN_IF_ERROR(session.Execute("ALTER TABLE " + loaded + " ALTER COLUMN " + id +
                                      " SET DATA TYPE " + wide));
      statements->push_back(AddColumnSql(prev.physical, name, wide));
      set.push_back(id + " = f." + id);
    }
    for (const std::string& k : table.key) {
      // The key as the table has it.
      RETURN_IF_ERROR(session.Execute("ALTER TABLE " + loaded + " ALTER COLUMN " + QuoteIdent(k) +
                                      " SET DATA TYPE " + live[k]));
      match.push_back("t." + QuoteIdent(k) + " IS NOT DISTINCT FROM f." + QuoteIdent(k));
    }
    ASSIGN_OR_RETURN(QueryResult n, session.Query("SELECT count(*) FROM " + loaded));
    statements->push_back("UPDATE " + prev.physical + " AS t SET " + Join(set, ", ") + " FROM " +
                          loaded + " AS f WHERE " + Join(match, " AND "));
    o.notes.push_back(fmt::format("new column(s) at the source: {}, read for all {} rows",
                                  Join(names, ", "), n.ScalarInt()));
    return Status::Ok();
  }

  // An incrementally read database table after its first build: the rows
  // read since the cursor are loaded as a batch and merged on the key into
  // the live table, whose publication moves the cursor in the same
  // transaction. No rows: nothing changes (not even the version).
  Status BuildSourceBatch(const AssetNode& node, TaskOutcome& o, const std::string& version,
                          const nlohmann::json& inputs, const std::string& checks_hash,
                          const Publication& prev, const std::vector<StoredObject>& objects,
                          WarehouseSession& session) {
    int64_t start = MonotonicMillis();
    auto [source, table] = tables_.at(node.name);
    if (source->database && source->database->cdc) {
      return BuildChangeBatch(node, o, version, inputs, checks_hash, prev, objects, session);
    }
    if (source->stream) {
      return BuildStreamBatch(node, o, version, inputs, checks_hash, prev, objects, session);
    }
    TempTables temp(session);
    std::string batch = temp.Name("sluice_read_");
    Result<LoadOutcome> loaded = LoadSource(session, node, objects, batch, version, o);
    if (!loaded.ok()) {
      return loaded.status().WithContext(node.loc.ToString() + ": loading the rows of " +
                                         node.name + " read since its cursor failed");
    }
    for (const std::string& note : loaded->notes) o.notes.push_back(note);
    {
      std::lock_guard lock(mu_);
      for (const std::string& note : db_notes_[node.name]) o.notes.push_back(note);
    }
    // New source columns are added, and read for every row (not only those
    // since the cursor): the table then holds what the source holds.
    std::vector<std::string> altered;
    NewColumns new_columns;
    RETURN_IF_ERROR(AlignBatchTypes(session, node, batch, prev, &altered, &o.notes, &new_columns));
    // _op and _extracted_at new to a table published before they were
    // read are added (null in older rows); the source's own are filled.
    std::vector<std::string> added, unmapped;
    NewColumns from_source;
    for (const auto& c : new_columns) {
      added.push_back(c.first);
      if (IsReadColumn(c.first)) {
        altered.push_back(AddColumnSql(prev.physical, c.first, c.second));
      } else {
        from_source.push_back(c);
        unmapped.push_back(c.first);
      }
    }
    if (!from_source.empty() && !table->columns.empty()) {
      // Mapped columns: which source column feeds which is the config's.
      return Status::DataError("column(s) " + Join(unmapped, ", ") + " of " + node.name +
                               " are new in the database; the table is unchanged: read it whole "
                               "with `sluice run " +
                               node.name + " --full-refresh`");
    }
    if (!from_source.empty()) {
      RETURN_IF_ERROR(FillNewColumns(session, node, *source, *table, batch, prev, from_source, temp,
                                     &altered, o));
    }
    ASSIGN_OR_RETURN(QueryResult counted, session.Query("SELECT count(*) FROM " + batch));
    int64_t rows = counted.ScalarInt();
    std::string since = prev.cursor.value("value", "");
    auto unchanged = [&](const std::string& why) { return KeepPublished(node, prev, why, o); };
    // A key scan: rows whose key is gone at the source go.
    std::optional<KeyScan> scan;
    {
      std::lock_guard lock(mu_);
      auto it = key_scans_.find(node.name);
      if (it != key_scans_.end()) scan = it->second;
    }
    std::string keys = temp.Name("sluice_keys_");
    int64_t gone = 0;
    std::string delete_gone;
    if (scan) {
      ASSIGN_OR_RETURN(const Decoder* decoder, FindDecoder("database"));
      ASSIGN_OR_RETURN(
          std::string read,
          decoder->TableSql(
              {scan->object.local_path, "database", {{"columns", scan->columns}}, false, ""}));
      std::map<std::string, std::string> live_types;
      for (const auto& c : prev.schema) live_types[c.value("name", "")] = c.value("type", "");
      std::vector<std::string> select, match;
      for (size_t i = 0; i < table->key.size(); ++i) {
        const std::string& k = table->key[i];
        select.push_back("CAST(" + QuoteIdent(scan->inputs[i]) + " AS " +
                         (live_types.count(k) ? live_types[k] : std::string("VARCHAR")) + ") AS " +
                         QuoteIdent(k));
        match.push_back("k." + QuoteIdent(k) + " IS NOT DISTINCT FROM l." + QuoteIdent(k));
      }
      Status staged = session.Execute("CREATE TEMP TABLE " + keys + " AS SELECT " +
                                      Join(select, ", ") + " FROM " + read);
      if (!staged.ok()) {
        return staged.WithContext(node.loc.ToString() + ": loading the key scan of " + node.name);
      }
      std::string where =
          " l WHERE NOT EXISTS (SELECT 1 FROM " + keys + " k WHERE " + Join(match, " AND ") + ")";
      ASSIGN_OR_RETURN(QueryResult n,
                       session.Query("SELECT count(*) FROM " + prev.physical + where));
      gone = n.ScalarInt();
      delete_gone = "DELETE FROM " + prev.physical + where;
    }
    auto scanned = [&] {
      if (scan) NoteKeyScan(node.name);
    };
    if (rows == 0 && gone == 0 && altered.empty()) {
      scanned();
      return unchanged("no rows with " + table->db_cursor + " at or past " + since +
                       (scan ? "; the key scan found no row gone" : ""));
    }
    // Rows read again (those at the cursor, those in the lookback) that the
    // table already holds as they are change nothing: no new version.
    ASSIGN_OR_RETURN(nlohmann::json batch_schema, DescribeRelation(session, batch));
    std::vector<std::string> on, same;
    for (const std::string& k : table->key) {
      on.push_back("l." + QuoteIdent(k) + " = b." + QuoteIdent(k));
    }
    bool has_op = false;
    for (const auto& c : batch_schema) {
      std::string name = c.value("name", "");
      has_op = has_op || name == "_op";
      if (std::find(added.begin(), added.end(), name) != added.end() || IsReadColumn(name)) {
        continue;
      }
      same.push_back("l." + QuoteIdent(name) + " IS NOT DISTINCT FROM b." + QuoteIdent(name));
    }
    ASSIGN_OR_RETURN(
        QueryResult fresh,
        session.Query("SELECT count(*) FROM " + batch + " b WHERE NOT EXISTS (SELECT 1 FROM " +
                      prev.physical + " l WHERE " + Join(on, " AND ") + " AND " +
                      Join(same, " AND ") + ")"));
    if (fresh.ScalarInt() == 0 && gone == 0 && altered.empty()) {
      scanned();
      return unchanged(
          fmt::format("the {} rows read since {} are in the table as they are", rows, since));
    }
    o.reason =
        fmt::format("{} rows with {} at or past {}", rows, table->db_cursor, since) +
        (table->db_lookback_seconds > 0 ? fmt::format(" less {}s", table->db_lookback_seconds)
                                        : std::string()) +
        ", merged on " + Join(table->key, ", ") +
        fmt::format(" ({} new or changed)", fresh.ScalarInt()) +
        (scan ? fmt::format("; {} deleted (gone from the source's key scan)", gone) : "");
    // Rows read again as the table holds them (at the cursor, in the
    // lookback) are left as they are: their _op and _extracted_at stay.
    // Not when a key is twice in the batch: the audit must see both.
    ASSIGN_OR_RETURN(QueryResult twice, session.Query(BatchKeyProblemsSql(batch, table->key)));
    if (added.empty() && !same.empty() && twice.rows.empty()) {
      RETURN_IF_ERROR(session.Execute(
          "DELETE FROM " + batch + " AS b WHERE EXISTS (SELECT 1 FROM " + prev.physical +
          " l WHERE " + Join(on, " AND ") + " AND " + Join(same, " AND ") + ")"));
    }
    if (has_op) {
      // Each row says whether it was new to the table or changed in it.
      RETURN_IF_ERROR(session.Execute(
          "UPDATE " + batch + " AS b SET _op = CASE WHEN EXISTS (SELECT 1 FROM " + prev.physical +
          " l WHERE " + Join(on, " AND ") + ") THEN 'update' ELSE 'insert' END"));
    }
    ASSIGN_OR_RETURN(
        std::vector<std::string> merge,
        ApplyBatchSql("merge", prev.physical, batch, table->key, {}, {}, NowLiteral()));
    std::vector<std::string> statements = std::move(altered);
    for (std::string& st : merge) statements.push_back(std::move(st));
    if (gone > 0) statements.push_back(delete_gone);
    RETURN_IF_ERROR(ApplyBatch(
        node, "merge", table->key, {}, batch, o, version, inputs, checks_hash, prev, session, start,
        [this, &prev, &node](WarehouseSession& s, const std::string& rel) {
          return CursorOf(s, rel, node, prev.cursor);
        },
        &statements));
    if (o.status == TaskStatus::kSuccess) scanned();
    return Status::Ok();
  }

  // A captured table after its snapshot: the slot's changes since its
  // cursor, reduced to one row a key (ChangeBatchSql), applied in place —
  // deletes and truncates too — and published with the cursor moved to the
  // read's end, in one transaction. No changes: nothing is published, and
  // the slot may still move past the read (FinishCaptures).
  Status BuildChangeBatch(const AssetNode& node, TaskOutcome& o, const std::string& version,
                          const nlohmann::json& inputs, const std::string& checks_hash,
                          const Publication& prev, const std::vector<StoredObject>& objects,
                          WarehouseSession& session) {
    int64_t start = MonotonicMillis();
    auto [src, table] = tables_.at(node.name);
    ASSIGN_OR_RETURN(const CaptureRead* capture, Capture(*src));
    const size_t i = capture->index.at(table->name);
    const CdcTableRead& counts = capture->read.tables[i];
    const uint64_t end = capture->ends[i];
    const std::string since = FormatLsn(capture->request.tables[i].after);
    if (objects.empty()) {  // a stream's batches held no change of it
      {
        std::lock_guard lock(mu_);
        captured_[node.name] = end;
      }
      return KeepPublished(node, prev,
                           "no changes from slot " + capture->request.slot + " since " + since, o);
    }
    TempTables temp(session);
    std::string batch = temp.Name("sluice_changes_");
    std::string reduced = temp.Name("sluice_changed_");
    Result<LoadOutcome> loaded = LoadSource(session, node, objects, batch, version, o);
    if (!loaded.ok()) {
      return loaded.status().WithContext(node.loc.ToString() + ": loading the changes of " +
                                         node.name + " failed");
    }
    {
      std::lock_guard lock(mu_);
      for (const std::string& note : db_notes_[node.name]) o.notes.push_back(note);
    }
    ASSIGN_OR_RETURN(QueryResult shape,
                     session.Query("SELECT count(*), max(_seq) FILTER (WHERE _op = 'truncate'), "
                                   "count(*) FILTER (WHERE _unchanged IS NOT NULL) FROM " +
                                   batch));
    if (prev.cursor != capture->seen[i]) {
      return Status::Busy(node.name + ": another run applied changes of slot " +
                          capture->request.slot +
                          " since this run read them; nothing applied "
                          "(the next run reads on from there)");
    }
    if (shape.ScalarInt() == 0) {
      {
        std::lock_guard lock(mu_);
        captured_[node.name] = end;
      }
      return KeepPublished(node, prev,
                           "no changes from slot " + capture->request.slot + " since " + since, o);
    }
    const bool truncated = shape.rows[0][1].has_value();
    const int64_t after_seq = truncated ? std::stoll(*shape.rows[0][1]) : -1;
    const bool unchanged = shape.rows[0][2] && std::stoll(*shape.rows[0][2]) > 0;
    ASSIGN_OR_RETURN(nlohmann::json schema, DescribeRelation(session, batch));
    std::vector<std::string> columns;
    for (const auto& c : schema) {
      std::string name = c.value("name", "");
      bool special = name == "_extracted_at";
      for (const char* k : kChangeColumns) special = special || name == k;
      if (!special) columns.push_back(name);
    }
    // The source's columns now against the table's: a column added at the
    // source is added here (its older rows null, as at the source — unless
    // it came with a default, which they hold and no change says); one
    // dropped stays, null in rows changed from now on; both at once may be
    // a rename, whose values no change carries.
    std::set<std::string> live_columns, now(columns.begin(), columns.end());
    for (const auto& c : prev.schema) {
      std::string name = c.value("name", "");
      if (name != "_op" && name != "_extracted_at") live_columns.insert(name);
    }
    std::vector<std::string> added, dropped, defaulted;
    for (const std::string& c : columns) {
      if (live_columns.count(c)) continue;
      added.push_back(c);
      if (std::find(counts.defaulted.begin(), counts.defaulted.end(), c) !=
          counts.defaulted.end()) {
        defaulted.push_back(c);
      }
    }
    for (const std::string& c : live_columns) {
      if (!now.count(c)) dropped.push_back(c);
    }
    const std::string again =
        "; the table is unchanged: read the source whole again with "
        "`sluice run source:" +
        src->name + " --full-refresh`";
    if (!added.empty() && !dropped.empty()) {
      return Status::DataError("column(s) " + Join(dropped, ", ") + " of " + node.name +
                               " are gone at the source and " + Join(added, ", ") +
                               " are new: a rename, whose values no change carries" + again);
    }
    if (!defaulted.empty()) {
      return Status::DataError("column(s) " + Join(defaulted, ", ") + " of " + node.name +
                               " were added at the source with a default, which its existing "
                               "rows hold and no change carries" +
                               again);
    }
    Status staged =
        session.Execute("CREATE TEMP TABLE " + reduced + " AS " +
                        ChangeBatchSql(batch, truncated ? "" : prev.physical, table->key, columns,
                                       after_seq, unchanged, added));
    if (!staged.ok()) {
      return staged.WithContext(node.loc.ToString() + ": reducing the changes of " + node.name);
    }
    std::vector<std::string> statements;
    NewColumns new_columns;
    RETURN_IF_ERROR(
        AlignBatchTypes(session, node, reduced, prev, &statements, &o.notes, &new_columns));
    for (const auto& [name, type] : new_columns) {
      statements.push_back(AddColumnSql(prev.physical, name, type));
    }
    for (std::string& st : ApplyChangesSql(prev.physical, reduced, table->key, truncated)) {
      statements.push_back(std::move(st));
    }
    if (!added.empty()) o.notes.push_back("new column(s) at the source: " + Join(added, ", "));
    if (!dropped.empty()) {
      o.notes.push_back("column(s) gone at the source, kept (null in rows changed from now on): " +
                        Join(dropped, ", "));
    }
    o.reason =
        fmt::format("{} inserts, {} updates, {} deletes{} from slot {} since {}, merged on {}",
                    counts.inserts, counts.updates, counts.deletes, truncated ? ", a truncate" : "",
                    capture->request.slot, since, Join(table->key, ", "));
    CaptureCursor cursor{capture->request.slot, capture->generation, capture->read_keys[i], end};
    std::vector<std::string> match;
    for (const std::string& k : table->key) {
      match.push_back("t." + QuoteIdent(k) + " IS NOT DISTINCT FROM b." + QuoteIdent(k));
    }
    const std::string changed_rows = "(SELECT t.* FROM " + prev.physical +
                                     " AS t WHERE EXISTS (SELECT 1 FROM " + reduced +
                                     " AS b WHERE " + Join(match, " AND ") + "))";
    RETURN_IF_ERROR(ApplyBatch(
        node, "changes", {}, {}, reduced, o, version, inputs, checks_hash, prev, session, start,
        [&](WarehouseSession&, const std::string&) -> Result<nlohmann::json> {
          return CaptureCursorJson(cursor);
        },
        &statements, changed_rows));
    if (o.status == TaskStatus::kSuccess) {
      std::lock_guard lock(mu_);
      captured_[node.name] = end;
    }
    return Status::Ok();
  }

  // The run's one read of a captured source (each table's task asks; the
  // first reads, the others wait for it): a snapshot of every table when
  // DecideCapture says so, else the slot's changes since each table's cursor.
  Result<const CaptureRead*> Capture(const SourceSpec& src) {
    std::shared_future<Result<CaptureRead>> fut;
    std::promise<Result<CaptureRead>> promise;
    bool owner = false;
    {
      std::lock_guard lock(mu_);
      auto it = captures_.find(src.name);
      if (it == captures_.end()) {
        fut = promise.get_future().share();
        captures_.emplace(src.name, fut);
        owner = true;
      } else {
        fut = it->second;
      }
    }
    if (owner) {
      Result<CaptureRead> read = [&]() -> Result<CaptureRead> {
        try {
          return ReadCapture(src);
        } catch (const std::exception& e) {
          return Status::Internal(std::string("reading the changes of ") + src.name + ": " +
                                  e.what());
        }
      }();
      promise.set_value(std::move(read));
    }
    const Result<CaptureRead>& read = fut.get();
    if (!read.ok()) return read.status();
    return &*read;
  }

  Result<CaptureRead> ReadCapture(const SourceSpec& src) {
    const CdcSpec& cdc = *src.database->cdc;
    ASSIGN_OR_RETURN(AssetHolds::Hold held, Hold("source:" + src.name, ""));
    CaptureRead out;
    ASSIGN_OR_RETURN(DbRequest db, DatabaseRequest(src, src.tables.front(), ""));
    db.table.clear();
    db.query.clear();
    if (cdc.binlog && IsPostgresUrl(db.url)) {
      return Status::Invalid(cdc.loc.ToString() + ": cdc: binlog: is MariaDB's, and " +
                             DisplayDatabaseUrl(db.url) +
                             " is PostgreSQL: remove binlog: (its changes are read with slot: and "
                             "publication:)");
    }
    if (opt_.control) db.cancel = opt_.control->flag();
    out.request.db = db;
    const std::string slot_name = CaptureSlot(src, res_.env->name);
    out.request.slot = slot_name;
    out.request.publication = cdc.publication;
    out.request.max_changes = cdc.max_changes;
    out.request.extracted_at = CaptureTimestamp(res_.clock->Now());
    ASSIGN_OR_RETURN(CdcSlotState slot, InspectSlot(out.request));
    std::vector<std::optional<CaptureCursor>> cursors;
    std::vector<const TableSpec*> tables;
    std::vector<std::string> read_keys;
    std::map<std::string, nlohmann::json> seen;
    {
      std::lock_guard lock(mu_);
      if (res_.current && res_.publisher) {
        // What other runs published since this one started.
        for (const TableSpec& t : src.tables) {
          if (std::optional<std::vector<Publication>> now = res_.current->Of(t.name)) {
            for (Publication& p : *now) published_[{p.asset, p.partition}] = std::move(p);
          }
        }
      }
      for (const TableSpec& t : src.tables) {
        auto it = published_.find({t.name, ""});
        std::optional<CaptureCursor> c;
        // The cursor goes on while the database, slot, table and key are
        // the same (its read key): a new timeout, check or Sluice version
        // snapshots nothing again.
        if (it != published_.end()) c = CaptureCursorOf(it->second.cursor);
        read_keys.push_back(CaptureReadKey(DisplayDatabaseUrl(db.url), slot_name, cdc, t));
        cursors.push_back(c);
        tables.push_back(&t);
        seen[t.name] = it != published_.end() ? it->second.cursor : nlohmann::json();
      }
    }
    ApplyConfirmed(src, cursors);
    const std::string marker = CaptureMarker(src);
    std::error_code ec;
    CaptureDecision decision = DecideCapture(cursors, slot, slot_name, read_keys, opt_.full_refresh,
                                             std::filesystem::exists(marker, ec));
    out.snapshot = decision.snapshot;
    out.why = decision.why;
    if (decision.snapshot) {
      std::vector<std::string> missing;
      for (const TableSpec* t : tables) {
        if (!selected_set_.count(t->name)) missing.push_back(t->name);
      }
      if (!missing.empty()) {
        return Status::Invalid(
            src.loc.ToString() + ": " + src.name + " must be snapshot again (" + decision.why +
            "), and a snapshot loads all of its tables at once; " + Join(missing, ", ") +
            " are not in this run: run them too (sluice run source:" + src.name + ")");
      }
    }
    if (decision.snapshot) {
      // Before the slot is made again: until every table has published
      // from the new one, the old cursors are void (a failed or killed
      // snapshot must not leave them to be read on from).
      RETURN_IF_ERROR(MakeDirs(std::filesystem::path(marker).parent_path().string()));
      RETURN_IF_ERROR(WriteFileAtomic(marker, MarkerToken()));
      // The old confirmed position belongs to the old snapshot (whose
      // position a new one may even repeat, after a binlog reset).
      std::filesystem::remove(ConfirmedPath(src), ec);
    }
    for (size_t i = 0; i < tables.size(); ++i) {
      if (!decision.snapshot && !selected_set_.count(tables[i]->name)) continue;
      out.seen.push_back(seen[tables[i]->name]);
      out.read_keys.push_back(read_keys[i]);
      CdcTable t;
      t.relation = tables[i]->db_table;
      t.key = tables[i]->key;
      t.after = decision.snapshot ? 0 : decision.after[i];
      t.path = res_.archive->NewStagingPath();
      out.index[tables[i]->name] = out.request.tables.size();
      out.request.tables.push_back(std::move(t));
    }
    if (res_.feeds) {
      std::string why = "a snapshot (" + decision.why + ")";
      if (!decision.snapshot && res_.feeds->Streaming(src.name, decision.generation)) {
        out.generation = decision.generation;
        Status taken = TakeStreamed(src, out);
        if (taken.ok()) return out;
        why = taken.message();
        out.read = CdcRead();
        out.objects.clear();
        out.columns.clear();
        out.ends.clear();
        out.streamed = false;
      } else if (!decision.snapshot) {
        why = "a run reads the slot itself";
      }
      // This run reads the slot (or makes it again): serve's stream of it,
      // if any, lets go of it first. A stream this run may start must not
      // follow a Halt or Start of another run since (FinishCaptures).
      res_.feeds->Halt(src.name, why);
      out.feed_epoch = res_.feeds->Epoch(src.name);
    }
    FetchRecord rec;
    rec.source = src.name;
    rec.url = DisplayDatabaseUrl(db.url) + (decision.snapshot ? " snapshot of " : " changes of ") +
              "slot " + slot_name;
    rec.started_at = res_.clock->Now();
    int64_t start = MonotonicMillis();
    Result<CdcRead> read =
        decision.snapshot ? SnapshotTables(out.request) : ReadChanges(out.request);
    rec.duration_ms = MonotonicMillis() - start;
    auto cleanup = [&] {
      for (const CdcTable& t : out.request.tables) ::unlink(t.path.c_str());
    };
    if (!read.ok()) {
      cleanup();
      rec.error = read.status().message();
      (void)res_.archive->LogFetch(rec);
      return read.status().WithContext(src.loc.ToString() + ": " +
                                       (decision.snapshot ? "snapshot" : "changes") + " of " +
                                       src.name);
    }
    out.read = std::move(*read);
    out.generation = decision.snapshot ? FormatLsn(out.read.start) : decision.generation;
    for (const TableSpec* t : tables) {
      auto at = out.index.find(t->name);
      if (at == out.index.end()) continue;
      const CdcTable& ct = out.request.tables[at->second];
      const CdcTableRead& tr = out.read.tables[at->second];
      Result<StoredObject> obj =
          res_.archive->StoreTemp(src.name, ct.path, tr.extract.sha256, tr.extract.bytes, "csv");
      if (!obj.ok()) {
        cleanup();
        return obj.status().WithContext(src.loc.ToString() + ": archiving the " +
                                        (decision.snapshot ? "snapshot" : "changes") + " of " +
                                        t->name);
      }
      FetchRecord one = rec;
      one.bytes = static_cast<int64_t>(tr.extract.bytes);
      one.sha256 = tr.extract.sha256;
      one.object_path = obj->key;
      nlohmann::json columns = DbColumnsToJson(tr.extract.columns);
      one.headers = {{"table", t->name},
                     {"read", decision.snapshot ? "snapshot" : "changes"},
                     {"rows", tr.extract.rows},
                     {"slot", slot_name},
                     {"from", FormatLsn(decision.snapshot ? out.read.start : ct.after)},
                     {"to", FormatLsn(out.read.end)},
                     {"columns", columns}};
      RETURN_IF_ERROR(res_.archive->LogFetch(one));
      out.objects.push_back({*obj});
      out.columns.push_back(std::move(columns));
      out.ends.push_back(std::max(out.read.end, ct.after));
    }
    // objects/columns follow out.index's positions
    LOG_INFO("runner", "{}: {} of slot {}: {} transactions, up to {}{}", src.name,
             decision.snapshot ? "snapshot" : "changes", slot_name, out.read.transactions,
             FormatLsn(out.read.end), out.read.more ? " (more waiting)" : "");
    return out;
  }

  // A captured source's changes from serve's stream (CaptureFeeds): each
  // table's batches past its cursor, already in the lake and logged.
  Status TakeStreamed(const SourceSpec& src, CaptureRead& out) {
    const size_t n = out.request.tables.size();
    out.streamed = true;
    out.read.tables.assign(n, CdcTableRead());
    out.objects.assign(n, {});
    out.columns.assign(n, nlohmann::json());
    out.ends.assign(n, 0);
    for (const auto& [asset, i] : out.index) {
      ASSIGN_OR_RETURN(FeedTake took,
                       res_.feeds->Take(src.name, asset, out.request.tables[i].after));
      CdcTableRead& counts = out.read.tables[i];
      for (const FeedPart& part : took.parts) {
        for (const std::string& c : part.counts.defaulted) {
          if (std::find(counts.defaulted.begin(), counts.defaulted.end(), c) ==
              counts.defaulted.end()) {
            counts.defaulted.push_back(c);
          }
        }
        counts.inserts += part.counts.inserts;
        counts.updates += part.counts.updates;
        counts.deletes += part.counts.deletes;
        counts.truncates += part.counts.truncates;
        out.objects[i].push_back(part.object);
        out.columns[i] = part.columns;
      }
      // Test builds: a run that spends this long on each batch (a slow disk).
      MaybeDelay("take_streamed", src.name, took.parts.size());
      out.ends[i] = took.end;
      out.read.end = std::max(out.read.end, took.end);
      out.read.transactions = std::max(out.read.transactions, took.transactions);
    }
    LOG_INFO("runner", "{}: changes of slot {} from its stream: {} transactions, up to {}",
             src.name, out.request.slot, out.read.transactions, FormatLsn(out.read.end));
    return Status::Ok();
  }

  // A stream table's next messages: Sluice's consumer set just after the
  // sequence the table's publication holds (none after a full refresh, a
  // changed stream or config), read into a raw object, stored and logged.
  Result<std::shared_ptr<StreamRead>> ReadStream(const AssetNode& node) {
    {
      std::lock_guard lock(mu_);
      auto it = streams_.find(node.name);
      if (it != streams_.end()) return it->second;
    }
    auto [src, table] = tables_.at(node.name);
    ASSIGN_OR_RETURN(StreamRequest req, StreamRequestOf(*src));
    auto read = std::make_shared<StreamRead>();
    // The sequence goes on while the server, stream, subject, consumer and
    // key are the same: a new Sluice version or check reads nothing again
    // (the stream may no longer hold what it read).
    read->read_key = Sha256Hex(DisplayStreamUrl(req.url) + "\n" + req.stream + "\n" + req.subject +
                               "\n" + req.consumer + "\n" + nlohmann::json(table->key).dump());
    {
      std::lock_guard lock(mu_);
      auto it = published_.find({node.name, ""});
      if (!opt_.full_refresh && it != published_.end() && it->second.cursor.is_object() &&
          it->second.cursor.value("read", "") == read->read_key &&
          it->second.cursor.contains("seq") && it->second.cursor["seq"].is_number_unsigned()) {
        read->after = it->second.cursor["seq"].get<uint64_t>();
      }
    }
    req.after = read->after;
    req.path = res_.archive->NewStagingPath();
    if (opt_.control) req.cancel = opt_.control->flag();
    FetchRecord rec;
    rec.source = src->name;
    rec.url = DisplayStreamUrl(req.url) + " stream " + req.stream +
              (req.subject.empty() ? "" : " subject " + req.subject) + " after " +
              std::to_string(req.after);
    rec.started_at = res_.clock->Now();
    int64_t start = MonotonicMillis();
    Result<StreamBatch> batch = FetchStream(req);
    rec.duration_ms = MonotonicMillis() - start;
    if (!batch.ok()) {
      rec.error = batch.status().message();
      (void)res_.archive->LogFetch(rec);
      return batch.status().WithContext(src->loc.ToString() + ": reading stream " + req.stream);
    }
    Result<StoredObject> obj =
        res_.archive->StoreTemp(src->name, req.path, batch->sha256, batch->bytes, "ndjson");
    if (!obj.ok()) {
      ::unlink(req.path.c_str());
      return obj.status().WithContext(src->loc.ToString() + ": archiving the messages of " +
                                      node.name);
    }
    rec.bytes = static_cast<int64_t>(batch->bytes);
    rec.sha256 = batch->sha256;
    rec.object_path = obj->key;
    rec.headers = {{"table", node.name},
                   {"messages", batch->messages},
                   {"first_seq", batch->first_seq},
                   {"last_seq", batch->last_seq}};
    RETURN_IF_ERROR(res_.archive->LogFetch(rec));
    LOG_INFO("runner", "{}: {} messages of stream {} (sequences {} to {})", node.name,
             batch->messages, req.stream, batch->first_seq, batch->last_seq);
    read->batch = std::move(*batch);
    read->object = *obj;
    std::lock_guard lock(mu_);
    streams_[node.name] = read;
    return read;
  }

  Result<StreamRequest> StreamRequestOf(const SourceSpec& src) {
    ASSIGN_OR_RETURN(TemplateContext ctx, SourceContext(src, ""));
    return sluice::StreamRequestOf(project_, src, ctx);
  }

  nlohmann::json StreamCursor(const SourceSpec& src, const StreamRead& read) {
    return {{"stream", src.stream->stream},
            {"seq", std::max(read.after, read.batch.last_seq)},
            {"read", read.read_key}};
  }

  // A stream table after its first build: the batch's messages appended,
  // or merged on the key (the last message of a key wins), in place; a
  // field new in the messages becomes a new column. The publication moves
  // the table's sequence in the same transaction.
  Status BuildStreamBatch(const AssetNode& node, TaskOutcome& o, const std::string& version,
                          const nlohmann::json& inputs, const std::string& checks_hash,
                          const Publication& prev, const std::vector<StoredObject>& objects,
                          WarehouseSession& session) {
    int64_t start = MonotonicMillis();
    auto [src, table] = tables_.at(node.name);
    std::shared_ptr<StreamRead> read;
    {
      std::lock_guard lock(mu_);
      read = streams_.at(node.name);
      for (const std::string& note : db_notes_[node.name]) o.notes.push_back(note);
    }
    TempTables temp(session);
    std::string batch = temp.Name("sluice_messages_");
    std::string reduced = temp.Name("sluice_latest_");
    if (read->batch.messages == 0) {
      return KeepPublished(node, prev,
                           "no messages in stream " + src->stream->stream + " after sequence " +
                               std::to_string(read->after),
                           o);
    }
    Result<LoadOutcome> loaded = LoadSource(session, node, objects, batch, version, o);
    if (!loaded.ok()) {
      return loaded.status().WithContext(node.loc.ToString() + ": loading the messages of " +
                                         node.name + " failed");
    }
    for (const std::string& note : loaded->notes) o.notes.push_back(note);
    std::string applied = batch;
    if (!table->key.empty()) {
      std::vector<std::string> keys;
      for (const std::string& k : table->key) keys.push_back(QuoteIdent(k));
      RETURN_IF_ERROR(session.Execute("CREATE TEMP TABLE " + reduced +
                                      " AS SELECT * EXCLUDE (_sluice_last) FROM (SELECT *, " +
                                      "row_number() OVER (PARTITION BY " + Join(keys, ", ") +
                                      " ORDER BY _stream_seq DESC) AS _sluice_last FROM " + batch +
                                      ") WHERE _sluice_last = 1"));
      applied = reduced;
    }
    std::vector<std::string> statements;
    NewColumns new_columns;
    RETURN_IF_ERROR(
        AlignBatchTypes(session, node, applied, prev, &statements, &o.notes, &new_columns));
    for (const auto& [name, type] : new_columns) {
      statements.push_back(AddColumnSql(prev.physical, name, type));
    }
    ASSIGN_OR_RETURN(nlohmann::json schema, DescribeRelation(session, applied));
    std::vector<std::string> columns;
    for (const auto& c : schema) columns.push_back(c.value("name", ""));
    const std::string strategy = table->key.empty() ? "append" : "merge";
    ASSIGN_OR_RETURN(
        std::vector<std::string> apply,
        ApplyBatchSql(strategy, prev.physical, applied, table->key, {}, columns, NowLiteral()));
    for (std::string& st : apply) statements.push_back(std::move(st));
    o.reason =
        fmt::format("{} messages of stream {} (sequences {} to {}){}", read->batch.messages,
                    src->stream->stream, read->batch.first_seq, read->batch.last_seq,
                    table->key.empty() ? ", appended" : ", merged on " + Join(table->key, ", "));
    // The rows this batch wrote are those past the sequence the table held.
    bool has_seq = std::any_of(prev.schema.begin(), prev.schema.end(), [](const nlohmann::json& c) {
      return c.value("name", "") == "_stream_seq";
    });
    std::string changed_rows = has_seq
                                   ? "(SELECT * FROM " + prev.physical + " WHERE _stream_seq > " +
                                         std::to_string(read->after) + ")"
                                   : std::string();
    const SourceSpec& source = *src;  // a lambda may not capture a structured binding (clang 14)
    RETURN_IF_ERROR(ApplyBatch(
        node, strategy, table->key, {}, applied, o, version, inputs, checks_hash, prev, session,
        start,
        [&](WarehouseSession&, const std::string&) -> Result<nlohmann::json> {
          return StreamCursor(source, *read);
        },
        &statements, changed_rows));
    if (o.status == TaskStatus::kSuccess) {
      std::lock_guard lock(mu_);
      streamed_.insert(node.name);
    }
    return Status::Ok();
  }

  // After the run: the messages of each stream table whose publication
  // holds them (or that had none) are acknowledged; the others are left to
  // be read again (the next read starts after the table's sequence anyway).
  void FinishStreams() {
    std::map<std::string, std::shared_ptr<StreamRead>> streams;
    std::set<std::string> done;
    {
      std::lock_guard lock(mu_);
      streams = streams_;
      done = streamed_;
    }
    for (auto& [asset, read] : streams) {
      if (!done.count(asset)) continue;
      Status st = read->batch.Ack();
      if (!st.ok()) LOG_WARN("runner", "{}: {}", asset, Redact(st.message()));
    }
    std::lock_guard lock(mu_);
    streams_.clear();  // closes the connections
  }

  // `plan` for a stream table: where its next read starts, and how many
  // messages the stream holds after it.
  std::string PlanStream(const AssetNode& node, const SourceSpec& src) {
    const StreamSpec& spec = *src.stream;
    std::string what = "reads stream " + spec.stream +
                       (spec.subject.empty() ? "" : " (subject " + spec.subject + ")");
    Result<StreamRequest> req = StreamRequestOf(src);
    if (!req.ok()) return Redact(what + " (" + req.status().message() + ")");
    uint64_t after = 0;
    {
      std::lock_guard lock(mu_);
      auto it = published_.find({node.name, ""});
      if (!opt_.full_refresh && it != published_.end() && it->second.cursor.is_object() &&
          it->second.cursor.contains("seq") && it->second.cursor["seq"].is_number_unsigned()) {
        after = it->second.cursor["seq"].get<uint64_t>();
      }
    }
    Result<StreamState> state = InspectStream(*req);
    if (!state.ok()) return Redact(what + " (cannot inspect it: " + state.status().message() + ")");
    uint64_t waiting = state->last_seq > after ? state->last_seq - after : 0;
    return Redact(
        fmt::format("{} after sequence {}: {} message(s) wait (the stream holds {} to {})", what,
                    after, waiting, state->first_seq, state->last_seq));
  }

  // `plan` for a captured table: what the run would read, and how far
  // behind the slot is (the WAL the server keeps for it).
  std::string PlanCapture(const SourceSpec& src, const TableSpec& table) {
    const CdcSpec& cdc = *src.database->cdc;
    const std::string slot_name = CaptureSlot(src, res_.env->name);
    std::string what = "captures table " + table.db_table + " through slot " + slot_name;
    Result<DbRequest> db = DatabaseRequest(src, table, "");
    if (!db.ok()) return Redact(what + " (" + db.status().message() + ")");
    CdcRequest req;
    req.db = *db;
    req.slot = slot_name;
    std::optional<CaptureCursor> cursor;
    {
      std::lock_guard lock(mu_);
      auto it = published_.find({table.name, ""});
      if (it != published_.end()) cursor = CaptureCursorOf(it->second.cursor);
    }
    std::vector<std::optional<CaptureCursor>> cursors = {cursor};
    ApplyConfirmed(src, cursors);
    cursor = cursors[0];
    // MariaDB has no slot: how far behind is measured from the table's cursor.
    if (cursor) req.tables.push_back(CdcTable{table.db_table, table.key, cursor->lsn, ""});
    Result<CdcSlotState> slot = InspectSlot(req);
    if (!slot.ok()) return Redact(what + " (cannot inspect it: " + slot.status().message() + ")");
    std::error_code ec;
    CaptureDecision d =
        DecideCapture({cursor}, *slot, slot_name,
                      {CaptureReadKey(DisplayDatabaseUrl(db->url), slot_name, cdc, table)},
                      opt_.full_refresh, std::filesystem::exists(CaptureMarker(src), ec));
    if (d.snapshot)
      return Redact(what + ": snapshots every table of " + src.name + " (" + d.why + ")");
    return Redact(
        fmt::format("{}: reads its changes since {}; the slot is {} bytes behind the "
                    "server{}{}",
                    what, FormatLsn(cursor->lsn), slot->lag_bytes,
                    slot->wal_status.empty() ? "" : " (wal_status " + slot->wal_status + ")",
                    slot->active ? ", and in use by another reader" : ""));
  }

  std::string MarkerToken() const { return "run " + std::to_string(run_id_) + "\n"; }

  std::string ConfirmedPath(const SourceSpec& src) const {
    return CaptureConfirmedPath(res_.env->state_dir, src);
  }

  void ApplyConfirmed(const SourceSpec& src, std::vector<std::optional<CaptureCursor>>& cursors) {
    ApplyCaptureConfirmed(ConfirmedPath(src), cursors);
  }

  // Where a captured source's unfinished snapshot is marked.
  std::string CaptureMarker(const SourceSpec& src) const {
    return JoinPath(JoinPath(res_.env->state_dir, "capture"), src.name + ".snapshot");
  }

  // After the run: each captured source's slot confirmed up to the least
  // cursor its tables hold (published in this run or before), so the server
  // keeps no WAL they no longer need, and none they still do.
  void FinishCaptures() {
    std::map<std::string, std::shared_future<Result<CaptureRead>>> captures;
    {
      std::lock_guard lock(mu_);
      captures = captures_;
    }
    for (const auto& [name, fut] : captures) {
      const Result<CaptureRead>& read = fut.get();
      if (!read.ok()) continue;
      const SourceSpec* src = nullptr;
      for (const SourceSpec& s : project_.sources) {
        if (s.name == name) src = &s;
      }
      if (!src) continue;
      uint64_t least = UINT64_MAX;
      std::map<std::string, uint64_t> positions;  // each table's, in this read's generation
      bool all_new = true;  // every table published from this read's generation
      {
        std::lock_guard lock(mu_);
        if (res_.current && res_.publisher) {
          // What other runs published meanwhile.
          for (const TableSpec& t : src->tables) {
            if (std::optional<std::vector<Publication>> now = res_.current->Of(t.name)) {
              for (Publication& p : *now) published_[{p.asset, p.partition}] = std::move(p);
            }
          }
        }
        for (const TableSpec& t : src->tables) {
          auto held = published_.find({t.name, ""});
          std::optional<CaptureCursor> c;
          if (held != published_.end()) c = CaptureCursorOf(held->second.cursor);
          if (!c || c->generation != read->generation) all_new = false;
          uint64_t at = 0;
          auto done = captured_.find(t.name);
          auto pub = published_.find({t.name, ""});
          if (done != captured_.end()) {
            at = done->second;
          } else if (pub != published_.end()) {
            std::optional<CaptureCursor> c = CaptureCursorOf(pub->second.cursor);
            if (c && c->generation == read->generation) at = c->lsn;
          }
          least = std::min(least, at);
          positions[t.name] = at;
        }
      }
      if (read->snapshot && all_new) {
        // Only this run's marker: another run may have begun a snapshot since.
        Result<std::string> token = ReadFile(CaptureMarker(*src));
        std::error_code ec;
        if (token.ok() && *token == MarkerToken()) std::filesystem::remove(CaptureMarker(*src), ec);
      }
      if (least == 0 || least == UINT64_MAX) continue;
      CaptureCursor confirmed{read->request.slot, read->generation, "", least};
      // Never back: a run of some tables counts the others at their
      // published cursors, which may be behind what a run before confirmed.
      if (std::optional<CaptureCursor> before = ReadCaptureConfirmed(ConfirmedPath(*src));
          before && before->slot == confirmed.slot && before->generation == confirmed.generation) {
        confirmed.lsn = std::max(confirmed.lsn, before->lsn);
      }
      Status kept = MakeDirs(JoinPath(res_.env->state_dir, "capture"));
      if (kept.ok()) {
        kept = WriteFileAtomic(ConfirmedPath(*src), CaptureCursorJson(confirmed).dump() + "\n");
      }
      if (!kept.ok()) {
        LOG_WARN("runner", "{}: keeping the confirmed position: {}", name, kept.message());
      }
      if (read->streamed) {
        // Through the stream's status updates (the slot is its, not ours).
        res_.feeds->Confirm(name, read->generation, least);
        continue;
      }
      Status st = ConfirmSlot(read->request, least);
      if (!st.ok()) {
        LOG_WARN("runner", "{}: confirming slot {}: {}", name, read->request.slot,
                 Redact(st.message()));
      }
      if (res_.feeds && res_.feeds->Kept(name)) StartStream(*src, *read, positions);
    }
  }

  // serve streams the slot from where this run leaves every table (each
  // at its position in this read's generation).
  void StartStream(const SourceSpec& src, const CaptureRead& read,
                   const std::map<std::string, uint64_t>& positions) {
    if (!CdcStreamSupported(read.request.db.url)) {
      res_.feeds->Unsupported(src.name, "its database's changes are read by runs");
      return;
    }
    FeedStart start;
    start.request = read.request;
    start.request.tables.clear();
    start.generation = read.generation;
    start.archive = res_.archive;
    start.clock = res_.clock;
    start.seen_epoch = read.feed_epoch;
    for (const TableSpec& t : src.tables) {
      auto at = positions.find(t.name);
      if (at == positions.end() || at->second == 0) return;  // not all in this generation
      CdcTable ct;
      ct.relation = t.db_table;
      ct.key = t.key;
      ct.after = at->second;
      start.request.tables.push_back(std::move(ct));
      start.assets.push_back(t.name);
    }
    res_.feeds->Start(src.name, std::move(start));
  }

  // When a table's keys were last scanned (a state file: it only says when
  // the next scan is due).
  std::string KeyScanStamp(const std::string& asset) const {
    return JoinPath(JoinPath(res_.env->state_dir, "key_scans"), asset);
  }
  bool KeyScanDue(const TableSpec& table) const {
    if (table.db_key_scan_seconds < 0) return false;
    Result<std::string> last = ReadFile(KeyScanStamp(table.name));
    if (!last.ok()) return true;
    int64_t at = std::atoll(last->c_str());
    return res_.clock->Now() - at >= table.db_key_scan_seconds * int64_t{1000000};
  }
  void NoteKeyScan(const std::string& asset) {
    Status st = MakeDirs(JoinPath(res_.env->state_dir, "key_scans"));
    if (st.ok()) st = WriteFileAtomic(KeyScanStamp(asset), std::to_string(res_.clock->Now()));
    if (!st.ok()) LOG_WARN("runner", "{}: noting its key scan: {}", asset, st.message());
  }

  // The table's keys read whole, after its rows (so a row deleted between
  // the two reads is deleted here too), into the lake.
  Result<KeyScan> ScanKeys(const SourceSpec& src, const TableSpec& table) {
    KeyScan scan;
    for (const std::string& k : table.key) {
      std::string input = k;
      for (const ColumnSpec& c : table.columns) {
        if ((c.field.empty() ? c.input : c.field) == k) input = c.input;
      }
      scan.inputs.push_back(input);
    }
    ASSIGN_OR_RETURN(DatabaseExtract keys, ExtractDatabaseTable(src, table, "", {}, scan.inputs));
    scan.object = keys.object;
    scan.columns = std::move(keys.columns);
    return scan;
  }

  bool ReadSinceCursor(const std::string& asset) {
    std::lock_guard lock(mu_);
    return read_since_.count(asset) > 0;
  }

  // The cursor after `relation`'s rows: the greatest value of `column`
  // there and in `prev` (it never moves back), as text the drivers bind
  // (times in UTC without a zone), with the column's DuckDB type.
  Result<nlohmann::json> CursorOf(WarehouseSession& session, const std::string& relation,
                                  const AssetNode& node, const nlohmann::json& prev) {
    const TableSpec& table = *tables_.at(node.name).second;
    const std::string& column = table.db_cursor;
    const std::string field = CursorField(table);
    ASSIGN_OR_RETURN(nlohmann::json schema, DescribeRelation(session, relation));
    std::string type;
    for (const auto& c : schema) {
      if (c.value("name", "") == field) type = c.value("type", "");
    }
    if (type.empty()) {
      return Status::Invalid(table.loc.ToString() + ": incremental: cursor '" + column +
                             "' is not a column of what was read; name one of its columns");
    }
    if (table.db_lookback_seconds > 0 && !IsTimeCursorType(type)) {
      return Status::Invalid(
          table.loc.ToString() + ": incremental: lookback: applies to date and time cursors; " +
          column + " is " + type + " (remove lookback:, or make a time column the cursor)");
    }
    std::string read_key;
    std::optional<std::string> floor;
    {
      std::lock_guard lock(mu_);
      read_key = db_read_keys_[node.name];
      auto f = cursor_floors_.find(node.name);
      if (f != cursor_floors_.end()) floor = f->second;
    }
    const bool tz = type == "TIMESTAMP WITH TIME ZONE";
    std::string id = QuoteIdent(field);
    std::string greatest = "max(" + id + ")";
    // A chunked read's cursor is no later than the greatest value when it
    // began: rows changed while it read are read again.
    if (floor)
      greatest = "least(" + greatest + ", CAST(" + QuoteLiteral(*floor) + " AS " + type + "))";
    std::string value = tz ? greatest + " AT TIME ZONE 'UTC'" : greatest;
    if (prev.is_object() && prev.value("column", "") == column && prev.contains("value")) {
      std::string before = "CAST(" + QuoteLiteral(prev.value("value", "")) + " AS " +
                           (tz ? std::string("TIMESTAMP") : type) + ")";
      value = "greatest(" + value + ", " + before + ")";
    }
    ASSIGN_OR_RETURN(QueryResult r,
                     session.Query("SELECT CAST(" + value + " AS VARCHAR) FROM " + relation));
    if (r.rows.empty() || !r.rows[0][0]) return prev;  // no rows, or only NULL cursors
    return nlohmann::json{
        {"column", column}, {"type", type}, {"value", *r.rows[0][0]}, {"read", read_key}};
  }

  // A source's freshness: the age of its last successful fetch (fetch log).
  void SourceFreshness(const AssetNode& node, TaskOutcome& o) {
    if (node.kind != AssetKind::kSource) return;
    const SourceSpec* src = tables_.at(node.name).first;
    if (src->freshness.is_null()) return;
    int64_t age = -1;
    Result<std::vector<FetchRecord>> log = res_.metadata->ListFetches(src->name, 500);
    if (log.ok()) {
      for (const FetchRecord& r : *log) {
        if (r.error.empty() && !r.sha256.empty()) {
          age = std::max<int64_t>(0, (res_.clock->Now() - r.started_at) / 1000000);
          break;
        }
      }
    }
    CheckOutcome c = FreshnessOutcome("freshness(" + src->name + ")", src->freshness, age,
                                      "the last successful fetch");
    RecordChecks(node.name, o.version_id, {c});
    if (c.Blocks() && (o.status == TaskStatus::kSuccess || o.status == TaskStatus::kSkipped ||
                       o.status == TaskStatus::kPassed)) {
      o.status = TaskStatus::kCheckFailed;
      o.error = c.message;
    }
    o.checks.push_back(std::move(c));
  }

  // The template context of a source's fetch: vars, env and the partition window.
  Result<TemplateContext> SourceContext(const SourceSpec& src, const std::string& partition) {
    TemplateContext ctx;
    ctx.vars = project_.vars;
    ctx.env = res_.env->name;
    if (!partition.empty()) {
      ASSIGN_OR_RETURN(PartitionWindow window, WindowOf(schemes_.at(src.name), partition));
      ctx.partition = window.key;
      ctx.start = window.start;
      ctx.end = window.end;
    }
    return ctx;
  }

  // The source's URL with templates rendered and secrets substituted.
  Result<std::string> SourceUrl(const SourceSpec& src, const std::string& partition) {
    ASSIGN_OR_RETURN(TemplateContext ctx, SourceContext(src, partition));
    ASSIGN_OR_RETURN(std::string url, RenderTemplate(src.fetch.url, ctx, src.fetch.loc.line));
    SecretResolver secrets(project_.secret_providers);
    return secrets.Substitute(url);
  }

  // Where a local source's body is: a path (relative to the project) or file:// URL.
  Result<std::string> SourcePath(const SourceSpec& src, const std::string& partition) {
    ASSIGN_OR_RETURN(std::string url, SourceUrl(src, partition));
    if (IsHttpUrl(url)) {
      return Status::Internal(src.fetch.loc.ToString() + ": an HTTP source has no local path");
    }
    if (StartsWith(url, "file://")) url = url.substr(7);
    return JoinPath(project_.root, url);
  }

  // Raw objects are stored with the extension of the body's format.
  std::string SourceExtension(const SourceSpec& src) {
    Result<const Decoder*> decoder = FindDecoder(src.format);
    return decoder.ok() ? (*decoder)->Extension() : src.format;
  }

  // Files derived from raw objects (zip members, HTML tables as CSV): a cache.
  std::string DerivedCacheDir() const { return JoinPath(res_.env->state_dir, "cache/derived"); }

  HttpFetchRequest HttpRequestFor(const SourceSpec& src, const std::string& partition,
                                  TemplateContext ctx) {
    HttpFetchRequest req;
    req.source = &src;
    req.partition = partition;
    req.context = std::move(ctx);
    req.format = src.format;
    req.extension = SourceExtension(src);
    if (project_.defaults.retries_set) req.default_retries = project_.defaults.retries;
    return req;
  }

  std::string FormatOf(const SourceSpec& src, const TableSpec& table) {
    return table.format.empty() ? src.format : table.format;
  }

  // Archives a source's body once per run, whichever of its tables asks first.
  Result<FetchedSource> FetchSource(const SourceSpec& src, const std::string& partition,
                                    const std::string& ext) {
    std::shared_future<Result<FetchedSource>> fut;
    bool owner = false;
    std::promise<Result<FetchedSource>> promise;
    {
      std::lock_guard lock(mu_);
      auto it = fetches_.find({src.name, partition});
      if (it == fetches_.end()) {
        fut = promise.get_future().share();
        fetches_.emplace(std::make_pair(src.name, partition), fut);
        owner = true;
      } else {
        fut = it->second;
      }
    }
    if (owner) {
      const bool accumulates = Accumulates(src);
      Result<FetchedSource> result = [&]() -> Result<FetchedSource> {
        if (src.command) return RunCommandSource(src, partition);
        // An accumulating partition polls only while it is the current one;
        // later it is rebuilt from the polls it stored.
        if (accumulates && !Polls(src, partition)) return FetchedSource{};
        ASSIGN_OR_RETURN(std::string url, SourceUrl(src, partition));
        if (IsHttpUrl(url)) {
          ASSIGN_OR_RETURN(TemplateContext ctx, SourceContext(src, partition));
          ASSIGN_OR_RETURN(HttpFetchResult fetched,
                           fetcher_.Fetch(HttpRequestFor(src, partition, std::move(ctx))));
          FetchedSource f;
          f.objects = std::move(fetched.objects);
          f.not_modified = fetched.not_modified;
          return f;
        }
        ASSIGN_OR_RETURN(std::string path, SourcePath(src, partition));
        std::function<Status()> deferred;
        Result<StoredObject> obj =
            res_.archive->StoreLocalFile(src.name, partition, path, ext, &deferred);
        if (!obj.ok()) return obj.status().WithContext(src.loc.ToString() + ": cannot fetch");
        FetchedSource f;
        if (deferred) {
          f.staged = obj->local_path;
          f.durable =
              std::async(std::launch::async, [deferred, src_loc = src.loc]() -> Status {
                try {  // a thread boundary
                  Status st = deferred();
                  return st.ok() ? st : st.WithContext(src_loc.ToString() + ": cannot fetch");
                } catch (const std::exception& e) {
                  return Status::Internal(std::string("storing a raw object: ") + e.what());
                } catch (...) {
                  return Status::Internal("storing a raw object: an unknown exception");
                }
              }).share();
        }
        f.objects.push_back(std::move(*obj));
        return f;
      }();
      if (accumulates && result.ok()) result = Accumulated(src, partition, std::move(*result));
      promise.set_value(std::move(result));
    }
    return fut.get();
  }

  static bool Accumulates(const SourceSpec& src) {
    if (!src.partition.is_object()) return false;
    auto it = src.partition.find("accumulate");
    return it != src.partition.end() &&
           ((it->is_boolean() && it->get<bool>()) || (it->is_string() && *it == "true"));
  }

  // Whether this run polls an accumulating source for `partition`: the
  // partition current when the run was planned, or (--partition) the one
  // current now.
  bool Polls(const SourceSpec& src, const std::string& partition) {
    {
      std::lock_guard lock(mu_);
      auto planned = polled_partition_.find(src.name);
      if (planned != polled_partition_.end()) return planned->second == partition;
    }
    auto scheme = schemes_.find(src.name);
    return scheme != schemes_.end() &&
           CurrentPartition(scheme->second, res_.clock->Now()) == partition;
  }

  // A partition that accumulates its polls (partition: {accumulate: true}: a
  // feed that shows only the present, such as GTFS-realtime) is built from
  // every object its fetches stored, oldest first, then this run's download
  // when it is new: its version changes only when a poll brought something new.
  Result<FetchedSource> Accumulated(const SourceSpec& src, const std::string& partition,
                                    FetchedSource now) {
    ASSIGN_OR_RETURN(std::vector<FetchRecord> log,
                     res_.metadata->ListPartitionFetches(src.name, partition));
    std::vector<StoredObject> objects;
    std::set<std::string> seen;
    for (const FetchRecord& r : log) {
      if (r.object_path.empty() || !seen.insert(r.sha256).second) continue;
      StoredObject o;
      o.sha256 = r.sha256;
      o.key = r.object_path;
      o.bytes = static_cast<uint64_t>(std::max<int64_t>(r.bytes, 0));
      o.reused = true;
      ASSIGN_OR_RETURN(o.local_path, res_.archive->store()->LocalPath(o.key));
      objects.push_back(std::move(o));
    }
    std::set<std::string> polled_now;
    for (StoredObject& o : now.objects) {
      polled_now.insert(o.sha256);
      if (seen.insert(o.sha256).second) objects.push_back(std::move(o));
    }
    // A poll the format cannot read (a decoder that converts, as gtfs-rt
    // does, says so here) fails the run that made it, loudly; later runs
    // build the partition from the others and say which one they left out.
    if (!src.tables.empty()) {
      const TableSpec& table = src.tables.front();
      Result<const Decoder*> decoder = FindDecoder(FormatOf(src, table));
      if (decoder.ok()) {
        nlohmann::json options = src.format_options;
        for (const auto& [k, v] : table.format_options.items()) options[k] = v;
        std::vector<StoredObject> readable;
        for (StoredObject& o : objects) {
          Result<std::string> read = (*decoder)->TableSql(
              {o.local_path, FormatOf(src, table), options, false, DerivedCacheDir()});
          if (read.ok()) {
            readable.push_back(std::move(o));
            continue;
          }
          if (polled_now.count(o.sha256)) {
            return read.status().WithContext(src.loc.ToString() + ": this poll of " + src.name +
                                             " cannot be read (the partition keeps its other "
                                             "polls)");
          }
          std::lock_guard lock(mu_);
          accumulate_notes_[src.name].push_back("partition " + partition +
                                                ": left out the poll stored as " + o.key + ": " +
                                                read.status().message());
        }
        objects = std::move(readable);
      }
    }
    now.objects = std::move(objects);  // none: nothing was polled (BuildPartition skips it)
    return now;
  }

  // A command source's run: its inputs exported as Parquet into a fresh
  // folder, the program run there under its timeout (its process group
  // stopped on expiry), its output lines in the task log, then each declared
  // table's <table>.parquet archived in the lake like a download. The folder
  // is removed whatever happens.
  Result<FetchedSource> RunCommandSource(const SourceSpec& src, const std::string& partition) {
    const CommandSpec& cmd = *src.command;
    std::string work =
        JoinPath(JoinPath(res_.env->state_dir, "tmp"), "command-" + src.name + "-" + RandomHex(8));
    std::string in_dir = JoinPath(work, "in"), out_dir = JoinPath(work, "out");
    struct Cleanup {
      std::string dir;
      ~Cleanup() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
      }
    } cleanup{work};
    RETURN_IF_ERROR(MakeDirs(in_dir));
    RETURN_IF_ERROR(MakeDirs(out_dir));
    ProcessSpec spec;
    spec.argv = cmd.run;
    spec.cwd = project_.root;
    // A small, known environment: nothing of the owner's leaks in but the basics.
    for (const char* name : {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"}) {
      if (const char* v = std::getenv(name)) spec.env[name] = v;
    }
    if (!spec.env.count("PATH")) spec.env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
    SecretResolver secrets(project_.secret_providers);
    for (const auto& [name, value] : cmd.env) {
      Result<std::string> resolved = secrets.Substitute(value);
      if (!resolved.ok())
        return resolved.status().WithContext(cmd.loc.ToString() + ": env " + name);
      spec.env[name] = *resolved;
    }
    {
      ASSIGN_OR_RETURN(auto session, res_.warehouse->Connect());
      RunControl::Scope cancellable(opt_.control.get(), session.get());
      for (const std::string& input : cmd.inputs) {
        std::string path = JoinPath(in_dir, input + ".parquet");
        // Built from names the graph checked, quoted: never user text spliced in.
        RETURN_IF_ERROR(session->Execute("COPY (SELECT * FROM " + QuoteIdent(input) + ") TO " +
                                         QuoteLiteral(path) + " (FORMAT parquet)"));
        std::string var = "SLUICE_INPUT_" + input;
        for (char& c : var) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        spec.env[var] = path;
      }
    }
    spec.env["SLUICE_INPUTS_DIR"] = in_dir;
    spec.env["SLUICE_OUTPUT_DIR"] = out_dir;
    spec.env["SLUICE_PROJECT_DIR"] = project_.root;
    spec.env["SLUICE_RUN_ID"] = std::to_string(run_id_);
    spec.env["SLUICE_ASSET"] = src.name;
    if (!partition.empty()) spec.env["SLUICE_PARTITION"] = partition;
    int64_t timeout =
        cmd.timeout_seconds > 0 ? cmd.timeout_seconds : project_.defaults.timeout_seconds;
    spec.timeout_ms = timeout * 1000;
    if (opt_.control) spec.cancel = opt_.control->flag();
    spec.on_line = [&src](std::string_view line) {
      LOG_INFO("command", "{}: {}", src.name, line);  // the task log (redacted like every log)
    };
    std::string shown = Join(cmd.run, " ");
    LOG_INFO("command", "{}: running {}", src.name, shown);
    Result<ProcessResult> started = RunProcess(spec);
    if (!started.ok()) return started.status().WithContext(cmd.loc.ToString());
    const ProcessResult& ran = *started;
    if (ran.timed_out || ran.cancelled || ran.signal != 0 || ran.exit_code != 0) {
      std::string what = ran.timed_out ? "timed out after " + std::to_string(timeout) +
                                             "s; its process group was stopped"
                                       : ran.Describe();
      std::string tail;
      for (size_t i = ran.tail.size() > 5 ? ran.tail.size() - 5 : 0; i < ran.tail.size(); ++i) {
        tail += "\n  | " + ran.tail[i];
      }
      return Status::DataError(cmd.loc.ToString() + ": command `" + shown + "` " + what +
                               (tail.empty() ? "" : "; its last output:" + tail) +
                               " (the whole output is in the task log: sluice logs " +
                               std::to_string(run_id_) + ")");
    }
    FetchedSource fetched;
    for (const TableSpec& table : src.tables) {
      std::string path = JoinPath(out_dir, table.name + ".parquet");
      if (!FileExists(path)) {
        std::vector<std::string> found;
        std::error_code ec;
        for (auto it = std::filesystem::directory_iterator(out_dir, ec);
             !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
          found.push_back(it->path().filename().string());
        }
        return Status::DataError(cmd.loc.ToString() + ": command `" + shown +
                                 "` exited 0 but did not write " + table.name +
                                 ".parquet into $SLUICE_OUTPUT_DIR (it wrote: " +
                                 (found.empty() ? std::string("nothing") : Join(found, ", ")) +
                                 "); each table of the source is one Parquet file named after it");
      }
      ASSIGN_OR_RETURN(StoredObject obj,
                       res_.archive->StoreLocalFile(src.name, partition, path, "parquet"));
      fetched.objects.push_back(std::move(obj));
      fetched.tables.push_back(table.name);
    }
    LOG_INFO("command", "{}: {}, {} table(s) archived", src.name, ran.Describe(),
             fetched.objects.size());
    return fetched;
  }

  struct DatabaseExtract {
    StoredObject object;
    nlohmann::json columns;
    std::vector<std::string> notes;
    int64_t rows = 0;
    std::vector<std::optional<std::string>> last_row;  // a page's
    std::string extracted_at;                          // when the read began (UTC)
  };

  // A database table's extract: read in one pass into the staging area,
  // archived in the lake and logged (raw first), its column types kept in
  // the fetch record beside it. A database cannot answer "not modified", so
  // every run reads it again; the same bytes and types keep the version.
  // What a database table's read asks for: the url (templates rendered,
  // secrets substituted, its password registered for redaction) and the
  // relation or rendered query.
  Result<DbRequest> DatabaseRequest(const SourceSpec& src, const TableSpec& table,
                                    const std::string& partition) {
    ASSIGN_OR_RETURN(TemplateContext ctx, SourceContext(src, partition));
    return DatabaseRequestOf(project_, src, table, ctx);
  }

  // A full read in key order, table.db_chunk_rows rows a raw object, each
  // stored and logged as it is read. Its progress is kept in
  // <state_dir>/resume/<asset>.json (the chunks stored, the last key, and
  // for an incremental table the cursor's greatest value when the read
  // began), so a read that stops — killed, timed out, a connection lost —
  // goes on after its last whole chunk at the next run, if the database,
  // relation, key, chunk size and config are the same and every chunk is
  // still in the lake. Each chunk is its own transaction: the copy is not
  // one point in time, which the cursor's floor makes good for incremental
  // tables (the next read takes every change since the read began).
  struct ChunkedRead {
    std::vector<StoredObject> objects;
    nlohmann::json columns;
    std::vector<std::string> notes;
    std::optional<std::string> floor;  // the cursor's greatest value at the start
    std::string extracted_at;          // when its first chunk was read
  };

  Result<ChunkedRead> ReadInChunks(const AssetNode& node, const SourceSpec& src,
                                   const TableSpec& table) {
    ASSIGN_OR_RETURN(DbRequest req, DatabaseRequest(src, table, ""));
    std::vector<std::string> key;  // as the database names the key's columns
    for (const std::string& k : table.key) {
      std::string input = k;
      for (const ColumnSpec& c : table.columns) {
        if ((c.field.empty() ? c.input : c.field) == k) input = c.input;
      }
      key.push_back(input);
    }
    const std::string identity =
        Sha256Hex(ReadKey(req) + "\n" + MakeRecipe(node).fingerprint + "\n" +
                  nlohmann::json(key).dump() + "\n" + std::to_string(table.db_chunk_rows));
    const std::string dir = JoinPath(res_.env->state_dir, "resume");
    const std::string path = JoinPath(dir, node.name + ".json");
    ChunkedRead out;
    std::vector<std::string> after, after_types;
    nlohmann::json state;
    int64_t rows = 0;
    if (req.url.rfind("sqlite:", 0) == 0) {
      return Status::Invalid(table.loc.ToString() + ": chunk_rows: " + table.name +
                             " is in SQLite, a local file read in one pass (its column types "
                             "come from the values, which differ from chunk to chunk); remove "
                             "chunk_rows:");
    }
    if (Result<std::string> text = ReadFile(path); text.ok()) {
      state = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
      // --full-refresh resumes only a read --full-refresh began.
      bool usable = state.is_object() && state.value("identity", "") == identity &&
                    (!opt_.full_refresh || state.value("full_refresh", false)) &&
                    state.contains("chunks") && state["chunks"].is_array() &&
                    state.contains("after") && state["after"].is_array();
      for (const auto& c : usable ? state["chunks"] : nlohmann::json::array()) {
        std::string k = c.value("key", "");
        Result<std::string> local = res_.archive->store()->LocalPath(k);
        if (!res_.archive->store()->Exists(k) || !local.ok()) {
          usable = false;
          break;
        }
        out.objects.push_back(
            StoredObject{c.value("sha256", ""), k, *local, c.value("bytes", uint64_t{0}), true});
        rows += c.value("rows", int64_t{0});
      }
      if (usable && state.value("complete", false)) {
        out.columns = state.value("columns", nlohmann::json());
        out.extracted_at = state.value("extracted_at", "");
        if (state.contains("floor") && state["floor"].is_string()) {
          out.floor = state["floor"].get<std::string>();
        }
        out.notes.push_back(fmt::format(
            "the chunked read that finished before (a run that stopped before publishing): {} "
            "chunk(s), {} rows",
            out.objects.size(), rows));
        return out;
      }
      if (usable) {
        for (const auto& v : state["after"]) after.push_back(v.get<std::string>());
        for (const auto& v : state.value("after_types", nlohmann::json::array())) {
          after_types.push_back(v.get<std::string>());
        }
        out.columns = state.value("columns", nlohmann::json());
        out.extracted_at = state.value("extracted_at", "");
        if (state.contains("floor") && state["floor"].is_string()) {
          out.floor = state["floor"].get<std::string>();
        }
        out.notes.push_back(fmt::format("resumed a chunked read after {} chunk(s), {} rows",
                                        out.objects.size(), rows));
      } else {
        out.objects.clear();
        rows = 0;
        state = nlohmann::json();
      }
    }
    if (!state.is_object()) {
      // Every row must have a key to be paged to.
      DbRequest::Page nulls{key, {}, {}, 1, DbRequest::Page::kNullKeys};
      ASSIGN_OR_RETURN(DatabaseExtract null_keys,
                       ExtractDatabaseTable(src, table, "", {}, key, "NULL keys", nulls));
      if (null_keys.rows > 0) {
        return Status::DataError(table.loc.ToString() + ": chunk_rows: " + table.name +
                                 " has rows with a NULL in key " + Join(key, ", ") +
                                 ", which a read in key order cannot page to; set key: to "
                                 "columns without NULLs, or remove chunk_rows:");
      }
      state = {{"identity", identity},
               {"chunks", nlohmann::json::array()},
               {"full_refresh", opt_.full_refresh}};
      if (!table.db_cursor.empty()) {
        // The cursor's greatest value before the first chunk: the
        // publication's cursor is no later, so the next read takes every
        // row changed while the chunks were read.
        DbRequest::Page top{{table.db_cursor}, {}, {}, 1, DbRequest::Page::kDescending};
        ASSIGN_OR_RETURN(
            DatabaseExtract greatest,
            ExtractDatabaseTable(src, table, "", {}, {table.db_cursor}, "greatest cursor", top));
        if (!greatest.last_row.empty() && greatest.last_row[0]) {
          out.floor = *greatest.last_row[0];
          state["floor"] = *out.floor;
        }
      }
    }
    RETURN_IF_ERROR(MakeDirs(dir));
    for (;;) {
      DbRequest::Page page{key, after, after_types, table.db_chunk_rows, DbRequest::Page::kAfter};
      ASSIGN_OR_RETURN(DatabaseExtract chunk,
                       ExtractDatabaseTable(src, table, "", {}, {}, "", page));
      if (out.columns.is_null() || out.columns.empty()) out.columns = chunk.columns;
      if (out.extracted_at.empty()) out.extracted_at = chunk.extracted_at;
      if (chunk.columns != out.columns) {
        std::error_code ec;
        std::filesystem::remove(path, ec);
        return Status::DataError(table.loc.ToString() + ": the columns of " + table.name +
                                 " changed during its chunked read (altered at the source?); "
                                 "it starts again from the first chunk at the next run");
      }
      if (chunk.rows > 0) {
        std::map<std::string, size_t> at;
        for (size_t i = 0; i < chunk.columns.size(); ++i) {
          at[chunk.columns[i].value("name", "")] = i;
        }
        after.clear();
        for (const std::string& k : key) {
          auto it = at.find(k);
          if (it == at.end() || it->second >= chunk.last_row.size() ||
              !chunk.last_row[it->second]) {
            return Status::DataError(table.loc.ToString() + ": chunk_rows: key column " + k +
                                     " of " + table.name +
                                     " is missing or NULL in a row; a chunked read pages on a key "
                                     "without NULLs");
          }
          const std::string type = chunk.columns[it->second].value("type", "");
          const std::string encoding = chunk.columns[it->second].value("encoding", "");
          const std::string source_type = chunk.columns[it->second].value("source_type", "");
          // ENUM and SET sort by position but compare as text.
          if ((!encoding.empty() && encoding != "plain") || source_type == "enum" ||
              source_type == "set" || source_type == "bit") {
            return Status::Invalid(table.loc.ToString() + ": chunk_rows: key column " + k + " is " +
                                   chunk.columns[it->second].value("source_type", type) +
                                   "; a chunked read pages on numbers, text, uuids, dates and "
                                   "times");
          }
          after.push_back(*chunk.last_row[it->second]);
          after_types.push_back(type);
        }
        after_types.resize(after.size());
        // A key the source holds twice would lose rows at a chunk's edge.
        DbRequest::Page same{key, after, after_types, 2, DbRequest::Page::kEqual};
        ASSIGN_OR_RETURN(DatabaseExtract twice,
                         ExtractDatabaseTable(src, table, "", {}, key, "key check", same));
        if (twice.rows > 1) {
          std::error_code ec;
          std::filesystem::remove(path, ec);
          return Status::DataError(table.loc.ToString() + ": chunk_rows: key " + Join(key, ", ") +
                                   " of " + table.name + " is not unique at the source (" +
                                   Join(after, ", ") +
                                   " is there twice), and a read in key order would lose rows "
                                   "at a chunk's edge; set key: to a unique key");
        }
        rows += chunk.rows;
        out.objects.push_back(chunk.object);
        state["chunks"].push_back({{"key", chunk.object.key},
                                   {"sha256", chunk.object.sha256},
                                   {"bytes", chunk.object.bytes},
                                   {"rows", chunk.rows}});
        state["after"] = after;
        state["after_types"] = after_types;
        state["columns"] = out.columns;
        state["extracted_at"] = out.extracted_at;
        for (std::string& n : chunk.notes) out.notes.push_back(std::move(n));
        RETURN_IF_ERROR(WriteFileAtomic(path, state.dump() + "\n"));
        MaybeCrash("after_chunk", node.name);
      }
      if (chunk.rows < table.db_chunk_rows) break;
    }
    // Read whole: kept until the table publishes (or is found unchanged),
    // so a run that stops while loading does not read it all again.
    state["complete"] = true;
    RETURN_IF_ERROR(WriteFileAtomic(path, state.dump() + "\n"));
    out.notes.push_back(fmt::format("read in {} chunk(s) of at most {} rows ({} rows) in key order",
                                    out.objects.size(), table.db_chunk_rows, rows));
    return out;
  }

  // Which database and relation a cursor belongs to: a cursor is continued
  // only by reads of the same ones (another database behind the same secret,
  // or a query whose vars changed, is read whole again).
  static std::string ReadKey(const DbRequest& req) {
    return Sha256Hex(DisplayDatabaseUrl(req.url) + "\n" + req.table + "\n" + req.query);
  }

  // The column a table's cursor has in the warehouse (columns: may rename it).
  static std::string CursorField(const TableSpec& table) {
    for (const ColumnSpec& c : table.columns) {
      if (c.input == table.db_cursor) return c.field.empty() ? c.input : c.field;
    }
    return table.db_cursor;
  }

  // `only_columns`: a key scan, of those columns alone.
  Result<DatabaseExtract> ExtractDatabaseTable(const SourceSpec& src, const TableSpec& table,
                                               const std::string& partition,
                                               const DbRequest::Since& since,
                                               const std::vector<std::string>& only_columns = {},
                                               const std::string& purpose = "key scan",
                                               const DbRequest::Page& page = {}) {
    ASSIGN_OR_RETURN(DbRequest req, DatabaseRequest(src, table, partition));
    req.since = since;
    req.only_columns = only_columns;
    req.page = page;
    if (opt_.control) req.cancel = opt_.control->flag();
    std::string what = table.db_query.empty() ? "table " + table.db_table : "query";
    if (!since.column.empty()) what += " since " + since.column + " >= " + since.value;
    if (!only_columns.empty()) what = purpose + " of " + what;
    if (!page.key.empty() && only_columns.empty()) {
      what = "chunk of " + what +
             (page.after.empty() ? " from the start" : " after " + Join(page.after, ", "));
    }
    FetchRecord rec;
    rec.source = src.name;
    rec.partition = partition;
    rec.url = DisplayDatabaseUrl(req.url) + " " + what;
    rec.started_at = res_.clock->Now();
    int64_t start = MonotonicMillis();
    std::string staging = res_.archive->NewStagingPath();
    Result<DbExtract> extracted = ExtractToFile(req, staging);
    rec.duration_ms = MonotonicMillis() - start;
    if (!extracted.ok()) {
      rec.error = extracted.status().message();
      (void)res_.archive->LogFetch(rec);
      return extracted.status().WithContext(table.loc.ToString() + ": extracting " + table.name);
    }
    Result<StoredObject> obj =
        res_.archive->StoreTemp(src.name, staging, extracted->sha256, extracted->bytes, "csv");
    if (!obj.ok()) {
      std::error_code ec;
      std::filesystem::remove(staging, ec);
      return obj.status().WithContext(table.loc.ToString() + ": archiving the extract of " +
                                      table.name);
    }
    DatabaseExtract out;
    out.object = *obj;
    out.columns = DbColumnsToJson(extracted->columns);
    out.notes = extracted->notes;
    out.rows = extracted->rows;
    out.last_row = extracted->last_row;
    out.extracted_at = CaptureTimestamp(rec.started_at);
    rec.bytes = static_cast<int64_t>(extracted->bytes);
    rec.sha256 = extracted->sha256;
    rec.object_path = obj->key;
    rec.headers = {
        {"table", table.name}, {"read", what}, {"rows", extracted->rows}, {"columns", out.columns}};
    RETURN_IF_ERROR(res_.archive->LogFetch(rec));
    LOG_INFO("runner", "{}: extracted {} rows ({} bytes) from {}", table.name, extracted->rows,
             extracted->bytes, Redact(rec.url));
    return out;
  }

  // A command source's key: what it runs (arguments, environment as
  // written, the content of project files it names) and the versions of its
  // inputs. The same key again means nothing it depends on changed.
  Result<std::string> CommandKey(const SourceSpec& src) {
    const CommandSpec& cmd = *src.command;
    nlohmann::json key = {{"run", cmd.run}, {"env", cmd.env}};
    nlohmann::json files = nlohmann::json::object();
    for (const std::string& arg : cmd.run) {
      std::string path = JoinPath(project_.root, arg);
      struct stat st;
      // A script or data file of the project: its content; never a folder or a device.
      if (arg.empty() || arg[0] == '-' || ::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
        continue;
      }
      ASSIGN_OR_RETURN(std::string sha, Sha256File(path));
      files[arg] = sha;
    }
    key["files"] = files;
    nlohmann::json inputs = nlohmann::json::array();
    std::lock_guard lock(mu_);
    for (const std::string& up : cmd.inputs) {
      auto it = versions_.find(up);
      std::string version = it != versions_.end() ? it->second : CombinedVersionLocked(up);
      if (version.empty()) {
        return Status::Invalid("command input '" + up +
                               "' has never been built; run it first (e.g. sluice run +" +
                               src.name + ")");
      }
      inputs.push_back({up, version});
    }
    key["inputs"] = inputs;
    return "command:" + Sha256Hex(key.dump());
  }

  // Waits until the raw objects a source task loaded are durable, named and
  // logged (raw first: before its publication names them, and before the
  // task reports anything). `partition` null: every partition it fetched.
  Status WaitDurable(const AssetNode& node, const std::string* partition) {
    if (node.kind != AssetKind::kSource) return Status::Ok();
    std::vector<std::shared_future<Result<FetchedSource>>> futures;
    {
      std::lock_guard lock(mu_);
      const std::string& source = tables_.at(node.name).first->name;
      for (const auto& [key, fut] : fetches_) {
        if (key.first == source && (!partition || key.second == *partition)) {
          futures.push_back(fut);
        }
      }
    }
    for (const auto& fut : futures) {
      const Result<FetchedSource>& fetched = fut.get();
      if (!fetched.ok() || !fetched->durable.valid()) continue;
      RETURN_IF_ERROR(fetched->durable.get());
    }
    return Status::Ok();
  }

  // At the end of a run: every deferred store has finished (its fetch is
  // logged), and the staged copies read by the loads are removed.
  void FinishFetches() {
    std::lock_guard lock(mu_);
    for (auto& [key, fut] : fetches_) {
      const Result<FetchedSource>& fetched = fut.get();
      if (!fetched.ok()) continue;
      if (fetched->durable.valid()) {
        Status st = fetched->durable.get();
        if (!st.ok()) LOG_WARN("runner", "{}: {}", key.first, st.message());
      }
      if (!fetched->staged.empty()) ::unlink(fetched->staged.c_str());
    }
  }

  // The inputs of an asset: raw object hashes, a seed's file hash, or the
  // version ids of a model's upstream assets.
  Result<nlohmann::json> Inputs(const AssetNode& node, const std::string& partition,
                                std::vector<StoredObject>* objects) {
    nlohmann::json inputs = nlohmann::json::array();
    if (node.kind == AssetKind::kSource && tables_.at(node.name).first->command) {
      const SourceSpec* src = tables_.at(node.name).first;
      ASSIGN_OR_RETURN(std::string key, CommandKey(*src));
      // Nothing it depends on changed: the last output, from the lake.
      std::optional<nlohmann::json> previous;
      {
        std::lock_guard lock(mu_);
        auto it = published_.find({node.name, partition});
        if (it != published_.end() && it->second.inputs.is_array() &&
            it->second.inputs.size() == 2 && it->second.inputs[0] == key) {
          previous = it->second.inputs;
        }
      }
      std::string object_key;
      if (previous && (*previous)[1].is_string()) {
        object_key = RawArchive::ObjectKey(src->name, (*previous)[1].get<std::string>(), "parquet");
        // The last output is gone from the lake (moved, cleared): run again.
        if (!res_.archive->store()->Exists(object_key)) previous.reset();
      }
      if (previous && !src->command->always_run && !opt_.full_refresh) {
        std::string sha = (*previous)[1].get<std::string>();
        ASSIGN_OR_RETURN(std::string local, res_.archive->store()->LocalPath(object_key));
        StoredObject obj;
        obj.sha256 = sha;
        obj.key = object_key;
        obj.local_path = local;
        obj.reused = true;
        *objects = {obj};
        return *previous;
      }
      if (opt_.mode == RunMode::kPlan) return nlohmann::json::array({key});
      // Its tables are assets of their own, held apart; the program is one:
      // two runs never start it side by side.
      ASSIGN_OR_RETURN(AssetHolds::Hold program, Hold("source:" + src->name, partition));
      ASSIGN_OR_RETURN(FetchedSource fetched, FetchSource(*src, partition, "parquet"));
      for (size_t i = 0; i < fetched.objects.size(); ++i) {
        if (fetched.tables[i] != node.name) continue;
        *objects = {fetched.objects[i]};
        return nlohmann::json::array({key, fetched.objects[i].sha256});
      }
      return Status::Internal(src->loc.ToString() + ": no output for table " + node.name);
    }
    if (node.kind == AssetKind::kSource && tables_.at(node.name).first->stream) {
      ASSIGN_OR_RETURN(std::shared_ptr<StreamRead> read, ReadStream(node));
      *objects = {read->object};
      inputs.push_back(read->object.sha256);
      std::lock_guard lock(mu_);
      db_notes_[node.name] = read->batch.notes;
      if (read->batch.more) {
        db_notes_[node.name].push_back(
            "max_messages reached: more messages wait in the stream "
            "for the next run");
      }
      if (read->after > 0) {
        read_since_.insert(node.name);
      } else {
        read_since_.erase(node.name);
      }
      return inputs;
    }
    if (node.kind == AssetKind::kSource && tables_.at(node.name).first->database &&
        tables_.at(node.name).first->database->cdc) {
      auto [src, table] = tables_.at(node.name);
      ASSIGN_OR_RETURN(const CaptureRead* capture, Capture(*src));
      const size_t i = capture->index.at(table->name);
      *objects = capture->objects[i];
      for (const StoredObject& obj : capture->objects[i]) inputs.push_back(obj.sha256);
      if (capture->objects[i].empty())
        inputs.push_back("changes:none@" + FormatLsn(capture->ends[i]));
      inputs.push_back("columns:" + Sha256Hex(capture->columns[i].dump()));
      // A snapshot is always published: its cursor starts a new generation
      // (an empty table's snapshot has the same bytes every time).
      if (capture->snapshot) inputs.push_back("generation:" + capture->generation);
      std::lock_guard lock(mu_);
      db_columns_[node.name] = capture->columns[i];
      db_notes_[node.name] = capture->read.notes;
      if (capture->snapshot) {
        db_notes_[node.name].push_back("snapshot of every table of " + src->name + " (" +
                                       capture->why + ") at " + capture->generation);
        read_since_.erase(node.name);
      } else {
        read_since_.insert(node.name);
      }
      if (capture->read.more) {
        db_notes_[node.name].push_back("max_changes reached: more changes wait in slot " +
                                       capture->request.slot + " for the next run");
      }
      return inputs;
    }
    if (node.kind == AssetKind::kSource && tables_.at(node.name).first->database) {
      auto [src, table] = tables_.at(node.name);
      DbRequest::Since since;
      if (!table->db_cursor.empty()) {
        ASSIGN_OR_RETURN(DbRequest req, DatabaseRequest(*src, *table, partition));
        std::string key = ReadKey(req);
        // A changed config, database or query reads everything again, as a
        // full refresh does.
        std::string fingerprint = MakeRecipe(node).fingerprint;
        std::lock_guard lock(mu_);
        db_read_keys_[node.name] = key;
        auto it = published_.find({node.name, partition});
        if (!opt_.full_refresh && it != published_.end() && it->second.cursor.is_object() &&
            it->second.cursor.value("column", "") == table->db_cursor &&
            it->second.cursor.value("read", "") == key && it->second.fingerprint == fingerprint) {
          since.column = table->db_cursor;
          since.value = it->second.cursor.value("value", "");
          since.type = it->second.cursor.value("type", "");
          since.lookback_seconds = table->db_lookback_seconds;
        }
      }
      {
        std::lock_guard lock(mu_);
        if (since.column.empty()) {
          read_since_.erase(node.name);
        } else {
          read_since_.insert(node.name);
        }
      }
      if (since.column.empty() && table->db_chunk_rows > 0 && opt_.mode != RunMode::kPlan) {
        ASSIGN_OR_RETURN(ChunkedRead chunks, ReadInChunks(node, *src, *table));
        *objects = chunks.objects;
        for (const StoredObject& o : chunks.objects) inputs.push_back(o.sha256);
        inputs.push_back("columns:" + Sha256Hex(chunks.columns.dump()));
        std::lock_guard lock(mu_);
        db_columns_[node.name] = std::move(chunks.columns);
        db_notes_[node.name] = std::move(chunks.notes);
        db_extracted_at_[node.name] = chunks.extracted_at;
        if (chunks.floor) {
          cursor_floors_[node.name] = *chunks.floor;
        } else {
          cursor_floors_.erase(node.name);
        }
        return inputs;
      }
      ASSIGN_OR_RETURN(DatabaseExtract extract,
                       ExtractDatabaseTable(*src, *table, partition, since));
      *objects = {extract.object};
      inputs.push_back(extract.object.sha256);
      // The same bytes read with other types are other data.
      inputs.push_back("columns:" + Sha256Hex(extract.columns.dump()));
      if (!since.column.empty() && KeyScanDue(*table)) {
        ASSIGN_OR_RETURN(KeyScan scan, ScanKeys(*src, *table));
        inputs.push_back("keys:" + scan.object.sha256);
        std::lock_guard lock(mu_);
        key_scans_[node.name] = std::move(scan);
      }
      std::lock_guard lock(mu_);
      db_columns_[node.name] = std::move(extract.columns);  // never partitioned (yet)
      db_notes_[node.name] = std::move(extract.notes);
      db_extracted_at_[node.name] = extract.extracted_at;
      return inputs;
    }
    if (node.kind == AssetKind::kSource) {
      auto [src, table] = tables_.at(node.name);
      ASSIGN_OR_RETURN(const Decoder* decoder, FindDecoder(FormatOf(*src, *table)));
      if (opt_.mode == RunMode::kPlan) {
        ASSIGN_OR_RETURN(std::string path, SourcePath(*src, partition));
        ASSIGN_OR_RETURN(std::string sha, res_.archive->PeekLocalFile(path));
        inputs.push_back(sha);
      } else {
        (void)decoder;
        ASSIGN_OR_RETURN(FetchedSource fetched,
                         FetchSource(*src, partition, SourceExtension(*src)));
        for (const StoredObject& obj : fetched.objects) inputs.push_back(obj.sha256);
        *objects = fetched.objects;
      }
    } else if (node.kind == AssetKind::kSeed) {
      ASSIGN_OR_RETURN(std::string sha, Sha256File(seeds_.at(node.name)->path));
      inputs.push_back(sha);
    } else {
      std::lock_guard lock(mu_);
      for (const std::string& up : node.upstream) {
        // An upstream that failed this run is read at its last published
        // version (on_upstream_failure: last_good), never at the failed one.
        auto done = outcomes_.find(up);
        bool failed = done != outcomes_.end() && EndedBadly(done->second.status);
        auto it = failed ? versions_.end() : versions_.find(up);
        if (it != versions_.end()) {
          inputs.push_back({up, it->second});
          continue;
        }
        std::string published = CombinedVersionLocked(up);
        if (published.empty()) {
          return Status::Invalid("upstream asset '" + up +
                                 "' has never been built; run it first (e.g. sluice run +" +
                                 node.name + ")");
        }
        inputs.push_back({up, published});
      }
    }
    return inputs;
  }

  // The checks' hash, with the versions of the assets they read: when one of
  // those publishes, the checks run again (a trip pointing at a route that
  // is gone fails its relationships check even though the trips did not change).
  std::string ChecksHashOf(const AssetNode& node) {
    std::string hash = ChecksHash(ChecksOf(node));
    if (node.check_inputs.empty()) return hash;
    std::string text = hash;
    std::lock_guard lock(mu_);
    for (const std::string& input : node.check_inputs) {
      auto it = versions_.find(input);
      text +=
          "\n" + input + "=" + (it != versions_.end() ? it->second : CombinedVersionLocked(input));
    }
    return Sha256Hex(text).substr(0, 16);
  }

  const std::vector<CheckSpec>& ChecksOf(const AssetNode& node) {
    static const std::vector<CheckSpec> kNone;
    if (node.kind == AssetKind::kSource) return tables_.at(node.name).second->checks;
    if (node.kind == AssetKind::kSeed) return seeds_.at(node.name)->checks;
    return models_.at(node.name)->checks;
  }

  Recipe MakeRecipe(const AssetNode& node) {
    std::string engine = res_.warehouse->EngineVersion();
    if (node.kind == AssetKind::kSource) {
      auto [src, table] = tables_.at(node.name);
      return SourceRecipe(*src, *table, FormatOf(*src, *table), project_.fields, engine);
    }
    if (node.kind == AssetKind::kSeed) return SeedRecipe(*seeds_.at(node.name), engine);
    return ModelRecipe(*models_.at(node.name), node.sql, engine);
  }

  // Where a build error is in the user's file: DuckDB's "LINE n" counts lines
  // of the statement, whose first line is the model SQL's first line (the
  // CREATE ... AS prefix shares it), so it maps through the header.
  SourceLoc ErrorLoc(const AssetNode& node, const Status& error) {
    SourceLoc loc = node.loc;
    if (node.kind != AssetKind::kModel) return loc;
    const std::string& m = error.message();
    size_t at = m.find("LINE ");
    if (at == std::string::npos) return loc;
    int n = 0;
    for (size_t i = at + 5; i < m.size() && std::isdigit(static_cast<unsigned char>(m[i])); ++i) {
      n = n * 10 + (m[i] - '0');
      if (n > 10'000'000) return loc;
    }
    if (n > 0) loc.line = models_.at(node.name)->sql_first_line + n - 1;
    return loc;
  }

  // The statement that builds a seed's or model's staged relation.
  std::string CreateSql(const AssetNode& node, const Recipe& recipe, const std::string& physical) {
    if (node.kind == AssetKind::kModel && models_.at(node.name)->materialized == "snapshot") {
      return SnapshotCreateSql(physical, StripSql(node.sql), NowLiteral());
    }
    return std::string(recipe.is_view ? "CREATE VIEW " : "CREATE TABLE ") + physical + " " +
           recipe.create_sql;
  }

  // Loads a source table's raw objects into its staged relation.
  Result<LoadOutcome> LoadSource(WarehouseSession& session, const AssetNode& node,
                                 const std::vector<StoredObject>& objects,
                                 const std::string& physical, const std::string& version,
                                 TaskOutcome& o) {
    auto [src, table] = tables_.at(node.name);
    LoadSpec spec;
    spec.table = table;
    spec.format = FormatOf(*src, *table);
    spec.options = src->format_options;
    for (const auto& [k, v] : table->format_options.items()) spec.options[k] = v;
    if (src->database) {
      std::lock_guard lock(mu_);
      spec.options["columns"] = db_columns_[node.name];
      // A read's rows say how and when they were read, as a captured
      // table's do (its change files carry them already).
      auto at = db_extracted_at_.find(node.name);
      // Not over the source's own columns of those names, nor under
      // columns: mappings (which list what the table keeps).
      bool own = false;
      for (const auto& c : spec.options["columns"]) own = own || IsReadColumn(c.value("name", ""));
      if (!src->database->cdc && at != db_extracted_at_.end() && !own && table->columns.empty()) {
        spec.options["constants"] = {
            {{"name", "_op"}, {"type", "VARCHAR"}, {"value", "snapshot"}},
            {{"name", "_extracted_at"}, {"type", "TIMESTAMP"}, {"value", at->second}}};
      }
    }
    spec.fields = &project_.fields;
    spec.cache_dir = DerivedCacheDir();
    for (const StoredObject& obj : objects) {
      std::string path = obj.local_path;
      if (src->format == "zip") {
        Result<std::string> member =
            ExtractZipMember(obj.local_path, obj.sha256, table->member, DerivedCacheDir());
        if (!member.ok()) return member.status().WithContext(table->loc.ToString());
        path = *member;
      }
      spec.objects.push_back({path, obj.sha256});
    }
    spec.targets.physical = physical;
    if (table->quarantine) {
      spec.targets.quarantine = "_sluice_failed." + QuoteIdent(node.name + "__quarantine");
    }
    spec.targets.asset = node.name;
    spec.targets.version = version;
    Result<LoadOutcome> loaded = LoadSourceTable(
        session, spec, [&](const std::string& sql) { return ExecuteBuild(session, node, sql, o); });
    if (loaded.ok()) return loaded;
    // DuckDB names the file it read: a staged copy of the download (gone
    // when the task ends) or a member extracted from it. Named instead as
    // the lake keeps the download, where it can be looked at.
    std::string message = loaded.status().message();
    for (size_t i = 0; i < objects.size() && i < spec.objects.size(); ++i) {
      const std::string& read = spec.objects[i].path;
      const std::string kept = "the file kept in the lake as " + objects[i].key +
                               (read == objects[i].local_path ? "" : " (" + table->member + ")");
      for (size_t at = message.find(read); !read.empty() && at != std::string::npos;
           at = message.find(read, at + kept.size())) {
        message.replace(at, read.size(), kept);
      }
    }
    return Status(loaded.status().code(), message);
  }

  // Runs a build statement under the task's timeout; a failure that may pass
  // (a lock, a write conflict) is retried with backoff, any other fails at once.
  // `rows`, when given: the rows a CREATE TABLE ... AS statement made (its
  // result), so that they need not be counted again. `stage`: the staged
  // build it is for, whose transaction (if any) a retry begins again.
  Status ExecuteBuild(WarehouseSession& session, const AssetNode& node, const std::string& sql,
                      TaskOutcome& o, int64_t* rows = nullptr, StagedBuild* stage = nullptr) {
    const int max_attempts = 1 + std::max(0, project_.defaults.retries);
    Status built;
    for (int attempt = 1; attempt <= max_attempts; ++attempt) {
      o.attempts = std::max(o.attempts, attempt);
      {
        Watchdog watchdog(&session, project_.defaults.timeout_seconds);
        if (rows) {
          Result<QueryResult> result = session.Query(sql);
          built = result.status();
          // CREATE TABLE AS answers one row, "Count"; anything else is counted after.
          if (result.ok() && result->rows.size() == 1 && result->columns.size() == 1 &&
              result->columns[0] == "Count" && result->rows[0][0]) {
            *rows = result->ScalarInt();
          }
        } else {
          built = session.Execute(sql);
        }
        if (!built.ok() && watchdog.fired()) {
          return Status(StatusCode::kTimeout,
                        fmt::format("timed out after {}s (defaults.timeout in sluice.yaml)",
                                    project_.defaults.timeout_seconds));
        }
      }
      if (built.ok() || !IsTransientWarehouseError(built) || attempt == max_attempts) break;
      LOG_WARN("runner", "{}: attempt {} failed, retrying: {}", node.name, attempt,
               built.message());
      if (stage && stage->in_transaction()) RETURN_IF_ERROR(stage->RestartTransaction());
      if (TaskLog* log = TaskLog::Current()) {
        log->SwitchTo(TaskLogPath(node.name, attempt + 1));
        log->Write(fmt::format("{} {}: attempt {} (the previous one: {})",
                               FormatTimestamp(res_.clock->Now()), node.name, attempt + 1,
                               built.message()));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(200 << (attempt - 1), 5000)));
    }
    return built;
  }

  Decision DecideAction(const AssetNode& node, const Recipe& recipe, const nlohmann::json& inputs,
                        const std::string& version, const std::string& checks_hash,
                        const Publication* prev) {
    PlanFacts facts;
    facts.kind = node.kind;
    facts.nondeterministic = node.nondeterministic;
    facts.check_inputs = node.check_inputs;
    facts.full_refresh = opt_.full_refresh;
    facts.fingerprint = recipe.fingerprint;
    facts.inputs = inputs;
    facts.version = version;
    facts.checks_hash = checks_hash;
    facts.previous = prev;
    return Decide(facts);
  }

  Status BuildTask(const AssetNode& node, TaskOutcome& o) {
    auto parts = partitions_.find(node.name);
    if (parts == partitions_.end()) return BuildPartition(node, "", o);
    const std::vector<std::string>& keys = parts->second;
    // Partitions build side by side within --threads: each has a staged
    // table of its own, and their publications take turns on the asset's
    // one table (transform/publication.h).
    std::vector<TaskOutcome> results(keys.size());
    std::mutex done_mu;
    size_t done = 0;
    auto build = [&](size_t i) {
      TaskOutcome& p = results[i];
      p.asset = node.name;
      Status st;
      try {  // a thread boundary (the partitions' helper threads)
        st = BuildPartition(node, keys[i], p);
      } catch (const std::exception& e) {
        st = Status::Internal(std::string("internal error (please report it): ") + e.what());
      } catch (...) {
        st = Status::Internal("internal error (please report it): an unknown exception");
      }
      if (!st.ok()) {
        p.status = TaskStatus::kFailed;
        p.error = Redact(st.message());
      }
      std::lock_guard lock(done_mu);
      try {
        Emit({{"type", "partition_end"},
              {"asset", node.name},
              {"partition", keys[i]},
              {"status", TaskStatusName(p.status)},
              {"done", ++done},
              {"total", keys.size()}});
      } catch (...) {
        // a progress event lost; the partition's outcome is recorded anyway
      }
    };
    size_t workers = opt_.mode == RunMode::kRun
                         ? std::min(keys.size(), static_cast<size_t>(std::max(opt_.threads, 1)))
                         : 1;
    // The task holds one slot of its pool (the executor's); a helper thread
    // starts only with a slot of its own, taken now, so helpers never wait
    // for room while their task holds some (per_host: a backfill opens at
    // most that many connections to an API at once).
    std::vector<ConcurrencyLimits::Slot> helper_slots;
    if (workers > 1) helper_slots = Limits().TryAcquireUpTo(PoolOf(node), workers - 1);
    workers = 1 + helper_slots.size();
    if (workers <= 1) {
      for (size_t i = 0; i < keys.size(); ++i) build(i);
    } else {
      std::atomic<size_t> next{0};
      TaskLog* log = TaskLog::Current();
      std::vector<std::thread> threads;
      struct JoinAll {
        std::vector<std::thread>& threads;
        ~JoinAll() {
          for (std::thread& t : threads) {
            if (t.joinable()) t.join();
          }
        }
      } join_all{threads};
      auto work = [&] {
        TaskLog::Borrow borrow(log);
        for (size_t i = next++; i < keys.size(); i = next++) build(i);
      };
      for (size_t w = 1; w < workers; ++w) threads.emplace_back(work);
      work();  // this thread is one of them
    }
    helper_slots.clear();
    int to_build = 0, unchanged = 0;
    std::vector<std::string> failures;
    bool check_failed = false, any_failed = false;
    o.partitions = nlohmann::json::array();
    for (size_t i = 0; i < keys.size(); ++i) {
      const std::string& key = keys[i];
      TaskOutcome& p = results[i];
      o.attempts = std::max(o.attempts, p.attempts);
      for (CheckOutcome& c : p.checks) {
        c.name += " [" + key + "]";
        o.checks.push_back(std::move(c));
      }
      for (const std::string& note : p.notes) o.notes.push_back(key + ": " + note);
      if (!p.drift.is_null()) {
        o.drift = p.drift;
        o.drift["partition"] = key;
      }
      if (p.action == TaskAction::kSkip) {
        ++unchanged;
      } else {
        ++to_build;
      }
      if (p.status == TaskStatus::kFailed || p.status == TaskStatus::kCheckFailed) {
        any_failed = any_failed || p.status == TaskStatus::kFailed;
        check_failed = check_failed || p.status == TaskStatus::kCheckFailed;
        failures.push_back(key + ": " + p.error);
      }
      o.partitions.push_back({{"partition", key},
                              {"action", TaskActionName(p.action)},
                              {"status", TaskStatusName(p.status)},
                              {"reason", p.reason},
                              {"version", p.version_id},
                              {"previous_version", p.previous_version},
                              {"rows", p.rows},
                              {"error", p.error}});
    }
    std::string span = keys.size() == 1 ? "partition " + keys.front()
                                        : fmt::format("{} partitions {}..{}", keys.size(),
                                                      keys.front(), keys.back());
    o.action = to_build ? TaskAction::kBuild : TaskAction::kSkip;
    o.reason = keys.size() == 1
                   ? span + ": " + o.partitions[0].value("reason", "")
                   : fmt::format("{}: {} to build, {} unchanged", span, to_build, unchanged);
    if (opt_.mode == RunMode::kPlan) {
      o.status = TaskStatus::kPlanned;
    } else if (any_failed || check_failed) {
      o.status = any_failed ? TaskStatus::kFailed : TaskStatus::kCheckFailed;
      o.error = Join(failures, "; ");
    } else {
      o.status = to_build ? TaskStatus::kSuccess : TaskStatus::kSkipped;
    }
    std::lock_guard lock(mu_);
    o.version_id = CombinedVersionLocked(node.name);
    o.rows = 0;
    for (const auto& [key, pub] : published_) {
      if (key.first == node.name) o.rows += pub.rows;
    }
    versions_[node.name] = o.version_id;
    return Status::Ok();
  }

  // The partitions each selected partitioned source runs: --partition, or
  // the one holding now.
  Status PlanPartitions() {
    bool any = false;
    for (const std::string& name : selected_) {
      const AssetNode* node = graph_.Find(name);
      if (node->kind != AssetKind::kSource) continue;
      const SourceSpec* src = tables_.at(name).first;
      if (src->partition.is_null()) continue;
      auto scheme = schemes_.find(src->name);
      if (scheme == schemes_.end()) {
        return Status::Invalid(src->loc.ToString() + ": invalid partition: settings");
      }
      any = true;
      std::vector<std::string> keys;
      if (opt_.partition.empty()) {
        Micros now = res_.clock->Now();
        std::string current = CurrentPartition(scheme->second, now);
        if (Accumulates(*src)) {
          // The partition before the current one too, once its polls are all
          // in: polls stored after its last build (the last ones of the hour,
          // or another run's) are not lost. Unchanged, it is skipped.
          Micros back = now;
          std::string previous = current;
          for (int i = 0; i < 24 * 400 && previous == current; ++i) {
            back -= int64_t{3600} * 1000000;
            previous = CurrentPartition(scheme->second, back);
          }
          if (previous != current &&
              (scheme->second.first.empty() || previous >= scheme->second.first)) {
            keys.push_back(previous);
          }
          std::lock_guard lock(mu_);
          polled_partition_[src->name] = current;
        }
        keys.push_back(current);
      } else {
        Result<std::vector<std::string>> expanded =
            ExpandPartitions(scheme->second, opt_.partition);
        if (!expanded.ok()) {
          return Status::Invalid("--partition: " + expanded.status().message() + " (source " +
                                 src->name + ", " + src->loc.ToString() + ")");
        }
        keys = std::move(*expanded);
      }
      partitions_[name] = std::move(keys);
    }
    if (!opt_.partition.empty() && !any) {
      return Status::Invalid(
          "--partition applies to partitioned sources (partition: in sources/*.yaml), and none "
          "of the selected assets is one");
    }
    return Status::Ok();
  }

  // An asset's version as its downstream assets see it: the published (or
  // this run's) version; for a partitioned source, a hash over every
  // partition's current version. "" when it has none.
  std::string CombinedVersionLocked(const std::string& asset) {
    std::map<std::string, std::string> by_partition;
    for (auto it = published_.lower_bound({asset, ""});
         it != published_.end() && it->first.first == asset; ++it) {
      by_partition[it->first.second] = it->second.version_id;
    }
    for (auto it = partition_versions_.lower_bound({asset, ""});
         it != partition_versions_.end() && it->first.first == asset; ++it) {
      by_partition[it->first.second] = it->second;
    }
    if (by_partition.empty()) return "";
    if (by_partition.size() == 1 && by_partition.begin()->first.empty()) {
      return by_partition.begin()->second;
    }
    std::string text;
    for (const auto& [key, version] : by_partition) text += key + "=" + version + "\n";
    return Sha256Hex(text).substr(0, 16);
  }

  // Records the version an asset (partition) has after this task, for its
  // downstream assets.
  void NoteVersionLocked(const std::string& asset, const std::string& partition,
                         const std::string& version) {
    if (partition.empty()) {
      versions_[asset] = version;
    } else {
      partition_versions_[{asset, partition}] = version;
    }
  }

  // For `plan`: the schema drift a source's new local file would bring, read
  // from the file where it is (nothing is archived). Null when unknown: not a
  // local file, a cleaned source (its schema is its config), or unreadable.
  nlohmann::json PlanDrift(const AssetNode& node, const std::string& partition,
                           const Publication& prev) {
    if (node.kind != AssetKind::kSource) return nullptr;
    auto [src, table] = tables_.at(node.name);
    if (!table->columns.empty() || src->format == "zip") return nullptr;
    Result<std::string> path = SourcePath(*src, partition);
    Result<const Decoder*> decoder = FindDecoder(FormatOf(*src, *table));
    if (!path.ok() || !decoder.ok()) return nullptr;
    nlohmann::json options = src->format_options;
    for (const auto& [k, v] : table->format_options.items()) options[k] = v;
    Result<std::string> read =
        (*decoder)->TableSql({*path, FormatOf(*src, *table), options, false, DerivedCacheDir()});
    if (!read.ok()) return nullptr;
    Result<std::unique_ptr<WarehouseSession>> session = res_.warehouse->Connect();
    if (!session.ok()) return nullptr;
    Result<nlohmann::json> schema = DescribeRelation(**session, *read);
    if (!schema.ok()) return nullptr;
    return SchemaDrift(prev.schema, *schema);
  }

  // `plan` downloads nothing: an HTTP source is reported as a fetch, with the
  // version it has now (a new response gives a new one at run time).
  Result<bool> PlanHttpSource(const AssetNode& node, const std::string& partition, TaskOutcome& o) {
    if (opt_.mode != RunMode::kPlan || node.kind != AssetKind::kSource) return false;
    auto [src, table] = tables_.at(node.name);
    if (src->command) return false;
    if (src->stream) {
      o.action = TaskAction::kFetch;
      o.status = TaskStatus::kPlanned;
      o.reason = PlanStream(node, *src);
    } else if (src->database) {
      o.action = TaskAction::kFetch;
      o.status = TaskStatus::kPlanned;
      // The url as written: a ${secret:...} reference, never its value.
      std::string since;
      if (!table->db_cursor.empty() && !opt_.full_refresh) {
        std::lock_guard lock(mu_);
        auto it = published_.find({node.name, partition});
        if (it != published_.end() && it->second.cursor.is_object()) {
          since = " rows with " + table->db_cursor + " at or past " +
                  it->second.cursor.value("value", "") +
                  (table->db_lookback_seconds > 0
                       ? " less " + std::to_string(table->db_lookback_seconds) + "s"
                       : std::string()) +
                  " of";
        }
      }
      o.reason =
          Redact("extracts" + since + " " +
                 (table->db_query.empty() ? "table " + table->db_table : std::string("a query")) +
                 " from " + DisplayDatabaseUrl(src->database->url) +
                 "; rebuilt when the extract differs from the last one");
      if (src->database->cdc) o.reason = PlanCapture(*src, *table);
    } else {
      ASSIGN_OR_RETURN(std::string url, SourceUrl(*src, partition));
      if (!IsHttpUrl(url)) return false;
      ASSIGN_OR_RETURN(TemplateContext ctx, SourceContext(*src, partition));
      ASSIGN_OR_RETURN(std::string shown,
                       fetcher_.DisplayUrl(HttpRequestFor(*src, partition, ctx)));
      o.action = TaskAction::kFetch;
      o.status = TaskStatus::kPlanned;
      o.reason = "fetches " + shown + "; a conditional request decides whether it is rebuilt";
    }
    std::lock_guard lock(mu_);
    decided_at_run_.insert(node.name);
    auto it = published_.find({node.name, partition});
    if (it != published_.end()) o.version_id = o.previous_version = it->second.version_id;
    // Never fetched: downstream plans see a version that matches nothing published.
    NoteVersionLocked(node.name, partition, o.version_id.empty() ? "unfetched" : o.version_id);
    return true;
  }

  // Holds (asset, partition) against other runs of the owner until the
  // build is published or given up, and reads what they published meanwhile:
  // the task starts from the asset's current publication and its upstreams'
  // current versions (those this run does not build).
  // Holds `name` (an asset, or "source:NAME" for a command's program) for
  // this run, waiting for another run that holds it.
  Result<AssetHolds::Hold> Hold(const std::string& name, const std::string& partition) {
    if (!res_.holds || opt_.mode != RunMode::kRun) return AssetHolds::Hold();
    AssetHolds::Holder me{run_id_, opt_.description.empty()
                                       ? "run " + std::to_string(run_id_)
                                       : "run " + std::to_string(run_id_) + " " + opt_.description};
    std::string what = name + (partition.empty() ? "" : " " + partition);
    return res_.holds->Acquire(
        {name, partition}, me,
        [&](const AssetHolds::Holder& holder) {
          LOG_INFO("runner", "{}: waiting while {} builds it", what, holder.what);
          Emit({{"type", "queued"},
                {"asset", name},
                {"message", "waiting for " + what + ": " + holder.what + " builds it"}});
        },
        [this] { return Cancelled(); });
  }

  Result<AssetHolds::Hold> HoldAndRefresh(const AssetNode& node, const std::string& partition) {
    if (!res_.holds || opt_.mode != RunMode::kRun) return AssetHolds::Hold();
    ASSIGN_OR_RETURN(AssetHolds::Hold hold, Hold(node.name, partition));
    if (res_.current && res_.publisher) {
      std::lock_guard lock(mu_);
      // Its own (asset, partition): what another run may have published.
      if (std::optional<std::vector<Publication>> now = res_.current->Of(node.name)) {
        for (Publication& p : *now) {
          if (p.partition == partition) published_[{p.asset, p.partition}] = std::move(p);
        }
      }
      // Its upstreams as their public views show them now: those this run
      // does not build, and those it built or found unchanged (another run
      // may have published them since), so that the input versions recorded
      // are those of the data read. One this run failed keeps this run's word.
      for (const std::string& up : node.upstream) {
        auto done = outcomes_.find(up);
        bool public_now =
            !selected_set_.count(up) ||
            (done != outcomes_.end() && (done->second.status == TaskStatus::kSuccess ||
                                         done->second.status == TaskStatus::kSkipped));
        if (!public_now) continue;
        std::optional<std::vector<Publication>> now = res_.current->Of(up);
        if (!now || now->empty()) continue;
        for (Publication& p : *now) published_[{p.asset, p.partition}] = std::move(p);
        versions_.erase(up);
        for (auto it = partition_versions_.lower_bound({up, ""});
             it != partition_versions_.end() && it->first.first == up;) {
          it = partition_versions_.erase(it);
        }
      }
    }
    return hold;
  }

  Status BuildPartition(const AssetNode& node, const std::string& partition, TaskOutcome& o) {
    ASSIGN_OR_RETURN(AssetHolds::Hold hold, HoldAndRefresh(node, partition));
    ASSIGN_OR_RETURN(bool planned_fetch, PlanHttpSource(node, partition, o));
    if (planned_fetch) return Status::Ok();
    std::vector<StoredObject> objects;
    int64_t lap = MonotonicMillis();
    auto timed = [&](const char* phase) {
      int64_t now = MonotonicMillis();
      o.timings.emplace_back(phase, now - lap);
      lap = now;
    };
    ASSIGN_OR_RETURN(nlohmann::json inputs, Inputs(node, partition, &objects));
    if (opt_.mode != RunMode::kPlan) timed(node.kind == AssetKind::kSource ? "fetch" : "inputs");
    if (opt_.mode == RunMode::kRun && node.kind == AssetKind::kSource && objects.empty() &&
        Accumulates(*tables_.at(node.name).first)) {
      o.action = TaskAction::kSkip;
      o.status = TaskStatus::kSkipped;
      o.reason = "no poll was stored for partition " + partition;
      return Status::Ok();
    }
    Recipe recipe = MakeRecipe(node);
    std::string version = VersionId(recipe.fingerprint, inputs);
    std::string checks_hash = ChecksHashOf(node);
    o.version_id = version;
    // In the snapshot, which never changes (kept alive here); otherwise a
    // copy: other partitions' threads update published_ meanwhile.
    std::shared_ptr<const CurrentPublications::Map> frozen;
    std::optional<Publication> previous;
    const Publication* prev = nullptr;
    {
      std::lock_guard lock(mu_);
      auto it = published_.find({node.name, partition});
      if (it != published_.end()) {
        frozen = published_.Frozen();
        if (frozen) {
          prev = &it->second;
        } else {
          previous = it->second;
          prev = &*previous;
        }
      }
    }
    Decision decision = DecideAction(node, recipe, inputs, version, checks_hash, prev);
    if (opt_.mode == RunMode::kPlan) {
      // Downstream of a download, whether anything changes is known only at
      // run time: not "unchanged".
      std::vector<std::string> pending;
      {
        std::lock_guard lock(mu_);
        for (const std::string& up : node.upstream) {
          if (decided_at_run_.count(up)) pending.push_back(up);
        }
        if (!pending.empty()) decided_at_run_.insert(node.name);
      }
      DeferToRun(decision, pending);
    }
    o.action = decision.action;
    o.reason = std::move(decision.reason);
    o.previous_version = std::move(decision.previous_version);
    if (opt_.mode == RunMode::kPlan) {
      o.status = TaskStatus::kPlanned;
      if (o.action == TaskAction::kBuild && prev) o.drift = PlanDrift(node, partition, *prev);
      std::lock_guard lock(mu_);
      NoteVersionLocked(node.name, partition, version);
      return Status::Ok();
    }
    if (o.action == TaskAction::kSkip) {
      o.status = TaskStatus::kSkipped;
      o.rows = prev->rows;
      std::lock_guard lock(mu_);
      NoteVersionLocked(node.name, partition, version);
      return Status::Ok();
    }
    ASSIGN_OR_RETURN(auto session, res_.warehouse->Connect());
    RunControl::Scope cancellable(opt_.control.get(), session.get());
    // Registered first, then checked: a cancel from now on interrupts this session.
    if (Cancelled()) return Status::Cancelled("the run was cancelled");
    if (o.action == TaskAction::kAudit) {
      // Same data, new checks: audit what is public, publish nothing.
      // A partition's rows are its share of the asset's one table.
      const bool shared = prev->physical == StagedRelation(PartitionsTableName(node.name));
      Audit audit = AuditRelation(
          MakeBuildEnv(nullptr), *session,
          MakeTarget(node, partition, version, prev->fingerprint, checks_hash, inputs),
          shared ? PartitionRows(node.name, partition) : prev->physical);
      o.checks = audit.checks;
      const bool blocked = audit.blocked;
      o.status = blocked ? TaskStatus::kCheckFailed : TaskStatus::kSuccess;
      o.rows = prev->rows;
      Publication p = *prev;
      p.checks_hash = checks_hash;
      if (!blocked) {
        if (Cancelled()) return Status::Cancelled("the run was cancelled; nothing published");
        ASSIGN_OR_RETURN(Publisher * publisher, GetPublisher());
        RETURN_IF_ERROR(publisher->Publish(*session, p, project_.defaults.keep_versions));
      }
      std::lock_guard lock(mu_);
      if (!blocked) published_[{node.name, partition}] = p;
      NoteVersionLocked(node.name, partition, version);
      return Status::Ok();
    }

    if (node.kind == AssetKind::kSource && prev && ReadSinceCursor(node.name)) {
      return BuildSourceBatch(node, o, version, inputs, checks_hash, *prev, objects, *session);
    }
    if (node.kind == AssetKind::kModel && prev) {
      const ModelSpec* model = models_.at(node.name);
      bool snapshot = model->materialized == "snapshot";
      bool incremental =
          model->materialized == "incremental" && prev->fingerprint == recipe.fingerprint;
      if ((snapshot || incremental) && !opt_.full_refresh) {
        return BuildInPlace(node, *model, o, version, inputs, checks_hash, *prev, *session);
      }
    }
    // A model builds, is audited and publishes in one transaction, one
    // commit; when a check's query failed in it (which aborts it), it builds
    // again as a source or a partition does: its build committed first.
    const size_t timings = o.timings.size();
    ASSIGN_OR_RETURN(bool done, BuildStaged(node, partition, o, recipe, version, inputs,
                                            checks_hash, prev, objects, *session, timed,
                                            node.kind == AssetKind::kModel && partition.empty()));
    if (!done) {
      // A cancel that interrupted a check lands here too: not built again.
      if (Cancelled()) return Status::Cancelled("the run was cancelled; nothing published");
      LOG_DEBUG("runner",
                "{}: a check failed to run inside the build's transaction; building "
                "again outside one",
                node.name);
      o.timings.resize(timings);
      timed("aborted transaction");
      o.rows = -1;  // a view's is counted again
      ASSIGN_OR_RETURN(done, BuildStaged(node, partition, o, recipe, version, inputs, checks_hash,
                                         prev, objects, *session, timed, false));
    }
    return Status::Ok();
  }

  // A replacement build of node (or of one partition) into a staged
  // relation: built, inspected, audited and published, or kept as the failed
  // build. In one transaction when `one_transaction` (a model's, not a
  // partition's: see StagedBuild::BeginTransaction); false, with nothing
  // kept, when a check's query failed in that transaction, which DuckDB then
  // refuses to go on with.
  Result<bool> BuildStaged(const AssetNode& node, const std::string& partition, TaskOutcome& o,
                           const Recipe& recipe, const std::string& version,
                           const nlohmann::json& inputs, const std::string& checks_hash,
                           const Publication* prev, const std::vector<StoredObject>& objects,
                           WarehouseSession& session, const std::function<void(const char*)>& timed,
                           bool one_transaction) {
    ASSIGN_OR_RETURN(Publisher * publisher, GetPublisher());
    const BuildEnv env = MakeBuildEnv(publisher);
    // Until published or kept as the failed build, the staged build is this
    // task's: every way out drops it.
    StagedBuild stage(env, session,
                      MakeTarget(node, partition, version, recipe.fingerprint, checks_hash, inputs),
                      recipe.is_view);
    const std::string& physical = stage.relation();
    if (one_transaction) RETURN_IF_ERROR(stage.BeginTransaction());
    if (node.kind == AssetKind::kSource) {
      Result<LoadOutcome> loaded = LoadSource(session, node, objects, physical, version, o);
      if (!loaded.ok()) {
        stage.Drop();
        return loaded.status().WithContext(node.loc.ToString() + ": loading " + node.name +
                                           " failed");
      }
      for (const std::string& note : loaded->notes) o.notes.push_back(note);
      {
        std::lock_guard lock(mu_);
        auto left_out = accumulate_notes_.find(tables_.at(node.name).first->name);
        if (left_out != accumulate_notes_.end()) {
          for (const std::string& note : left_out->second) o.notes.push_back(note);
        }
        auto db_notes = db_notes_.find(node.name);
        if (db_notes != db_notes_.end()) {
          for (const std::string& note : db_notes->second) o.notes.push_back(note);
        }
      }
      o.bad_rows = loaded->bad_rows;
      const TableSpec* loaded_table = tables_.at(node.name).second;
      if (tables_.at(node.name).first->stream && !loaded_table->key.empty()) {
        // A stream read whole: the last message of a key wins, as in place.
        std::vector<std::string> keys, match;
        for (const std::string& k : loaded_table->key) {
          keys.push_back(QuoteIdent(k));
          match.push_back("t." + QuoteIdent(k) + " IS NOT DISTINCT FROM x." + QuoteIdent(k));
        }
        Status kept = session.Execute(
            "DELETE FROM " + physical + " t USING (SELECT " + Join(keys, ", ") +
            ", max(_stream_seq) AS _sluice_last FROM " + physical + " GROUP BY ALL) x WHERE " +
            Join(match, " AND ") + " AND t._stream_seq < x._sluice_last");
        if (!kept.ok()) {
          stage.Drop();
          return kept.WithContext(node.loc.ToString() + ": keeping the last message of each key");
        }
        o.rows = -1;  // counted again below
      }
    } else {
      Status built = ExecuteBuild(session, node, CreateSql(node, recipe, physical), o,
                                  recipe.is_view ? nullptr : &o.rows, &stage);
      if (!built.ok()) {
        stage.Drop();
        return built.WithContext(ErrorLoc(node, built).ToString() + ": building " + node.name +
                                 " failed");
      }
    }
    for (const std::string& note : o.notes) LOG_INFO("runner", "{}: {}", node.name, note);
    timed("load");
    MaybeCrash("after_build", node.name);
    RETURN_IF_ERROR(stage.Inspect(o.rows));
    o.rows = stage.rows();
    timed("inspect");
    if (prev) {
      o.drift = SchemaDrift(prev->schema, stage.schema());
    } else if (!partition.empty()) {
      // A new partition is compared with the newest other one.
      std::lock_guard lock(mu_);
      const Publication* newest = nullptr;
      for (auto it = published_.lower_bound({node.name, ""});
           it != published_.end() && it->first.first == node.name; ++it) {
        if (!newest || it->second.seq > newest->seq) newest = &it->second;
      }
      if (newest) o.drift = SchemaDrift(newest->schema, stage.schema());
    }

    // Audit before publication: a blocking failure keeps the last good version public.
    Audit audit = stage.RunAudit();
    if (stage.aborted()) {
      stage.Drop();
      return false;
    }
    o.checks = audit.checks;
    timed("checks");
    if (audit.blocked) {
      ASSIGN_OR_RETURN(o.error, stage.KeepFailed(audit, prev != nullptr));
      o.status = TaskStatus::kCheckFailed;
      return true;
    }

    MaybeCrash("before_publish", node.name);
    RETURN_IF_ERROR(WaitDurable(node, &partition));
    timed("durable");
    nlohmann::json cursor;
    if (node.kind == AssetKind::kSource && !tables_.at(node.name).second->db_cursor.empty()) {
      ASSIGN_OR_RETURN(cursor, CursorOf(session, physical, node, nullptr));
    }
    bool streamed = false;
    if (node.kind == AssetKind::kSource && tables_.at(node.name).first->stream) {
      std::shared_ptr<StreamRead> read;
      {
        std::lock_guard lock(mu_);
        read = streams_.at(node.name);
      }
      cursor = StreamCursor(*tables_.at(node.name).first, *read);
      streamed = true;
    }
    std::optional<uint64_t> captured_to;
    if (node.kind == AssetKind::kSource && tables_.at(node.name).first->database &&
        tables_.at(node.name).first->database->cdc) {
      ASSIGN_OR_RETURN(const CaptureRead* capture, Capture(*tables_.at(node.name).first));
      {
        std::lock_guard lock(mu_);
        auto held = published_.find({node.name, ""});
        nlohmann::json now = held != published_.end() ? held->second.cursor : nlohmann::json();
        if (now != capture->seen[capture->index.at(node.name)]) {
          return Status::Busy(node.name +
                              ": another run published it since this run's "
                              "snapshot began; nothing published (run it again)");
        }
      }
      captured_to = capture->read.end;
      cursor = CaptureCursorJson(CaptureCursor{capture->request.slot, capture->generation,
                                               capture->read_keys[capture->index.at(node.name)],
                                               capture->read.end});
    }
    ASSIGN_OR_RETURN(Publication pub, stage.Publish(std::move(cursor), timed));
    o.status = TaskStatus::kSuccess;
    std::lock_guard lock(mu_);
    NoteVersionLocked(node.name, partition, version);
    published_[{node.name, partition}] = std::move(pub);
    if (captured_to) captured_[node.name] = *captured_to;
    if (streamed) streamed_.insert(node.name);
    return true;
  }

  Status TestTask(const AssetNode& node, TaskOutcome& o) {
    o.action = TaskAction::kAudit;
    o.reason = "sluice test";
    // A partitioned asset is tested as a whole, through its public view.
    std::string relation;
    {
      std::lock_guard lock(mu_);
      o.version_id = CombinedVersionLocked(node.name);
      auto it = published_.find({node.name, ""});
      relation = it != published_.end() ? it->second.physical : "main." + QuoteIdent(node.name);
      o.rows = 0;
      for (auto p = published_.lower_bound({node.name, ""});
           p != published_.end() && p->first.first == node.name; ++p) {
        o.rows += p->second.rows;
      }
    }
    if (o.version_id.empty()) {
      return Status::Invalid(node.name + " has not been built yet; run `sluice run " + node.name +
                             "` first");
    }
    ASSIGN_OR_RETURN(auto session, res_.warehouse->Connect());
    Audit audit =
        AuditRelation(MakeBuildEnv(nullptr), *session,
                      MakeTarget(node, "", o.version_id, "", "", nlohmann::json()), relation);
    o.checks = audit.checks;
    o.status = audit.blocked ? TaskStatus::kCheckFailed : TaskStatus::kPassed;
    if (audit.blocked) o.error = audit.Failures();
    return Status::Ok();
  }

  void RecordChecks(const std::string& asset, const std::string& version,
                    const std::vector<CheckOutcome>& checks) {
    for (const CheckOutcome& c : checks) {
      CheckResultRecord r;
      r.run_id = run_id_;
      r.asset = asset;
      r.version_id = version;
      r.check_name = c.name;
      r.severity = c.severity == Severity::kError ? "error" : "warn";
      r.status = CheckStatusName(c.status);
      r.failing_rows = c.failing_rows;
      r.sample = c.sample;
      r.message = c.message;
      r.checked_at = res_.clock->Now();
      Status st = res_.metadata->RecordCheckResult(r);
      if (!st.ok()) LOG_WARN("runner", "cannot record check result: {}", st.message());
    }
    // And where readers look: _sluice.check_results in the warehouse.
    if (checks.empty()) return;
    std::vector<std::string> rows;
    for (const CheckOutcome& c : checks) {
      rows.push_back(fmt::format("({}, {}, '', {}, {}, {}, {}, {}, {}, {}, make_timestamp({}))",
                                 run_id_, QuoteLiteral(asset), QuoteLiteral(version),
                                 QuoteLiteral(c.name),
                                 QuoteLiteral(c.severity == Severity::kError ? "error" : "warn"),
                                 QuoteLiteral(CheckStatusName(c.status)), c.failing_rows,
                                 QuoteLiteral(DumpRedacted(c.sample)),
                                 QuoteLiteral(Redact(c.message)), res_.clock->Now()));
    }
    Result<std::unique_ptr<WarehouseSession>> session = res_.warehouse->Connect();
    Status st = session.ok() ? (*session)->Execute(
                                   "INSERT INTO _sluice.check_results (run_id, asset, "
                                   "partition_key, version_id, check_name, severity, status, "
                                   "failing_rows, sample, message, checked_at) VALUES " +
                                   Join(rows, ", "))
                             : session.status();
    if (!st.ok())
      LOG_WARN("runner", "cannot record check results in the warehouse: {}", st.message());
  }

  const Project& project_;
  const AssetGraph& graph_;
  EnvResources res_;
  TaskRecordBatch records_{res_.metadata};  // closed (written) by its destructor at the latest
  RunOptions opt_;
  EventSink events_;
  std::vector<std::string> selected_;
  std::set<std::string> selected_set_;
  int64_t run_id_ = 0;
  std::map<std::string, std::pair<const SourceSpec*, const TableSpec*>> tables_;
  std::map<std::string, const SeedSpec*> seeds_;
  std::map<std::string, const ModelSpec*> models_;
  ConcurrencyLimits own_limits_;  // when the owner has none to share (res_.limits)

  std::mutex mu_;
  PublishedMap published_;                       // GUARDED_BY(mu_)
  std::map<std::string, std::string> versions_;  // GUARDED_BY(mu_)
  std::map<std::string, TaskOutcome> outcomes_;  // GUARDED_BY(mu_)
  std::set<std::string> decided_at_run_;  // GUARDED_BY(mu_): plan: changes known only at run time
  std::mutex publisher_mu_;
  // Polls an accumulating source's partition left out (unreadable), by
  // source: notes for its tables' outcomes. GUARDED_BY(mu_)
  std::map<std::string, std::vector<std::string>> accumulate_notes_;
  std::unique_ptr<Publisher> publisher_;   // GUARDED_BY(publisher_mu_); see GetPublisher
  Publisher* shared_publisher_ = nullptr;  // GUARDED_BY(publisher_mu_): res_.publisher's
  std::unique_ptr<HttpClient> http_;
  HttpFetcher fetcher_;
  std::map<std::string, PartitionScheme> schemes_;              // by source name
  std::map<std::string, std::vector<std::string>> partitions_;  // by asset: keys to run
  // By accumulating source: the partition this run polls for (the current
  // one when the run was planned, even if the clock has moved on since).
  std::map<std::string, std::string> polled_partition_;  // GUARDED_BY(mu_)
  std::map<std::pair<std::string, std::string>, std::string>
      partition_versions_;  // GUARDED_BY(mu_)
  std::map<std::pair<std::string, std::string>, std::shared_future<Result<FetchedSource>>>
      fetches_;  // GUARDED_BY(mu_), by (source, partition)
  // A database table's extract: the columns it was written with (the
  // decoder reads it back with them), and what the user must know of it.
  std::map<std::string, nlohmann::json> db_columns_;          // GUARDED_BY(mu_), by asset
  std::map<std::string, std::vector<std::string>> db_notes_;  // GUARDED_BY(mu_), by asset
  std::set<std::string> read_since_;  // GUARDED_BY(mu_): database tables read since a cursor
  std::map<std::string, std::string> db_read_keys_;  // GUARDED_BY(mu_): ReadKey, by asset
  // Key scans read this run (incremental tables with key_scan:), by asset.
  std::map<std::string, KeyScan> key_scans_;  // GUARDED_BY(mu_)
  // When each database table's read began (its rows' _extracted_at).
  std::map<std::string, std::string> db_extracted_at_;  // GUARDED_BY(mu_)
  // A chunked full read's cursor floor, by asset (ReadInChunks).
  std::map<std::string, std::string> cursor_floors_;  // GUARDED_BY(mu_)
  // Change capture: one read of a source's slot a run, shared by its tables.
  std::map<std::string, std::shared_future<Result<CaptureRead>>>
      captures_;  // GUARDED_BY(mu_), by source
  // By captured table: the cursor its publication holds after this run
  // (published, or nothing to apply up to the read's end).
  std::map<std::string, uint64_t> captured_;  // GUARDED_BY(mu_)
  // Message streams: each table's read (its messages unacknowledged until
  // the run ends), and the tables whose publication holds them.
  std::map<std::string, std::shared_ptr<StreamRead>> streams_;  // GUARDED_BY(mu_), by asset
  std::set<std::string> streamed_;                              // GUARDED_BY(mu_)
};

}  // namespace

namespace {

// A task's fields that ToJson leaves out at these values.
const nlohmann::json& TaskFieldDefaults() {
  static const nlohmann::json kDefaults = {{"previous_version", ""},
                                           {"rows", -1},
                                           {"ms", 0},
                                           {"attempts", 0},
                                           {"bad_rows", 0},
                                           {"error", ""},
                                           {"checks", nlohmann::json::array()},
                                           {"drift", nullptr},
                                           {"partitions", nullptr},
                                           {"notes", nlohmann::json::array()},
                                           {"timings", nlohmann::json::array()}};
  return kDefaults;
}

}  // namespace

nlohmann::json RunReport::ToJson() const {
  // Built field by field (not from initializer lists, which build each
  // pair as an array first): a plan of 10,000 models is 170,000 fields.
  nlohmann::json tasks_json = nlohmann::json::array();
  auto& list = tasks_json.get_ref<nlohmann::json::array_t&>();
  list.reserve(tasks.size());
  for (const TaskOutcome& t : tasks) {
    nlohmann::json task = nlohmann::json::object();
    auto& f = task.get_ref<nlohmann::json::object_t&>();
    f.emplace("asset", t.asset);
    f.emplace("kind", t.kind);
    f.emplace("action", TaskActionName(t.action));
    f.emplace("status", TaskStatusName(t.status));
    f.emplace("reason", t.reason);
    f.emplace("version", t.version_id);
    // The rest only when not at its default (TaskFieldDefaults).
    if (!t.previous_version.empty()) f.emplace("previous_version", t.previous_version);
    if (t.rows != -1) f.emplace("rows", t.rows);
    if (t.ms != 0) f.emplace("ms", t.ms);
    if (t.attempts != 0) f.emplace("attempts", t.attempts);
    if (t.bad_rows != 0) f.emplace("bad_rows", t.bad_rows);
    if (!t.error.empty()) f.emplace("error", t.error);
    if (!t.checks.empty()) {
      nlohmann::json checks = nlohmann::json::array();
      for (const CheckOutcome& c : t.checks) checks.push_back(CheckOutcomeJson(c));
      f.emplace("checks", std::move(checks));
    }
    if (!t.drift.is_null()) f.emplace("drift", t.drift);
    if (!t.partitions.is_null()) f.emplace("partitions", t.partitions);
    if (!t.notes.empty()) f.emplace("notes", t.notes);
    if (!t.timings.empty()) {
      nlohmann::json timings = nlohmann::json::array();
      for (const auto& [phase, ms] : t.timings) {
        timings.push_back(nlohmann::json::array({phase, ms}));
      }
      f.emplace("timings", std::move(timings));
    }
    list.push_back(std::move(task));
  }
  return {{"run_id", run_id},       {"mode", mode}, {"repairs", repairs},
          {"exit_code", exit_code}, {"ms", ms},     {"tasks", std::move(tasks_json)}};
}

void RunReport::FillTaskDefaults(nlohmann::json& report) {
  auto tasks = report.find("tasks");
  if (tasks == report.end() || !tasks->is_array()) return;
  for (nlohmann::json& task : *tasks) {
    if (!task.is_object()) continue;
    for (const auto& [key, value] : TaskFieldDefaults().items()) {
      if (!task.contains(key)) task[key] = value;
    }
  }
}

void RunControl::Cancel() {
  std::lock_guard lock(mu_);
  cancelled_ = true;  // under mu_: a Scope registered after this sees it when it checks
  for (WarehouseSession* s : sessions_) s->Interrupt();
}

RunControl::Scope::Scope(RunControl* control, WarehouseSession* session)
    : control_(control), session_(session) {
  if (!control_) return;
  std::lock_guard lock(control_->mu_);
  control_->sessions_.insert(session_);
}

RunControl::Scope::~Scope() {
  if (!control_) return;
  std::lock_guard lock(control_->mu_);
  control_->sessions_.erase(session_);
}

Result<RunReport> ExecuteRun(const Project& project, const AssetGraph& graph,
                             const EnvResources& resources, const RunOptions& options,
                             const EventSink& events) {
  Run run(project, graph, resources, options, events);
  return run.Execute();
}

}  // namespace sluice
