#include "orchestrate/build_step.h"

#include <algorithm>
#include <utility>

#include "core/log.h"
#include "core/redact.h"
#include "core/strings.h"
#include "core/test_hooks.h"
#include "orchestrate/planner.h"
#include "transform/materialize.h"

namespace sluice {

namespace {

bool Cancelled(const BuildEnv& env) { return env.cancelled && env.cancelled(); }

bool AnyBlocks(const std::vector<CheckOutcome>& checks) {
  return std::any_of(checks.begin(), checks.end(),
                     [](const CheckOutcome& c) { return c.Blocks(); });
}

std::string BlockingMessages(const std::vector<CheckOutcome>& checks) {
  std::vector<std::string> names;
  for (const CheckOutcome& c : checks) {
    if (c.Blocks()) names.push_back(c.message.empty() ? c.name : c.message);
  }
  return Join(names, "; ");
}

void Record(const BuildEnv& env, const BuildTarget& target,
            const std::vector<CheckOutcome>& checks) {
  if (env.record_checks) env.record_checks(target.asset, target.version, checks);
}

}  // namespace

std::string Audit::Failures() const { return BlockingMessages(checks); }

namespace {

// The outcomes of an audit, recorded and judged.
Audit Judged(const BuildEnv& env, const BuildTarget& target, std::vector<CheckOutcome> checks) {
  Audit audit;
  audit.checks = std::move(checks);
  Record(env, target, audit.checks);
  audit.blocked = AnyBlocks(audit.checks);
  return audit;
}

std::vector<CheckOutcome> Outcomes(WarehouseSession& session, const BuildTarget& target,
                                   const std::string& relation) {
  if (target.checks == nullptr) return {};
  return RunChecks(session, *target.checks, relation);
}

}  // namespace

Audit AuditRelation(const BuildEnv& env, WarehouseSession& session, const BuildTarget& target,
                    const std::string& relation) {
  return Judged(env, target, Outcomes(session, target, relation));
}

// ---- StagedBuild ------------------------------------------------------------

StagedBuild::StagedBuild(const BuildEnv& env, WarehouseSession& session, BuildTarget target,
                         bool is_view)
    : env_(env),
      session_(session),
      target_(std::move(target)),
      is_view_(is_view),
      table_name_(env.publisher->Reserve(target_.asset, target_.version, is_view)),
      physical_(StagedRelation(table_name_)),
      start_ms_(MonotonicMillis()) {}

StagedBuild::~StagedBuild() { Drop(); }

void StagedBuild::Drop() {
  if (!owned_) return;
  owned_ = false;
  if (in_transaction_) {
    // Never committed: rolled back (or with the connection), nothing is left.
    in_transaction_ = false;
    (void)session_.Execute("ROLLBACK");
    env_.publisher->Dropped(table_name_);
    return;
  }
  if (DropStaged(session_, table_name_, is_view_).ok()) {
    env_.publisher->Dropped(table_name_);
  } else {
    env_.publisher->Release(table_name_);  // the asset's next publication prunes it
  }
}

Status StagedBuild::BeginTransaction() {
  RETURN_IF_ERROR(session_.Execute("BEGIN TRANSACTION"));
  in_transaction_ = true;
  return Status::Ok();
}

Status StagedBuild::RestartTransaction() {
  in_transaction_ = false;
  (void)session_.Execute("ROLLBACK");
  return BeginTransaction();
}

Status StagedBuild::Inspect(int64_t rows) {
  if (rows < 0) {
    ASSIGN_OR_RETURN(QueryResult count, session_.Query("SELECT count(*) FROM " + physical_));
    rows = count.ScalarInt();
  }
  rows_ = rows;
  if (is_view_) {
    ASSIGN_OR_RETURN(schema_, DescribeRelation(session_, physical_));
  } else {
    ASSIGN_OR_RETURN(schema_, DescribeStagedTable(session_, table_name_));
  }
  return Status::Ok();
}

AssetVersionRecord StagedBuild::VersionRecord() const {
  AssetVersionRecord vrec;
  vrec.asset = target_.asset;
  vrec.partition = target_.partition;
  vrec.version_id = target_.version;
  vrec.fingerprint = target_.fingerprint;
  vrec.inputs = target_.inputs;
  vrec.schema = schema_;
  vrec.rows = rows_;
  vrec.build_ms = MonotonicMillis() - start_ms_;
  vrec.created_at = env_.clock->Now();
  vrec.run_id = env_.run_id;
  return vrec;
}

Audit StagedBuild::RunAudit() {
  std::vector<CheckOutcome> checks = Outcomes(session_, target_, physical_);
  if (in_transaction_ && !checks.empty()) {
    // A check's query may have failed at run time — its count, or only its
    // sample of failing rows (which RunChecks leaves out silently) — and
    // DuckDB then refuses the rest of the transaction; a check on a
    // column the build lacks ran no query. Whether DuckDB still takes a
    // statement tells.
    aborted_ = !session_.Execute("SELECT 1").ok();
    if (aborted_) return Audit{std::move(checks), true};
  }
  return Judged(env_, target_, std::move(checks));
}

Result<std::string> StagedBuild::KeepFailed(const Audit& audit, bool had_previous) {
  RETURN_IF_ERROR(KeepFailedBuild(session_, target_.asset, table_name_));
  owned_ = false;
  env_.publisher->Dropped(table_name_);
  if (in_transaction_) {
    // The failed build kept and the staged one dropped, in one commit.
    in_transaction_ = false;
    Status committed = session_.Execute("COMMIT");
    if (!committed.ok()) {
      (void)session_.Execute("ROLLBACK");
      return committed.WithContext("keeping the failed build of " + target_.asset);
    }
  }
  std::string error = Redact(
      std::string(had_previous ? "audit failed, kept the last good version public"
                               : "audit failed; nothing was published (this was the first build)") +
      "; the failed build is in _sluice_failed." + target_.asset + ": " + audit.Failures());
  AssetVersionRecord vrec = VersionRecord();
  vrec.status = "failed_audit";
  RETURN_IF_ERROR(env_.metadata->RecordVersion(vrec));
  return error;
}

Result<Publication> StagedBuild::Publish(nlohmann::json cursor,
                                         const std::function<void(const char* phase)>& timed) {
  AssetVersionRecord vrec = VersionRecord();
  Publication pub;
  pub.asset = target_.asset;
  pub.partition = target_.partition;
  pub.version_id = target_.version;
  pub.physical = physical_;
  pub.fingerprint = target_.fingerprint;
  pub.checks_hash = target_.checks_hash;
  pub.inputs = target_.inputs;
  pub.schema = schema_;
  pub.rows = rows_;
  pub.run_id = env_.run_id;
  pub.cursor = std::move(cursor);
  // A cancel that came while it built: nothing becomes public.
  if (Cancelled(env_)) {
    Drop();
    return Status::Cancelled("the run was cancelled; nothing published");
  }
  // Versions beyond keep_versions are dropped by the publishing transaction
  // itself: the build's own, or one that other tasks' publications share.
  if (in_transaction_) {
    in_transaction_ = false;  // committed, or rolled back with the build
    Status st = env_.publisher->PublishWithin(session_, pub, env_.keep_versions);
    if (!st.ok()) {
      owned_ = false;
      env_.publisher->Dropped(table_name_);
      return st;
    }
  } else {
    RETURN_IF_ERROR(env_.publisher->Publish(session_, pub, env_.keep_versions));
  }
  owned_ = false;  // public now (a partition's rows: in its asset's table)
  if (timed) timed("publish");
  MaybeCrash("after_publish", target_.asset);
  vrec.status = "published";
  vrec.published_at = env_.clock->Now();
  RETURN_IF_ERROR(env_.metadata->RecordVersion(vrec));
  RETURN_IF_ERROR(env_.metadata->SetPublished(target_.asset, target_.partition, target_.version,
                                              vrec.published_at));
  if (timed) timed("metadata");
  return pub;
}

// ---- in place ---------------------------------------------------------------

Result<InPlaceOutcome> ApplyInPlace(const BuildEnv& env, WarehouseSession& session,
                                    const BuildTarget& target, const Publication& prev,
                                    const InPlaceBatch& batch, int64_t start_ms) {
  InPlaceOutcome out;
  AssetVersionRecord vrec;
  vrec.asset = target.asset;
  vrec.version_id = target.version;
  vrec.fingerprint = prev.fingerprint;
  vrec.inputs = target.inputs;
  vrec.created_at = env.clock->Now();
  vrec.run_id = env.run_id;
  // Audit the batch: a key twice (or null) in one batch is an error.
  if (!batch.key.empty()) {
    ASSIGN_OR_RETURN(QueryResult problems,
                     session.Query(BatchKeyProblemsSql(batch.relation, batch.key)));
    if (!problems.rows.empty()) {
      std::vector<std::string> examples;
      for (const auto& row : problems.rows) {
        examples.push_back(row[0].value_or("") + " (" + row[1].value_or("") + " rows)");
      }
      out.status = TaskStatus::kCheckFailed;
      out.error = "audit of the batch failed: key " + Join(batch.key, ", ") +
                  " is duplicated or null in the new rows: " + Join(examples, "; ") +
                  " (a merge would keep one of them silently); the table is unchanged";
      vrec.status = "failed_audit";
      RETURN_IF_ERROR(env.metadata->RecordVersion(vrec));
      return out;
    }
  }
  std::vector<std::string> statements;
  if (batch.statements) {
    statements = *batch.statements;
  } else {
    ASSIGN_OR_RETURN(nlohmann::json batch_schema, DescribeRelation(session, batch.relation));
    std::vector<std::string> batch_columns;
    for (const auto& c : batch_schema) batch_columns.push_back(c.value("name", ""));
    ASSIGN_OR_RETURN(statements,
                     ApplyBatchSql(batch.strategy, prev.physical, batch.relation, batch.key,
                                   batch.partition_by, batch_columns, batch.now_literal));
  }
  Publication pub = prev;
  pub.version_id = target.version;
  pub.checks_hash = target.checks_hash;
  pub.inputs = target.inputs;
  pub.run_id = env.run_id;
  if (batch.next_cursor) {
    ASSIGN_OR_RETURN(pub.cursor, batch.next_cursor(session, batch.relation));
  }
  if (Cancelled(env)) return Status::Cancelled("the run was cancelled; nothing published");
  Result<bool> published =
      env.publisher->PublishInPlace(session, pub, [&](Publication* p) -> Result<bool> {
        for (const std::string& statement : statements) {
          Status st = session.Execute(statement);
          if (!st.ok()) {
            return st.WithContext(batch.where + ": applying the batch of " + target.asset + " (" +
                                  batch.strategy + ") failed");
          }
        }
        MaybeCrash("in_place", target.asset);  // applied, not yet committed
        ASSIGN_OR_RETURN(QueryResult count, session.Query("SELECT count(*) FROM " + p->physical));
        p->rows = count.ScalarInt();
        ASSIGN_OR_RETURN(p->schema, DescribeRelation(session, p->physical));
        // A change batch: the checks that judge rows one by one look at the
        // rows it wrote, the others at the whole table.
        static const std::vector<CheckSpec> kNone;
        const std::vector<CheckSpec>& checks = target.checks ? *target.checks : kNone;
        out.checks = batch.changed_rows.empty()
                         ? RunChecks(session, checks, p->physical)
                         : RunChecksOnChange(session, checks, p->physical, batch.changed_rows);
        return !AnyBlocks(out.checks);
      });
  if (!published.ok()) return published.status();
  if (*published) MaybeCrash("after_publish", target.asset);
  Record(env, target, out.checks);
  vrec.build_ms = MonotonicMillis() - start_ms;
  if (!*published) {
    out.status = TaskStatus::kCheckFailed;
    out.error = "checks failed after applying the batch; rolled back, the table is unchanged: " +
                BlockingMessages(out.checks);
    vrec.status = "failed_audit";
    RETURN_IF_ERROR(env.metadata->RecordVersion(vrec));
    return out;
  }
  ASSIGN_OR_RETURN(std::vector<Publication> history, PublicationHistory(session, target.asset));
  pub = history.front();
  if (prev.schema != pub.schema) out.drift = SchemaDrift(prev.schema, pub.schema);
  vrec.schema = pub.schema;
  vrec.rows = pub.rows;
  vrec.status = "published";
  vrec.published_at = pub.published_at;
  RETURN_IF_ERROR(env.metadata->RecordVersion(vrec));
  RETURN_IF_ERROR(env.metadata->SetPublished(target.asset, "", target.version, vrec.published_at));
  out.status = TaskStatus::kSuccess;
  out.published = std::move(pub);
  return out;
}

}  // namespace sluice
