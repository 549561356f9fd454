#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "core/fs.h"
#include "graph/sql_refs.h"

namespace sluice {
namespace {

using Names = std::vector<std::string>;

class GraphSqlRefs : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto parser = SqlParser::Create();
    ASSERT_TRUE(parser.ok()) << parser.status().ToString();
    parser_.emplace(std::move(parser).value());
  }
  static void TearDownTestSuite() { parser_.reset(); }

  static SqlRefs Parse(const std::string& sql) {
    auto refs = parser_->Parse(sql);
    EXPECT_TRUE(refs.ok()) << sql << "\n" << refs.status().ToString();
    return refs.ok() ? refs.value() : SqlRefs{};
  }

  static std::optional<SqlParser> parser_;
};

std::optional<SqlParser> GraphSqlRefs::parser_;

TEST_F(GraphSqlRefs, Joins) {
  SqlRefs refs = Parse(
      "select st.stop_id, t.route_id, count(*) as departures\n"
      "from GTFS_Stop_Times st join gtfs_trips t using (trip_id)\n"
      "left join gtfs_routes r on r.route_id = t.route_id, gtfs_trips t2\n"
      "group by all");
  EXPECT_EQ(refs.tables, (Names{"gtfs_routes", "gtfs_stop_times", "gtfs_trips"}));
  EXPECT_EQ(refs.functions, (Names{"count_star"}));
  EXPECT_TRUE(refs.files.empty());
  EXPECT_FALSE(refs.nondeterministic);
}

TEST_F(GraphSqlRefs, CtesAreNotDependencies) {
  SqlRefs refs = Parse(
      "with a as (select * from raw_a), b as (select * from a join raw_b using (id))\n"
      "select * from b");
  EXPECT_EQ(refs.tables, (Names{"raw_a", "raw_b"}));
}

TEST_F(GraphSqlRefs, CteShadowingRespectsScope) {
  // The CTE `orders` shadows the table only inside the subquery that defines it.
  SqlRefs refs = Parse(
      "select * from (with orders as (select 1 as id) select * from orders) x\n"
      "join orders using (id)");
  EXPECT_EQ(refs.tables, (Names{"orders"}));

  // Inside its own definition a non-recursive CTE name is the real table,
  // and a later CTE is not visible to an earlier one.
  refs = Parse(
      "with orders as (select * from orders where x > 0), c as (select * from d), d as (select 1)\n"
      "select * from orders, c");
  EXPECT_EQ(refs.tables, (Names{"d", "orders"}));

  // A CTE shadowing a table is not a dependency anywhere in its scope, incl. subqueries.
  refs = Parse(
      "with customers as (select 1 as id)\n"
      "select (select count(*) from customers) from customers where id in (select id from "
      "customers)");
  EXPECT_TRUE(refs.tables.empty());

  // A schema-qualified name is never a CTE.
  refs = Parse("with t as (select 1) select * from main.t, t");
  EXPECT_EQ(refs.tables, (Names{"main.t"}));
}

TEST_F(GraphSqlRefs, RecursiveCte) {
  SqlRefs refs = Parse(
      "with recursive tree(id, parent) as (\n"
      "  select id, parent from nodes where parent is null\n"
      "  union all select n.id, n.parent from nodes n join tree t on n.parent = t.id)\n"
      "select * from tree");
  EXPECT_EQ(refs.tables, (Names{"nodes"}));
}

TEST_F(GraphSqlRefs, SubqueriesEverywhere) {
  SqlRefs refs = Parse(
      "select a.x, (select max(y) from in_select) as m,\n"
      "  exists (select 1 from in_exists) as e\n"
      "from a\n"
      "where a.x in (select x from in_where) and a.z > (select min(z) from in_compare)\n"
      "  and not exists (select 1 from in_not_exists where in_not_exists.x = a.x)\n"
      "group by all having sum(x) > (select 1 from in_having)\n"
      "qualify row_number() over (partition by x) = 1\n"
      "order by (select 1 from in_order)");
  EXPECT_EQ(refs.tables, (Names{"a", "in_compare", "in_exists", "in_having", "in_not_exists",
                                "in_order", "in_select", "in_where"}));
  EXPECT_EQ(refs.functions, (Names{"max", "min", "row_number", "sum"}));
}

TEST_F(GraphSqlRefs, SetOperations) {
  SqlRefs refs = Parse(
      "select id from u1 union select id from u2 union all select id from u3\n"
      "except select id from e1 intersect select id from i1");
  EXPECT_EQ(refs.tables, (Names{"e1", "i1", "u1", "u2", "u3"}));
}

TEST_F(GraphSqlRefs, FileReads) {
  SqlRefs refs = Parse(
      "select * from 'data/x.parquet'\n"
      "join read_csv('a.csv', header = true, delim = ';') using (id)\n"
      "join read_parquet(['p1.parquet', 'p2.parquet']) using (id)\n"
      "join read_json_auto('events/*.json') using (id)\n"
      "join \"y.csv\" using (id)\n"
      "join generate_series(1, 3) g on true");
  EXPECT_EQ(refs.files, (Names{"a.csv", "data/x.parquet", "events/*.json", "p1.parquet",
                               "p2.parquet", "y.csv"}));
  EXPECT_TRUE(refs.tables.empty());
  EXPECT_EQ(refs.functions,
            (Names{"generate_series", "list_value", "read_csv", "read_json_auto", "read_parquet"}));
}

TEST_F(GraphSqlRefs, QualifiedNames) {
  SqlRefs refs = Parse(
      "select * from Legacy.Customers c join main.Stops s on true join \"My Schema\".\"T\" on "
      "true\n"
      "join db.sch.t3 on true");
  EXPECT_EQ(refs.tables, (Names{"db.sch.t3", "legacy.customers", "main.stops", "my schema.t"}));
}

TEST_F(GraphSqlRefs, Nondeterministic) {
  EXPECT_FALSE(Parse("select upper(x), x::date, cast(y as int) from t").nondeterministic);
  for (const char* sql :
       {"select now()", "select current_timestamp", "select current_date", "select today()",
        "select * from t order by random()", "select uuid()", "select gen_random_uuid()",
        "select setseed(0.5)", "select x from t where d > current_date - interval 1 day",
        "select * from t where id in (select id from u where ts < now())"}) {
    EXPECT_TRUE(Parse(sql).nondeterministic) << sql;
  }
  SqlRefs refs = Parse("select current_date as d, now() as n");
  EXPECT_EQ(refs.functions, (Names{"current_date", "now"}));
}

TEST_F(GraphSqlRefs, SyntaxErrorHasLine) {
  auto refs = parser_->Parse("select a,\n  b\nfrom t\nwhere x = = 2");
  ASSERT_FALSE(refs.ok());
  EXPECT_EQ(refs.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refs.status().message().find("syntax error at or near \"=\""), std::string::npos)
      << refs.status().message();
  EXPECT_NE(refs.status().message().find("LINE 4:"), std::string::npos) << refs.status().message();
}

TEST_F(GraphSqlRefs, UnrenderedTemplateAndOtherStatements) {
  auto refs = parser_->Parse("select * from t where d = {{ var('d') }}");
  ASSERT_FALSE(refs.ok());
  EXPECT_NE(refs.status().message().find("rendered"), std::string::npos);

  refs = parser_->Parse("create table x as select 1");
  ASSERT_FALSE(refs.ok());
  EXPECT_NE(refs.status().message().find("single SELECT"), std::string::npos);

  refs = parser_->Parse("select 1; select 2");
  ASSERT_FALSE(refs.ok());
  EXPECT_NE(refs.status().message().find("found 2 statements"), std::string::npos);

  // A trailing semicolon is still one statement.
  EXPECT_TRUE(parser_->Parse("select 1 from t;").ok());
}

// Golden files: the parse tree format is DuckDB-version specific; a changed
// tree fails here before the walker silently misses references.
// SLUICE_UPDATE_GOLDEN=1 rewrites the files.
struct GoldenCase {
  const char* name;
  const char* sql;
  Names tables;
  Names files;
};

TEST_F(GraphSqlRefs, GoldenTrees) {
  const std::vector<GoldenCase> cases = {
      {"join",
       "select s.id, t.n from stops s join main.trips t using (id)",
       {"main.trips", "stops"},
       {}},
      {"cte", "with a as (select * from raw) select * from a", {"raw"}, {}},
      {"recursive_cte",
       "with recursive r(n) as (select 1 union all select n + 1 from r where n < 3) select * from "
       "r",
       {},
       {}},
      {"subquery_where",
       "select * from a where id in (select id from b) and exists (select 1 from c)",
       {"a", "b", "c"},
       {}},
      {"scalar_subquery", "select (select max(x) from b) as m from a", {"a", "b"}, {}},
      {"set_ops",
       "select 1 from a union all select 1 from b except select 1 from c",
       {"a", "b", "c"},
       {}},
      {"files",
       "select * from 'x.parquet' join read_csv(['a.csv', 'b.csv'], header = true) using (id)",
       {},
       {"a.csv", "b.csv", "x.parquet"}},
      {"qualified_window",
       "select id, row_number() over (partition by g order by ts), now() from legacy.events",
       {"legacy.events"},
       {}},
  };
  const bool update = std::getenv("SLUICE_UPDATE_GOLDEN") != nullptr;
  for (const GoldenCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto text = parser_->SerializeToJson(c.sql);
    ASSERT_TRUE(text.ok()) << text.status().ToString();
    nlohmann::json actual = nlohmann::json::parse(*text);
    std::string path = std::string(SLUICE_TEST_DATA) + "/graph/" + c.name + ".json";
    if (update) {
      ASSERT_TRUE(MakeDirs(Dirname(path)).ok());
      ASSERT_TRUE(WriteFileAtomic(path, actual.dump(1) + "\n").ok());
    }
    auto golden = ReadFile(path);
    ASSERT_TRUE(golden.ok()) << golden.status().ToString();
    EXPECT_EQ(actual, nlohmann::json::parse(*golden))
        << "json_serialize_sql output changed for " << c.name
        << "; check the walker, then rerun with SLUICE_UPDATE_GOLDEN=1";

    auto refs = RefsFromJson(c.sql, *golden);
    ASSERT_TRUE(refs.ok()) << refs.status().ToString();
    EXPECT_EQ(refs->tables, c.tables);
    EXPECT_EQ(refs->files, c.files);
  }
}

TEST_F(GraphSqlRefs, RefsFromJsonRejectsGarbage) {
  EXPECT_FALSE(RefsFromJson("", "not json").ok());
  EXPECT_FALSE(RefsFromJson("", "{\"error\": true, \"error_message\": \"boom\"}").ok());
  EXPECT_FALSE(RefsFromJson("", "{\"statements\": 3}").ok());
}

}  // namespace
}  // namespace sluice
