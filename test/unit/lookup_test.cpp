// Lookups (engine/lookup.h): the value text a lookup keys on, the store's
// one version per column, and an index's answers — pages, cursors, values
// it must leave to the warehouse. Byte equality with the warehouse's
// answers on a real feed is test/cases/data_lookup.
#include "engine/lookup.h"

#include <gtest/gtest.h>

#include "nlohmann/json.hpp"
#include "support/memory_warehouse.h"

namespace sluice {
namespace {

TEST(LookupKey, PlainSpellingsOnlyAsDuckDbPrintsThem) {
  EXPECT_EQ(LookupKey("BIGINT", "77"), "77");
  EXPECT_EQ(LookupKey("BIGINT", "+77"), "77");
  EXPECT_EQ(LookupKey("BIGINT", "0077"), "77");
  EXPECT_EQ(LookupKey("BIGINT", "-0"), "0");
  EXPECT_EQ(LookupKey("BIGINT", "-9223372036854775808"), "-9223372036854775808");
  EXPECT_EQ(LookupKey("BIGINT", "9223372036854775808"), std::nullopt);  // a 400 there
  EXPECT_EQ(LookupKey("INTEGER", "2147483648"), std::nullopt);
  EXPECT_EQ(LookupKey("TINYINT", "-128"), "-128");
  EXPECT_EQ(LookupKey("TINYINT", "128"), std::nullopt);
  EXPECT_EQ(LookupKey("UTINYINT", "255"), "255");
  EXPECT_EQ(LookupKey("UTINYINT", "-1"), std::nullopt);
  EXPECT_EQ(LookupKey("UBIGINT", "18446744073709551615"), "18446744073709551615");
  for (const char* odd : {"", " 7", "7 ", "1.0", "1e3", "0x10", "seven", "+", "-", "1_000"}) {
    EXPECT_EQ(LookupKey("BIGINT", odd), std::nullopt) << odd;
  }
  EXPECT_EQ(LookupKey("DATE", "2024-02-29"), "2024-02-29");
  EXPECT_EQ(LookupKey("DATE", "2023-02-29"), std::nullopt);
  EXPECT_EQ(LookupKey("DATE", "2024-2-29"), std::nullopt);
  EXPECT_EQ(LookupKey("DATE", "0999-01-01"), std::nullopt);
  EXPECT_EQ(LookupKey("VARCHAR", " any text "), " any text ");
  EXPECT_EQ(LookupKey("DOUBLE", "1"), std::nullopt);
  EXPECT_EQ(LookupKey("VARCHAR COLLATE NOCASE", "a"), std::nullopt);
}

TEST(LookupStore, OneBuilderPerVersionAndAFailureIsNotRetried) {
  LookupStore store;
  LookupStore::Found first = store.Find("t", "c", "t@1/0");
  EXPECT_TRUE(first.build);
  EXPECT_FALSE(store.Find("t", "c", "t@1/0").build);  // being built: others read the warehouse
  EXPECT_FALSE(store.Find("t", "c", "t@2/0").build);  // nor a newer version until it ends
  auto index = std::make_shared<LookupIndex>();
  store.Done("t", "c", "t@1/0", index);
  EXPECT_EQ(store.Find("t", "c", "t@1/0").index, index);
  EXPECT_TRUE(store.Find("t", "c", "t@2/0").build);  // a new version replaces it
  EXPECT_EQ(store.Find("t", "c", "t@1/0").index, nullptr);
  store.Done("t", "c", "t@2/0", nullptr);  // failed
  EXPECT_FALSE(store.Find("t", "c", "t@2/0").build);
  EXPECT_TRUE(store.Find("t", "c", "t@3/0").build);
  EXPECT_TRUE(store.Find("t", "other", "t@3/0").build);
}

class LookupIndexTest : public MemoryWarehouseTest {
 protected:
  void SetUp() override {
    OpenWarehouse(1);
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_TRUE(session_
                    ->Execute("CREATE TABLE trips AS SELECT range AS id, range % 3 AS stop, "
                              "CASE WHEN range = 4 THEN NULL ELSE 'n' || range END AS name "
                              "FROM range(10)")
                    .ok());
  }
  DataQuery Query(std::map<std::string, std::string> params) {
    Result<DataQuery> q = ParseDataQuery(
        "trips", params, {{"id", "BIGINT"}, {"stop", "BIGINT"}, {"name", "VARCHAR"}}, {"id"}, {});
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    return q.ok() ? *q : DataQuery{};
  }
};

TEST_F(LookupIndexTest, AnswersPagesWithTheirCursorsAndLeavesTheRestToTheWarehouse) {
  DataQuery q = Query({{"stop", "1"}, {"_limit", "2"}});
  ASSERT_EQ(LookupColumnOf(q, {"stop"}), "stop");
  auto built = BuildLookup(*session_, q, "stop", "BIGINT", "v1", 30);
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  const LookupIndex& index = **built;
  EXPECT_EQ(index.rows.size(), 3u);

  std::optional<LookupAnswer> a = AnswerFromLookup(index, q);
  ASSERT_TRUE(a);
  auto page = nlohmann::json::parse(a->body);
  EXPECT_EQ(page["table"], "trips");
  EXPECT_EQ(page["columns"].size(), 3u);
  ASSERT_EQ(page["rows"].size(), 2u);
  EXPECT_EQ(page["rows"][0]["id"], 1);
  EXPECT_EQ(page["rows"][1]["id"], 4);
  EXPECT_TRUE(page["rows"][1]["name"].is_null());
  EXPECT_TRUE(a->more);
  EXPECT_EQ(page["next"], a->next);
  EXPECT_EQ(DecodeCursor(a->next, 1).value()[0], "4");
  const std::string cursor = a->next;

  a = AnswerFromLookup(index, Query({{"stop", "+01"}, {"_offset", "2"}}));  // id 7
  ASSERT_TRUE(a);
  page = nlohmann::json::parse(a->body);
  ASSERT_EQ(page["rows"].size(), 1u);
  EXPECT_EQ(page["rows"][0]["id"], 7);
  EXPECT_FALSE(a->more);
  EXPECT_EQ(page["offset"], 2);

  a = AnswerFromLookup(index, Query({{"stop", "5"}}));  // no such value: no rows
  ASSERT_TRUE(a);
  EXPECT_EQ(nlohmann::json::parse(a->body)["rows"].size(), 0u);

  // Left to the warehouse: a value it must cast or refuse, another order,
  // other columns or formats, more than one filter, a cursor.
  EXPECT_FALSE(AnswerFromLookup(index, Query({{"stop", "1.0"}})));
  EXPECT_FALSE(AnswerFromLookup(index, Query({{"stop", "x"}})));
  EXPECT_FALSE(AnswerFromLookup(index, Query({{"stop", "1"}, {"_sort", "-id"}})));
  EXPECT_FALSE(LookupColumnOf(Query({{"stop", "1"}, {"_select", "id"}}), {"stop"}));
  EXPECT_FALSE(LookupColumnOf(Query({{"stop", "1"}, {"_format", "csv"}}), {"stop"}));
  EXPECT_FALSE(LookupColumnOf(Query({{"stop", "1"}, {"id__gt", "0"}}), {"stop"}));
  EXPECT_FALSE(LookupColumnOf(Query({{"stop__gt", "1"}}), {"stop"}));
  EXPECT_FALSE(LookupColumnOf(Query({{"stop", "1"}, {"_after", cursor}}), {"stop"}));
  EXPECT_FALSE(LookupColumnOf(Query({{"name", "n1"}}), {"stop"}));

  // Text keys are the text; NULL is found by no equality filter.
  auto by_name = BuildLookup(*session_, Query({{"name", "n3"}}), "name", "VARCHAR", "v1", 30);
  ASSERT_TRUE(by_name.ok()) << by_name.status().ToString();
  EXPECT_EQ((*by_name)->rows.size(), 9u);
  a = AnswerFromLookup(**by_name, Query({{"name", "n3"}}));
  ASSERT_TRUE(a);
  EXPECT_EQ(nlohmann::json::parse(a->body)["rows"][0]["id"], 3);

  // A column whose values have no plain text is refused, saying why.
  auto doubles = BuildLookup(*session_, Query({{"id", "1"}}), "id", "DOUBLE", "v1", 30);
  ASSERT_FALSE(doubles.ok());
  EXPECT_NE(doubles.status().message().find("whole numbers, dates or text"), std::string::npos);
}

}  // namespace
}  // namespace sluice
