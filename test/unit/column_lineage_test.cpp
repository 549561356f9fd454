// Column lineage (graph/column_lineage.h) over DuckDB's real parse trees:
// each SQL shape with the column edges it must give.
#include "graph/column_lineage.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "graph/sql_refs.h"

namespace sluice {
namespace {

const std::map<std::string, std::vector<std::string>> kSchemas = {
    {"t", {"a", "b", "c"}},
    {"u", {"a", "d"}},
    {"v", {"a", "b", "e"}},
    {"lists", {"l", "c"}},
};

// "col <- rel.col, rel.col" per output column ("?" marks an unknown part).
std::vector<std::string> Lineage(const std::string& sql, std::vector<std::string> names = {},
                                 std::string* unknown = nullptr) {
  static Result<SqlParser> parser = SqlParser::Create();
  EXPECT_TRUE(parser.ok());
  Result<std::string> tree = parser->SerializeToJson(sql);
  EXPECT_TRUE(tree.ok()) << tree.status().ToString();
  SchemaLookup lookup = [](const std::string& name) -> std::optional<std::vector<std::string>> {
    auto it = kSchemas.find(name);
    if (it == kSchemas.end()) return std::nullopt;
    return it->second;
  };
  Result<QueryColumnLineage> lineage = ColumnLineageFromJson(*tree, lookup, names);
  EXPECT_TRUE(lineage.ok()) << lineage.status().ToString();
  if (!lineage.ok()) return {};
  if (unknown) *unknown = lineage->unknown;
  std::vector<std::string> out;
  for (const ColumnLineage& c : lineage->columns) {
    std::string line = c.column + " <-";
    for (size_t i = 0; i < c.sources.size(); ++i) {
      line += (i ? ", " : " ") + c.sources[i].relation + "." + c.sources[i].column;
    }
    if (!c.unknown.empty()) line += " ?";
    out.push_back(line);
  }
  return out;
}

using V = std::vector<std::string>;

TEST(ColumnLineage, ColumnsAndExpressions) {
  EXPECT_EQ(Lineage("select a, b + c as bc, 1 as one from t"),
            (V{"a <- t.a", "bc <- t.b, t.c", "one <-"}));
  EXPECT_EQ(Lineage("select x.a as id, upper(x.b) from t as x"),
            (V{"id <- t.a", "column1 <- t.b"}));
}

TEST(ColumnLineage, StarWithExcludeReplaceRename) {
  EXPECT_EQ(Lineage("select * from t"), (V{"a <- t.a", "b <- t.b", "c <- t.c"}));
  EXPECT_EQ(Lineage("select * exclude (b) from t"), (V{"a <- t.a", "c <- t.c"}));
  EXPECT_EQ(Lineage("select * replace (b + c as b) rename (a as id) from t"),
            (V{"id <- t.a", "b <- t.b, t.c", "c <- t.c"}));
  EXPECT_EQ(Lineage("select u.*, t.b from t join u on t.a = u.a"),
            (V{"a <- u.a", "d <- u.d", "b <- t.b"}));
}

TEST(ColumnLineage, UsingAndNaturalJoinsCountTheSharedColumnOnce) {
  EXPECT_EQ(Lineage("select * from t join u using (a)"),
            (V{"a <- t.a, u.a", "b <- t.b", "c <- t.c", "d <- u.d"}));
  EXPECT_EQ(Lineage("select a, d from t join u using (a)"), (V{"a <- t.a, u.a", "d <- u.d"}));
  EXPECT_EQ(Lineage("select * from t natural join v"),
            (V{"a <- t.a, v.a", "b <- t.b, v.b", "c <- t.c", "e <- v.e"}));
}

TEST(ColumnLineage, GroupByAllAndAggregates) {
  EXPECT_EQ(
      Lineage("select a, count(*) as n, sum(b) filter (where c > 0) as s from t group by all"),
      (V{"a <- t.a", "n <-", "s <- t.b, t.c"}));
  // DuckDB's own names for unaliased expressions, from the published schema.
  EXPECT_EQ(Lineage("select a, count(*) from t group by all", {"a", "count_star()"}),
            (V{"a <- t.a", "count_star() <-"}));
}

TEST(ColumnLineage, CtesAndSubqueries) {
  EXPECT_EQ(Lineage("with c as (select a, b * 2 as b2 from t) "
                    "select c.b2, x.d from c join u as x on x.a = c.a"),
            (V{"b2 <- t.b", "d <- u.d"}));
  EXPECT_EQ(Lineage("with c(k, w) as (select a, b from t), d as (select k from c) select * from d"),
            (V{"k <- t.a"}));
  EXPECT_EQ(Lineage("select s.k from (select a from t) as s(k)"), (V{"k <- t.a"}));
  EXPECT_EQ(Lineage("select a, (select max(d) from u where u.a = t.a) as m from t"),
            (V{"a <- t.a", "m <- u.d"}));
  EXPECT_EQ(Lineage("select t.a, x from t, lateral (select t.b as x)"),
            (V{"a <- t.a", "x <- t.b"}));
}

TEST(ColumnLineage, SetOperations) {
  EXPECT_EQ(Lineage("select a, b from t union all select a, d from u"),
            (V{"a <- t.a, u.a", "b <- t.b, u.d"}));
  EXPECT_EQ(Lineage("select a, b from t union by name select d, a from u"),
            (V{"a <- t.a, u.a", "b <- t.b", "d <- u.d"}));
}

TEST(ColumnLineage, LambdasAndStructFieldsAreNotColumns) {
  EXPECT_EQ(Lineage("select list_transform(l, x -> x + c) as r from lists"),
            (V{"r <- lists.c, lists.l"}));
  EXPECT_EQ(Lineage("select t.a.f as f from t"), (V{"f <- t.a"}));
}

TEST(ColumnLineage, SaysWhatItCannotKnow) {
  std::string why;
  EXPECT_EQ(Lineage("select * from read_csv('x.csv')", {}, &why), V{});
  EXPECT_NE(why.find("read_csv()"), std::string::npos) << why;
  // A relation of unknown columns, alone in FROM: the column is its, by name.
  EXPECT_EQ(Lineage("select x, a from later"), (V{"x <- later.x ?", "a <- later.a ?"}));
  // Two relations, one unknown: a name not in the known one may be either's.
  EXPECT_EQ(Lineage("select a, zz from t, later"), (V{"a <- t.a", "zz <- ?"}));
  EXPECT_EQ(Lineage("select columns('a|b') from t", {}, &why), V{});
  EXPECT_NE(why.find("COLUMNS"), std::string::npos) << why;
  EXPECT_EQ(Lineage("select nothing_here from t"), (V{"nothing_here <- ?"}));
}

}  // namespace
}  // namespace sluice
