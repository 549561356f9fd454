// Change capture's pure parts: LSNs, the decision to snapshot, and the SQL
// that reduces a change batch to one row a key (run on DuckDB).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ingest/cdc.h"
#include "orchestrate/capture.h"
#include "support/memory_warehouse.h"
#include "transform/materialize.h"

namespace sluice {
namespace {

TEST(CaptureTest, LsnsRoundTrip) {
  for (uint64_t v : {uint64_t{0}, uint64_t{0x16B374D848}, uint64_t{0xFFFFFFFFFFFFFFFF}}) {
    Result<uint64_t> back = ParseLsn(FormatLsn(v));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, v);
  }
  EXPECT_EQ(FormatLsn(0x16B374D848), "16/B374D848");
  EXPECT_EQ(*ParseLsn("0/1943878"), 0x1943878u);
  for (const char* bad : {"", "16", "/1", "1/", "1/G", "123456789/0", "1/2/3"}) {
    EXPECT_FALSE(ParseLsn(bad).ok()) << bad;
  }
}

const std::vector<std::string> kKeys = {"k", "k"};

CdcSlotState LiveSlot() {
  CdcSlotState s;
  s.exists = true;
  s.plugin = "pgoutput";
  s.expected_plugin = "pgoutput";
  s.wal_status = "reserved";
  return s;
}

TEST(CaptureTest, ChangesAreReadOnlyFromTheSlotEveryTableWasLoadedFrom) {
  CaptureCursor a{"s", "0/10", "k", 0x20}, b{"s", "0/10", "k", 0x30};
  CaptureDecision d = DecideCapture({a, b}, LiveSlot(), "s", kKeys, false);
  EXPECT_FALSE(d.snapshot) << d.why;
  EXPECT_EQ(d.after, (std::vector<uint64_t>{0x20, 0x30}));
  EXPECT_EQ(d.generation, "0/10");

  EXPECT_TRUE(DecideCapture({a, b}, LiveSlot(), "s", kKeys, true).snapshot);
  // A snapshot that began (the slot made again) and did not finish voids
  // every cursor, though they still agree with each other.
  EXPECT_EQ(DecideCapture({a, b}, LiveSlot(), "s", kKeys, false, /*snapshot_pending=*/true).why,
            "the last snapshot did not finish");
  EXPECT_TRUE(DecideCapture({a, std::nullopt}, LiveSlot(), "s", kKeys, false).snapshot);
  CaptureCursor other = b;
  other.generation = "0/99";
  EXPECT_EQ(DecideCapture({a, other}, LiveSlot(), "s", kKeys, false).why,
            "the tables were loaded from different snapshots");
  // Another database, table or key: another read key.
  EXPECT_EQ(DecideCapture({a, b}, LiveSlot(), "s", {"k", "other"}, false).why,
            "the slot, database, table or key changed");
  EXPECT_TRUE(DecideCapture({a}, LiveSlot(), "t", kKeys, false).snapshot);
  CdcSlotState gone = LiveSlot();
  gone.exists = false;
  EXPECT_EQ(DecideCapture({a}, gone, "s", kKeys, false).why, "slot s does not exist (dropped?)");
  CdcSlotState lost = LiveSlot();
  lost.wal_status = "lost";
  EXPECT_TRUE(DecideCapture({a}, lost, "s", kKeys, false).snapshot);
  CdcSlotState wrong = LiveSlot();
  wrong.plugin = "wal2json";
  EXPECT_TRUE(DecideCapture({a}, wrong, "s", kKeys, false).snapshot);
  // MariaDB: a cursor in a binlog file the server purged lost changes.
  CdcSlotState purged = LiveSlot();
  purged.oldest = (uint64_t{3} << 32) | 4;
  EXPECT_EQ(DecideCapture({a}, purged, "s", kKeys, false).why,
            "the server no longer has the binlog file 0 the tables were read to (purged: "
            "binlog_expire_logs_seconds)");
  purged.oldest = a.lsn;
  purged.current = a.lsn;
  EXPECT_FALSE(DecideCapture({a}, purged, "s", kKeys, false).snapshot);
  // A binlog reset (or another server): the cursor is past its end.
  purged.current = a.lsn - 1;
  purged.oldest = 1;
  EXPECT_EQ(DecideCapture({a}, purged, "s", kKeys, false).why,
            "the tables were read to 0/20, past the server's binlog (0/1F): was it reset, or is "
            "this another server?");
}

TEST(CaptureTest, TheDefaultSlotNamesTheEnvironment) {
  SourceSpec src;
  src.name = "shop";
  src.database = DatabaseSpec{};
  src.database->cdc = CdcSpec{};
  EXPECT_EQ(CaptureSlot(src, "dev"), "sluice_dev_shop");
  EXPECT_EQ(CaptureSlot(src, "Prod-EU"), "sluice_prod_eu_shop");
  src.database->cdc->slot = "mine";
  EXPECT_EQ(CaptureSlot(src, "dev"), "mine");
  TableSpec t;
  t.db_table = "public.orders";
  t.key = {"id"};
  std::string k = CaptureReadKey("postgresql://h/db", "mine", *src.database->cdc, t);
  t.key = {"id", "line"};
  EXPECT_NE(CaptureReadKey("postgresql://h/db", "mine", *src.database->cdc, t), k);
}

TEST(CaptureTest, CursorJsonRoundTrips) {
  CaptureCursor c{"slot", "0/10", "key", 0xABCDEF};
  std::optional<CaptureCursor> back = CaptureCursorOf(CaptureCursorJson(c));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->slot, "slot");
  EXPECT_EQ(back->generation, "0/10");
  EXPECT_EQ(back->lsn, 0xABCDEFu);
  // An incremental read's cursor is not a capture's.
  EXPECT_FALSE(CaptureCursorOf({{"column", "x"}, {"value", "1"}}));
  EXPECT_EQ(CaptureTimestamp(0), "1970-01-01 00:00:00.000");
}

class ChangeBatchTest : public MemoryWarehouseTest {
 protected:
  void SetUp() override {
    OpenWarehouse();
    ASSERT_FALSE(HasFatalFailure());
    Exec(
        "CREATE TABLE live (id INTEGER, a VARCHAR, note VARCHAR, _op VARCHAR, "
        "_extracted_at TIMESTAMP)");
    Exec(
        "INSERT INTO live VALUES (1, 'a1', 'long1', 'snapshot', TIMESTAMP '2024-01-01'), "
        "(2, 'a2', 'long2', 'snapshot', TIMESTAMP '2024-01-01'), "
        "(3, 'a3', 'long3', 'snapshot', TIMESTAMP '2024-01-01')");
    Exec(
        "CREATE TABLE batch (_lsn UBIGINT, _seq BIGINT, _op VARCHAR, _unchanged VARCHAR, "
        "id INTEGER, a VARCHAR, note VARCHAR, _extracted_at TIMESTAMP)");
  }
  void Exec(const std::string& sql) {
    Status st = session_->Execute(sql);
    ASSERT_TRUE(st.ok()) << st.ToString() << "\n" << sql;
  }
  std::string Rows(const std::string& sql) {
    Result<QueryResult> r = session_->Query(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString() << "\n" << sql;
    if (!r.ok()) return "";
    std::string out;
    for (const auto& row : r->rows) {
      for (size_t i = 0; i < row.size(); ++i) out += (i ? "," : "") + row[i].value_or("null");
      out += "\n";
    }
    return out;
  }
  void Apply(bool truncate, int64_t after_seq) {
    Exec("CREATE TABLE reduced AS " + ChangeBatchSql("batch", truncate ? "" : "live", {"id"},
                                                     {"id", "a", "note"}, after_seq, true));
    for (const std::string& s : ApplyChangesSql("live", "reduced", {"id"}, truncate)) Exec(s);
  }
};

TEST_F(ChangeBatchTest, TheLastChangeOfAKeyWinsAndUnchangedValuesAreKept) {
  Exec(
      "INSERT INTO batch VALUES "
      // id 1: updated twice, the note never carried: the live note stays.
      "(10, 0, 'update', '001', 1, 'x', NULL, TIMESTAMP '2024-02-01'),"
      "(11, 1, 'update', '001', 1, 'y', NULL, TIMESTAMP '2024-02-01'),"
      // id 2: deleted.
      "(12, 2, 'delete', NULL, 2, NULL, NULL, TIMESTAMP '2024-02-01'),"
      // id 4: inserted, then updated without its note: the insert's note.
      "(13, 3, 'insert', NULL, 4, 'b', 'long4', TIMESTAMP '2024-02-01'),"
      "(14, 4, 'update', '001', 4, 'c', NULL, TIMESTAMP '2024-02-01'),"
      // id 3: its note set to NULL (carried), then updated without it.
      "(15, 5, 'update', NULL, 3, 'a3', NULL, TIMESTAMP '2024-02-01'),"
      "(16, 6, 'update', '001', 3, 'z', NULL, TIMESTAMP '2024-02-01')");
  Apply(false, -1);
  EXPECT_EQ(Rows("SELECT id, a, note, _op FROM live ORDER BY id"),
            "1,y,long1,update\n3,z,null,update\n4,c,long4,update\n");
}

TEST_F(ChangeBatchTest, ATruncateEmptiesTheTableAndLaterChangesStay) {
  Exec(
      "INSERT INTO batch VALUES "
      "(10, 0, 'update', NULL, 1, 'gone', 'n', TIMESTAMP '2024-02-01'),"
      "(11, 1, 'truncate', NULL, NULL, NULL, NULL, TIMESTAMP '2024-02-01'),"
      "(12, 2, 'insert', NULL, 9, 'new', 'n9', TIMESTAMP '2024-02-01'),"
      "(13, 3, 'update', '001', 9, 'new2', NULL, TIMESTAMP '2024-02-01')");
  Apply(true, 1);
  EXPECT_EQ(Rows("SELECT id, a, note, _op FROM live ORDER BY id"), "9,new2,n9,update\n");
}

TEST_F(ChangeBatchTest, ADeleteThenAnInsertOfTheSameKeyLeavesTheInsert) {
  Exec(
      "INSERT INTO batch VALUES "
      "(10, 0, 'delete', NULL, 1, NULL, NULL, TIMESTAMP '2024-02-01'),"
      "(11, 1, 'insert', NULL, 1, 'again', 'fresh', TIMESTAMP '2024-02-01')");
  Apply(false, -1);
  EXPECT_EQ(Rows("SELECT id, a, note, _op FROM live ORDER BY id"),
            "1,again,fresh,insert\n2,a2,long2,snapshot\n3,a3,long3,snapshot\n");
}

}  // namespace
}  // namespace sluice
