// Tests of the dataset API's queries (engine/dataset.h) and the response
// cache (server/cache.h): parameters parsed and refused with the parameter
// named, every value bound (hostile values never reach the SQL text), keyset
// pages over real DuckDB that return every row exactly once in either
// direction with NULLs and ties, coordinates found, and the cache's LRU.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/dataset.h"
#include "server/cache.h"
#include "warehouse/duckdb.h"

namespace sluice {
namespace {

const std::vector<DataColumn> kColumns = {{"id", "BIGINT"},
                                          {"name", "VARCHAR"},
                                          {"score", "DOUBLE"},
                                          {"Stop_Lat", "DOUBLE"},
                                          {"stop_lon", "DOUBLE"}};

Result<DataQuery> Parse(const std::map<std::string, std::string>& params,
                        std::vector<std::string> key = {}) {
  return ParseDataQuery("t", params, kColumns, key, DataLimits{});
}

TEST(DatasetQuery, ParsesFiltersAndControls) {
  auto q = Parse({{"name__like", "A%"},
                  {"id__in", "1,2,3"},
                  {"score__isnull", "false"},
                  {"ID__gte", "2"},
                  {"_select", "name, id"},
                  {"_sort", "-score"},
                  {"_limit", "5"},
                  {"_offset", "10"}},
                 {"id"});
  ASSERT_TRUE(q.ok()) << q.status().message();
  EXPECT_EQ(q->select, (std::vector<std::string>{"name", "id"}));
  ASSERT_EQ(q->sort.size(), 2u);  // -score, then the key
  EXPECT_TRUE(q->sort[0].descending);
  EXPECT_EQ(q->sort[1].column, "id");
  EXPECT_EQ(q->limit, 5);
  EXPECT_EQ(q->offset, 10);
  ASSERT_EQ(q->filters.size(), 4u);
  BoundSql sql = BuildDataSql(*q);
  EXPECT_EQ(sql.sql,
            "SELECT \"name\", \"id\", CAST(\"score\" AS VARCHAR) AS \"_sluice_sort_0\", "
            "CAST(\"id\" AS VARCHAR) AS \"_sluice_sort_1\" FROM \"t\" WHERE \"id\" >= $1 AND "
            "\"id\" IN ($2, $3, $4) AND "
            "CAST(\"name\" AS VARCHAR) LIKE $5 AND \"score\" IS NOT NULL ORDER BY \"score\" DESC "
            "NULLS LAST, \"id\" ASC NULLS LAST LIMIT 6 OFFSET 10");
  EXPECT_EQ(sql.params, (std::vector<std::optional<std::string>>{"2", "1", "2", "3", "A%"}));
}

TEST(DatasetQuery, RefusesWhatItCannotDoNamingTheParameter) {
  auto message = [](const std::map<std::string, std::string>& p) {
    auto q = Parse(p);
    return q.ok() ? std::string("<ok>") : q.status().message();
  };
  EXPECT_EQ(message({{"nmae", "x"}}), "nmae: the table has no column 'nmae' (did you mean name?)");
  EXPECT_EQ(message({{"_select", "id,id"}}), "_select: the column 'id' is named twice");
  EXPECT_EQ(message({{"_limit", "0"}}), "_limit: expected a whole number from 1 to 10000, got '0'");
  EXPECT_EQ(message({{"_limit", "1e3"}}),
            "_limit: expected a whole number from 1 to 10000, got '1e3'");
  EXPECT_EQ(message({{"_format", "xml"}}),
            "_format: expected json, csv, geojson or parquet, got 'xml'");
  EXPECT_EQ(message({{"_sortt", "id"}}), "unknown parameter '_sortt' (did you mean _sort?)");
  EXPECT_EQ(message({{"_bogus_thing", "1"}}),
            "unknown parameter '_bogus_thing'; the table's controls are _select, _sort, _limit, "
            "_offset, _after, _format, and it has no column of that name");
  EXPECT_EQ(message({{"id__isnull", "maybe"}}), "id__isnull: expected true or false, got 'maybe'");
  EXPECT_EQ(message({{"_after", "WyIxIl0"}}),
            "_after: paging by cursor needs the table's key (it declares none, or its key is not "
            "among its published columns); page with _offset");
  auto keyed = [](const std::map<std::string, std::string>& p) {
    auto q = Parse(p, {"id"});
    return q.ok() ? std::string("<ok>") : q.status().message();
  };
  EXPECT_EQ(keyed({{"_sort", "id"}, {"_after", "not a cursor"}}),
            "_after: not a cursor of this query (pass the `next` value of the page before, with "
            "the same _sort)");
  EXPECT_EQ(keyed({{"_after", EncodeCursor({"1"})}, {"_offset", "5"}}),
            "_after and _offset together: the cursor already says where the page starts; drop "
            "_offset");
  // A column name with "__" in it that is no operator stays a column name,
  // and one starting with "_" is a column, not a control.
  auto q = ParseDataQuery("t", {{"a__b", "1"}, {"_id__gte", "2"}},
                          {{"a__b", "INTEGER"}, {"_id", "INTEGER"}}, {}, DataLimits{});
  ASSERT_TRUE(q.ok()) << q.status().message();
  EXPECT_EQ(q->filters[0].column, "_id");
  EXPECT_EQ(q->filters[1].column, "a__b");
  // Without a key the order is total through every column, and no cursor.
  auto keyless = Parse({{"_sort", "-score"}});
  ASSERT_TRUE(keyless.ok());
  EXPECT_FALSE(keyless->cursor);
  ASSERT_EQ(keyless->sort.size(), kColumns.size());
  EXPECT_EQ(BuildDataSql(*keyless).sql,
            "SELECT * FROM \"t\" ORDER BY \"score\" DESC NULLS LAST, \"id\" ASC NULLS LAST, "
            "\"name\" ASC NULLS LAST, \"Stop_Lat\" ASC NULLS LAST, \"stop_lon\" ASC NULLS LAST "
            "LIMIT 101");
}

TEST(DatasetQuery, HostileValuesAndNamesNeverReachTheSqlText) {
  const std::string evil = "x'); DROP TABLE t; --\"";
  for (const char* op : {"", "__ne", "__gt", "__gte", "__lt", "__lte", "__in", "__like"}) {
    auto q = Parse({{std::string("name") + op, evil}});
    ASSERT_TRUE(q.ok()) << op;
    BoundSql sql = BuildDataSql(*q);
    EXPECT_EQ(sql.sql.find("DROP"), std::string::npos) << sql.sql;
    EXPECT_EQ(sql.sql.find(';'), std::string::npos) << sql.sql;
  }
  // Names are checked against the catalog before anything is built.
  EXPECT_FALSE(Parse({{"_select", "id, (select 1)"}}).ok());
  EXPECT_FALSE(Parse({{"_sort", "id; drop table t"}}).ok());
  EXPECT_FALSE(Parse({{"id\" = 1 or \"1", "1"}}).ok());
}

TEST(DatasetQuery, TheNormalisedTextIgnoresParameterSpelling) {
  auto a = Parse({{"id__gte", "1"}, {"name", "x"}, {"_limit", "5"}});
  auto b = Parse({{"_limit", "5"}, {"NAME", "x"}, {"ID__gte", "1"}});
  auto c = Parse({{"_limit", "5"}, {"name", "y"}, {"id__gte", "1"}});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->Normalized(), b->Normalized());
  EXPECT_NE(a->Normalized(), c->Normalized());
}

TEST(DatasetQuery, CoordinatesByNameAndCursorsRoundTrip) {
  auto coords = CoordinateColumns(kColumns);
  ASSERT_TRUE(coords.has_value());
  EXPECT_EQ(coords->first, "stop_lon");
  EXPECT_EQ(coords->second, "Stop_Lat");
  EXPECT_FALSE(CoordinateColumns({{"a", "INTEGER"}}).has_value());
  auto geo = Parse({{"_format", "geojson"}, {"_select", "name"}});
  ASSERT_TRUE(geo.ok());
  EXPECT_EQ(geo->select, (std::vector<std::string>{"name", "stop_lon", "Stop_Lat"}));

  std::vector<std::optional<std::string>> values = {"a\"b,c", std::nullopt, "2026-01-01 10:00:00"};
  auto back = DecodeCursor(EncodeCursor(values), 3);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, values);
  EXPECT_FALSE(DecodeCursor(EncodeCursor(values), 2).ok());
}

// Every page of a table read through cursors, on DuckDB: each row once.
class DatasetPages : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = DuckDbDatabase::Open("", DuckDbOptions{});
    ASSERT_TRUE(db.ok());
    db_ = std::move(*db);
    auto conn = db_.Connect();
    ASSERT_TRUE(conn.ok());
    conn_ = std::move(*conn);
    // 50 rows: score has ties and NULLs, id is the key.
    ASSERT_TRUE(conn_
                    .Execute("CREATE TABLE t AS SELECT i AS id, 'n' || (i % 7) AS name, "
                             "CASE WHEN i % 5 = 0 THEN NULL WHEN i % 11 = 0 THEN 'nan'::DOUBLE "
                             "ELSE (i % 4)::DOUBLE END AS score, "
                             "1.0 AS \"Stop_Lat\", 2.0 AS stop_lon FROM range(50) r(i)")
                    .ok());
  }

  // The ids read page by page (limit 7) following the `next` cursor.
  std::vector<int64_t> ReadAll(std::map<std::string, std::string> params,
                               RenderFormat format = RenderFormat::kText) {
    std::vector<int64_t> ids;
    params["_limit"] = "7";
    for (int page = 0; page < 100; ++page) {
      auto q = ParseDataQuery("t", params, kColumns, {"id"}, DataLimits{});
      EXPECT_TRUE(q.ok()) << q.status().message();
      if (!q.ok()) break;
      BoundSql sql = BuildDataSql(*q);
      size_t visible = 0;
      int64_t rows = 0;
      std::vector<std::optional<std::string>> last;
      RowVisitor visitor;
      visitor.columns = [&](const std::vector<RenderedColumn>& c) {
        visible = c.size() - q->sort.size();
        return Status::Ok();
      };
      visitor.row = [&](const std::vector<std::optional<std::string_view>>& row) {
        if (rows == q->limit) return false;
        ++rows;
        ids.push_back(std::stoll(std::string(*row[0])));
        last.clear();
        for (size_t i = visible; i < row.size(); ++i) {
          last.push_back(row[i] ? std::optional<std::string>(std::string(*row[i])) : std::nullopt);
        }
        return true;
      };
      Status st = conn_.ReadRendered(sql.sql, format, visitor, sql.params);
      EXPECT_TRUE(st.ok()) << st.message() << "\n" << sql.sql;
      if (!st.ok() || rows < q->limit) break;
      params["_after"] = EncodeCursor(last);
    }
    return ids;
  }

  DuckDbDatabase db_;
  DuckDbConnection conn_;
};

TEST_F(DatasetPages, EveryRowOnceInEitherDirectionWithTiesAndNulls) {
  for (RenderFormat format : {RenderFormat::kText, RenderFormat::kJson}) {
    for (const char* sort : {"score", "-score", "name,-score", "-id"}) {
      std::vector<int64_t> ids = ReadAll({{"_sort", sort}, {"_select", "id"}}, format);
      std::set<int64_t> unique(ids.begin(), ids.end());
      EXPECT_EQ(ids.size(), 50u) << sort;
      EXPECT_EQ(unique.size(), 50u) << sort;
    }
  }
  // With a filter, only its rows, each once.
  std::vector<int64_t> ids = ReadAll({{"_sort", "-score"}, {"score__gte", "2"}});
  EXPECT_EQ(ids.size(), 22u);  // i % 4 in {2, 3} or nan (greatest in DuckDB), i % 5 != 0
}

TEST_F(DatasetPages, HostileValuesAreOnlyValues) {
  for (const std::string& evil :
       {std::string("n1' OR '1'='1"), std::string("n1'; DROP TABLE t; --"),
        std::string("\\x00\"; select 1")}) {
    std::vector<int64_t> ids = ReadAll({{"name", evil}, {"_select", "id"}});
    EXPECT_TRUE(ids.empty()) << evil;
  }
  auto count = conn_.Query("SELECT count(*) FROM t");
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(count->ScalarInt(), 50);
  EXPECT_EQ(ReadAll({{"name", "n1"}}).size(), 7u);  // i % 7 == 1 below 50
}

TEST_F(DatasetPages, APreparedReadKeptUnderItsTagBindsNewValuesAndANewTagSeesNewColumns) {
  auto read = [&](const std::string& tag, const std::string& value) {
    std::vector<std::string> out;
    size_t ncols = 0;
    RowVisitor visitor;
    visitor.columns = [&](const std::vector<RenderedColumn>& c) {
      ncols = c.size();
      return Status::Ok();
    };
    visitor.row = [&](const std::vector<std::optional<std::string_view>>& row) {
      out.push_back(std::string(*row[0]));
      return true;
    };
    Status st = conn_.ReadRendered("SELECT * FROM t WHERE id = $1", RenderFormat::kText, visitor,
                                   {value}, tag);
    EXPECT_TRUE(st.ok()) << st.message();
    return std::make_pair(out, ncols);
  };
  EXPECT_EQ(read("v1", "3").first, (std::vector<std::string>{"3"}));
  EXPECT_EQ(read("v1", "4").first, (std::vector<std::string>{"4"}));  // the same statement
  EXPECT_EQ(read("v1", "4").second, 5u);
  ASSERT_TRUE(conn_.Execute("ALTER TABLE t ADD COLUMN extra INTEGER").ok());
  EXPECT_EQ(read("v2", "4").second, 6u);  // a new publication: a new tag, the new columns
}

TEST(ResponseCache, KeepsTheRecentlyUsedWithinItsSize) {
  ResponseCache cache(8000);  // entries up to 1,000 bytes
  auto entry = [](size_t n) {
    auto r = std::make_shared<CachedResponse>();
    r->body.assign(n, 'x');
    return r;
  };
  cache.Put("a", entry(500));
  cache.Put("b", entry(500));
  cache.Put("huge", entry(5000));  // over an eighth: not kept
  EXPECT_EQ(cache.Get("huge"), nullptr);
  ASSERT_NE(cache.Get("a"), nullptr);  // a is now the most recent
  for (int i = 0; i < 20; ++i) cache.Put("k" + std::to_string(i), entry(500));
  EXPECT_LE(cache.stats().bytes, 8000u);
  EXPECT_EQ(cache.Get("b"), nullptr);  // the least recent went first
  EXPECT_NE(cache.Get("k19"), nullptr);
  ResponseCache off(0);
  off.Put("a", entry(1));
  EXPECT_EQ(off.Get("a"), nullptr);
}

TEST(KeyMemo, AnswersOnlyForTheStateItWasToldAndStaysBounded) {
  KeyMemo memo;
  const KeyMemo::State s1{1, 7}, s2{1, 8}, s3{2, 7};
  memo.Put("4:stop1:a", s1, {"key-a", true});
  memo.Put("4:stop1:b", s1, {"key-b", false});
  ASSERT_TRUE(memo.Get("4:stop1:a", s1).has_value());
  EXPECT_EQ(memo.Get("4:stop1:a", s1)->key, "key-a");
  EXPECT_FALSE(memo.Get("4:stop1:b", s1)->cacheable);
  EXPECT_FALSE(memo.Get("4:stop1:c", s1).has_value());
  // Either half of the state changed: nothing is answered, whatever was kept.
  EXPECT_FALSE(memo.Get("4:stop1:a", s2).has_value());
  EXPECT_FALSE(memo.Get("4:stop1:a", s3).has_value());
  // A Put under a new state drops the old entries.
  memo.Put("4:stop1:b", s2, {"key-b2", true});
  EXPECT_EQ(memo.size(), 1u);
  EXPECT_FALSE(memo.Get("4:stop1:a", s1).has_value());
  EXPECT_EQ(memo.Get("4:stop1:b", s2)->key, "key-b2");
  // Past its bound it starts again rather than grow.
  for (size_t i = 0; i < KeyMemo::kMaxEntries + 10; ++i) {
    memo.Put("r" + std::to_string(i), s2, {"k", true});
  }
  EXPECT_LE(memo.size(), KeyMemo::kMaxEntries);
  EXPECT_TRUE(memo.Get("r" + std::to_string(KeyMemo::kMaxEntries + 9), s2).has_value());
  // An entry larger than the whole memo is not kept.
  memo.Put(std::string(KeyMemo::kMaxBytes, 'x'), s2, {"k", true});
  EXPECT_FALSE(memo.Get(std::string(KeyMemo::kMaxBytes, 'x'), s2).has_value());
}

}  // namespace
}  // namespace sluice
