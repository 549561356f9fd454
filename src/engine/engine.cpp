#include "engine/engine.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <set>
#include <thread>
#include <tuple>

#include "config/loader.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/redact.h"
#include "core/strings.h"
#include "engine/opened.h"
#include "engine/reader.h"
#include "engine/workspace.h"
#include "graph/selector.h"
#include "ingest/http_client.h"
#include "notify/notifier.h"
#include "orchestrate/capture.h"
#include "orchestrate/catalog.h"
#include "orchestrate/runner.h"
#include "orchestrate/scheduler.h"
#include "transform/publication.h"
#include "transform/rollback.h"
#include "warehouse/duckdb.h"

namespace sluice {

namespace {

std::string StripScheme(const std::string& url, const std::string& scheme) {
  return StartsWith(url, scheme) ? url.substr(scheme.size()) : url;
}

nlohmann::json Ok(nlohmann::json result, int exit_code = 0) {
  return {{"ok", true}, {"exit_code", exit_code}, {"result", std::move(result)}};
}

// Brings metadata in line with the warehouse, which is the commit point: a
// crash between a publication and its metadata write leaves the publication.
Status Reconcile(WarehouseSession& session, MetadataStore& metadata, const Clock& clock,
                 RepairReport* repaired, CurrentPublications* current_publications) {
  RETURN_IF_ERROR(metadata.MarkInterruptedRuns(clock.Now()));
  ASSIGN_OR_RETURN(auto latest, LatestPublications(session));
  ASSIGN_OR_RETURN(auto recorded, metadata.ListPublished());
  for (const auto& [key, pub] : latest) {
    auto known = recorded.find(key);
    if (known != recorded.end() && known->second == pub.version_id) continue;
    AssetVersionRecord v;
    v.asset = pub.asset;
    v.partition = pub.partition;
    v.version_id = pub.version_id;
    v.fingerprint = pub.fingerprint;
    v.inputs = pub.inputs;
    v.schema = pub.schema;
    v.rows = pub.rows;
    v.status = "published";
    v.created_at = pub.published_at;
    v.published_at = pub.published_at;
    v.run_id = pub.run_id;
    RETURN_IF_ERROR(metadata.RecordVersion(v));
    RETURN_IF_ERROR(
        metadata.SetPublished(pub.asset, pub.partition, pub.version_id, pub.published_at));
    LOG_INFO("engine", "reconciled {} to version {} from the warehouse", pub.asset, pub.version_id);
  }
  // A warehouse an older Sluice wrote: partitions into one table per asset
  // (before the orphan sweep, which would take their tables for leftovers).
  ASSIGN_OR_RETURN(int moved, MovePartitionsToOneTable(session));
  if (moved) LOG_INFO("engine", "moved the partitions of {} assets into one table each", moved);
  ASSIGN_OR_RETURN(int dropped, DropOrphans(session));
  if (dropped) LOG_INFO("engine", "dropped {} staged builds left by an interrupted run", dropped);
  // Public views dropped or altered by hand are restored now; an asset whose
  // published table is gone is rebuilt by the next run that selects it.
  ASSIGN_OR_RETURN(*repaired, RepairPublicViews(session));
  for (const std::string& r : repaired->restored) LOG_INFO("engine", "repaired {}", r);
  std::set<std::string> lost;
  for (const std::string& r : repaired->lost) {
    LOG_INFO("engine", "{}", r);
    lost.insert(r.substr(0, r.find(':')));
  }
  // An asset whose published table is gone is built as if never built.
  for (auto it = latest.begin(); it != latest.end();) {
    it = lost.count(it->first.first) ? latest.erase(it) : std::next(it);
  }
  current_publications->Set(std::move(latest));
  return Status::Ok();
}

int ExitCodeOf(const Status& st) { return st.code() == StatusCode::kInvalidArgument ? 2 : 1; }

// Whether a run of `select` may start in a workspace with errors: a broken
// file stops only what depends on it, so a selection with no broken file
// upstream runs (the whole project does not). Invalid with the errors when not.
Status CheckRunnable(const Workspace& ws, const std::vector<std::string>& select) {
  if (ws.ok()) return Status::Ok();
  Result<std::vector<std::string>> selected = SelectAssets(ws.graph, select);
  if (select.empty() || !selected.ok()) return Status::Invalid(ws.ErrorText());
  std::vector<ConfigError> blocking = ErrorsBlocking(ws, *selected);
  if (blocking.empty()) return Status::Ok();
  std::string text;
  for (const ConfigError& e : blocking) text += e.ToString() + "\n";
  return Status::Invalid(text);
}

}  // namespace

nlohmann::json ErrorResponse(const std::string& message, int exit_code) {
  return {{"ok", false}, {"exit_code", exit_code}, {"error", Redact(message)}};
}

nlohmann::json ErrorResponse(const Status& status) {
  // What the caller asked for is wrong or not there: a usage error (2).
  bool usage =
      status.code() == StatusCode::kInvalidArgument || status.code() == StatusCode::kNotFound;
  nlohmann::json out = ErrorResponse(status.message(), usage ? 2 : 1);
  out["code"] = StatusCodeName(status.code());
  return out;
}

Engine::Engine(std::string project_root, std::string env_name)
    : project_root_(std::move(project_root)), env_name_(std::move(env_name)) {
  metrics_.Counter("sluice_runs_total", "Runs ended, by status.");
  metrics_.Counter("sluice_tasks_total", "Tasks ended, by kind and status.");
  metrics_.Histogram("sluice_task_duration_seconds", "Task durations, by status.",
                     {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 1800, 3600});
  metrics_.Counter("sluice_check_failures_total",
                   "Checks that did not pass, by severity (error blocks publication).");
  metrics_.Counter("sluice_rows_published_total", "Rows of the versions published.");
}

void Engine::CountRun(const RunReport& report) {
  int failed = 0;
  bool cancelled = false;
  for (const TaskOutcome& t : report.tasks) {
    failed += EndedBadly(t.status);
    cancelled = cancelled || t.status == TaskStatus::kCancelled;
    metrics_.Add("sluice_tasks_total", {{"kind", t.kind}, {"status", TaskStatusName(t.status)}});
    metrics_.Observe("sluice_task_duration_seconds", {{"status", TaskStatusName(t.status)}},
                     static_cast<double>(t.ms) / 1000.0);
    for (const CheckOutcome& c : t.checks) {
      if (c.status != CheckStatus::kPass) {
        metrics_.Add("sluice_check_failures_total", {{"severity", c.Blocks() ? "error" : "warn"}});
      }
    }
    if (t.status == TaskStatus::kSuccess && t.rows > 0) {
      metrics_.Add("sluice_rows_published_total", {}, static_cast<double>(t.rows));
    }
  }
  metrics_.Add("sluice_runs_total", {{"status", cancelled ? "cancelled"
                                                : failed  ? "failed"
                                                          : "success"}});
}

Engine::~Engine() {
  WaitForBackground();
  WaitForNotifications();
}

void Engine::SetCaptureFeeds(std::shared_ptr<CaptureFeeds> feeds) {
  std::lock_guard lock(feeds_mu_);
  feeds_ = std::move(feeds);
}

void Engine::SetPauseListener(PauseListener listener) {
  std::lock_guard lock(pause_listener_mu_);
  pause_listener_ = std::move(listener);
}

void Engine::BeginShutdown() {
  {
    std::lock_guard lock(background_mu_);
    closing_ = true;
  }
  background_cv_.notify_all();
  run_events_.Stop();
}

void Engine::WaitForBackground() {
  BeginShutdown();
  std::thread worker;
  {
    std::lock_guard lock(background_mu_);
    worker.swap(background_worker_);
  }
  if (worker.joinable()) worker.join();
  std::lock_guard lock(background_mu_);
  // What was not started stays 'queued' in metadata: the next owner starts it.
  background_queue_.clear();
  closing_ = false;
}

Engine::RunsExcluded::RunsExcluded(Engine* engine,
                                   std::optional<std::chrono::milliseconds> patience) {
  {
    std::lock_guard gate(engine->gate_mu_);
    ++engine->exclusive_waiting_;
  }
  if (patience) {
    lock_ = std::unique_lock(engine->runs_mu_, *patience);
  } else {
    lock_ = std::unique_lock(engine->runs_mu_);
  }
  {
    std::lock_guard gate(engine->gate_mu_);
    --engine->exclusive_waiting_;
  }
  engine->gate_cv_.notify_all();  // runs queue on runs_mu_ itself now
}

Engine::RunsExcluded::~RunsExcluded() = default;

void Engine::Close() {
  WaitForBackground();
  WaitForNotifications();
  {
    std::shared_ptr<OpenLineageSender> lineage;
    {
      std::lock_guard lock(notify_mu_);
      lineage.swap(lineage_);
      lineage_config_.clear();
    }
    // Flushed (for up to 5 s) as the last reference goes.
  }
  RunsExcluded no_runs(this);
  std::lock_guard lock(open_mu_);
  opened_.reset();
  ++data_state_;
}

void Engine::WaitForNotifications() {
  std::vector<std::future<void>> pending;
  {
    std::lock_guard lock(notify_mu_);
    pending.swap(deliveries_);
  }
  for (auto& f : pending) f.wait();
}

std::shared_ptr<OpenLineageSender> Engine::LineageSender(const Project& project) {
  const OpenLineageSpec& spec = *project.openlineage;
  std::string config = spec.url + "\n" + spec.api_key + "\n" + spec.loc.ToString();
  std::shared_ptr<OpenLineageSender> replaced;  // flushed outside the lock, as it goes
  std::lock_guard lock(notify_mu_);
  if (!lineage_ || lineage_config_ != config) {
    replaced = std::move(lineage_);
    DeliveryOptions options;
    options.tmp_dir = JoinPath(project.environments.at(env_name_).state_dir, "tmp");
    options.backoff_ms = 500;
    options.timeout_ms = 5000;
    lineage_ = std::make_shared<OpenLineageSender>(spec, project.secret_providers, options);
    lineage_config_ = config;
  }
  return lineage_;
}

void Engine::Notify(const Project& project, MetadataStore* metadata, const nlohmann::json& report) {
  if (project.notify.empty()) return;
  int64_t run_id = report.value("run_id", int64_t{0});
  std::map<std::string, std::string> previous;
  Result<std::map<std::string, std::string>> before = metadata->PreviousTaskStatuses(run_id);
  if (before.ok()) previous = std::move(*before);
  std::vector<Notification> notes = NotificationsOf(report, project.name, previous);
  if (notes.empty()) return;
  DeliveryOptions options;
  options.tmp_dir = JoinPath(project.environments.at(env_name_).state_dir, "tmp");
  auto deliver = [notes, hooks = project.notify, secrets = project.secret_providers,
                  name = project.name, run_id, options]() {
    try {  // a thread boundary
      std::unique_ptr<HttpClient> client = NewCurlHttpClient();
      for (const Status& st : Deliver(notes, hooks, secrets, name, run_id, *client, options)) {
        LOG_WARN("notify", "{}", st.message());
      }
    } catch (const std::exception& e) {
      LOG_ERROR("notify", "sending notifications of run {}: {}", run_id, e.what());
    } catch (...) {
      LOG_ERROR("notify", "sending notifications of run {}: an unknown exception", run_id);
    }
  };
  std::lock_guard lock(notify_mu_);
  // Finished deliveries are dropped as new ones come.
  deliveries_.erase(std::remove_if(deliveries_.begin(), deliveries_.end(),
                                   [](std::future<void>& f) {
                                     return f.wait_for(std::chrono::seconds(0)) ==
                                            std::future_status::ready;
                                   }),
                    deliveries_.end());
  deliveries_.push_back(std::async(std::launch::async, deliver));
}

Result<Engine::Opened*> Engine::Open(const Project& project) {
  std::lock_guard lock(open_mu_);
  if (opened_) return opened_.get();
  auto opened = std::make_unique<Opened>();
  opened->env = project.environments.at(env_name_);
  opened->external = project.external;
  const EnvironmentSpec& env = opened->env;
  RETURN_IF_ERROR(MakeDirs(env.state_dir));
  std::string tmp = JoinPath(env.state_dir, "tmp");
  RETURN_IF_ERROR(MakeDirs(tmp));
  DuckDbOptions options;
  options.memory_limit = project.defaults.memory_limit;
  options.block_size = project.defaults.block_size;
  options.threads = project.defaults.query_threads;
  options.temp_directory = tmp;
  options.file_search_path = project.root;
  std::string wh_path = StripScheme(env.warehouse, "duckdb:");
  RETURN_IF_ERROR(MakeDirs(Dirname(wh_path)));
  // A previous owner closes the warehouse before it releases its lease, but a
  // process outside Sluice may still hold DuckDB's lock for a moment: wait.
  for (int attempt = 0;; ++attempt) {
    Result<std::unique_ptr<Warehouse>> wh = OpenDuckDbWarehouse(wh_path, options);
    if (wh.ok()) {
      opened->warehouse = std::move(wh).value();
      break;
    }
    if (!IsTransientWarehouseError(wh.status()) || attempt >= 50) return wh.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::string meta_path = StripScheme(env.metadata, "sqlite:");
  RETURN_IF_ERROR(MakeDirs(Dirname(meta_path)));
  ASSIGN_OR_RETURN(opened->metadata, OpenSqliteMetadata(meta_path, &clock_));
  ASSIGN_OR_RETURN(opened->lake, OpenLocalObjectStore(env.lake));
  {
    // Work folders of command assets a dead owner left (their outputs, if
    // any, were archived in the lake before they were needed), and the
    // dataset API's Parquet pages it was writing.
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(JoinPath(env.state_dir, "tmp"), ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (StartsWith(name, "command-") || StartsWith(name, "page-")) {
        std::error_code ignored;
        std::filesystem::remove_all(it->path(), ignored);
      }
    }
  }
  opened->archive =
      std::make_unique<RawArchive>(opened->lake.get(), opened->metadata.get(), &clock_);
  ASSIGN_OR_RETURN(auto session, opened->warehouse->Connect());
  RETURN_IF_ERROR(EnsureInternalSchema(*session));
  // Metadata follows the warehouse; when it cannot be brought in line now (a
  // full disk), readers still read, and the next open reconciles it.
  Status reconciled =
      Reconcile(*session, *opened->metadata, clock_, &opened->startup_repairs, &opened->current);
  if (!reconciled.ok()) {
    LOG_WARN("engine", "cannot reconcile metadata with the warehouse now: {}",
             reconciled.message());
  }
  opened->publisher =
      std::make_unique<SharedPublisher>(clock_, &opened->current, opened->warehouse.get());
  opened->readers = std::make_unique<ReaderSessions>(opened->warehouse.get());
  opened_ = std::move(opened);
  ++data_state_;
  return opened_.get();
}

nlohmann::json Engine::Handle(const nlohmann::json& request, const EventSink& events) {
  try {
    std::string cmd = request.value("cmd", "");
    if (cmd == "ping") return Ok({{"pid", ::getpid()}});
    if ((cmd == "run" || cmd == "submit") && request.contains("rerun")) {
      Result<nlohmann::json> resolved = ResolveRerun(request);
      if (!resolved.ok()) return ErrorResponse(resolved.status());
      return cmd == "run" ? HandleRun(*resolved, events) : HandleSubmit(*resolved);
    }
    if (cmd == "run" || cmd == "plan" || cmd == "test") return HandleRun(request, events);
    if (cmd == "submit") return HandleSubmit(request);
    if (cmd == "cancel") return HandleCancel(request);
    if (cmd == "checkpoint") {
      // The owner folds the WAL into the database file (serve, periodically):
      // a busy owner's WAL does not grow without end. DuckDB refuses while a
      // transaction writes; the next one will do.
      Result<Opened*> opened = OpenForRequest();
      if (!opened.ok()) return ErrorResponse(opened.status());
      Result<std::unique_ptr<WarehouseSession>> session = (*opened)->warehouse->Connect();
      if (!session.ok()) return ErrorResponse(session.status());
      Status st = (*session)->Execute("CHECKPOINT");
      if (!st.ok()) return ErrorResponse(Status::Busy(st.message()));
      return Ok(nlohmann::json::object());
    }
    if (cmd == "query") return HandleQuery(request);
    if (cmd == "export") return HandleExport(request);
    if (cmd == "data") return HandleData(request, events);
    if (cmd == "metrics") {
      std::string text = metrics_.Text();
      std::map<std::string, nlohmann::json> cursors;  // by asset, for captures and streams
      {
        std::lock_guard lock(open_mu_);
        if (opened_) {
          (void)opened_->current.Visit([&](const CurrentPublications::Map& map) {
            for (const auto& [key, pub] : map) {
              if (key.second.empty()) cursors[key.first] = pub.cursor;
            }
          });
          text +=
              "# HELP sluice_fetch_bytes_total Bytes fetched and logged in the lake.\n"
              "# TYPE sluice_fetch_bytes_total counter\n"
              "sluice_fetch_bytes_total " +
              std::to_string(opened_->archive->logged_bytes()) + "\n";
        }
      }
      // Captured sources' slots, asked of their servers now (outside the lock).
      if (std::shared_ptr<const Workspace> ws = LatestWorkspace(); ws && ws->ok()) {
        text += CaptureMetricsText(ws->project, ws->env_name, cursors);
        text += StreamMetricsText(ws->project, ws->env_name, cursors);
      }
      return Ok({{"text", text}});
    }
    if (cmd == "check") return HandleCheck(request);
    if (cmd == "assets" || cmd == "asset" || cmd == "lineage" || cmd == "issues" ||
        cmd == "fetches") {
      return HandleCatalog(request);
    }
    if (cmd == "runs") return HandleRuns(request);
    if (cmd == "run_detail") return HandleRunDetail(request);
    if (cmd == "logs") return HandleLogs(request);
    if (cmd == "rollback") return HandleRollback(request);
    if (cmd == "schedules" || cmd == "pause" || cmd == "resume") return HandleSchedules(request);
    return ErrorResponse("unknown engine request '" + cmd + "'");
  } catch (const std::exception& e) {
    return ErrorResponse(std::string("internal error: ") + e.what(), 1);
  }
}

nlohmann::json Engine::HandleRollback(const nlohmann::json& request) {
  // A publication outside the shared publisher: it waits until no run is in
  // flight, and the publisher reads _sluice_v afresh after it.
  // New runs wait meanwhile (polls too): not for longer than this.
  RunsExcluded no_runs(this, std::chrono::seconds(30));
  if (!no_runs.acquired()) {
    return ErrorResponse(Status::Busy(
        "runs are in flight and a rollback waits until none is; try again when they have "
        "ended (sluice runs lists them)"));
  }
  Workspace ws = LoadWorkspace(project_root_, env_name_);
  if (!ws.ok()) return ErrorResponse(ws.ErrorText(), 2);
  std::string asset = request.value("asset", "");
  if (!ws.graph.Find(asset)) {
    std::vector<std::string> names;
    for (const AssetNode& n : ws.graph.nodes) names.push_back(n.name);
    return ErrorResponse("no asset '" + asset + "'" + DidYouMeanHint(asset, names), 2);
  }
  Result<Opened*> opened = Open(ws.project);
  if (!opened.ok()) return ErrorResponse(opened.status().message(), 1);
  Result<std::unique_ptr<WarehouseSession>> session = (*opened)->warehouse->Connect();
  if (!session.ok()) return ErrorResponse(session.status().message(), 1);
  (*opened)->current.Invalidate();  // the next run reads what the rollback published
  (*opened)->publisher->Reset();
  const std::string partition = request.value("partition", "");
  Result<RollbackResult> done =
      RollbackAsset(**session, ws.graph.Find(asset)->name, request.value("to", ""), clock_,
                    request.value("request_id", ""), partition);
  // Again, now it has committed (or not): a reader may have loaded the
  // publications in between (readers do not wait for runs or rollbacks),
  // and what it loaded must not outlive the rollback.
  (*opened)->current.Invalidate();
  if (!done.ok()) {
    int code = done.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
    return ErrorResponse(done.status().message(), code);
  }
  AssetVersionRecord v;
  v.asset = asset;
  v.partition = partition;
  v.version_id = done->to.version_id;
  v.fingerprint = done->to.fingerprint;
  v.inputs = done->to.inputs;
  v.schema = done->to.schema;
  v.rows = done->to.rows;
  v.status = "rolled_back";
  v.created_at = v.published_at = done->to.published_at;
  Status recorded = (*opened)->metadata->RecordVersion(v);
  if (recorded.ok()) {
    recorded = (*opened)->metadata->SetPublished(asset, partition, v.version_id, v.published_at);
  }
  if (!recorded.ok()) LOG_WARN("engine", "rollback of {}: metadata: {}", asset, recorded.message());
  // Every asset that reads this one, directly or not, rebuilds on its next run.
  std::vector<std::string> downstream;
  const AssetNode* node = ws.graph.Find(asset);
  std::vector<std::string> queue(node->downstream.begin(), node->downstream.end());
  std::set<std::string> seen;
  while (!queue.empty()) {
    std::string next = queue.back();
    queue.pop_back();
    if (!seen.insert(next).second) continue;
    downstream.push_back(next);
    for (const std::string& d : ws.graph.Find(next)->downstream) queue.push_back(d);
  }
  std::sort(downstream.begin(), downstream.end());
  return Ok({{"asset", asset},
             {"partition", partition},
             {"from", done->from.version_id},
             {"to", done->to.version_id},
             {"rows", done->to.rows},
             {"downstream", downstream}});
}

Status CheckRunFields(const nlohmann::json& request) {
  if (request.contains("select")) {
    const nlohmann::json& s = request["select"];
    if (!s.is_array() ||
        !std::all_of(s.begin(), s.end(), [](const auto& v) { return v.is_string(); })) {
      return Status::Invalid("select: expected a list of selectors, e.g. [\"stops+\"]");
    }
  }
  if (request.contains("full_refresh") && !request["full_refresh"].is_boolean()) {
    return Status::Invalid("full_refresh: expected true or false");
  }
  for (const char* key : {"partition", "trigger", "tick"}) {
    if (request.contains(key) && !request[key].is_string()) {
      return Status::Invalid(std::string(key) + ": expected a string");
    }
  }
  if (request.contains("vars") && !request["vars"].is_object()) {
    return Status::Invalid("vars: expected an object of name: value");
  }
  return Status::Ok();
}

nlohmann::json Engine::HandleRun(const nlohmann::json& request, const EventSink& events) {
  // Every transport's request is checked here (a wrong type is a 400, never a thrown 500).
  if (Status fields = CheckRunFields(request); !fields.ok()) return ErrorResponse(fields);
  std::string cmd = request.value("cmd", "run");
  // How `sluice cancel` reaches the run; a submitted run has its id already,
  // so it can be cancelled while it waits for the run before it.
  std::shared_ptr<RunControl> control = cmd == "run" ? std::make_shared<RunControl>() : nullptr;
  int64_t submitted = cmd == "run" ? request.value("run_id", int64_t{0}) : 0;
  std::set<int64_t> registered;
  struct Unregister {
    Engine* engine;
    std::set<int64_t>* ids;
    ~Unregister() {
      std::lock_guard lock(engine->controls_mu_);
      for (int64_t id : *ids) engine->controls_.erase(id);
    }
  } unregister{this, &registered};
  if (submitted != 0) {
    std::lock_guard lock(controls_mu_);
    controls_[submitted] = control;
    registered.insert(submitted);
  }
  // Runs overlap (each task holds its asset while it builds: AssetHolds);
  // plan and test only read what is published and answer at once.
  std::shared_lock run_lock(runs_mu_, std::defer_lock);
  if (cmd == "run") {
    {
      // Behind a rollback (or Close) that waits for the runs in flight.
      std::unique_lock gate(gate_mu_);
      gate_cv_.wait(gate, [&] { return exclusive_waiting_ == 0; });
    }
    run_lock.lock();
  }
  if (submitted != 0) {
    // A submitted run that has waited until the owner began to stop stays
    // queued: the next owner starts it (ResubmitQueuedRuns).
    std::lock_guard lock(background_mu_);
    if (closing_) return Ok({{"run_id", submitted}, {"left_queued", true}});
  }
  if (submitted != 0 && control->cancelled()) {
    // Cancelled while it waited: it never starts.
    Result<MetadataStore*> metadata = Metadata();
    if (!metadata.ok()) return ErrorResponse(metadata.status());
    Status st = (*metadata)->FinishRun(submitted, RunStatus::kCancelled, 1,
                                       "cancelled before it started", clock_.Now());
    if (!st.ok()) return ErrorResponse(st);
    return Ok({{"run_id", submitted}, {"cancelled", true}}, 1);
  }
  std::string description;  // how a run waiting for one of its assets names it
  if (cmd == "run") {
    std::vector<std::string> select;
    if (request.contains("select") && request["select"].is_array()) {
      for (const auto& s : request["select"]) {
        if (s.is_string()) select.push_back(s.get<std::string>());
      }
    }
    std::string trigger = request.value("trigger", "");
    description = "`sluice run" + (select.empty() ? "" : " " + Join(select, " ")) + "` (" +
                  (trigger.empty() ? "" : trigger + ", ") + "pid " + std::to_string(::getpid()) +
                  ", started " + FormatTimestamp(clock_.Now()) + ")";
  }
  int64_t t0 = MonotonicMillis();
  nlohmann::json vars = request.value("vars", nlohmann::json::object());
  if (!vars.is_object()) return ErrorResponse("vars: expected an object of name: value", 2);
  std::vector<std::string> listed;
  std::shared_ptr<const Workspace> ws_kept = WorkspaceForRun(vars, cmd != "test", events, &listed);
  const Workspace& ws = *ws_kept;
  std::vector<std::string> select;
  if (request.contains("select")) select = request["select"].get<std::vector<std::string>>();
  if (Status runnable = CheckRunnable(ws, select); !runnable.ok()) return ErrorResponse(runnable);
  if (!ws.ok() && events) {
    std::set<std::string> files;
    for (const ConfigError& e : ws.errors) files.insert(e.loc.file);
    events({{"type", "warning"},
            {"message", "running despite errors in " + Join({files.begin(), files.end()}, ", ") +
                            ": none is upstream of the selection (see sluice validate)"}});
  }
  int64_t t1 = MonotonicMillis();
  Result<Opened*> opened = Open(ws.project);
  if (!opened.ok()) return ErrorResponse(opened.status().message(), 1);
  RunOptions options;
  options.mode = cmd == "plan" ? RunMode::kPlan : cmd == "test" ? RunMode::kTest : RunMode::kRun;
  // "backfill" is a run over a range of partitions, recorded as such.
  options.command = cmd == "run" && request.value("command", "") == "backfill" ? "backfill" : cmd;
  options.full_refresh = request.value("full_refresh", false);
  options.partition = request.value("partition", "");
  options.threads = request.value("threads", 4);
  options.trigger = request.value("trigger", "");
  options.tick = request.value("tick", "");
  options.vars = vars;
  options.run_id = cmd == "run" ? request.value("run_id", int64_t{0}) : 0;
  options.description = description;
  if (request.contains("select"))
    options.select = request["select"].get<std::vector<std::string>>();
  if (auto shown = request.find("events");
      options.mode != RunMode::kRun && shown != request.end() && shown->is_array()) {
    // Only the types the client shows are built (a run's events also go to
    // live readers and OpenLineage: all of them, always).
    options.event_types.emplace();
    for (const nlohmann::json& type : *shown) {
      if (type.is_string()) options.event_types->insert(type.get<std::string>());
    }
  }
  if (options.mode == RunMode::kRun) {
    // The exports follow what the run published (engine/exports.cpp).
    Opened* env = *opened;
    options.after = [this, env, &ws](const std::vector<TaskOutcome>& tasks) {
      std::set<std::string> ran;
      for (const TaskOutcome& t : tasks) ran.insert(t.asset);
      return WriteExports(env, ws, {}, false, ran);
    };
  }
  EventSink run_events = events;
  if (control) {
    options.control = control;
    // A typed run can be cancelled once it has an id (`sluice cancel ID`).
    run_events = [this, events, control, &registered](const nlohmann::json& e) {
      if (e.value("type", "") == "run_start") {
        int64_t id = e.value("run_id", int64_t{0});
        std::lock_guard lock(controls_mu_);
        controls_[id] = control;
        registered.insert(id);
      }
      if (events) events(e);
    };
  }
  if (options.mode == RunMode::kRun) {
    // Live readers see each run's progress (task events carry their run's id).
    auto run_id = std::make_shared<int64_t>(0);
    EventSink inner = run_events;
    run_events = [this, run_id, inner](const nlohmann::json& e) {
      const std::string type = e.value("type", "");
      if (type == "run_start") *run_id = e.value("run_id", int64_t{0});
      if (type == "run_start" || type == "run_end" || type == "task_start" || type == "task_end") {
        nlohmann::json live = e;
        live["run_id"] = *run_id;
        run_events_.Publish(std::move(live));
      }
      if (inner) inner(e);
    };
  }
  if (options.mode == RunMode::kRun && ws.project.openlineage) {
    // Each task's start and end, and the run's, to the OpenLineage collector.
    std::shared_ptr<OpenLineageSender> sender = LineageSender(ws.project);
    LineageContext context;
    context.job_namespace = ws.project.openlineage->job_namespace;
    std::string warehouse = (*opened)->env.warehouse;
    context.dataset_namespace =
        "duckdb://" + (StartsWith(warehouse, "duckdb:") ? warehouse.substr(7) : warehouse);
    context.publish_namespace = "file://" + (*opened)->env.publish_dir;
    context.project = ws.project.name;
    context.env = env_name_;
    // The run's id and start: set by run_start, before any task starts.
    auto run_key = std::make_shared<std::string>();
    EventSink inner = run_events;
    run_events = [this, sender, context, run_key, inner, &ws](const nlohmann::json& e) {
      if (e.value("type", "") == "run_start") {
        *run_key =
            std::to_string(e.value("run_id", int64_t{0})) + "@" + std::to_string(clock_.Now());
      }
      nlohmann::json event = OpenLineageEvent(e, *run_key, ws.graph, context, clock_.Now());
      if (!event.is_null()) sender->Send(std::move(event));
      if (inner) inner(e);
    };
  }
  EnvResources res{&(*opened)->env,
                   (*opened)->warehouse.get(),
                   (*opened)->metadata.get(),
                   (*opened)->archive.get(),
                   &clock_,
                   &(*opened)->current,
                   (*opened)->publisher.get(),
                   &(*opened)->holds,
                   &(*opened)->limits};
  std::shared_ptr<CaptureFeeds> feeds;  // kept for the run's length
  {
    std::lock_guard lock(feeds_mu_);
    feeds = feeds_;
  }
  res.feeds = feeds.get();
  // A reloaded project's limits apply from this run on (to every run's
  // tasks not started yet).
  (*opened)->limits.Configure(ws.project.concurrency);
  int64_t t2 = MonotonicMillis();
  Result<RunReport> report = ExecuteRun(ws.project, ws.graph, res, options, run_events);
  if (report.ok() && options.mode == RunMode::kRun) {
    // Repairs made when the environment was opened are this run's to report.
    std::lock_guard lock(open_mu_);
    RepairReport& startup = (*opened)->startup_repairs;
    std::vector<std::string> earlier = startup.restored;
    earlier.insert(earlier.end(), startup.lost.begin(), startup.lost.end());
    for (auto it = earlier.rbegin(); it != earlier.rend(); ++it) {
      if (std::find(report->repairs.begin(), report->repairs.end(), *it) == report->repairs.end()) {
        report->repairs.insert(report->repairs.begin(), *it);
      }
    }
    startup = RepairReport();
  }
  LOG_INFO("engine", "{}: workspace {} ms, open {} ms, {} {} ms", cmd, t1 - t0, t2 - t1, cmd,
           MonotonicMillis() - t2);
  if (!report.ok()) {
    int code = report.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
    if (options.mode == RunMode::kRun) {
      // A run that failed as a whole (before its tasks) is a failed run too.
      Notify(ws.project, (*opened)->metadata.get(),
             {{"run_id", 0},
              {"tasks",
               {{{"asset", options.select.empty() ? "the run" : Join(options.select, " ")},
                 {"status", "failed"},
                 {"error", Redact(report.status().message())}}}}});
    }
    return ErrorResponse(report.status().message(), code);
  }
  nlohmann::json result = report->ToJson();
  // What listing the schema sources found, for --json too.
  if (!listed.empty()) result["warnings"] = listed;
  if (options.mode == RunMode::kRun) {
    CountRun(*report);
    if (ws.ok() && vars.empty()) {
      // What was published came from this workspace (readers' keys and
      // cacheability follow it).
      std::lock_guard lock(workspace_mu_);
      latest_workspace_ = ws_kept;
      ++data_state_;
    }
    Notify(ws.project, (*opened)->metadata.get(), result);
  }
  return Ok(std::move(result), report->exit_code);
}

namespace {

bool HasSchemaSources(const Project& project) {
  return std::any_of(project.sources.begin(), project.sources.end(), [](const SourceSpec& src) {
    return src.database && !src.database->schema.empty();
  });
}

}  // namespace

void Engine::KeepWorkspace() {
  std::lock_guard lock(kept_mu_);
  if (!watcher_) {
    watcher_ = TreeWatcher::Start(project_root_,
                                  {"sluice.yaml", "fields.yaml", "sources", "models", "seeds"},
                                  {"sources", "models", "seeds"});
  }
}

std::optional<uint64_t> Engine::ProjectChanges() {
  std::lock_guard lock(kept_mu_);
  if (!watcher_) return std::nullopt;
  return watcher_->Changes();
}

void Engine::ForgetWorkspace() {
  std::lock_guard lock(kept_mu_);
  kept_.reset();
  ++forgotten_;
}

std::shared_ptr<const Workspace> Engine::WorkspaceForRun(const nlohmann::json& vars,
                                                         bool list_schemas, const EventSink& events,
                                                         std::vector<std::string>* listed) {
  // A trigger's vars change what templates render: loaded for that run only.
  const bool keepable = vars.is_object() && vars.empty();
  std::shared_ptr<const Workspace> kept;
  uint64_t changes = 0, forgotten = 0;
  bool watched = false;
  {
    std::lock_guard lock(kept_mu_);
    if (keepable && watcher_) {
      watched = true;
      changes = watcher_->Changes();  // read before loading: a change during the load counts
      forgotten = forgotten_;
      if (kept_ && kept_->changes == changes) kept = kept_->ws;
    }
  }
  if (!kept) {
    std::optional<LoadedProject> read;
    if (list_schemas) *listed = ListSchemas(vars, events, &read);
    auto loaded = std::make_shared<const Workspace>(
        read ? LoadWorkspace(std::move(*read), env_name_, vars, /*secret_files=*/!watched)
             : LoadWorkspace(project_root_, env_name_, vars, /*secret_files=*/!watched));
    if (!watched) return loaded;
    // Schema sources are listed before each run (the listing may change
    // the project): never kept.
    if (!HasSchemaSources(loaded->project)) {
      std::lock_guard lock(kept_mu_);
      if (forgotten == forgotten_) kept_ = KeptWorkspace{loaded, changes};
    }
    kept = std::move(loaded);
  }
  // The secrets files' modes, checked at every use (inotify watches the
  // project's folders, not wherever a secrets file lives).
  std::vector<ConfigError> secrets = SecretFileErrors(kept->project);
  if (secrets.empty()) return kept;
  auto with_errors = std::make_shared<Workspace>(*kept);
  for (ConfigError& e : secrets) with_errors->errors.push_back(std::move(e));
  return with_errors;
}

std::vector<std::string> Engine::ListSchemas(const nlohmann::json& vars, const EventSink& events,
                                             std::optional<LoadedProject>* unchanged) {
  LoadedProject loaded = LoadProject(project_root_);
  bool any = false;
  for (const SourceSpec& src : loaded.project.sources) {
    any = any || (src.database && !src.database->schema.empty());
  }
  if (!any) {
    if (unchanged) *unchanged = std::move(loaded);
    return {};
  }
  if (vars.is_object()) {
    for (const auto& [key, value] : vars.items()) loaded.project.vars[key] = value;
  }
  std::vector<std::string> notes;
  RefreshCatalogs(loaded.project, env_name_, &notes);
  for (const std::string& note : notes) {
    LOG_INFO("engine", "{}", note);
    if (events) events({{"type", "warning"}, {"message", note}});
  }
  return notes;
}

nlohmann::json Engine::HandleSubmit(const nlohmann::json& request) {
  // The request is checked here, in full, so that a bad one is refused now
  // rather than recorded as a run that fails.
  if (Status fields = CheckRunFields(request); !fields.ok()) return ErrorResponse(fields);
  nlohmann::json run = {{"cmd", "run"}};
  std::vector<std::string> select = request.value("select", std::vector<std::string>{});
  run["select"] = select;
  if (request.contains("full_refresh")) run["full_refresh"] = request["full_refresh"];
  for (const char* key : {"partition", "trigger"}) {
    if (request.contains(key)) run[key] = request[key];
  }
  // A backfill: the run over a range of partitions, recorded as such.
  bool backfill = false;
  if (request.contains("backfill")) {
    if (!request["backfill"].is_boolean()) {
      return ErrorResponse(Status::Invalid("backfill: expected true or false"));
    }
    backfill = request["backfill"].get<bool>();
    if (backfill && run.value("partition", "").empty()) {
      return ErrorResponse(
          Status::Invalid("backfill: needs \"partition\": \"FROM..TO\" (or one partition)"));
    }
    if (backfill) run["command"] = "backfill";
  }
  nlohmann::json vars = request.value("vars", nlohmann::json::object());
  run["vars"] = vars;
  std::vector<std::string> listed;
  std::shared_ptr<const Workspace> ws_kept = WorkspaceForRun(vars, true, nullptr, &listed);
  const Workspace& ws = *ws_kept;
  if (Status runnable = CheckRunnable(ws, select); !runnable.ok()) return ErrorResponse(runnable);
  if (Result<std::vector<std::string>> selected = SelectAssets(ws.graph, select); !selected.ok()) {
    return ErrorResponse(Status::Invalid(selected.status().message()));
  }
  {
    std::lock_guard lock(background_mu_);
    if (closing_) {
      return ErrorResponse(
          Status::Busy("the owner is stopping; submit the run again to the next one"));
    }
  }
  Result<Opened*> opened = OpenForRequest();
  if (!opened.ok()) return ErrorResponse(opened.status());
  RunRecord record;
  record.command = backfill ? "backfill" : "run";
  record.status = RunStatus::kQueued;
  record.started_at = clock_.Now();
  // What it takes to start it again should this owner die first.
  record.args = run;
  record.args.erase("cmd");
  Result<int64_t> id = (*opened)->metadata->BeginRun(record);
  if (!id.ok()) return ErrorResponse(id.status());
  run_events_.Publish({{"type", "run_queued"}, {"run_id", *id}});
  Status started = StartBackground(*id, run);
  if (!started.ok()) {
    // Recorded, and started by the next owner: say so rather than fail.
    return Ok({{"id", *id}, {"status", "queued"}, {"note", started.message()}});
  }
  return Ok({{"id", *id}, {"status", "queued"}});
}

void Engine::RunSubmitted(int64_t run_id, const nlohmann::json& request) {
  // A thread boundary: whatever happens, the run does not stay queued.
  std::string failure;
  try {
    nlohmann::json response = Handle(request, nullptr);
    if (!response.value("ok", false)) failure = response.value("error", "failed");
  } catch (const std::exception& e) {
    failure = std::string("internal error: ") + e.what();
  } catch (...) {
    failure = "internal error: an unknown exception";
  }
  if (failure.empty()) return;
  LOG_WARN("engine", "run {}: {}", run_id, failure);
  Result<MetadataStore*> metadata = Metadata();
  if (!metadata.ok()) return;
  Result<std::optional<RunRecord>> run = (*metadata)->GetRun(run_id);
  if (run.ok() && *run &&
      ((*run)->status == RunStatus::kQueued || (*run)->status == RunStatus::kRunning)) {
    Status st = (*metadata)->FinishRun(run_id, RunStatus::kFailed, 1, failure, clock_.Now());
    if (!st.ok()) LOG_WARN("engine", "recording run {}: {}", run_id, st.message());
  }
}

Status Engine::StartBackground(int64_t run_id, nlohmann::json request) {
  request["run_id"] = run_id;
  std::lock_guard lock(background_mu_);
  // Stopping: the run stays queued for the next owner.
  if (closing_) return Status::Busy("the owner is stopping; the run starts with the next one");
  background_queue_.emplace_back(run_id, std::move(request));
  if (!background_worker_.joinable()) {
    // One worker runs submitted runs in the order they came (runs are
    // serialised anyway): no thread per request.
    background_worker_ = std::thread([this] {
      while (true) {
        std::pair<int64_t, nlohmann::json> next;
        {
          std::unique_lock wait(background_mu_);
          background_cv_.wait(wait, [this] { return closing_ || !background_queue_.empty(); });
          if (closing_ || background_queue_.empty()) return;
          next = std::move(background_queue_.front());
          background_queue_.pop_front();
        }
        RunSubmitted(next.first, next.second);
      }
    });
  }
  background_cv_.notify_all();
  return Status::Ok();
}

Result<nlohmann::json> Engine::ResolveRerun(const nlohmann::json& request) {
  if (!request["rerun"].is_number_integer()) return Status::Invalid("rerun: expected a run id");
  int64_t id = request["rerun"].get<int64_t>();
  if (request.contains("select") && request["select"].is_array() && !request["select"].empty()) {
    return Status::Invalid("a rerun takes no selectors: it runs what did not end well in run " +
                           std::to_string(id));
  }
  ASSIGN_OR_RETURN(MetadataStore * metadata, Metadata());
  ASSIGN_OR_RETURN(std::optional<RunRecord> run, metadata->GetRun(id));
  if (!run) return Status::NotFound("no run " + std::to_string(id) + " (see sluice runs)");
  if (run->status == RunStatus::kRunning || run->status == RunStatus::kQueued) {
    return Status::Invalid("run " + std::to_string(id) + " is still " + RunStatusName(run->status));
  }
  ASSIGN_OR_RETURN(std::vector<TaskRecord> tasks, metadata->ListTasks(id));
  std::set<std::string> again;
  for (const TaskRecord& t : tasks) {
    std::optional<TaskStatus> status = ParseTaskStatus(t.status);
    if (status && !EndedBadly(*status)) continue;
    if (StartsWith(t.asset, "export:")) {
      // An export is written again after a run of what it reads (it is
      // due until it is written); "export:*" failed before any one export.
      std::shared_ptr<const Workspace> ws = LatestWorkspace();
      for (const ExportNode& x : ws->graph.exports) {
        if (t.asset == "export:*" || x.name == t.asset.substr(7)) {
          again.insert(x.upstream.begin(), x.upstream.end());
        }
      }
      continue;
    }
    again.insert(t.asset);
  }
  if (again.empty()) {
    return Status::Invalid("run " + std::to_string(id) + " has no task to run again (it is " +
                           RunStatusName(run->status) + ")");
  }
  nlohmann::json out = request;
  out.erase("rerun");
  out["select"] = std::vector<std::string>(again.begin(), again.end());
  // As the run was, unless this request says otherwise.
  for (const char* key : {"full_refresh", "partition", "vars"}) {
    if (!out.contains(key) && run->args.is_object() && run->args.contains(key)) {
      out[key] = run->args[key];
    }
  }
  if (!out.contains("trigger") || out["trigger"] == "") {
    out["trigger"] = "rerun of run " + std::to_string(id);
  } else {
    out["trigger"] = out["trigger"].get<std::string>() + ", rerun of run " + std::to_string(id);
  }
  return out;
}

nlohmann::json Engine::HandleCancel(const nlohmann::json& request) {
  int64_t id = request.value("id", int64_t{0});
  {
    std::lock_guard lock(background_mu_);
    auto it = std::find_if(background_queue_.begin(), background_queue_.end(),
                           [id](const auto& q) { return q.first == id; });
    if (it != background_queue_.end()) {
      background_queue_.erase(it);
      Result<MetadataStore*> metadata = Metadata();
      if (!metadata.ok()) return ErrorResponse(metadata.status());
      Status st = (*metadata)->FinishRun(id, RunStatus::kCancelled, 1,
                                         "cancelled before it started", clock_.Now());
      if (!st.ok()) return ErrorResponse(st);
      return Ok({{"id", id}, {"status", "cancelled"}});
    }
  }
  auto cancel_running = [&]() -> bool {
    std::lock_guard lock(controls_mu_);
    auto it = controls_.find(id);
    if (it == controls_.end()) return false;
    it->second->Cancel();
    return true;
  };
  if (cancel_running()) return Ok({{"id", id}, {"status", "cancelling"}});
  Result<MetadataStore*> metadata = Metadata();
  if (!metadata.ok()) return ErrorResponse(metadata.status());
  Result<std::optional<RunRecord>> run = (*metadata)->GetRun(id);
  if (!run.ok()) return ErrorResponse(run.status());
  // Recorded as running, but its control is not registered yet (the run
  // records itself just before it announces its id): it will be, shortly.
  for (int i = 0; i < 100 && *run && (*run)->status == RunStatus::kRunning; ++i) {
    if (cancel_running()) return Ok({{"id", id}, {"status", "cancelling"}});
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    run = (*metadata)->GetRun(id);
    if (!run.ok()) return ErrorResponse(run.status());
  }
  if (!*run)
    return ErrorResponse(Status::NotFound("no run " + std::to_string(id) + " (see sluice runs)"));
  return ErrorResponse(Status::Invalid("run " + std::to_string(id) + " is not running (it is " +
                                       RunStatusName((*run)->status) + ")"));
}

Result<int> Engine::ResubmitQueuedRuns() {
  ASSIGN_OR_RETURN(MetadataStore * metadata, Metadata());
  ASSIGN_OR_RETURN(std::vector<RunRecord> queued, metadata->ListRunsWithStatus(RunStatus::kQueued));
  for (RunRecord& r : queued) {
    nlohmann::json request = r.args.is_object() ? r.args : nlohmann::json::object();
    request["cmd"] = "run";
    LOG_INFO("engine", "run {}: submitted before the last owner stopped; starting it now", r.id);
    RETURN_IF_ERROR(StartBackground(r.id, std::move(request)));
  }
  return static_cast<int>(queued.size());
}

nlohmann::json Engine::HandleSchedules(const nlohmann::json& request) {
  std::string cmd = request.value("cmd", "schedules");
  Workspace ws = LoadWorkspace(project_root_, env_name_);
  std::map<std::string, const ScheduleSpec*> specs;
  for (const SourceSpec& s : ws.project.sources) {
    if (s.schedule.kind != ScheduleKind::kNone) specs[s.name] = &s.schedule;
  }
  for (const ModelSpec& m : ws.project.models) {
    if (m.schedule.kind != ScheduleKind::kNone) specs[m.name] = &m.schedule;
  }
  Result<Opened*> opened = OpenForRequest();
  if (!opened.ok()) return ErrorResponse(opened.status().message(), ExitCodeOf(opened.status()));
  MetadataStore& md = *(*opened)->metadata;
  if (cmd == "pause" || cmd == "resume") {
    std::string asset = ToLower(request.value("asset", ""));
    if (!specs.count(asset)) {
      std::vector<std::string> names;
      for (const auto& [name, spec] : specs) names.push_back(name);
      return ErrorResponse("'" + asset + "' has no schedule" + DidYouMeanHint(asset, names) +
                               (names.empty() ? "" : "; scheduled: " + Join(names, ", ")),
                           2);
    }
    Status st = md.SetPaused(asset, cmd == "pause");
    if (!st.ok()) return ErrorResponse(st.message(), 1);
    {
      std::lock_guard lock(pause_listener_mu_);
      if (pause_listener_) pause_listener_(asset, cmd == "pause");
    }
    return Ok({{"asset", asset}, {"paused", cmd == "pause"}});
  }
  Result<std::map<std::string, Micros>> paused = md.ListPaused();
  if (!paused.ok()) return ErrorResponse(paused.status().message(), 1);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [asset, spec] : specs) {
    nlohmann::json row = {{"asset", asset},
                          {"schedule", spec->ToString()},
                          {"where", spec->loc.ToString()},
                          {"paused", paused->count(asset) > 0}};
    Result<std::vector<TickRecord>> last = md.ListTicks(asset, {}, 1);
    if (last.ok() && !last->empty()) {
      const TickRecord& t = last->front();
      row["last_tick"] = {{"at", FormatTimestamp(t.at)},
                          {"status", TickStatusName(t.status)},
                          {"run_id", t.run_id},
                          {"note", t.note}};
    }
    Result<std::optional<Micros>> next =
        Scheduler::NextTickOf(*spec, ws.project.timezone, clock_.Now());
    if (next.ok() && *next) row["next_tick"] = FormatTimestamp(**next);
    out.push_back(std::move(row));
  }
  return Ok(out);
}

Result<MetadataStore*> Engine::Metadata() {
  ASSIGN_OR_RETURN(Opened * opened, OpenForRequest());
  return opened->metadata.get();
}

Result<Engine::Opened*> Engine::OpenForRequest() {
  {
    std::lock_guard lock(open_mu_);
    if (opened_) return opened_.get();
  }
  LoadedProject loaded = LoadProjectSettings(project_root_);
  if (!loaded.ok()) {
    std::string text;
    for (const ConfigError& e : loaded.errors) text += e.ToString() + "\n";
    return Status::Invalid(text);
  }
  if (!loaded.project.environments.count(env_name_)) {
    return Status::Invalid("unknown environment '" + env_name_ + "'");
  }
  return Open(loaded.project);
}

nlohmann::json Engine::HandleQuery(const nlohmann::json& request) {
  Result<Opened*> opened = OpenForRequest();
  if (!opened.ok()) return ErrorResponse(opened.status().message(), ExitCodeOf(opened.status()));
  auto session = (*opened)->warehouse->Connect();
  if (!session.ok()) return ErrorResponse(session.status().message(), 1);
  // What readers reach: the published relations, and the project's externals.
  ReadScope scope;
  for (const std::string& name : (*opened)->external) scope.relations.insert(ToLower(name));
  Result<std::map<std::pair<std::string, std::string>, Publication>> published =
      LatestPublications(**session);
  if (!published.ok()) return ErrorResponse(published.status().message(), 1);
  for (const auto& [key, pub] : *published) scope.relations.insert(ToLower(key.first));

  RenderFormat format =
      request.value("format", "text") == "json" ? RenderFormat::kJson : RenderFormat::kText;
  ReadLimits limits;
  limits.max_rows = request.value("max_rows", int64_t{10000});
  limits.timeout_seconds = request.value("timeout", int64_t{300});
  nlohmann::json columns = nlohmann::json::array(), types = nlohmann::json::array();
  nlohmann::json rows = nlohmann::json::array();
  std::vector<JsonKind> kinds;
  RowVisitor visitor;
  visitor.columns = [&](const std::vector<RenderedColumn>& cols) {
    for (const RenderedColumn& c : cols) {
      columns.push_back(c.name);
      types.push_back(c.type);
      kinds.push_back(c.json);
    }
    return Status::Ok();
  };
  visitor.row = [&](const std::vector<std::optional<std::string_view>>& row) {
    nlohmann::json out = nlohmann::json::array();
    for (size_t i = 0; i < row.size(); ++i) {
      out.push_back(
          RenderedJsonValue(row[i], format == RenderFormat::kJson ? kinds[i] : JsonKind::kString));
    }
    rows.push_back(std::move(out));
    return true;
  };
  Result<ReadSummary> read =
      RunRead(**session, request.value("sql", ""), scope, format, limits, visitor);
  if (!read.ok()) {
    // The exit code `sluice query` has always had; the kind for HTTP (an
    // unknown table 404, a syntax error 400, a refused read 403, a timeout 504).
    nlohmann::json out = ErrorResponse(read.status().message(),
                                       read.status().code() == StatusCode::kRefused ? 2 : 1);
    out["code"] = StatusCodeName(read.status().code());
    return out;
  }
  return Ok({{"columns", columns},
             {"types", types},
             {"rows", rows},
             {"truncated", read->truncated},
             {"max_rows", limits.max_rows}});
}

nlohmann::json Engine::HandleRuns(const nlohmann::json& request) {
  Result<Opened*> opened = OpenForRequest();
  if (!opened.ok()) return ErrorResponse(opened.status().message(), ExitCodeOf(opened.status()));
  auto runs = (*opened)->metadata->ListRuns(request.value("limit", 20));
  if (!runs.ok()) return ErrorResponse(runs.status().message(), 1);
  nlohmann::json out = nlohmann::json::array();
  for (const RunRecord& r : *runs) {
    out.push_back({{"id", r.id},
                   {"command", r.command},
                   {"args", r.args},
                   {"status", RunStatusName(r.status)},
                   {"started_at", FormatTimestamp(r.started_at)},
                   {"ended_at", r.ended_at ? FormatTimestamp(r.ended_at) : ""},
                   {"exit_code", r.exit_code},
                   {"summary", r.summary}});
  }
  return Ok(out);
}

nlohmann::json Engine::HandleRunDetail(const nlohmann::json& request) {
  Result<Opened*> opened = OpenForRequest();
  if (!opened.ok()) return ErrorResponse(opened.status().message(), ExitCodeOf(opened.status()));
  int64_t id = request.value("id", int64_t{0});
  auto run = (*opened)->metadata->GetRun(id);
  if (!run.ok()) return ErrorResponse(run.status().message(), 1);
  if (!*run) return ErrorResponse(Status::NotFound("no run " + std::to_string(id)));
  auto tasks = (*opened)->metadata->ListTasks(id);
  if (!tasks.ok()) return ErrorResponse(tasks.status().message(), 1);
  nlohmann::json tj = nlohmann::json::array();
  for (const TaskRecord& t : *tasks) {
    tj.push_back({{"asset", t.asset},
                  {"partition", t.partition},
                  {"status", t.status},
                  {"reason", t.reason},
                  {"version", t.version_id},
                  {"rows", t.rows},
                  {"attempt", t.attempt},
                  {"started_at", t.started_at ? FormatTimestamp(t.started_at) : ""},
                  {"ended_at", t.ended_at ? FormatTimestamp(t.ended_at) : ""},
                  {"error", t.error}});
  }
  auto checks = (*opened)->metadata->ListCheckResults(id);
  if (!checks.ok()) return ErrorResponse(checks.status().message(), 1);
  nlohmann::json cj = nlohmann::json::array();
  for (const CheckResultRecord& c : *checks) cj.push_back(CheckResultJson(c));
  const RunRecord& r = **run;
  return Ok({{"id", r.id},
             {"command", r.command},
             {"args", r.args},
             {"trigger", r.args.value("trigger", "")},
             {"status", RunStatusName(r.status)},
             {"started_at", FormatTimestamp(r.started_at)},
             {"ended_at", r.ended_at ? FormatTimestamp(r.ended_at) : ""},
             {"exit_code", r.exit_code},
             {"summary", r.summary},
             {"tasks", tj},
             {"checks", cj}});
}

nlohmann::json Engine::HandleLogs(const nlohmann::json& request) {
  Result<Opened*> opened = OpenForRequest();
  if (!opened.ok()) return ErrorResponse(opened.status().message(), ExitCodeOf(opened.status()));
  int64_t id = request.value("id", int64_t{0});
  std::string asset = ToLower(request.value("asset", ""));
  auto run = (*opened)->metadata->GetRun(id);
  if (!run.ok()) return ErrorResponse(run.status().message(), 1);
  if (!*run) {
    return ErrorResponse(Status::NotFound("no run " + std::to_string(id) + " (see sluice runs)"));
  }
  // <state>/logs/<run>/<asset>.<attempt>.log, one per task attempt, and
  // the short ones as blocks of <state>/logs/<run>/short-logs (core/log.h),
  // each under the name its own file would have had.
  std::string dir = JoinPath(JoinPath((*opened)->env.state_dir, "logs"), std::to_string(id));
  std::vector<std::tuple<std::string, int, std::string>> found;  // asset, attempt, log
  // "<asset>.<attempt>.log" -> (asset, attempt), when it is one asked for.
  auto wanted = [&](const std::string& file_name) -> std::optional<std::pair<std::string, int>> {
    if (!EndsWith(file_name, ".log")) return std::nullopt;
    std::string stem = file_name.substr(0, file_name.size() - 4);
    size_t dot = stem.rfind('.');
    if (dot == std::string::npos) return std::nullopt;
    std::string name = stem.substr(0, dot);
    if (!asset.empty() && name != asset) return std::nullopt;
    return std::make_pair(name, std::atoi(stem.c_str() + dot + 1));
  };
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::string f = it->path().filename().string();
    if (f == kShortTaskLogs) {
      Result<std::string> text = ReadFile(JoinPath(dir, f));
      if (!text.ok()) return ErrorResponse(text.status().message(), 1);
      for (auto& [name, log] : SharedTaskLogBlocks(*text)) {
        if (auto w = wanted(name)) found.emplace_back(w->first, w->second, std::move(log));
      }
      continue;
    }
    auto w = wanted(f);
    if (!w) continue;
    Result<std::string> text = ReadFile(JoinPath(dir, f));
    if (!text.ok()) return ErrorResponse(text.status().message(), 1);
    found.emplace_back(w->first, w->second, std::move(*text));
  }
  if (found.empty()) {
    return ErrorResponse(Status::NotFound(
        asset.empty() ? "run " + std::to_string(id) +
                            " has no task logs (an unchanged asset and a plan write none; "
                            "only the newest defaults.keep_logs runs keep theirs)"
                      : "run " + std::to_string(id) + " has no log of '" + asset +
                            "': unchanged, or not in the run (sluice runs " + std::to_string(id) +
                            " lists its tasks)"));
  }
  std::sort(found.begin(), found.end());
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [name, attempt, text] : found) {
    out.push_back({{"asset", name}, {"attempt", attempt}, {"log", text}});
  }
  return Ok({{"run", id}, {"logs", out}});
}

}  // namespace sluice
