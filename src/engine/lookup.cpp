#include "engine/lookup.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include "core/strings.h"
#include "engine/reader.h"

namespace sluice {
namespace {

// A sign and digits, as the whole number it names when it fits [lo, hi].
template <typename T>
std::optional<std::string> PlainWhole(std::string_view text, T lo, T hi) {
  std::string_view digits = text;
  bool negative = false;
  if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) {
    negative = digits[0] == '-';
    digits.remove_prefix(1);
  }
  if (digits.empty() || digits.size() > 40) return std::nullopt;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  std::string number = (negative ? "-" : "") + std::string(digits);
  T value{};
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || end != number.data() + number.size()) return std::nullopt;
  if (value < lo || value > hi) return std::nullopt;
  return std::to_string(value);
}

template <typename T>
std::optional<std::string> PlainWhole(std::string_view text) {
  return PlainWhole<T>(text, std::numeric_limits<T>::min(), std::numeric_limits<T>::max());
}

// YYYY-MM-DD of a day that exists, years 1000 to 9999 (printed the same).
std::optional<std::string> PlainDate(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
  }
  auto number = [&](size_t at, size_t n) {
    int v = 0;
    for (size_t i = at; i < at + n; ++i) v = v * 10 + (text[i] - '0');
    return v;
  };
  int y = number(0, 4), m = number(5, 2), d = number(8, 2);
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (y < 1000 || m < 1 || m > 12 || d < 1 || d > kDays[m - 1] + (m == 2 && leap ? 1 : 0)) {
    return std::nullopt;
  }
  return std::string(text);
}

}  // namespace

void AppendJsonPageHead(std::string& out, const std::string& table, const RowEncoder& encoder) {
  out += "{\"table\":";
  AppendJsonString(out, table);
  out += ",\"columns\":[";
  for (size_t i = 0; i < encoder.visible(); ++i) {
    if (i) out += ',';
    out += "{\"name\":" + encoder.names_json()[i] + ",\"type\":";
    AppendJsonString(out, encoder.columns()[i].type);
    out += '}';
  }
  out += "],\"rows\":[";
}

void AppendJsonPageTail(std::string& out, int64_t limit, int64_t offset, const std::string& next,
                        bool more) {
  out += "],\"limit\":" + std::to_string(limit) + ",\"offset\":" + std::to_string(offset) +
         ",\"next\":";
  if (next.empty()) {
    out += "null";
  } else {
    out += "\"" + next + "\"";
  }
  out += ",\"more\":" + std::string(more ? "true" : "false") + "}";
}

std::optional<std::string> LookupKey(const std::string& type, const std::string& text) {
  std::string t = ToLower(Trim(type));
  if (t == "varchar") return text;
  if (t == "bigint") return PlainWhole<int64_t>(text);
  if (t == "integer") return PlainWhole<int32_t>(text);
  if (t == "smallint") return PlainWhole<int16_t>(text);
  if (t == "tinyint") {
    return PlainWhole<int32_t>(text, std::numeric_limits<int8_t>::min(),
                               std::numeric_limits<int8_t>::max());
  }
  if (t == "ubigint") return PlainWhole<uint64_t>(text);
  if (t == "uinteger") return PlainWhole<uint32_t>(text);
  if (t == "usmallint") return PlainWhole<uint16_t>(text);
  if (t == "utinyint") return PlainWhole<uint32_t>(text, 0, std::numeric_limits<uint8_t>::max());
  if (t == "date") return PlainDate(text);
  return std::nullopt;
}

Result<std::shared_ptr<const LookupIndex>> BuildLookup(
    WarehouseSession& session, const DataQuery& query, const std::string& column,
    const std::string& type, const std::string& cache_tag, int64_t timeout_seconds) {
  if (!LookupKey(type, "0") && !LookupKey(type, "2000-01-01")) {
    return Status::Invalid("a lookup on " + query.table + "." + column +
                           " needs a column of whole numbers, dates or text; it is " + type);
  }
  auto index = std::make_shared<LookupIndex>();
  index->table = query.table;
  index->column = column;
  index->type = type;
  index->sort = query.sort;
  index->cursor = query.cursor;
  // The whole table in the order [column, query's order], with the sort
  // values as text after the visible columns: the column's first.
  DataQuery all;
  all.table = query.table;
  all.sort.push_back({column, false});
  for (const DataSort& s : query.sort) all.sort.push_back(s);
  all.cursor = true;
  all.limit = LookupIndex::kMaxRows;
  BoundSql sql = BuildDataSql(all);

  std::optional<RowEncoder> encoder;
  std::string scratch;
  std::string current_key;
  std::vector<LookupIndex::Row>* current = nullptr;
  Status failed;
  RowVisitor visitor;
  visitor.columns = [&](const std::vector<RenderedColumn>& c) {
    Result<RowEncoder> made = RowEncoder::Create(RowFormat::kJson, c, c.size() - all.sort.size());
    if (!made.ok()) return Status::Internal(made.status().message());
    encoder.emplace(std::move(*made));
    AppendJsonPageHead(index->head, query.table, *encoder);
    return Status::Ok();
  };
  visitor.row = [&](const std::vector<std::optional<std::string_view>>& row) {
    const size_t hidden = encoder->visible();
    if (encoder->rows() >= LookupIndex::kMaxRows || index->bytes > LookupIndex::kMaxBytes) {
      failed = Status::Invalid(query.table + " is too large for a lookup (more than " +
                               std::to_string(LookupIndex::kMaxRows) + " rows or " +
                               std::to_string(LookupIndex::kMaxBytes >> 20) + " MiB)");
      return false;
    }
    const bool had_rows = encoder->rows() > 0;
    scratch.clear();
    encoder->Row(row, scratch);
    if (!row[hidden]) return true;  // NULL: no equality filter finds it
    LookupIndex::Row out;
    out.json = had_rows ? scratch.substr(1) : scratch;  // without the separator
    if (index->cursor) {
      for (size_t i = hidden + 1; i < row.size(); ++i) {
        out.sort.push_back(row[i] ? std::optional<std::string>(std::string(*row[i]))
                                  : std::nullopt);
      }
    }
    if (current == nullptr || current_key != *row[hidden]) {
      current_key = std::string(*row[hidden]);
      current = &index->rows[current_key];
      index->bytes += current_key.size() + 64;
    }
    index->bytes += out.json.size() + sizeof(LookupIndex::Row);
    for (const auto& v : out.sort) index->bytes += v ? v->size() + 32 : 32;
    current->push_back(std::move(out));
    return true;
  };
  ReadLimits limits;
  limits.max_rows = 0;
  limits.timeout_seconds = timeout_seconds;
  Result<ReadSummary> read = RunBuiltRead(
      session, sql.sql, sql.params, RenderFormatFor(RowFormat::kJson), limits, visitor, cache_tag);
  RETURN_IF_ERROR(failed);
  RETURN_IF_ERROR(read.status());
  if (!encoder) return Status::Internal("the read of " + query.table + " reported no columns");
  return std::shared_ptr<const LookupIndex>(std::move(index));
}

std::optional<std::string> LookupColumnOf(const DataQuery& query,
                                          const std::vector<std::string>& columns) {
  if (query.format != DataFormat::kJson || !query.select.empty() || query.after ||
      query.filters.size() != 1 || query.filters[0].op != FilterOp::kEq ||
      query.filters[0].values.size() != 1) {
    return std::nullopt;
  }
  const std::string& column = query.filters[0].column;
  for (const std::string& c : columns) {
    if (ToLower(c) == ToLower(column)) return column;
  }
  return std::nullopt;
}

std::optional<LookupAnswer> AnswerFromLookup(const LookupIndex& index, const DataQuery& query) {
  if (query.table != index.table || query.cursor != index.cursor ||
      query.sort.size() != index.sort.size() || query.filters.size() != 1 ||
      query.filters[0].column != index.column) {
    return std::nullopt;
  }
  for (size_t i = 0; i < query.sort.size(); ++i) {
    if (query.sort[i].column != index.sort[i].column ||
        query.sort[i].descending != index.sort[i].descending) {
      return std::nullopt;
    }
  }
  std::optional<std::string> key = LookupKey(index.type, query.filters[0].values[0]);
  if (!key) return std::nullopt;
  static const std::vector<LookupIndex::Row> kNone;
  auto it = index.rows.find(*key);
  const std::vector<LookupIndex::Row>& rows = it == index.rows.end() ? kNone : it->second;
  LookupAnswer answer;
  answer.body = index.head;
  const size_t begin = std::min<size_t>(rows.size(), static_cast<size_t>(query.offset));
  const size_t end = std::min<size_t>(rows.size(), begin + static_cast<size_t>(query.limit));
  for (size_t i = begin; i < end; ++i) {
    if (i > begin) answer.body += ',';
    answer.body += rows[i].json;
  }
  answer.rows = static_cast<int64_t>(end - begin);
  answer.more = end < rows.size();
  if (answer.more && query.cursor && end > begin) answer.next = EncodeCursor(rows[end - 1].sort);
  AppendJsonPageTail(answer.body, query.limit, query.offset, answer.next, answer.more);
  return answer;
}

LookupStore::Found LookupStore::Find(const std::string& table, const std::string& column,
                                     const std::string& version) {
  std::lock_guard lock(mu_);
  Entry& e = entries_[{table, column}];
  if (e.version != version) {
    if (e.building) return {};  // a build of another version is under way: wait for it
    e = Entry{version, nullptr, false, false};
  }
  if (e.index) return {e.index, false};
  if (e.building || e.failed) return {};
  e.building = true;
  return {nullptr, true};
}

void LookupStore::Done(const std::string& table, const std::string& column,
                       const std::string& version, std::shared_ptr<const LookupIndex> index) {
  std::lock_guard lock(mu_);
  Entry& e = entries_[{table, column}];
  if (e.version != version) return;
  e.building = false;
  e.failed = index == nullptr;
  e.index = std::move(index);
}

}  // namespace sluice
