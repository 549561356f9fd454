// Tests of the build step (orchestrate/build_step.h) against a real DuckDB
// warehouse and SQLite metadata, without a runner: a staged build that
// passes its audit is published and recorded; one that fails it stays out
// of sight (the last good version public, the build in _sluice_failed); a
// build abandoned or cancelled leaves no relation behind and publishes
// nothing; the same in one transaction, which commits once and which a check
// that fails to run aborts without recording anything; an in-place batch with a key twice, or whose
// checks fail once applied, leaves the table exactly as it was.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/strings.h"
#include "metadata/sqlite_store.h"
#include "orchestrate/build_step.h"
#include "support/memory_warehouse.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;

constexpr Micros kT0 = 1767225600000000;  // 2026-01-01T00:00:00Z

CheckSpec NotNull(const std::string& column) {
  CheckSpec c;
  c.type = "not_null";
  c.args = nlohmann::json::array({column});
  c.name = "not_null(" + column + ")";
  return c;
}

class BuildStepTest : public MemoryWarehouseTest {
 protected:
  void SetUp() override {
    OpenWarehouse();
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_TRUE(EnsureInternalSchema(*session_).ok());
    auto store = SqliteMetadataStore::Open(":memory:", &clock_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    metadata_ = std::move(store).value();
    auto publisher = Publisher::Load(*session_, clock_);
    ASSERT_TRUE(publisher.ok()) << publisher.status().ToString();
    publisher_ = std::move(publisher).value();
    env_.publisher = publisher_.get();
    env_.metadata = metadata_.get();
    env_.clock = &clock_;
    env_.run_id = 7;
    env_.cancelled = [this] { return cancelled_; };
    env_.record_checks = [this](const std::string& asset, const std::string& version,
                                const std::vector<CheckOutcome>& checks) {
      for (const CheckOutcome& c : checks)
        recorded_.push_back(asset + "@" + version + ":" + c.name);
    };
  }

  BuildTarget Target(const std::string& version) {
    BuildTarget t;
    t.asset = "stops";
    t.version = version;
    t.fingerprint = "fp";
    t.checks_hash = "ch";
    t.inputs = nlohmann::json::array({"obj-" + version});
    t.checks = &checks_;
    return t;
  }

  // Builds stops (id, name) with `rows` rows, a null name in the last when
  // null_last; publishes it when it passes its audit.
  Result<std::string> BuildStops(const std::string& version, int rows, bool null_last) {
    StagedBuild stage(env_, *session_, Target(version), false);
    if (one_transaction_) RETURN_IF_ERROR(stage.BeginTransaction());
    RETURN_IF_ERROR(session_->Execute(
        "CREATE TABLE " + stage.relation() +
        " AS SELECT range AS id, CASE WHEN range = " + std::to_string(null_last ? rows - 1 : -1) +
        " THEN NULL ELSE 'stop ' || range END AS name " + "FROM range(" + std::to_string(rows) +
        ")"));
    RETURN_IF_ERROR(stage.Inspect(-1));
    Audit audit = stage.RunAudit();
    if (audit.blocked) return stage.KeepFailed(audit, true);
    std::vector<std::string> phases;
    ASSIGN_OR_RETURN(Publication pub,
                     stage.Publish(nlohmann::json(), [&](const char* p) { phases.push_back(p); }));
    if (phases != std::vector<std::string>{"publish", "metadata"}) {
      return Status::Internal("phases: " + Join(phases, ","));
    }
    return pub.physical;
  }

  int64_t Count(const std::string& relation) {
    auto r = session_->Query("SELECT count(*) FROM " + relation);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->ScalarInt() : -1;
  }

  int64_t StagedRelations() {
    return Count("information_schema.tables WHERE table_schema = '_sluice_v'");
  }

  std::string VersionStatus(const std::string& version) {
    auto versions = metadata_->ListVersions("stops", "");
    EXPECT_TRUE(versions.ok());
    if (!versions.ok()) return "";
    for (const AssetVersionRecord& v : *versions) {
      if (v.version_id == version) return v.status;
    }
    return "(none)";
  }

  FakeClock clock_{kT0};
  std::unique_ptr<SqliteMetadataStore> metadata_;
  std::unique_ptr<Publisher> publisher_;
  BuildEnv env_;
  bool cancelled_ = false;
  bool one_transaction_ = false;  // BuildStops builds, audits and publishes in one
  std::vector<CheckSpec> checks_{NotNull("name")};
  std::vector<std::string> recorded_;
};

TEST_F(BuildStepTest, APassingBuildIsPublishedAndRecorded) {
  auto physical = BuildStops("v1", 5, false);
  ASSERT_TRUE(physical.ok()) << physical.status().ToString();
  EXPECT_EQ(Count("main.stops"), 5);
  EXPECT_EQ(VersionStatus("v1"), "published");
  EXPECT_EQ(recorded_, std::vector<std::string>{"stops@v1:not_null(name)"});
  auto latest = LatestPublications(*session_);
  ASSERT_TRUE(latest.ok());
  const Publication& pub = latest->at({"stops", ""});
  EXPECT_EQ(pub.version_id, "v1");
  EXPECT_EQ(pub.rows, 5);
  EXPECT_EQ(pub.run_id, 7);
  EXPECT_EQ(pub.inputs, nlohmann::json::array({"obj-v1"}));
  auto published = metadata_->GetPublished("stops", "");
  ASSERT_TRUE(published.ok() && published->has_value());
  EXPECT_EQ(**published, "v1");
}

TEST_F(BuildStepTest, AFailedAuditKeepsTheLastGoodVersionPublic) {
  ASSERT_TRUE(BuildStops("v1", 5, false).ok());
  auto failed = BuildStops("v2", 8, true);
  ASSERT_TRUE(failed.ok()) << failed.status().ToString();
  EXPECT_THAT(*failed, HasSubstr("kept the last good version public"));
  EXPECT_THAT(*failed, HasSubstr("_sluice_failed.stops"));
  EXPECT_THAT(*failed, HasSubstr("not_null"));
  EXPECT_EQ(Count("main.stops"), 5);                // still v1
  EXPECT_EQ(Count("_sluice_failed.\"stops\""), 8);  // the failed build, to inspect
  EXPECT_EQ(VersionStatus("v2"), "failed_audit");
  EXPECT_EQ(StagedRelations(), 1);  // v1 only
}

TEST_F(BuildStepTest, AnAbandonedBuildLeavesNothingBehind) {
  ASSERT_TRUE(BuildStops("v1", 3, false).ok());
  {
    StagedBuild stage(env_, *session_, Target("v2"), false);
    ASSERT_TRUE(session_->Execute("CREATE TABLE " + stage.relation() + " AS SELECT 1 AS id").ok());
    EXPECT_EQ(StagedRelations(), 2);
  }  // an error on the way out: nothing published, the staged table dropped
  EXPECT_EQ(StagedRelations(), 1);
  EXPECT_EQ(VersionStatus("v2"), "(none)");
  EXPECT_EQ(Count("main.stops"), 3);
}

TEST_F(BuildStepTest, ACancelledRunPublishesNothing) {
  StagedBuild stage(env_, *session_, Target("v1"), false);
  ASSERT_TRUE(
      session_->Execute("CREATE TABLE " + stage.relation() + " AS SELECT 1 AS id, 'a' AS name")
          .ok());
  ASSERT_TRUE(stage.Inspect(-1).ok());
  ASSERT_FALSE(stage.RunAudit().blocked);
  cancelled_ = true;
  auto pub = stage.Publish(nlohmann::json(), nullptr);
  ASSERT_FALSE(pub.ok());
  EXPECT_EQ(pub.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(StagedRelations(), 0);
  EXPECT_EQ(VersionStatus("v1"), "(none)");
  auto latest = LatestPublications(*session_);
  ASSERT_TRUE(latest.ok());
  EXPECT_TRUE(latest->empty());
}

TEST_F(BuildStepTest, InPlaceBatchesApplyOrLeaveTheTableAsItWas) {
  ASSERT_TRUE(BuildStops("v1", 3, false).ok());  // ids 0, 1, 2
  auto latest = LatestPublications(*session_);
  ASSERT_TRUE(latest.ok());
  const Publication prev = latest->at({"stops", ""});
  auto names = [&] {
    auto r = session_->Query(
        "SELECT string_agg(id || '=' || coalesce(name, 'NULL'), ',' ORDER BY "
        "id) FROM main.stops");
    return r.ok() && !r->rows.empty() ? r->rows[0][0].value_or("") : std::string("?");
  };
  const std::string before = names();
  InPlaceBatch batch;
  batch.strategy = "merge";
  batch.key = {"id"};
  batch.relation = "batch";
  batch.where = "models/stops.sql:1";

  // A key twice in the batch: refused before anything is applied.
  ASSERT_TRUE(session_
                  ->Execute("CREATE TEMP TABLE batch AS SELECT * FROM (VALUES (1, 'one'), (1, "
                            "'uno')) t(id, name)")
                  .ok());
  auto twice = ApplyInPlace(env_, *session_, Target("v2"), prev, batch, 0);
  ASSERT_TRUE(twice.ok()) << twice.status().ToString();
  EXPECT_EQ(twice->status, TaskStatus::kCheckFailed);
  EXPECT_THAT(twice->error, HasSubstr("duplicated or null"));
  EXPECT_FALSE(twice->published.has_value());
  EXPECT_EQ(names(), before);
  EXPECT_EQ(VersionStatus("v2"), "failed_audit");

  // Applied, but a check fails on the result: rolled back.
  ASSERT_TRUE(session_
                  ->Execute("CREATE OR REPLACE TEMP TABLE batch AS SELECT * FROM (VALUES (1, "
                            "NULL::VARCHAR)) t(id, name)")
                  .ok());
  auto null_name = ApplyInPlace(env_, *session_, Target("v3"), prev, batch, 0);
  ASSERT_TRUE(null_name.ok()) << null_name.status().ToString();
  EXPECT_EQ(null_name->status, TaskStatus::kCheckFailed);
  EXPECT_THAT(null_name->error, HasSubstr("rolled back"));
  EXPECT_EQ(names(), before);
  EXPECT_EQ(VersionStatus("v3"), "failed_audit");

  // A good batch: merged and published in one transaction.
  ASSERT_TRUE(session_
                  ->Execute("CREATE OR REPLACE TEMP TABLE batch AS SELECT * FROM (VALUES (1, "
                            "'one'), (3, 'three')) t(id, name)")
                  .ok());
  auto good = ApplyInPlace(env_, *session_, Target("v4"), prev, batch, 0);
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(good->status, TaskStatus::kSuccess) << good->error;
  ASSERT_TRUE(good->published.has_value());
  EXPECT_EQ(good->published->version_id, "v4");
  EXPECT_EQ(good->published->rows, 4);
  EXPECT_EQ(names(), "0=stop 0,1=one,2=stop 2,3=three");
  EXPECT_EQ(VersionStatus("v4"), "published");
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// The build, its audit and its publication in one transaction: one commit,
// and nothing of the build visible to another session before it.
TEST_F(BuildStepTest, InOneTransactionABuildIsPublishedWithOneCommit) {
  one_transaction_ = true;
  auto physical = BuildStops("v1", 5, false);
  ASSERT_TRUE(physical.ok()) << physical.status().ToString();
  EXPECT_EQ(Count("main.stops"), 5);
  EXPECT_EQ(VersionStatus("v1"), "published");
  EXPECT_EQ(publisher_->Commits(), (std::pair<int64_t, int64_t>{1, 1}));
  ASSERT_TRUE(BuildStops("v2", 6, false).ok());
  EXPECT_EQ(Count("main.stops"), 6);
  auto latest = LatestPublications(*session_);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->at({"stops", ""}).version_id, "v2");
  EXPECT_EQ(latest->at({"stops", ""}).rows, 6);

  auto other = warehouse_->Connect();
  ASSERT_TRUE(other.ok());
  StagedBuild stage(env_, *session_, Target("v3"), false);
  ASSERT_TRUE(stage.BeginTransaction().ok());
  ASSERT_TRUE(session_->Execute("CREATE TABLE " + stage.relation() + " AS SELECT 1 AS id").ok());
  auto seen = (*other)->Query(
      "SELECT count(*) FROM information_schema.tables WHERE "
      "table_schema = '_sluice_v'");
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(seen->ScalarInt(), 2);  // v1 and v2: the open build is nobody else's business
}

TEST_F(BuildStepTest, InOneTransactionAFailedAuditKeepsTheFailedBuild) {
  one_transaction_ = true;
  ASSERT_TRUE(BuildStops("v1", 5, false).ok());
  auto failed = BuildStops("v2", 8, true);
  ASSERT_TRUE(failed.ok()) << failed.status().ToString();
  EXPECT_THAT(*failed, HasSubstr("kept the last good version public"));
  EXPECT_EQ(Count("main.stops"), 5);
  EXPECT_EQ(Count("_sluice_failed.\"stops\""), 8);  // committed with the staged one's drop
  EXPECT_EQ(VersionStatus("v2"), "failed_audit");
  EXPECT_EQ(StagedRelations(), 1);
}

TEST_F(BuildStepTest, InOneTransactionAnAbandonedOrCancelledBuildIsRolledBack) {
  ASSERT_TRUE(BuildStops("v1", 3, false).ok());
  {
    StagedBuild stage(env_, *session_, Target("v2"), false);
    ASSERT_TRUE(stage.BeginTransaction().ok());
    ASSERT_TRUE(session_->Execute("CREATE TABLE " + stage.relation() + " AS SELECT 1 AS id").ok());
    EXPECT_EQ(StagedRelations(), 2);  // in its own transaction
  }
  EXPECT_EQ(StagedRelations(), 1);
  EXPECT_EQ(Count("main.stops"), 3);
  // The session is usable again (no transaction left open).
  EXPECT_TRUE(session_->Execute("BEGIN TRANSACTION; COMMIT").ok());

  StagedBuild stage(env_, *session_, Target("v3"), false);
  ASSERT_TRUE(stage.BeginTransaction().ok());
  ASSERT_TRUE(
      session_->Execute("CREATE TABLE " + stage.relation() + " AS SELECT 1 AS id, 'a' AS name")
          .ok());
  ASSERT_TRUE(stage.Inspect(-1).ok());
  ASSERT_FALSE(stage.RunAudit().blocked);
  cancelled_ = true;
  auto pub = stage.Publish(nlohmann::json(), nullptr);
  ASSERT_FALSE(pub.ok());
  EXPECT_EQ(pub.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(StagedRelations(), 1);
  EXPECT_EQ(VersionStatus("v3"), "(none)");
  EXPECT_EQ(Count("main.stops"), 3);
}

// A check whose query fails aborts DuckDB's transaction: the audit says so
// and records nothing, so that the task builds again outside one and the
// check's error is recorded once, from there.
TEST_F(BuildStepTest, InOneTransactionACheckThatFailsToRunAbortsIt) {
  CheckSpec broken;
  broken.type = "sql";
  broken.name = "broken";
  broken.args = "SELECT * FROM {{ this }} WHERE CAST(name AS INTEGER) > 0";
  checks_ = {broken};
  {
    StagedBuild stage(env_, *session_, Target("v1"), false);
    ASSERT_TRUE(stage.BeginTransaction().ok());
    ASSERT_TRUE(
        session_->Execute("CREATE TABLE " + stage.relation() + " AS SELECT 1 AS id, 'a' AS name")
            .ok());
    ASSERT_TRUE(stage.Inspect(-1).ok());
    Audit audit = stage.RunAudit();
    EXPECT_TRUE(stage.aborted());
    EXPECT_TRUE(audit.blocked);
    EXPECT_TRUE(recorded_.empty());
    stage.Drop();
  }
  EXPECT_EQ(StagedRelations(), 0);
  EXPECT_TRUE(session_->Execute("SELECT 1").ok());  // rolled back: usable again

  // Outside a transaction, the same check's error is an outcome, recorded.
  auto failed = BuildStops("v1", 2, false);
  ASSERT_TRUE(failed.ok()) << failed.status().ToString();
  EXPECT_THAT(*failed, HasSubstr("audit failed"));
  EXPECT_EQ(recorded_, std::vector<std::string>{"stops@v1:broken"});
}

// A check on a column the build lacks is an error found before any query
// runs: the transaction goes on, and keeps the failed build.
TEST_F(BuildStepTest, InOneTransactionACheckOnAMissingColumnFailsTheAuditOnly) {
  checks_ = {NotNull("nmae")};
  one_transaction_ = true;
  auto failed = BuildStops("v1", 2, false);
  ASSERT_TRUE(failed.ok()) << failed.status().ToString();
  EXPECT_THAT(*failed, HasSubstr("audit failed"));
  EXPECT_EQ(recorded_, std::vector<std::string>{"stops@v1:not_null(nmae)"});
  EXPECT_EQ(Count("_sluice_failed.\"stops\""), 2);
  EXPECT_EQ(StagedRelations(), 0);
}

}  // namespace
}  // namespace sluice
