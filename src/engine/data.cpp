// The engine's "data" request: the dataset API's read of one published
// table (engine/dataset.h builds the statement), and the key that caches its
// answer. The key is computed from memory only — the owner's current
// publications — before the read, so a cached answer is never older than
// the publications its key names (a publication that commits in between
// makes the read newer than its key, never older).
#include <algorithm>
#include <deque>
#include <set>

#include "core/log.h"
#include "core/strings.h"
#include "engine/dataset.h"
#include "engine/engine.h"
#include "engine/opened.h"
#include "engine/reader.h"

namespace sluice {
namespace {

using nlohmann::json;

json OkData(json result) { return {{"ok", true}, {"exit_code", 0}, {"result", std::move(result)}}; }

// A JSON string literal for text (invalid UTF-8 replaced).
void AppendJsonString(std::string& out, std::string_view text) {
  out += json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace);
}

void AppendValue(std::string& out, const std::optional<std::string_view>& value, JsonKind kind) {
  if (!value) {
    out += "null";
  } else if (kind == JsonKind::kLiteral) {
    out.append(value->data(), value->size());
  } else {
    AppendJsonString(out, *value);
  }
}

void AppendCsvField(std::string& out, std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) {
    out.append(text.data(), text.size());
    return;
  }
  out += '"';
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

// Whether a JSON-rendered value is a finite number (a coordinate).
bool IsJsonNumber(const std::optional<std::string_view>& value, JsonKind kind) {
  if (!value || kind != JsonKind::kLiteral || value->empty()) return false;
  char c = (*value)[0];
  return c == '-' || (c >= '0' && c <= '9');
}

// The relations a table's answer depends on, with their newest
// publication: the table, and transitively the assets its publications
// were built from (a `view` model reads its upstreams at query time, so
// their publications change its answer). Empty `reason`: cacheable.
struct DataVersion {
  std::string text;    // "stops@12/3,agency@9/1": asset@newest seq/partitions
  std::string reason;  // why it cannot be cached, or ""
};

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

}  // namespace

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
  if (ws->ok()) latest_workspace_ = ws;
  return ws;
}

json Engine::HandleData(const json& request) {
  Result<Opened*> opened = OpenForRequest();
  if (!opened.ok()) return ErrorResponse(opened.status());
  Opened& env = **opened;
  std::optional<ReaderSessions::Lease> session;  // taken when the read needs one

  std::string table = ToLower(request.value("table", ""));
  std::shared_ptr<const Workspace> ws = LatestWorkspace();
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
    Result<ReaderSessions::Lease> taken = env.readers->Take();
    if (!taken.ok()) return ErrorResponse(taken.status());
    session.emplace(std::move(*taken));
    Result<CurrentPublications::Map> current = env.current.Get(**session);
    if (!current.ok()) return ErrorResponse(current.status());
    look(*current);
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
  BoundSql sql = BuildDataSql(*query);
  if (LogEnabled(LogLevel::kDebug)) {
    std::vector<std::string> shown;
    for (const auto& p : sql.params) shown.push_back(p ? QuoteLiteral(*p) : "NULL");
    LOG_DEBUG("data", "{} -- {}", sql.sql, Join(shown, ", "));
  }
  const DataFormat format = query->format;
  std::vector<RenderedColumn> cols;
  size_t visible = 0;
  size_t lon = SIZE_MAX, lat = SIZE_MAX;
  std::vector<std::string> names_json;  // each visible column's name as a JSON string
  std::string body;
  int64_t rows = 0;
  std::vector<std::optional<std::string>> last_sort;
  bool more = false;
  RowVisitor visitor;
  visitor.columns = [&](const std::vector<RenderedColumn>& c) {
    cols = c;
    visible = c.size() - (query->cursor ? query->sort.size() : 0);
    for (size_t i = 0; i < visible; ++i) {
      std::string n;
      AppendJsonString(n, c[i].name);
      names_json.push_back(std::move(n));
      if (c[i].name == query->lon_column) lon = i;
      if (c[i].name == query->lat_column) lat = i;
    }
    if (format == DataFormat::kGeoJson && (lon == SIZE_MAX || lat == SIZE_MAX)) {
      return Status::Internal("the coordinate columns " + query->lon_column + "/" +
                              query->lat_column + " are not in the result");
    }
    if (format == DataFormat::kCsv) {
      for (size_t i = 0; i < visible; ++i) {
        if (i) body += ',';
        AppendCsvField(body, c[i].name);
      }
      body += "\r\n";
    } else if (format == DataFormat::kGeoJson) {
      body += "{\"type\":\"FeatureCollection\",\"features\":[";
    } else {
      body += "{\"table\":";
      AppendJsonString(body, table);
      body += ",\"columns\":[";
      for (size_t i = 0; i < visible; ++i) {
        if (i) body += ',';
        body += "{\"name\":" + names_json[i] + ",\"type\":";
        AppendJsonString(body, c[i].type);
        body += '}';
      }
      body += "],\"rows\":[";
    }
    return Status::Ok();
  };
  visitor.row = [&](const std::vector<std::optional<std::string_view>>& row) {
    if (rows == query->limit) {  // the extra row: there is a next page
      more = true;
      return false;
    }
    if (format == DataFormat::kCsv) {
      for (size_t i = 0; i < visible; ++i) {
        if (i) body += ',';
        if (row[i]) AppendCsvField(body, *row[i]);
      }
      body += "\r\n";
    } else if (format == DataFormat::kGeoJson) {
      if (rows) body += ',';
      body += "{\"type\":\"Feature\",\"geometry\":";
      if (IsJsonNumber(row[lon], cols[lon].json) && IsJsonNumber(row[lat], cols[lat].json)) {
        body += "{\"type\":\"Point\",\"coordinates\":[";
        body.append(row[lon]->data(), row[lon]->size());
        body += ',';
        body.append(row[lat]->data(), row[lat]->size());
        body += "]}";
      } else {
        body += "null";
      }
      body += ",\"properties\":{";
      bool first = true;
      for (size_t i = 0; i < visible; ++i) {
        if (i == lon || i == lat) continue;
        if (!first) body += ',';
        first = false;
        body += names_json[i] + ':';
        AppendValue(body, row[i], cols[i].json);
      }
      body += "}}";
    } else {
      body += rows ? ",{" : "{";
      for (size_t i = 0; i < visible; ++i) {
        if (i) body += ',';
        body += names_json[i] + ':';
        AppendValue(body, row[i], cols[i].json);
      }
      body += '}';
    }
    ++rows;
    last_sort.clear();
    for (size_t i = visible; i < row.size(); ++i) {
      last_sort.push_back(row[i] ? std::optional<std::string>(std::string(*row[i])) : std::nullopt);
    }
    return true;
  };
  ReadLimits read_limits;
  read_limits.max_rows = 0;  // the statement's LIMIT caps it
  read_limits.timeout_seconds = request.value("timeout", int64_t{30});
  // The cursor's values must read back as the column's type: text, as
  // DuckDB prints it, for every format.
  RenderFormat render = format == DataFormat::kCsv ? RenderFormat::kText : RenderFormat::kJson;
  Result<ReadSummary> read =
      RunBuiltRead(**session, sql.sql, sql.params, render, read_limits, visitor,
                   // The statement stays prepared on this session while
                   // the publications it reads stay the same.
                   version.text);
  if (!read.ok()) {
    Status st = read.status();
    if (st.code() == StatusCode::kTimeout) return ErrorResponse(st);
    // A value the caller gave that does not fit its column's type: the
    // engine names the value it could not convert.
    const std::string& m = st.message();
    if (m.find("Conversion Error") != std::string::npos) {
      for (const std::optional<std::string>& p : sql.params) {
        if (p && m.find("'" + *p + "'") != std::string::npos) {
          return ErrorResponse(Status::Invalid("a filter's value does not fit its column: " +
                                               m.substr(0, m.find('\n'))));
        }
      }
    }
    // Anything else is the server's (a broken view, I/O, memory).
    LOG_WARN("data", "reading {} failed: {}", table, m);
    return ErrorResponse(Status::Internal("reading " + table + " failed: " + m));
  }
  std::string next;
  if (more && query->cursor) next = EncodeCursor(last_sort);
  if (format == DataFormat::kGeoJson) {
    body += "]";
    if (!next.empty()) body += ",\"next\":\"" + next + "\"";
    body += "}";
  } else if (format == DataFormat::kJson) {
    body += "],\"limit\":" + std::to_string(query->limit) +
            ",\"offset\":" + std::to_string(query->offset) + ",\"next\":";
    if (next.empty()) {
      body += "null";
    } else {
      body += "\"" + next + "\"";
    }
    body += ",\"more\":" + std::string(more ? "true" : "false") + "}";
  }
  keyed["content_type"] = DataContentType(format);
  keyed["body"] = std::move(body);
  keyed["rows"] = rows;
  keyed["more"] = more;
  keyed["next"] = next;
  // Without a cursor (a table without a key), the next page is by offset.
  if (more && !query->cursor) keyed["next_offset"] = query->offset + query->limit;
  return OkData(std::move(keyed));
}

}  // namespace sluice
