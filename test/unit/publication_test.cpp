// Tests of write-audit-publish (transform/publication.h) against a real
// DuckDB warehouse: publication is one transaction, builds never overwrite a
// published relation, and pruning and orphan clean-up drop only what no
// publication needs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <latch>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "core/strings.h"
#include "support/memory_warehouse.h"
#include "transform/publication.h"
#include "transform/rollback.h"
#include "warehouse/warehouse.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr Micros kT0 = 1767225600000000;  // 2026-01-01T00:00:00Z

// A 16-hex-digit version id, distinct per n.
std::string Version(int n) {
  std::string hex = std::to_string(n);
  return std::string(16 - hex.size(), '0') + hex;
}

class PublicationTest : public MemoryWarehouseTest {
 protected:
  void SetUp() override {
    OpenWarehouse();
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_TRUE(EnsureInternalSchema(*session_).ok());
  }

  void Exec(const std::string& sql) {
    Status st = session_->Execute(sql);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  // Builds _sluice_v."<asset>__<version>" holding `rows` rows; returns the table name.
  std::string Build(const std::string& asset, int version, int rows) {
    std::string name = PhysicalTableName(asset, Version(version));
    Exec("CREATE TABLE " + StagedRelation(name) + " AS SELECT range AS id, " +
         std::to_string(version) + " AS version FROM range(" + std::to_string(rows) + ")");
    return name;
  }

  Publication MakePublication(const std::string& asset, const std::string& table_name, int version,
                              int rows) {
    Publication p;
    p.asset = asset;
    p.version_id = Version(version);
    p.physical = StagedRelation(table_name);
    p.fingerprint = "fp" + std::to_string(version);
    p.checks_hash = "ch" + std::to_string(version);
    p.inputs = {"sha-" + std::to_string(version)};
    p.schema = {{{"name", "id"}, {"type", "BIGINT"}}};
    p.rows = rows;
    p.run_id = 100 + version;
    return p;
  }

  // Builds and publishes version n of asset.
  void BuildAndPublish(const std::string& asset, int version, int rows = 2) {
    std::string name = Build(asset, version, rows);
    Status st = PublishVersion(*session_, MakePublication(asset, name, version, rows), clock_);
    ASSERT_TRUE(st.ok()) << st.ToString();
    clock_.Advance(1000000);
  }

  // The `version` column of the public view (which build it shows).
  std::string PublicVersion(const std::string& asset) {
    auto r = session_->Query("SELECT DISTINCT version FROM main." + QuoteIdent(asset));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->Scalar().value_or("") : "";
  }

  std::set<std::string> StagedTables() {
    auto r = session_->Query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = '_sluice_v'");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::set<std::string> out;
    if (r.ok()) {
      for (const auto& row : r->rows) out.insert(row[0].value_or(""));
    }
    return out;
  }

  FakeClock clock_{kT0};
};

TEST_F(PublicationTest, EnsureInternalSchemaIsIdempotent) {
  ASSERT_TRUE(EnsureInternalSchema(*session_).ok());
  auto r = session_->Query(
      "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE '\\_sluice%' "
      "ESCAPE '\\' ORDER BY 1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_THAT(r->rows, SizeIs(3));
  EXPECT_EQ(r->rows[0][0], "_sluice");
  EXPECT_EQ(r->rows[1][0], "_sluice_failed");
  EXPECT_EQ(r->rows[2][0], "_sluice_v");
  auto latest = LatestPublications(*session_);
  ASSERT_TRUE(latest.ok());
  EXPECT_THAT(*latest, IsEmpty());
}

TEST_F(PublicationTest, PublishMakesTheViewAndTheRecord) {
  std::string name = Build("stops", 1, 3);
  Publication p = MakePublication("stops", name, 1, 3);
  p.partition = "";
  ASSERT_TRUE(PublishVersion(*session_, p, clock_).ok());

  auto count = session_->Query("SELECT count(*) FROM stops");
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  EXPECT_EQ(count->ScalarInt(), 3);
  auto kind = session_->Query(
      "SELECT table_type FROM information_schema.tables WHERE table_schema = 'main' AND "
      "table_name = 'stops'");
  ASSERT_TRUE(kind.ok());
  EXPECT_EQ(kind->Scalar(), "VIEW");

  auto latest = LatestPublications(*session_);
  ASSERT_TRUE(latest.ok()) << latest.status().ToString();
  ASSERT_THAT(*latest, SizeIs(1));
  const Publication& got = latest->at({"stops", ""});
  EXPECT_EQ(got.asset, "stops");
  EXPECT_EQ(got.version_id, Version(1));
  EXPECT_EQ(got.physical, "_sluice_v.\"stops__0000000000000001\"");
  EXPECT_EQ(got.fingerprint, "fp1");
  EXPECT_EQ(got.checks_hash, "ch1");
  EXPECT_EQ(got.inputs, nlohmann::json::array({"sha-1"}));
  EXPECT_EQ(got.schema, p.schema);
  EXPECT_EQ(got.rows, 3);
  EXPECT_EQ(got.run_id, 101);
  EXPECT_EQ(got.published_at, kT0);
  EXPECT_GT(got.seq, 0);
}

TEST_F(PublicationTest, ANewPublicationRepointsTheViewAndKeepsHistory) {
  BuildAndPublish("stops", 1);
  BuildAndPublish("stops", 2);
  BuildAndPublish("routes", 1);
  EXPECT_EQ(PublicVersion("stops"), "2");
  EXPECT_EQ(PublicVersion("routes"), "1");

  auto latest = LatestPublications(*session_);
  ASSERT_TRUE(latest.ok());
  ASSERT_THAT(*latest, SizeIs(2));
  EXPECT_EQ(latest->at({"stops", ""}).version_id, Version(2));
  EXPECT_EQ(latest->at({"routes", ""}).version_id, Version(1));

  auto history = PublicationHistory(*session_, "stops");
  ASSERT_TRUE(history.ok());
  ASSERT_THAT(*history, SizeIs(2));
  EXPECT_EQ((*history)[0].version_id, Version(2));  // newest first
  EXPECT_EQ((*history)[1].version_id, Version(1));
  EXPECT_GT((*history)[0].seq, (*history)[1].seq);

  // Rollback is a new publication of an older build.
  Publication back = (*history)[1];
  ASSERT_TRUE(PublishVersion(*session_, back, clock_).ok());
  EXPECT_EQ(PublicVersion("stops"), "1");
  latest = LatestPublications(*session_);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->at({"stops", ""}).version_id, Version(1));
}

TEST_F(PublicationTest, PublicationsAreOrderedEvenWhenTheClockStepsBack) {
  BuildAndPublish("stops", 1);
  clock_.Advance(-3600LL * 1000000);  // an NTP step backwards
  BuildAndPublish("stops", 2);
  auto latest = LatestPublications(*session_);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->at({"stops", ""}).version_id, Version(2));
  auto history = PublicationHistory(*session_, "stops");
  ASSERT_TRUE(history.ok());
  ASSERT_THAT(*history, SizeIs(2));
  EXPECT_GT((*history)[0].seq, (*history)[1].seq);
  EXPECT_LT((*history)[0].published_at, (*history)[1].published_at);
}

TEST_F(PublicationTest, ANewPublicationIsLatestAfterARestartWithTheClockBehind) {
  // A publication by an earlier owner process whose clock was far ahead (or
  // this machine's clock has since stepped back): its seq is in our future.
  std::string old_build = Build("stops", 1, 2);
  Micros ahead = kT0 + 10LL * 365 * 24 * 3600 * 1000000;
  Exec("CREATE VIEW main.stops AS SELECT * FROM " + StagedRelation(old_build));
  Exec(
      "INSERT INTO _sluice.publications (seq, asset, partition_key, version_id, physical, rows, "
      "published_at) VALUES (" +
      std::to_string(ahead) + ", 'stops', '', '" + Version(1) + "', " +
      QuoteLiteral(StagedRelation(old_build)) + ", 2, make_timestamp(" + std::to_string(ahead) +
      "))");

  BuildAndPublish("stops", 2);
  EXPECT_EQ(PublicVersion("stops"), "2");
  auto latest = LatestPublications(*session_);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->at({"stops", ""}).version_id, Version(2));
  auto history = PublicationHistory(*session_, "stops");
  ASSERT_TRUE(history.ok());
  ASSERT_THAT(*history, SizeIs(2));
  EXPECT_EQ((*history)[0].version_id, Version(2));
  // Pruning to one keeps the current build, not the older one.
  ASSERT_TRUE(PruneVersions(*session_, "stops", 1).ok());
  EXPECT_EQ(StagedTables(), (std::set<std::string>{"stops__0000000000000002"}));
}

TEST_F(PublicationTest, AFailedPublicationChangesNothing) {
  BuildAndPublish("stops", 1);

  // The view cannot be created: no record either.
  Publication missing = MakePublication("stops", "stops__00000000000000ff", 255, 1);
  EXPECT_FALSE(PublishVersion(*session_, missing, clock_).ok());
  EXPECT_EQ(PublicVersion("stops"), "1");

  // The view could be created but the record cannot be written: the view
  // change is rolled back with it.
  std::string name = Build("stops", 2, 5);
  Exec("ALTER TABLE _sluice.publications RENAME TO publications_saved");
  Exec("CREATE TABLE _sluice.publications (seq BIGINT)");
  Status st = PublishVersion(*session_, MakePublication("stops", name, 2, 5), clock_);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(PublicVersion("stops"), "1");
  Exec("DROP TABLE _sluice.publications");
  Exec("ALTER TABLE _sluice.publications_saved RENAME TO publications");

  auto history = PublicationHistory(*session_, "stops");
  ASSERT_TRUE(history.ok());
  ASSERT_THAT(*history, SizeIs(1));
  EXPECT_EQ((*history)[0].version_id, Version(1));

  // The session is usable afterwards (the transaction was rolled back).
  ASSERT_TRUE(PublishVersion(*session_, MakePublication("stops", name, 2, 5), clock_).ok());
  EXPECT_EQ(PublicVersion("stops"), "2");
}

TEST_F(PublicationTest, FreshPhysicalTableNameNeverReusesAName) {
  auto fresh = FreshPhysicalTableName(*session_, "stops", Version(7));
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(*fresh, "stops__0000000000000007");

  Build("stops", 7, 1);
  fresh = FreshPhysicalTableName(*session_, "stops", Version(7));
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(*fresh, "stops__0000000000000007_r1");

  Exec("CREATE VIEW _sluice_v.\"stops__0000000000000007_r1\" AS SELECT 1");
  fresh = FreshPhysicalTableName(*session_, "stops", Version(7));
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(*fresh, "stops__0000000000000007_r2");

  // Other versions and assets do not count.
  fresh = FreshPhysicalTableName(*session_, "stops", Version(8));
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(*fresh, "stops__0000000000000008");
  fresh = FreshPhysicalTableName(*session_, "stop", Version(7));
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(*fresh, "stop__0000000000000007");
}

TEST_F(PublicationTest, KeepFailedBuildMovesItToSluiceFailed) {
  BuildAndPublish("stops", 1);
  std::string failed = Build("stops", 2, 4);
  ASSERT_TRUE(KeepFailedBuild(*session_, "stops", failed).ok());
  EXPECT_EQ(StagedTables().count(failed), 0u);
  auto r = session_->Query("SELECT count(*), min(version) FROM _sluice_failed.stops");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows[0][0], "4");
  EXPECT_EQ(r->rows[0][1], "2");
  EXPECT_EQ(PublicVersion("stops"), "1");  // the last good version stays public

  // The next failure replaces the previous one.
  std::string again = Build("stops", 3, 1);
  ASSERT_TRUE(KeepFailedBuild(*session_, "stops", again).ok());
  r = session_->Query("SELECT count(*), min(version) FROM _sluice_failed.stops");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rows[0][0], "1");
  EXPECT_EQ(r->rows[0][1], "3");
}

TEST_F(PublicationTest, DropStagedHandlesTablesViewsAndAbsence) {
  Build("stops", 1, 1);
  Exec("CREATE VIEW _sluice_v.\"stops__0000000000000002\" AS SELECT 1 AS id");
  ASSERT_TRUE(DropStaged(*session_, "stops__0000000000000001").ok());
  ASSERT_TRUE(DropStaged(*session_, "stops__0000000000000002").ok());
  ASSERT_TRUE(DropStaged(*session_, "stops__0000000000000003").ok());
  EXPECT_THAT(StagedTables(), IsEmpty());
}

TEST_F(PublicationTest, PruneKeepsTheNewestKAndTheCurrentOne) {
  for (int v = 1; v <= 4; ++v) BuildAndPublish("stops", v);
  BuildAndPublish("stops_extra", 1);  // another asset sharing the prefix
  ASSERT_TRUE(PruneVersions(*session_, "stops", 2).ok());
  EXPECT_EQ(StagedTables(),
            (std::set<std::string>{"stops__0000000000000004", "stops__0000000000000003",
                                   "stops_extra__0000000000000001"}));
  EXPECT_EQ(PublicVersion("stops"), "4");

  // After a rollback to 3, keeping one keeps the current (3), not the newest build (4).
  auto history = PublicationHistory(*session_, "stops");
  ASSERT_TRUE(history.ok());
  Publication three = (*history)[1];
  ASSERT_EQ(three.version_id, Version(3));
  ASSERT_TRUE(PublishVersion(*session_, three, clock_).ok());
  ASSERT_TRUE(PruneVersions(*session_, "stops", 1).ok());
  EXPECT_EQ(StagedTables(),
            (std::set<std::string>{"stops__0000000000000003", "stops_extra__0000000000000001"}));
  EXPECT_EQ(PublicVersion("stops"), "3");

  // keep 0 (incremental tables) still keeps the current one.
  ASSERT_TRUE(PruneVersions(*session_, "stops", 0).ok());
  EXPECT_EQ(PublicVersion("stops"), "3");
  EXPECT_EQ(StagedTables().count("stops__0000000000000003"), 1u);
}

TEST_F(PublicationTest, PruneCountsRepublicationsOfOneBuildOnce) {
  for (int v = 1; v <= 3; ++v) BuildAndPublish("stops", v);
  // An audit-only run republishes the current build (new checks hash).
  auto latest = LatestPublications(*session_);
  ASSERT_TRUE(latest.ok());
  Publication again = latest->at({"stops", ""});
  again.checks_hash = "ch-new";
  ASSERT_TRUE(PublishVersion(*session_, again, clock_).ok());
  ASSERT_TRUE(PruneVersions(*session_, "stops", 2).ok());
  EXPECT_EQ(StagedTables(),
            (std::set<std::string>{"stops__0000000000000003", "stops__0000000000000002"}));
}

TEST_F(PublicationTest, DropOrphansDropsOnlyUnpublishedStagedRelations) {
  BuildAndPublish("stops", 1);
  BuildAndPublish("stops", 2);
  // A name that needs quoting, published.
  std::string odd = Build("we\"ird", 1, 1);
  ASSERT_TRUE(PublishVersion(*session_, MakePublication("we\"ird", odd, 1, 1), clock_).ok());
  // Builds a crash interrupted: a table and a view nobody published.
  Build("stops", 3, 1);
  Exec("CREATE VIEW _sluice_v.\"routes__0000000000000009\" AS SELECT 1 AS id");
  // Relations outside _sluice_v are never touched.
  Exec("CREATE TABLE main.scratch AS SELECT 1 AS id");
  Exec("CREATE TABLE _sluice_failed.stops AS SELECT 1 AS id");

  auto dropped = DropOrphans(*session_);
  ASSERT_TRUE(dropped.ok()) << dropped.status().ToString();
  EXPECT_EQ(*dropped, 2);
  EXPECT_EQ(StagedTables(),
            (std::set<std::string>{"stops__0000000000000001", "stops__0000000000000002", odd}));
  EXPECT_EQ(PublicVersion("stops"), "2");
  EXPECT_TRUE(session_->Query("SELECT * FROM main.scratch").ok());
  EXPECT_TRUE(session_->Query("SELECT * FROM _sluice_failed.stops").ok());
  EXPECT_TRUE(session_->Query("SELECT * FROM main.\"we\"\"ird\"").ok());

  auto none = DropOrphans(*session_);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0);
}

TEST_F(PublicationTest, DescribeRelation) {
  Exec(
      "CREATE TABLE _sluice_v.\"t__0000000000000001\" (id INTEGER, name VARCHAR, day DATE, "
      "amount DECIMAL(10,2))");
  auto described = DescribeRelation(*session_, StagedRelation("t__0000000000000001"));
  ASSERT_TRUE(described.ok()) << described.status().ToString();
  nlohmann::json expected = {{{"name", "id"}, {"type", "INTEGER"}},
                             {{"name", "name"}, {"type", "VARCHAR"}},
                             {{"name", "day"}, {"type", "DATE"}},
                             {{"name", "amount"}, {"type", "DECIMAL(10,2)"}}};
  EXPECT_EQ(*described, expected);
  auto missing = DescribeRelation(*session_, StagedRelation("nope"));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("nope"));
}

// A build's schema from the catalog names every type as DESCRIBE does:
// nested, parameterised, user-defined and aliased types, odd column names.
TEST_F(PublicationTest, DescribeStagedTableMatchesDescribe) {
  Exec("CREATE TYPE mood AS ENUM ('sad', 'ok')");
  Exec(
      "CREATE TABLE _sluice_v.\"t__0000000000000002\" AS SELECT 1.5::DECIMAL(10,3) AS a, [1, 2] "
      "AS b, {'x y': 1, 'z': [1.5]} AS c, MAP {'k': 2} AS d, [1, 2, 3]::INTEGER[3] AS e, "
      "'sad'::mood AS f, '{}'::JSON AS g, TIMESTAMPTZ '2026-01-01 00:00:00+00' AS h, "
      "1::UHUGEINT AS i, union_value(k := 1)::UNION(k INTEGER, s VARCHAR) AS j, "
      "'00000000-0000-0000-0000-000000000000'::UUID AS k, '101'::BIT AS l, 1::VARINT AS m, "
      "'01:00:00+01'::TIMETZ AS n, 1::TINYINT AS \"Q \"\"r\", INTERVAL 1 DAY AS o, 'x'::BLOB "
      "AS p, [{'a': 1}] AS q, 2::USMALLINT AS r, TIMESTAMP_NS '2026-01-01' AS s");
  auto expected = DescribeRelation(*session_, StagedRelation("t__0000000000000002"));
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  ASSERT_EQ(expected->size(), 20u);
  auto described = DescribeStagedTable(*session_, "t__0000000000000002");
  ASSERT_TRUE(described.ok()) << described.status().ToString();
  EXPECT_EQ(*described, *expected);

  // A name with a quote (no build has one) takes DESCRIBE's way.
  Exec("CREATE TABLE _sluice_v.\"we\"\"ird\" (id INTEGER)");
  auto odd = DescribeStagedTable(*session_, "we\"ird");
  ASSERT_TRUE(odd.ok()) << odd.status().ToString();
  EXPECT_EQ(*odd, (nlohmann::json{{{"name", "id"}, {"type", "INTEGER"}}}));
  auto missing = DescribeStagedTable(*session_, "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("nope"));
}

// The run's publisher: names and prunes without catalog queries, and groups
// the publications of tasks that finish together into one transaction.
TEST_F(PublicationTest, PublisherGroupsConcurrentPublicationsEachAtomic) {
  BuildAndPublish("before", 1);
  auto publisher = Publisher::Load(*session_, clock_);
  ASSERT_TRUE(publisher.ok()) << publisher.status().ToString();
  constexpr int kTasks = 24;
  std::vector<std::string> names;
  for (int i = 0; i < kTasks; ++i) {
    std::string asset = "a" + std::to_string(i);
    std::string name = (*publisher)->Reserve(asset, Version(1), false);
    EXPECT_EQ(name, PhysicalTableName(asset, Version(1)));
    names.push_back(name);
    Exec("CREATE TABLE " + StagedRelation(name) + " AS SELECT 1 AS version");
  }
  // Task 7 publishes a relation that does not exist: it alone fails.
  Exec("DROP TABLE " + StagedRelation(names[7]));
  std::vector<Status> results(kTasks);
  std::vector<Publication> pubs(kTasks);
  std::vector<std::thread> threads;
  for (int i = 0; i < kTasks; ++i) {
    threads.emplace_back([&, i] {
      auto session = warehouse_->Connect();
      ASSERT_TRUE(session.ok());
      pubs[i] = MakePublication("a" + std::to_string(i), names[i], 1, 1);
      results[i] = (*publisher)->Publish(**session, pubs[i], 2);
    });
  }
  for (auto& t : threads) t.join();
  std::set<int64_t> seqs;
  for (int i = 0; i < kTasks; ++i) {
    if (i == 7) {
      EXPECT_FALSE(results[i].ok());
      continue;
    }
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].ToString();
    EXPECT_EQ(PublicVersion("a" + std::to_string(i)), "1");
    EXPECT_GT(pubs[i].seq, 0);
    seqs.insert(pubs[i].seq);
  }
  EXPECT_EQ(seqs.size(), static_cast<size_t>(kTasks - 1));  // each its own seq
  auto latest = LatestPublications(*session_);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->size(), static_cast<size_t>(kTasks));  // 23 + "before"
  EXPECT_FALSE(latest->count({"a7", ""}));
  EXPECT_GT(latest->at({"a0", ""}).seq, latest->at({"before", ""}).seq);
  std::vector<std::string> repointed = (*publisher)->Repointed();
  EXPECT_EQ(repointed.size(), static_cast<size_t>(kTasks - 1));
}

// Tasks publish inside their own build's transaction side by side (no
// publish mutex between them) while a group publishes too: each lands
// whole with its own seq, prunes only its own asset's older build, and one
// that fails rolls back alone.
TEST_F(PublicationTest, PublicationsWithinTasksTransactionsCommitSideBySide) {
  auto publisher = Publisher::Load(*session_, clock_);
  ASSERT_TRUE(publisher.ok()) << publisher.status().ToString();
  constexpr int kTasks = 12, kGrouped = 6, kBroken = 5;
  std::vector<std::string> grouped;
  for (int i = 0; i < kGrouped; ++i) {
    std::string name = (*publisher)->Reserve("g" + std::to_string(i), Version(1), false);
    Exec("CREATE TABLE " + StagedRelation(name) + " AS SELECT 1 AS version");
    grouped.push_back(name);
  }
  std::latch start(kTasks + kGrouped);
  std::vector<Status> results(kTasks + kGrouped);
  std::vector<std::vector<int64_t>> seqs(kTasks + kGrouped);
  std::vector<std::thread> threads;
  for (int i = 0; i < kTasks; ++i) {
    threads.emplace_back([&, i] {
      auto session = warehouse_->Connect();
      start.arrive_and_wait();  // always: the others wait for every thread
      if (!session.ok()) {
        results[i] = session.status();
        return;
      }
      const std::string asset = "t" + std::to_string(i);
      for (int version = 1; version <= 2 && results[i].ok(); ++version) {
        std::string name = (*publisher)->Reserve(asset, Version(version), false);
        Status st = (*session)->Execute("BEGIN TRANSACTION");
        // The broken task's build is not there: its view cannot be made.
        if (st.ok() && !(i == kBroken && version == 2)) {
          st = (*session)->Execute("CREATE TABLE " + StagedRelation(name) + " AS SELECT " +
                                   std::to_string(version) + " AS version");
        }
        Publication p = MakePublication(asset, name, version, 1);
        if (st.ok()) st = (*publisher)->PublishWithin(**session, p, 1);
        if (!st.ok()) (*publisher)->Dropped(name);
        results[i] = st;
        if (st.ok()) seqs[i].push_back(p.seq);
      }
    });
  }
  for (int g = 0; g < kGrouped; ++g) {
    threads.emplace_back([&, g] {
      auto session = warehouse_->Connect();
      start.arrive_and_wait();
      if (!session.ok()) {
        results[kTasks + g] = session.status();
        return;
      }
      Publication p = MakePublication("g" + std::to_string(g), grouped[g], 1, 1);
      results[kTasks + g] = (*publisher)->Publish(**session, p, 1);
      seqs[kTasks + g].push_back(p.seq);
    });
  }
  for (auto& t : threads) t.join();
  std::set<int64_t> all;
  size_t published = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    if (static_cast<int>(i) == kBroken) {
      EXPECT_FALSE(results[i].ok());
    } else {
      EXPECT_TRUE(results[i].ok()) << i << ": " << results[i].ToString();
    }
    for (int64_t seq : seqs[i]) {
      EXPECT_GT(seq, 0);
      all.insert(seq);
      ++published;
    }
  }
  EXPECT_EQ(all.size(), published);  // every publication its own seq
  EXPECT_EQ(published, static_cast<size_t>(2 * kTasks - 1 + kGrouped));
  auto latest = LatestPublications(*session_);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->size(), static_cast<size_t>(kTasks + kGrouped));
  std::set<std::string> staged = StagedTables();
  for (int i = 0; i < kTasks; ++i) {
    const std::string asset = "t" + std::to_string(i);
    const int current = i == kBroken ? 1 : 2;  // the broken one kept its first
    EXPECT_EQ(PublicVersion(asset), std::to_string(current)) << asset;
    EXPECT_EQ(latest->at({asset, ""}).version_id, Version(current)) << asset;
    EXPECT_TRUE(staged.count(PhysicalTableName(asset, Version(current)))) << asset;
    if (current == 2) {
      EXPECT_FALSE(staged.count(PhysicalTableName(asset, Version(1)))) << asset << ": pruned";
    }
  }
  for (int g = 0; g < kGrouped; ++g) EXPECT_EQ(PublicVersion("g" + std::to_string(g)), "1");
}

TEST_F(PublicationTest, PublisherPrunesInThePublishingTransaction) {
  BuildAndPublish("stops", 1);
  BuildAndPublish("stops", 2);
  std::string stray = Build("stops", 9, 1);  // a build no publication names
  auto publisher = Publisher::Load(*session_, clock_);
  ASSERT_TRUE(publisher.ok());
  // Version 2 rebuilt (a full refresh): a fresh name, the published one kept.
  std::string rebuilt = (*publisher)->Reserve("stops", Version(2), false);
  EXPECT_EQ(rebuilt, PhysicalTableName("stops", Version(2)) + "_r1");
  Exec("CREATE TABLE " + StagedRelation(rebuilt) + " AS SELECT 22 AS version");
  Publication p = MakePublication("stops", rebuilt, 2, 1);
  ASSERT_TRUE((*publisher)->Publish(*session_, p, 2).ok());
  EXPECT_EQ(PublicVersion("stops"), "22");
  // keep 2: the new one and version 2's first build; version 1 and the stray go.
  EXPECT_EQ(StagedTables(),
            (std::set<std::string>{rebuilt, PhysicalTableName("stops", Version(2))}));
  EXPECT_NE(stray, "");
  EXPECT_THAT((*publisher)->Prunable("stops", 2), IsEmpty());
}

TEST_F(PublicationTest, AViewNotYetRecordedIsRestoredSilentlyAnAlteredOneReported) {
  BuildAndPublish("stops", 1);  // PublishVersion records the view
  auto publisher = Publisher::Load(*session_, clock_);
  ASSERT_TRUE(publisher.ok());
  std::string name = (*publisher)->Reserve("stops", Version(2), false);
  Exec("CREATE TABLE " + StagedRelation(name) + " AS SELECT 2 AS version");
  Publication p = MakePublication("stops", name, 2, 1);
  ASSERT_TRUE((*publisher)->Publish(*session_, p, 3).ok());
  // Not recorded yet (a run records its views when it ends; say it was killed).
  auto repaired = RepairPublicViews(*session_);
  ASSERT_TRUE(repaired.ok()) << repaired.status().ToString();
  EXPECT_THAT(repaired->restored, IsEmpty());
  EXPECT_THAT(repaired->lost, IsEmpty());
  EXPECT_EQ(PublicVersion("stops"), "2");
  // Recorded now; altered by hand afterwards: restored and reported.
  ASSERT_TRUE(RecordPublicViews(*session_, {"stops"}).ok());
  Exec("CREATE OR REPLACE VIEW main.stops AS SELECT 99 AS version");
  repaired = RepairPublicViews(*session_);
  ASSERT_TRUE(repaired.ok());
  ASSERT_THAT(repaired->restored, SizeIs(1));
  EXPECT_THAT(repaired->restored[0], HasSubstr("altered"));
  EXPECT_EQ(PublicVersion("stops"), "2");
}

TEST_F(PublicationTest, CurrentPublicationsLoadOnceUntilInvalidated) {
  BuildAndPublish("stops", 1);
  CurrentPublications current;
  auto first = current.Snapshot(*session_);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ((*first)->at({"stops", ""}).version_id, Version(1));
  BuildAndPublish("stops", 2);  // behind its back: it keeps what it knew
  EXPECT_EQ((*current.Snapshot(*session_))->at({"stops", ""}).version_id, Version(1));
  current.Invalidate();
  EXPECT_EQ((*current.Snapshot(*session_))->at({"stops", ""}).version_id, Version(2));
}

// Whatever a reader computed from the map holds while the generation does
// (the API's key memo): every change counts, and a look does not.
TEST_F(PublicationTest, EveryChangeOfTheCurrentPublicationsCounts) {
  BuildAndPublish("stops", 1);
  CurrentPublications current;
  std::set<uint64_t> seen{current.generation()};
  ASSERT_TRUE(current.Snapshot(*session_).ok());  // loaded
  EXPECT_TRUE(seen.insert(current.generation()).second);
  const uint64_t loaded = current.generation();
  ASSERT_TRUE(current.Snapshot(*session_).ok());  // a look
  EXPECT_TRUE(current.Visit([](const CurrentPublications::Map&) {}));
  EXPECT_TRUE(current.Of("stops").has_value());
  EXPECT_EQ(current.generation(), loaded);
  Publication p = (*current.Snapshot(*session_))->at({"stops", ""});
  p.seq += 1;
  current.Update(p);
  EXPECT_TRUE(seen.insert(current.generation()).second);
  current.Set({});
  EXPECT_TRUE(seen.insert(current.generation()).second);
  current.Invalidate();
  EXPECT_TRUE(seen.insert(current.generation()).second);
}

// A snapshot (what a plan or a run reads) never changes: a change after it
// goes into a copy, which the next snapshot and Get see.
TEST_F(PublicationTest, ASnapshotNeverChanges) {
  BuildAndPublish("stops", 1);
  CurrentPublications current;
  auto before = current.Snapshot(*session_);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  const Publication was = (*before)->at({"stops", ""});
  Publication next = was;
  next.seq += 1;
  next.version_id = "v-next";
  current.Update(next);
  EXPECT_EQ((*before)->at({"stops", ""}).version_id, was.version_id);
  auto after = current.Snapshot(*session_);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)->at({"stops", ""}).version_id, "v-next");
  EXPECT_EQ((*current.Snapshot(*session_))->at({"stops", ""}).version_id, "v-next");
  // Nobody holds the old one any more: a change is made in place.
  before->reset();
  const CurrentPublications::Map* held = after->get();
  after->reset();
  next.version_id = "v-third";
  current.Update(next);
  auto third = current.Snapshot(*session_);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->get(), held);
  EXPECT_EQ((*third)->at({"stops", ""}).version_id, "v-third");
}

TEST(PublicationNames, PhysicalAndStagedNames) {
  EXPECT_EQ(PhysicalTableName("stops", "0123456789abcdef"), "stops__0123456789abcdef");
  EXPECT_EQ(StagedRelation("stops__0123456789abcdef"), "_sluice_v.\"stops__0123456789abcdef\"");
  EXPECT_EQ(StagedRelation("a\"b"), "_sluice_v.\"a\"\"b\"");
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// A rollback request sent again (the connection broke after the owner did
// it) is answered from the publication it made, not done a second time.
TEST_F(PublicationTest, ARollbackSentTwiceRollsBackOnce) {
  BuildAndPublish("stops", 1);
  BuildAndPublish("stops", 2);
  BuildAndPublish("stops", 3);
  auto first = RollbackAsset(*session_, "stops", "", clock_, "req-42");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->from.version_id, Version(3));
  EXPECT_EQ(first->to.version_id, Version(2));
  clock_.Advance(1000000);
  auto again = RollbackAsset(*session_, "stops", "", clock_, "req-42");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->from.version_id, Version(3));
  EXPECT_EQ(again->to.version_id, Version(2));
  EXPECT_EQ(PublicVersion("stops"), "2");  // not rolled back to 1
  auto history = PublicationHistory(*session_, "stops");
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->size(), 4u);
  // Another request is another rollback.
  auto next = RollbackAsset(*session_, "stops", "", clock_, "req-43");
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(PublicVersion("stops"), "3");
}

// Partitioned assets: one table for every partition (DESIGN §5).
class PartitionPublicationTest : public PublicationTest {
 protected:
  // Publishes version n of partition `key` of "readings" through a
  // publisher (as a run does), from a build of `select`.
  Status PublishPartition(Publisher& publisher, const std::string& key, int version,
                          const std::string& select, int keep = 3) {
    std::string name = publisher.Reserve("readings", Version(version), false);
    Exec("CREATE TABLE " + StagedRelation(name) + " AS " + select);
    Publication p = MakePublication("readings", name, version, 0);
    p.partition = key;
    auto n = session_->Query("SELECT count(*) FROM " + StagedRelation(name));
    p.rows = n.ok() ? n->ScalarInt() : 0;
    clock_.Advance(1000000);
    return publisher.Publish(*session_, p, keep);
  }

  std::string Q(const std::string& sql) {
    auto r = session_->Query(sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    if (!r.ok()) return "";
    std::vector<std::string> rows;
    for (const auto& row : r->rows) {
      std::vector<std::string> cells;
      for (const auto& c : row) cells.push_back(c.value_or("NULL"));
      rows.push_back(Join(cells, ","));
    }
    return Join(rows, ";");
  }
};

TEST_F(PartitionPublicationTest, PartitionsShareOneTableThatWidensAndReplacesRows) {
  auto publisher = Publisher::Load(*session_, clock_);
  ASSERT_TRUE(publisher.ok());
  ASSERT_TRUE(PublishPartition(**publisher, "d1", 1, "SELECT 'a' AS s, 1 AS v").ok());
  ASSERT_TRUE(PublishPartition(**publisher, "d2", 2, "SELECT 'b' AS s, 2 AS v").ok());
  // A new column and a wider type: the table gains one and widens the other.
  Status st = PublishPartition(**publisher, "d3", 3, "SELECT 'c' AS s, 2.5 AS v, 'x' AS note");
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Q("SELECT s, v, note FROM readings ORDER BY s"), "a,1.0,NULL;b,2.0,NULL;c,2.5,x");
  EXPECT_EQ(StagedTables(), (std::set<std::string>{"readings__partitions"}));
  // A rebuild of d1 replaces its rows; the old ones go to the history.
  ASSERT_TRUE(PublishPartition(**publisher, "d1", 4, "SELECT 'a' AS s, 10 AS v").ok());
  EXPECT_EQ(Q("SELECT s, v FROM readings ORDER BY s"), "a,10.0;b,2.0;c,2.5");
  EXPECT_EQ(StagedTables(), (std::set<std::string>{"readings__partitions", "readings__history"}));
  EXPECT_EQ(Q("SELECT _sluice_version, v FROM _sluice_v.readings__history"), Version(1) + ",1.0");
  EXPECT_EQ(Q("SELECT count(*) FROM " + PartitionRows("readings", "d1")), "1");
  // Every partition's publication names the one table.
  EXPECT_EQ(Q("SELECT DISTINCT physical FROM _sluice.publications WHERE asset = 'readings'"),
            "_sluice_v.\"readings__partitions\"");
  // keep 3: the history holds the two newest versions replaced, no more.
  ASSERT_TRUE(PublishPartition(**publisher, "d1", 5, "SELECT 'a' AS s, 20 AS v").ok());
  ASSERT_TRUE(PublishPartition(**publisher, "d1", 6, "SELECT 'a' AS s, 30 AS v").ok());
  EXPECT_EQ(Q("SELECT string_agg(DISTINCT _sluice_version, ' ' ORDER BY _sluice_version) FROM "
              "_sluice_v.readings__history WHERE _sluice_partition = 'd1'"),
            Version(4) + " " + Version(5));
  EXPECT_EQ(Q("SELECT s, v FROM readings ORDER BY s"), "a,30.0;b,2.0;c,2.5");
  // Nothing is an orphan, and the publisher's picture matches the catalog.
  auto orphans = DropOrphans(*session_);
  ASSERT_TRUE(orphans.ok());
  EXPECT_EQ(*orphans, 0);
  auto report = RepairPublicViews(*session_);
  ASSERT_TRUE(report.ok());
  EXPECT_THAT(report->lost, IsEmpty());
}

TEST_F(PartitionPublicationTest, ARollbackRestoresOnePartitionAndCanBeUndone) {
  auto publisher = Publisher::Load(*session_, clock_);
  ASSERT_TRUE(publisher.ok());
  ASSERT_TRUE(PublishPartition(**publisher, "d1", 1, "SELECT 1 AS v UNION ALL SELECT 2").ok());
  ASSERT_TRUE(PublishPartition(**publisher, "d2", 2, "SELECT 7 AS v").ok());
  ASSERT_TRUE(PublishPartition(**publisher, "d1", 3, "SELECT 100 AS v").ok());
  EXPECT_EQ(Q("SELECT sum(v) FROM readings"), "107");
  auto unnamed = RollbackAsset(*session_, "readings", "", clock_);
  ASSERT_FALSE(unnamed.ok());
  EXPECT_THAT(unnamed.status().message(), HasSubstr("--partition d2"));
  auto done = RollbackAsset(*session_, "readings", "", clock_, "", "d1");
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->from.version_id, Version(3));
  EXPECT_EQ(done->to.version_id, Version(1));
  EXPECT_EQ(done->to.partition, "d1");
  EXPECT_EQ(Q("SELECT sum(v) FROM readings"), "10");
  // The version it replaced is kept in turn: rolling back again restores it.
  auto again = RollbackAsset(*session_, "readings", "", clock_, "", "d1");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->to.version_id, Version(3));
  EXPECT_EQ(Q("SELECT sum(v) FROM readings"), "107");
  // A version pruned from the history cannot be restored, and says so.
  auto none = RollbackAsset(*session_, "readings", "", clock_, "", "d2");
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.status().message(), HasSubstr("no earlier version"));
}

TEST_F(PartitionPublicationTest, PartitionsOfOneAssetPublishedTogetherEachLand) {
  auto publisher = Publisher::Load(*session_, clock_);
  ASSERT_TRUE(publisher.ok());
  ASSERT_TRUE(PublishPartition(**publisher, "p00", 100, "SELECT 0 AS v").ok());
  constexpr int kParts = 12;
  std::vector<std::string> names(kParts);
  for (int i = 0; i < kParts; ++i) {
    names[i] = (*publisher)->Reserve("readings", Version(i + 1), false);
    // Half of them add a column, so a transaction holding two would alter a
    // table it has deleted from.
    Exec("CREATE TABLE " + StagedRelation(names[i]) + " AS SELECT " + std::to_string(i) + " AS v" +
         (i % 2 ? ", 'x' AS c" + std::to_string(i) : std::string()));
  }
  std::vector<Status> results(kParts);
  std::vector<std::thread> threads;
  for (int i = 0; i < kParts; ++i) {
    threads.emplace_back([&, i] {
      auto session = warehouse_->Connect();
      ASSERT_TRUE(session.ok());
      Publication p = MakePublication("readings", names[i], i + 1, 1);
      p.partition = "p" + std::to_string(i + 1);
      results[i] = (*publisher)->Publish(**session, p, 3);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kParts; ++i)
    EXPECT_TRUE(results[i].ok()) << i << ": " << results[i].ToString();
  EXPECT_EQ(Q("SELECT count(*), sum(v) FROM readings"), "13,66");
  EXPECT_EQ(StagedTables(), (std::set<std::string>{"readings__partitions"}));
}

TEST_F(PartitionPublicationTest, TablesOfAnOlderLayoutMoveIntoTheOneTable) {
  // As an older Sluice left it: a table per partition and a view over them.
  std::string d1 = Build("readings", 1, 2);
  std::string d2 = Build("readings", 2, 3);
  for (auto [key, name, v] : {std::tuple{"d1", d1, 1}, std::tuple{"d2", d2, 2}}) {
    Publication p = MakePublication("readings", name, v, v + 1);
    p.partition = key;
    Exec(
        "INSERT INTO _sluice.publications (seq, asset, partition_key, version_id, physical, "
        "rows, published_at) VALUES (" +
        std::to_string(v) + ", 'readings', '" + key + "', '" + p.version_id + "', " +
        QuoteLiteral(p.physical) + ", " + std::to_string(v + 1) + ", now())");
  }
  Exec("CREATE VIEW main.readings AS SELECT * FROM " + StagedRelation(d1) +
       " UNION ALL BY NAME SELECT * FROM " + StagedRelation(d2));
  auto moved = MovePartitionsToOneTable(*session_);
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(*moved, 1);
  EXPECT_EQ(StagedTables(), (std::set<std::string>{"readings__partitions"}));
  // The same columns as before, each row tagged with its partition.
  EXPECT_EQ(Q("SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM "
              "information_schema.columns WHERE table_name = 'readings'"),
            "id,version");
  EXPECT_EQ(Q("SELECT _sluice_partition, _sluice_version, count(*) FROM "
              "_sluice_v.readings__partitions GROUP BY ALL ORDER BY 1"),
            "d1," + Version(1) + ",2;d2," + Version(2) + ",3");
  EXPECT_EQ(Q("SELECT count(*) FROM _sluice.publications WHERE physical <> "
              "'_sluice_v.\"readings__partitions\"'"),
            "0");
  auto again = MovePartitionsToOneTable(*session_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);
  // Publishing goes on in the new layout; a rebuild of d1 replaces its rows.
  auto publisher = Publisher::Load(*session_, clock_);
  ASSERT_TRUE(publisher.ok());
  Status st = PublishPartition(**publisher, "d3", 3, "SELECT 0 AS id, 3 AS version");
  ASSERT_TRUE(st.ok()) << st.ToString();
  st = PublishPartition(**publisher, "d1", 4, "SELECT 9 AS id, 4 AS version");
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Q("SELECT version, count(*) FROM readings GROUP BY 1 ORDER BY 1"), "2,3;3,1;4,1");
  auto report = RepairPublicViews(*session_);
  ASSERT_TRUE(report.ok());
  EXPECT_THAT(report->lost, IsEmpty());
  EXPECT_THAT(report->restored, IsEmpty());
}

// A partition whose table is gone is not moved (nor said to be): the repair
// reports the asset lost, and nothing publishes over the older layout.
TEST_F(PartitionPublicationTest, ALostPartitionIsLeftForTheRepairToReport) {
  std::string d1 = Build("readings", 1, 2);
  for (auto [key, name, v] :
       {std::tuple{"d1", d1, 1}, std::tuple{"d2", PhysicalTableName("readings", Version(2)), 2}}) {
    Exec(
        "INSERT INTO _sluice.publications (seq, asset, partition_key, version_id, physical, "
        "rows, published_at) VALUES (" +
        std::to_string(v) + ", 'readings', '" + key + "', '" + Version(v) + "', " +
        QuoteLiteral(StagedRelation(name)) + ", 2, now())");
  }
  // Before the move: a publication in the new layout would hide d1; refused.
  auto publisher = Publisher::Load(*session_, clock_);
  ASSERT_TRUE(publisher.ok());
  Status refused = PublishPartition(**publisher, "d3", 3, "SELECT 0 AS id, 3 AS version");
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.message(), HasSubstr("still in the layout of an older Sluice"));
  auto moved = MovePartitionsToOneTable(*session_);
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(Q("SELECT partition_key || '=' || (physical = '_sluice_v.\"readings__partitions\"') "
              "FROM _sluice.publications ORDER BY 1"),
            "d1=true;d2=false");
  auto report = RepairPublicViews(*session_);
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->lost.size(), 1u);
  EXPECT_THAT(report->lost[0], HasSubstr("readings: the table of its published version is gone"));
}

// A failed group is retried one publication at a time from what each asked
// for: a partition that shared a group with a failing publication is then
// published, not refused as if its rows were gone. The two are asked for
// while a partition of 5M rows is being published, so they queue behind it
// and the next leader takes them as one group.
TEST_F(PartitionPublicationTest, APartitionBesideAFailingPublicationLands) {
  auto publisher = Publisher::Load(*session_, clock_);
  ASSERT_TRUE(publisher.ok());
  std::string big = (*publisher)->Reserve("big", Version(1), false);
  Exec("CREATE TABLE " + StagedRelation(big) + " AS SELECT range AS v FROM range(5000000)");
  std::string part = (*publisher)->Reserve("readings", Version(2), false);
  Exec("CREATE TABLE " + StagedRelation(part) + " AS SELECT 2 AS v");
  std::string bad = (*publisher)->Reserve("other", Version(1), false);
  Exec("CREATE TABLE " + StagedRelation(bad) + " AS SELECT 1 AS v");
  Exec("CREATE TABLE main.other AS SELECT 1 AS v");  // where other's view belongs: it fails
  auto publish = [&](Publication p, Status* out) {
    auto session = warehouse_->Connect();
    ASSERT_TRUE(session.ok());
    *out = (*publisher)->Publish(**session, p, 3);
  };
  Publication p0 = MakePublication("big", big, 1, 5000000);
  p0.partition = "d1";
  Publication p1 = MakePublication("readings", part, 2, 1);
  p1.partition = "d2";
  Publication p2 = MakePublication("other", bad, 1, 1);
  Status s0, s1, s2;
  std::thread leader(publish, p0, &s0);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // (ordering only)
  std::thread a(publish, p1, &s1);
  std::thread b(publish, p2, &s2);
  leader.join();
  a.join();
  b.join();
  ASSERT_TRUE(s0.ok()) << s0.ToString();
  ASSERT_TRUE(s1.ok()) << s1.ToString();
  EXPECT_FALSE(s2.ok());
  EXPECT_EQ(Q("SELECT sum(v) FROM readings"), "2");
  EXPECT_EQ(Q("SELECT count(*) FROM big"), "5000000");
}

}  // namespace
}  // namespace sluice
