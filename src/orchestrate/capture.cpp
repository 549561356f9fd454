#include "orchestrate/capture.h"

#include "core/hash.h"

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
  return {{"slot", c.slot}, {"generation", c.generation}, {"read", c.read}, {"lsn", FormatLsn(c.lsn)}};
}

std::string CaptureReadKey(const std::string& display_url, const CdcSpec& cdc) {
  return Sha256Hex(display_url + "\n" + cdc.slot + "\n" + cdc.publication);
}

std::string CaptureTimestamp(Micros t) {
  std::string s = FormatTimestamp(t);  // 2026-01-02T03:04:05.678Z
  if (s.size() > 10 && s[10] == 'T') s[10] = ' ';
  if (!s.empty() && s.back() == 'Z') s.pop_back();
  return s;
}

CaptureDecision DecideCapture(const std::vector<std::optional<CaptureCursor>>& cursors,
                              const CdcSlotState& slot, const std::string& slot_name,
                              const std::string& read_key, bool full_refresh) {
  CaptureDecision d;
  auto snapshot = [&](std::string why) {
    d.snapshot = true;
    d.why = std::move(why);
    d.after.clear();
    return d;
  };
  if (full_refresh) return snapshot("a full refresh");
  for (const auto& c : cursors) {
    if (!c) return snapshot("a table has not been loaded from this slot");
    if (c->slot != slot_name || c->read != read_key) {
      return snapshot("the slot or database changed");
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
  if (slot.plugin != "pgoutput") {
    return snapshot("slot " + slot_name + " decodes with " + slot.plugin + ", not pgoutput");
  }
  return d;
}

}  // namespace sluice
