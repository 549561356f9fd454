// The runner's side of change capture (ingest/cdc.h): what a captured
// table's publication keeps as its cursor, and whether a run reads the
// slot's changes or snapshots the source's tables again.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/project.h"
#include "core/clock.h"
#include "ingest/cdc.h"

namespace sluice {

// A captured table's cursor: the slot and its generation (the consistent
// point of the snapshot the table was loaded from), the read key (which
// database), and the LSN its publication holds every change before.
struct CaptureCursor {
  std::string slot, generation, read;
  uint64_t lsn = 0;
};
std::optional<CaptureCursor> CaptureCursorOf(const nlohmann::json& cursor);
nlohmann::json CaptureCursorJson(const CaptureCursor& c);

// Which database a source captures: a cursor is continued only there.
std::string CaptureReadKey(const std::string& display_url, const CdcSpec& cdc);

// A TIMESTAMP literal's text, "2026-12-01 04:35:00.123456" (UTC).
std::string CaptureTimestamp(Micros t);

// What a run reads. `cursors`: each table's stored cursor (nullopt: none,
// or its publication's fingerprint changed).
struct CaptureDecision {
  bool snapshot = false;
  std::string why;             // a snapshot's reason, for the run's notes
  std::vector<uint64_t> after;  // changes: each table's cursor
  std::string generation;
};
CaptureDecision DecideCapture(const std::vector<std::optional<CaptureCursor>>& cursors,
                              const CdcSlotState& slot, const std::string& slot_name,
                              const std::string& read_key, bool full_refresh);

}  // namespace sluice
