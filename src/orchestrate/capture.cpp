#include "orchestrate/capture.h"

#include "config/template.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/metrics.h"
#include "ingest/stream_nats.h"
#include "orchestrate/check_file.h"

namespace sluice {

std::optional<CaptureCursor> CaptureCursorOf(const nlohmann::json& cursor) {
  if (!cursor.is_object() || !cursor.contains("slot") || !cursor["slot"].is_string() ||
      !cursor.contains("lsn") || !cursor["lsn"].is_string()) {
    return std::nullopt;
  }
  Result<uint64_t> lsn = ParseLsn(cursor["lsn"].get<std::string>());
  if (!lsn.ok()) return std::nullopt;
  CaptureCursor c;
  c.slot = cursor["slot"].get<std::string>();
  c.generation = cursor.value("generation", "");
  c.read = cursor.value("read", "");
  c.lsn = *lsn;
  return c;
}

nlohmann::json CaptureCursorJson(const CaptureCursor& c) {
  return {
      {"slot", c.slot}, {"generation", c.generation}, {"read", c.read}, {"lsn", FormatLsn(c.lsn)}};
}

std::string CaptureSlot(const SourceSpec& src, const std::string& env) {
  if (src.database && src.database->cdc && !src.database->cdc->slot.empty()) {
    return src.database->cdc->slot;
  }
  std::string name = "sluice_" + env + "_" + src.name;
  for (char& c : name) {
    c = c == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return name;
}

std::string CaptureReadKey(const std::string& display_url, const std::string& slot,
                           const CdcSpec& cdc, const TableSpec& table) {
  return Sha256Hex(display_url + "\n" + slot + "\n" + cdc.publication + "\n" + table.db_table +
                   "\n" + nlohmann::json(table.key).dump());
}

std::string CaptureConfirmedPath(const std::string& state_dir, const SourceSpec& src) {
  return JoinPath(JoinPath(state_dir, "capture"), src.name + ".confirmed");
}

std::optional<CaptureCursor> ReadCaptureConfirmed(const std::string& path) {
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) return std::nullopt;
  return CaptureCursorOf(nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false));
}

void ApplyCaptureConfirmed(const std::string& path,
                           std::vector<std::optional<CaptureCursor>>& cursors) {
  std::optional<CaptureCursor> confirmed = ReadCaptureConfirmed(path);
  if (!confirmed) return;
  for (std::optional<CaptureCursor>& c : cursors) {
    if (c && c->slot == confirmed->slot && c->generation == confirmed->generation) {
      c->lsn = std::max(c->lsn, confirmed->lsn);
    }
  }
}

std::string CaptureTimestamp(Micros t) {
  std::string s = FormatTimestamp(t);  // 2026-01-02T03:04:05.678Z
  if (s.size() > 10 && s[10] == 'T') s[10] = ' ';
  if (!s.empty() && s.back() == 'Z') s.pop_back();
  return s;
}

CaptureDecision DecideCapture(const std::vector<std::optional<CaptureCursor>>& cursors,
                              const CdcSlotState& slot, const std::string& slot_name,
                              const std::vector<std::string>& read_keys, bool full_refresh,
                              bool snapshot_pending) {
  CaptureDecision d;
  auto snapshot = [&](std::string why) {
    d.snapshot = true;
    d.why = std::move(why);
    d.after.clear();
    return d;
  };
  if (full_refresh) return snapshot("a full refresh");
  if (snapshot_pending) return snapshot("the last snapshot did not finish");
  for (size_t i = 0; i < cursors.size(); ++i) {
    const auto& c = cursors[i];
    if (!c) return snapshot("a table has not been loaded from this slot");
    if (c->slot != slot_name || i >= read_keys.size() || c->read != read_keys[i]) {
      return snapshot("the slot, database, table or key changed");
    }
    if (d.generation.empty()) d.generation = c->generation;
    if (c->generation != d.generation) {
      return snapshot("the tables were loaded from different snapshots");
    }
    d.after.push_back(c->lsn);
  }
  if (!slot.exists) return snapshot("slot " + slot_name + " does not exist (dropped?)");
  if (slot.wal_status == "lost") {
    return snapshot("slot " + slot_name +
                    " lost WAL it needed (max_slot_wal_keep_size was exceeded)");
  }
  if (slot.plugin != slot.expected_plugin) {
    return snapshot("slot " + slot_name + " decodes with " + slot.plugin + ", not " +
                    slot.expected_plugin);
  }
  for (uint64_t at : d.after) {
    if (at < slot.oldest) {
      return snapshot("the server no longer has the binlog file " + std::to_string(at >> 32) +
                      " the tables were read to (purged: binlog_expire_logs_seconds)");
    }
    if (slot.oldest != 0 && at > slot.current) {
      return snapshot("the tables were read to " + FormatLsn(at) + ", past the server's binlog (" +
                      FormatLsn(slot.current) + "): was it reset, or is this another server?");
    }
  }
  return d;
}

nlohmann::json CaptureStatusJson(const Project& project, const std::string& env_name,
                                 const SourceSpec& src, const nlohmann::json& cursor) {
  nlohmann::json out = {{"slot", CaptureSlot(src, env_name)}};
  if (std::optional<CaptureCursor> c = CaptureCursorOf(cursor)) {
    out["table_lsn"] = FormatLsn(c->lsn);
  }
  TemplateContext ctx;
  ctx.vars = project.vars;
  ctx.env = env_name;
  Result<DbRequest> db = DatabaseRequestOf(project, src, src.tables.front(), ctx);
  if (!db.ok()) {
    out["error"] = db.status().message();
    return out;
  }
  CdcRequest req;
  req.db = *db;
  req.db.timeout_seconds = 5;
  req.db.connect_timeout_seconds = 3;  // a page must not wait on a server that is down
  req.slot = out["slot"].get<std::string>();
  std::vector<std::optional<CaptureCursor>> cursors = {CaptureCursorOf(cursor)};
  auto env = project.environments.find(env_name);
  if (env != project.environments.end()) {
    ApplyCaptureConfirmed(CaptureConfirmedPath(env->second.state_dir, src), cursors);
  }
  if (cursors[0]) {
    out["table_lsn"] = FormatLsn(cursors[0]->lsn);
    req.tables.push_back(CdcTable{src.tables.front().db_table, {}, cursors[0]->lsn, ""});
  }
  Result<CdcSlotState> s = InspectSlot(req);
  if (!s.ok()) {
    out["error"] = s.status().message();
    return out;
  }
  out["exists"] = s->exists;
  out["server_lsn"] = FormatLsn(s->current);
  if (s->exists) {
    out["active"] = s->active;
    out["wal_status"] = s->wal_status;
    out["slot_lsn"] = FormatLsn(s->confirmed);
    out["lag_bytes"] = s->lag_bytes;
  }
  return out;
}

std::string CaptureMetricsText(const Project& project, const std::string& env_name,
                               const std::map<std::string, nlohmann::json>& cursors) {
  std::string lag, active, up;
  for (const SourceSpec& src : project.sources) {
    if (!src.database || !src.database->cdc || src.tables.empty()) continue;
    const std::string labels = "{source=\"" + EscapeLabelValue(src.name) + "\",slot=\"" +
                               EscapeLabelValue(CaptureSlot(src, env_name)) + "\"}";
    TemplateContext ctx;
    ctx.vars = project.vars;
    ctx.env = env_name;
    CdcSlotState state;
    bool ok = false;
    Result<DbRequest> db = DatabaseRequestOf(project, src, src.tables.front(), ctx);
    if (db.ok()) {
      CdcRequest req;
      req.db = *db;
      req.db.timeout_seconds = 5;
      req.db.connect_timeout_seconds = 3;  // within a scrape's usual 10 s
      req.slot = CaptureSlot(src, env_name);
      std::vector<std::optional<CaptureCursor>> held;
      for (const TableSpec& t : src.tables) {
        auto it = cursors.find(t.name);
        if (it != cursors.end()) held.push_back(CaptureCursorOf(it->second));
      }
      auto env = project.environments.find(env_name);
      if (env != project.environments.end()) {
        ApplyCaptureConfirmed(CaptureConfirmedPath(env->second.state_dir, src), held);
      }
      for (const std::optional<CaptureCursor>& c : held) {
        if (c) req.tables.push_back(CdcTable{"", {}, c->lsn, ""});
      }
      Result<CdcSlotState> s = InspectSlot(req);
      if (s.ok()) {
        state = *s;
        ok = state.exists && state.wal_status != "lost";
      }
    }
    up += "sluice_cdc_slot_up" + labels + (ok ? " 1\n" : " 0\n");
    if (!state.exists) continue;
    lag += "sluice_cdc_slot_lag_bytes" + labels + " " + std::to_string(state.lag_bytes) + "\n";
    active += "sluice_cdc_slot_active" + labels + (state.active ? " 1\n" : " 0\n");
  }
  if (up.empty()) return "";
  return "# HELP sluice_cdc_slot_up Whether a captured source's replication slot exists and "
         "keeps its WAL (0: missing, lost, or the server does not answer).\n"
         "# TYPE sluice_cdc_slot_up gauge\n" +
         up +
         "# HELP sluice_cdc_slot_lag_bytes WAL the server keeps for the slot: its position less "
         "the slot's confirmed one.\n"
         "# TYPE sluice_cdc_slot_lag_bytes gauge\n" +
         lag +
         "# HELP sluice_cdc_slot_active Whether a reader holds the slot now.\n"
         "# TYPE sluice_cdc_slot_active gauge\n" +
         active;
}

std::string StreamMetricsText(const Project& project, const std::string& env_name,
                              const std::map<std::string, nlohmann::json>& cursors) {
  std::string up, pending;
  for (const SourceSpec& src : project.sources) {
    if (!src.stream || src.tables.empty()) continue;
    const std::string labels = "{source=\"" + EscapeLabelValue(src.name) + "\",stream=\"" +
                               EscapeLabelValue(src.stream->stream) + "\"}";
    TemplateContext ctx;
    ctx.vars = project.vars;
    ctx.env = env_name;
    Result<StreamRequest> req = StreamRequestOf(project, src, ctx);
    Result<StreamState> state = req.ok() ? InspectStream(*req) : Result<StreamState>(req.status());
    up += "sluice_stream_up" + labels + (state.ok() ? " 1\n" : " 0\n");
    if (!state.ok()) continue;
    uint64_t held = 0;
    auto it = cursors.find(src.tables.front().name);
    if (it != cursors.end() && it->second.is_object() && it->second.contains("seq") &&
        it->second["seq"].is_number_unsigned()) {
      held = it->second["seq"].get<uint64_t>();
    }
    uint64_t waiting = state->last_seq > held ? state->last_seq - held : 0;
    pending += "sluice_stream_pending_messages" + labels + " " + std::to_string(waiting) + "\n";
  }
  if (up.empty()) return "";
  return "# HELP sluice_stream_up Whether a stream source's server and stream answer.\n"
         "# TYPE sluice_stream_up gauge\n" +
         up +
         "# HELP sluice_stream_pending_messages Messages in the stream past the sequence its "
         "table holds.\n"
         "# TYPE sluice_stream_pending_messages gauge\n" +
         pending;
}

}  // namespace sluice
