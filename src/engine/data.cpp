// The engine's "data" request: the dataset API's read of one published
// table (engine/dataset.h builds the statement), and the key that caches its
// answer. The key is computed from memory only — the owner's current
// publications — before the read, so a cached answer is never older than
// the publications its key names (a publication that commits in between
// makes the read newer than its key, never older).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <set>

#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/strings.h"
#include "engine/dataset.h"
#include "engine/engine.h"
#include "engine/lookup.h"
#include "engine/opened.h"
#include "engine/reader.h"
#include "publish/exports.h"
#include "warehouse/encode.h"
#include "warehouse/watchdog.h"

namespace sluice {
namespace {

using nlohmann::json;

json OkData(json result) { return {{"ok", true}, {"exit_code", 0}, {"result", std::move(result)}}; }

// _format=parquet: the page as a Parquet file DuckDB writes (typed
// columns), through a temp table on the reader's own session: the rows
// once, the `next` cursor from the last one shown, then the file, read
// back and removed. Answers {body_base64, rows, more, next}.
Result<json> ParquetPage(WarehouseSession& session, const DataQuery& q, const BoundSql& sql,
                         const std::string& tmp_dir, int64_t timeout) {
  RETURN_IF_ERROR(MakeDirs(tmp_dir));
  std::string file = JoinPath(tmp_dir, "page-" + RandomHex(8) + ".parquet");
  struct Cleanup {
    WarehouseSession& session;
    std::string file;
    ~Cleanup() {
      ::unlink(file.c_str());
      (void)session.Execute("DROP TABLE IF EXISTS temp._sluice_page");
    }
  } cleanup{session, file};
  // Destroyed before the clean-up runs: a timeout never interrupts it.
  Watchdog watchdog(&session, timeout);
  auto stopped = [&](Status st) -> Status {
    if (st.ok() || !watchdog.fired()) return st;
    return Status(StatusCode::kTimeout,
                  "the read was stopped after " + std::to_string(timeout) + " s");
  };
  RETURN_IF_ERROR(stopped(
      session.QueryBound("CREATE OR REPLACE TEMP TABLE _sluice_page AS " + sql.sql, sql.params)
          .status()));
  ASSIGN_OR_RETURN(QueryResult described, session.Query("DESCRIBE SELECT * FROM _sluice_page"));
  std::vector<std::string> names, types;
  for (const auto& row : described.rows) {
    names.push_back(row.at(0).value_or(""));
    types.push_back(row.at(1).value_or(""));
  }
  ASSIGN_OR_RETURN(QueryResult count, session.Query("SELECT count(*) FROM _sluice_page"));
  bool more = count.ScalarInt() > q.limit;
  std::vector<std::string> hidden;
  for (size_t i = 0; q.cursor && i < q.sort.size(); ++i) {
    hidden.push_back("_sluice_sort_" + std::to_string(i));
  }
  std::string next;
  if (more && q.cursor) {
    std::vector<std::string> cols;
    for (const std::string& h : hidden) cols.push_back(QuoteIdent(h));
    // The table keeps the order it was made in (DuckDB preserves insertion order).
    ASSIGN_OR_RETURN(QueryResult last, session.Query("SELECT " + Join(cols, ", ") +
                                                     " FROM _sluice_page LIMIT 1 OFFSET " +
                                                     std::to_string(q.limit - 1)));
    if (last.rows.empty()) return Status::Internal("the page's last row is missing");
    next = EncodeCursor(last.rows[0]);
  }
  std::string select = ParquetSelectList(names, types, hidden);
  Result<QueryResult> copied = session.Query(
      "COPY (SELECT " + select + " FROM _sluice_page LIMIT " + std::to_string(q.limit) + ") TO " +
      QuoteLiteral(file) + " (FORMAT parquet, COMPRESSION zstd)");
  RETURN_IF_ERROR(stopped(copied.status()));
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(file));
  return json{{"body_base64", Base64UrlEncode(bytes)},
              {"rows", copied->ScalarInt()},
              {"more", more},
              {"next", next}};
}

}  // namespace

DataVersion VersionOf(const std::string& table,
                      const std::map<std::pair<std::string, std::string>, Publication>& current,
                      const Workspace* ws) {
  // (ws: never null)
  DataVersion out;
  std::map<std::string, std::pair<int64_t, int>> seen;  // asset -> (max seq, partitions)
  std::deque<std::string> pending{table};
  std::set<std::string> queued{table};
  while (!pending.empty()) {
    std::string asset = pending.front();
    pending.pop_front();
    auto& [seq, partitions] = seen[asset];
    for (auto it = current.lower_bound({asset, ""});
         it != current.end() && it->first.first == asset; ++it) {
      seq = std::max(seq, it->second.seq);
      ++partitions;
      for (const json& input : it->second.inputs) {
        // A model's inputs are [asset, version] pairs; a source's are hashes.
        if (!input.is_array() || input.empty() || !input[0].is_string()) continue;
        std::string up = input[0].get<std::string>();
        if (queued.insert(up).second) pending.push_back(up);
      }
    }
    if (out.reason.empty()) {
      const AssetNode* node = ws->graph.Find(asset);
      bool view = node != nullptr && FactsOf(*ws, *node).materialized == "view";
      if (node == nullptr) {
        out.reason = asset + " is published but not in the project as loaded now";
      } else if (view && node->nondeterministic) {
        out.reason =
            "the view " + asset + " calls a function whose result changes (now(), random())";
      } else if (view && !node->external.empty()) {
        out.reason = "the view " + asset + " reads external tables (" + Join(node->external, ", ") +
                     "), whose changes Sluice does not see";
      } else if (view && !node->files.empty()) {
        out.reason = "the view " + asset + " reads files (" + Join(node->files, ", ") +
                     "), whose changes Sluice does not see";
      }
    }
  }
  std::vector<std::string> parts;
  for (const auto& [asset, v] : seen) {
    parts.push_back(asset + "@" + std::to_string(v.first) + "/" + std::to_string(v.second));
  }
  out.text = Join(parts, ",");
  return out;
}

std::shared_ptr<const Workspace> Engine::LatestWorkspace() {
  {
    std::lock_guard lock(workspace_mu_);
    if (latest_workspace_) return latest_workspace_;
  }
  auto ws = std::make_shared<const Workspace>(LoadWorkspace(project_root_, env_name_));
  std::lock_guard lock(workspace_mu_);
  if (latest_workspace_) return latest_workspace_;
  // A project that does not load now is used for this request only (a
  // later one loads it again).
  if (ws->ok()) {
    latest_workspace_ = ws;
    ++data_state_;
  }
  return ws;
}

std::optional<Engine::DataState> Engine::DataStateNow() {
  std::unique_lock lock(open_mu_, std::try_to_lock);
  if (!lock.owns_lock() || !opened_) return std::nullopt;
  return DataState{data_state_.load(), opened_->current.generation()};
}

json Engine::HandleData(const json& request, const EventSink& events) {
  // memory_only (the HTTP server's I/O threads ask, for a cache hit): the
  // key from what is in memory, or "not in memory" without waiting for
  // anything — no opening, loading or warehouse session.
  const bool memory_only = request.value("memory_only", false);
  const json not_in_memory = {{"ok", false}, {"exit_code", 1}, {"error", "not in memory"}};
  Opened* opened_now = nullptr;
  if (memory_only) {
    // Held for seconds while the environment opens or closes: never waited for here.
    std::unique_lock lock(open_mu_, std::try_to_lock);
    if (!lock.owns_lock()) return not_in_memory;
    opened_now = opened_.get();
  }
  Result<Opened*> opened = memory_only ? Result<Opened*>(opened_now) : OpenForRequest();
  if (!opened.ok()) return ErrorResponse(opened.status());
  if (*opened == nullptr) return not_in_memory;
  Opened& env = **opened;
  std::optional<ReaderSessions::Lease> session;  // taken when the read needs one

  std::string table = ToLower(request.value("table", ""));
  std::shared_ptr<const Workspace> ws;
  if (memory_only) {
    std::unique_lock lock(workspace_mu_, std::try_to_lock);
    if (lock.owns_lock()) ws = latest_workspace_;
    if (!ws) return not_in_memory;
  } else {
    ws = LatestWorkspace();
  }
  std::vector<DataColumn> columns;
  std::vector<std::string> published;
  DataVersion version;
  int partitions = 0;
  // In memory once loaded (the runs keep it current at each commit); the
  // first request after the owner opened loads it.
  auto look = [&](const CurrentPublications::Map& current) {
    std::set<std::string> names;
    for (auto it = current.lower_bound({table, ""});
         it != current.end() && it->first.first == table; ++it) {
      partitions += !it->first.second.empty();
      // A partitioned asset: the columns of all its partitions, first seen first.
      for (const json& c : it->second.schema) {
        std::string name = c.value("name", "");
        if (!name.empty() && names.insert(ToLower(name)).second) {
          columns.push_back({name, c.value("type", "")});
        }
      }
    }
    if (columns.empty()) {  // for the did-you-mean only
      for (auto it = current.begin(); it != current.end(); ++it) {
        if (published.empty() || published.back() != it->first.first) {
          published.push_back(it->first.first);
        }
      }
      return;
    }
    version = VersionOf(table, current, ws.get());
  };
  if (!env.current.Visit(look)) {
    if (memory_only) return not_in_memory;
    Result<ReaderSessions::Lease> taken = env.readers->Take();
    if (!taken.ok()) return ErrorResponse(taken.status());
    session.emplace(std::move(*taken));
    Result<std::shared_ptr<const CurrentPublications::Map>> current =
        env.current.Snapshot(**session);
    if (!current.ok()) return ErrorResponse(current.status());
    look(**current);
  }
  if (columns.empty()) {
    std::string hint = DidYouMeanHint(table, published);
    return ErrorResponse(
        Status::NotFound("no published table '" + table + "'" +
                         (hint.empty() ? " (GET /api/v1/assets lists what is published)" : hint)));
  }

  std::vector<std::string> key;
  const AssetNode* node = ws->graph.Find(table);
  // A partitioned asset's key is unique within each partition, not across
  // them: its pages go by offset, ordered through every column.
  if (node != nullptr && partitions == 0) key = FactsOf(*ws, *node).key;
  std::map<std::string, std::string> params;
  if (request.contains("params") && request["params"].is_object()) {
    for (const auto& [k, v] : request["params"].items()) {
      params[k] = v.is_string() ? v.get<std::string>() : v.dump();
    }
  }
  DataLimits limits;
  limits.max_limit = request.value("max_limit", limits.max_limit);
  Result<DataQuery> query = ParseDataQuery(table, params, columns, key, limits);
  if (!query.ok()) return ErrorResponse(query.status());

  json keyed = {{"key", query->Normalized() + "|" + version.text},
                {"cacheable", version.reason.empty()},
                {"not_cached_because", version.reason}};
  if (request.value("key_only", false)) return OkData(keyed);

  if (!session) {
    Result<ReaderSessions::Lease> taken = env.readers->Take();
    if (!taken.ok()) return ErrorResponse(taken.status());
    session.emplace(std::move(*taken));
  }
  const int64_t timeout = request.value("timeout", int64_t{30});
  // A lookup answers from memory what it can; the first eligible read of a
  // version builds it (and answers from it). Not for what its version does
  // not name (a view reading files, external tables or now()).
  auto lookup_columns = env.env.server.lookups.find(table);
  if (lookup_columns != env.env.server.lookups.end() && version.reason.empty()) {
    std::optional<std::string> column = LookupColumnOf(*query, lookup_columns->second);
    auto type = std::find_if(columns.begin(), columns.end(),
                             [&](const DataColumn& c) { return column && c.name == *column; });
    if (column && type != columns.end()) {
      LookupStore::Found found = env.lookups.Find(table, *column, version.text);
      if (found.build) {
        auto started = std::chrono::steady_clock::now();
        Result<std::shared_ptr<const LookupIndex>> built =
            BuildLookup(**session, *query, *column, type->type, version.text, timeout);
        if (built.ok()) {
          LOG_INFO("data", "lookup {}.{} built: {} values, {} KiB, {} ms", table, *column,
                   (*built)->rows.size(), (*built)->bytes >> 10,
                   std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - started)
                       .count());
          found.index = *built;
        } else {
          LOG_WARN("data", "lookup {}.{} not built (reads go to the warehouse): {}", table, *column,
                   built.status().message());
        }
        env.lookups.Done(table, *column, version.text, found.index);
      }
      if (found.index) {
        if (std::optional<LookupAnswer> answer = AnswerFromLookup(*found.index, *query)) {
          keyed["content_type"] = DataContentType(DataFormat::kJson);
          keyed["body"] = std::move(answer->body);
          keyed["rows"] = answer->rows;
          keyed["more"] = answer->more;
          keyed["next"] = answer->next;
          if (answer->more && !query->cursor) {
            keyed["next_offset"] = query->offset + query->limit;
          }
          return OkData(std::move(keyed));
        }
      }
    }
  }
  BoundSql sql = BuildDataSql(*query);
  if (LogEnabled(LogLevel::kDebug)) {
    std::vector<std::string> shown;
    for (const auto& p : sql.params) shown.push_back(p ? QuoteLiteral(*p) : "NULL");
    LOG_DEBUG("data", "{} -- {}", sql.sql, Join(shown, ", "));
  }
  // A failed read: a value the caller gave that does not fit its column's
  // type is theirs (the engine names the value it could not convert);
  // anything else is the server's (a broken view, I/O, memory).
  auto read_error = [&](const Status& st) {
    if (st.code() == StatusCode::kTimeout) return ErrorResponse(st);
    const std::string& m = st.message();
    if (m.find("Conversion Error") != std::string::npos) {
      for (const std::optional<std::string>& p : sql.params) {
        if (p && m.find("'" + *p + "'") != std::string::npos) {
          return ErrorResponse(Status::Invalid("a filter's value does not fit its column: " +
                                               m.substr(0, m.find('\n'))));
        }
      }
    }
    LOG_WARN("data", "reading {} failed: {}", table, m);
    return ErrorResponse(Status::Internal("reading " + table + " failed: " + m));
  };
  if (query->format == DataFormat::kParquet) {
    Result<json> page =
        ParquetPage(**session, *query, sql, JoinPath(env.env.state_dir, "tmp"), timeout);
    if (!page.ok()) return read_error(page.status());
    keyed["content_type"] = DataContentType(DataFormat::kParquet);
    for (const char* k : {"body_base64", "rows", "more", "next"}) keyed[k] = (*page)[k];
    if (page->value("more", false) && !query->cursor) {
      keyed["next_offset"] = query->offset + query->limit;
    }
    return OkData(std::move(keyed));
  }
  const DataFormat format = query->format;
  const RowFormat row_format = format == DataFormat::kCsv       ? RowFormat::kCsv
                               : format == DataFormat::kGeoJson ? RowFormat::kGeoJson
                                                                : RowFormat::kJson;
  std::optional<RowEncoder> encoder;
  std::string body;
  std::vector<std::optional<std::string>> last_sort;
  bool more = false;
  RowVisitor visitor;
  visitor.columns = [&](const std::vector<RenderedColumn>& c) {
    size_t visible = c.size() - (query->cursor ? query->sort.size() : 0);
    Result<RowEncoder> made =
        RowEncoder::Create(row_format, c, visible, query->lon_column, query->lat_column);
    if (!made.ok()) return Status::Internal(made.status().message());
    encoder.emplace(std::move(*made));
    encoder->Header(body);
    if (format == DataFormat::kGeoJson) {
      body += "{\"type\":\"FeatureCollection\",\"features\":[";
    } else if (format == DataFormat::kJson) {
      AppendJsonPageHead(body, table, *encoder);
    }
    return Status::Ok();
  };
  // A big answer streams: past stream_after bytes, what is rendered goes
  // out in chunks (the caller's sink may throw when its client is gone).
  const size_t stream_after = events ? request.value("stream_after", size_t{0}) : 0;
  bool streaming = false;
  auto flush = [&] {
    if (!streaming) {
      events({{"type", "data_head"},
              {"content_type", DataContentType(format)},
              {"key", keyed["key"]},
              {"cacheable", keyed["cacheable"]},
              {"not_cached_because", keyed["not_cached_because"]}});
      streaming = true;
    }
    events({{"type", "data_chunk"}, {"data", body}});
    body.clear();
  };
  visitor.row = [&](const std::vector<std::optional<std::string_view>>& row) {
    if (encoder->rows() == query->limit) {  // the extra row: there is a next page
      more = true;
      return false;
    }
    if (stream_after > 0 && body.size() >= stream_after) flush();
    encoder->Row(row, body);
    last_sort.clear();
    for (size_t i = encoder->visible(); i < row.size(); ++i) {
      last_sort.push_back(row[i] ? std::optional<std::string>(std::string(*row[i])) : std::nullopt);
    }
    return true;
  };
  ReadLimits read_limits;
  read_limits.max_rows = 0;  // the statement's LIMIT caps it
  read_limits.timeout_seconds = timeout;
  // The cursor's values must read back as the column's type: text, as
  // DuckDB prints it, for every format.
  RenderFormat render = RenderFormatFor(row_format);
  Result<ReadSummary> read =
      RunBuiltRead(**session, sql.sql, sql.params, render, read_limits, visitor,
                   // The statement stays prepared on this session while
                   // the publications it reads stay the same.
                   version.text);
  if (!read.ok()) return read_error(read.status());
  std::string next;
  if (more && query->cursor) next = EncodeCursor(last_sort);
  if (format == DataFormat::kGeoJson) {
    body += "]";
    if (!next.empty()) body += ",\"next\":\"" + next + "\"";
    body += "}";
  } else if (format == DataFormat::kJson) {
    AppendJsonPageTail(body, query->limit, query->offset, next, more);
  }
  keyed["content_type"] = DataContentType(format);
  if (streaming) {
    flush();  // the rest, the envelope's end with it
    keyed["streamed"] = true;
  } else {
    keyed["body"] = std::move(body);
  }
  keyed["rows"] = encoder ? encoder->rows() : 0;
  keyed["more"] = more;
  keyed["next"] = next;
  // Without a cursor (a table without a key), the next page is by offset.
  if (more && !query->cursor) keyed["next_offset"] = query->offset + query->limit;
  return OkData(std::move(keyed));
}

}  // namespace sluice
