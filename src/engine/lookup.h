// Lookups — `server: {lookups: {TABLE: [COLUMN, ...]}}`: a published
// table's rows, rendered once as the dataset API's JSON objects and grouped
// by one column's value, answer `GET /api/v1/data/TABLE?COLUMN=V` from
// memory. A warehouse read costs DuckDB a new plan every time (a statement
// with parameters over a table is planned again for each set of values), so
// a point read of a 100,000-row table takes about a millisecond of CPU; a
// lookup takes microseconds.
//
// An index belongs to the version of the table it was read at (the
// publications of the table and what it reads, DataVersion::text): the
// first eligible read after a publication builds it — one ordered read of
// the whole table — and readers meanwhile go to the warehouse. It answers
// only what it answers byte for byte as the warehouse read would (JSON, all
// columns, the default order, one equality filter on a column whose value
// text is plain; test/unit/lookup_test.cpp compares the two): anything else
// goes to the warehouse. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/status.h"
#include "engine/dataset.h"
#include "warehouse/encode.h"
#include "warehouse/warehouse.h"

namespace sluice {

// The JSON page's parts before and after its rows, shared with the
// warehouse read (engine/data.cpp) so both write the same bytes.
void AppendJsonPageHead(std::string& out, const std::string& table, const RowEncoder& encoder);
void AppendJsonPageTail(std::string& out, int64_t limit, int64_t offset, const std::string& next,
                        bool more);

// The text DuckDB prints for `text` cast to the column type `type`, when
// `text` is that type's plain spelling: the type's whole numbers (a sign and
// digits, within range), dates as YYYY-MM-DD, any VARCHAR. nullopt: the
// warehouse decides (a value that does not fit is a 400 there).
std::optional<std::string> LookupKey(const std::string& type, const std::string& text);

struct LookupIndex {
  static constexpr int64_t kMaxRows = 1000000;
  static constexpr size_t kMaxBytes = 256u << 20;

  std::string table, column, type;
  std::vector<DataSort> sort;  // the order within one value: the query's default order
  bool cursor = false;         // rows carry their sort values (`next` cursors)
  std::string head;            // AppendJsonPageHead's text
  struct Row {
    std::string json;                              // the object, as the encoder writes it
    std::vector<std::optional<std::string>> sort;  // for `next` (cursor only)
  };
  std::unordered_map<std::string, std::vector<Row>> rows;  // by LookupKey's text
  size_t bytes = 0;
};

// Reads `query.table` whole, in the order of [column] then query.sort, on
// session. Fails (and nothing is kept) past kMaxRows or kMaxBytes, or when
// the column's type has no LookupKey.
Result<std::shared_ptr<const LookupIndex>> BuildLookup(
    WarehouseSession& session, const DataQuery& query, const std::string& column,
    const std::string& type, const std::string& cache_tag, int64_t timeout_seconds);

struct LookupAnswer {
  std::string body;
  int64_t rows = 0;
  bool more = false;
  std::string next;  // the cursor after the last row shown, when more (cursor tables)
};

// The lookup column of `query` when an index could answer it: JSON, every
// column, one equality filter on a column of `columns`, no _after.
std::optional<std::string> LookupColumnOf(const DataQuery& query,
                                          const std::vector<std::string>& columns);

// The answer to `query` from index, or nullopt when the index cannot give
// the warehouse's answer (another order, a value that is not plain).
std::optional<LookupAnswer> AnswerFromLookup(const LookupIndex& index, const DataQuery& query);

// The indexes of one environment: one version per (table, column).
class LookupStore {
 public:
  struct Found {
    std::shared_ptr<const LookupIndex> index;  // null: none for this version
    bool build = false;  // none, nobody builds it, it did not fail: the caller builds
  };
  Found Find(const std::string& table, const std::string& column, const std::string& version);
  // After a build the caller was told to make: index, or null when it failed
  // (not tried again for this version).
  void Done(const std::string& table, const std::string& column, const std::string& version,
            std::shared_ptr<const LookupIndex> index);

 private:
  struct Entry {
    std::string version;
    std::shared_ptr<const LookupIndex> index;
    bool building = false;
    bool failed = false;
  };
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, Entry> entries_;  // GUARDED_BY(mu_)
};

}  // namespace sluice
