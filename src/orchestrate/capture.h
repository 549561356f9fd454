// The runner's side of change capture (ingest/cdc.h): what a captured
// table's publication keeps as its cursor, and whether a run reads the
// slot's changes or snapshots the source's tables again.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
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

// The slot a captured source reads in an environment: cdc.slot, else
// sluice_<env>_<source> (lower-case, '-' as '_').
std::string CaptureSlot(const SourceSpec& src, const std::string& env);

// Which database, slot and table a capture reads: a cursor is continued
// only by the same (another key: snapshot again).
std::string CaptureReadKey(const std::string& display_url, const std::string& slot,
                           const CdcSpec& cdc, const TableSpec& table);

// Where a captured source keeps the position every table has read all
// changes before (the runner writes it after each run, with the slot and
// snapshot it belongs to): a quiet table keeps its publication and cursor,
// but has read that far. <state_dir>/capture/<source>.confirmed.
std::string CaptureConfirmedPath(const std::string& state_dir, const SourceSpec& src);
// The confirmed position kept there (nullopt: none, or unreadable).
std::optional<CaptureCursor> ReadCaptureConfirmed(const std::string& path);
// Moves each cursor of the confirmed position's slot and snapshot up to it:
// MariaDB has no slot to keep it, and a quiet table's own cursor would
// otherwise stay in a binlog file the server may purge.
void ApplyCaptureConfirmed(const std::string& path,
                           std::vector<std::optional<CaptureCursor>>& cursors);

// A TIMESTAMP literal's text, "2026-12-01 04:35:00.123456" (UTC).
std::string CaptureTimestamp(Micros t);

// What a run reads. `cursors`: each table's stored cursor (nullopt: none,
// or its publication's fingerprint changed).
struct CaptureDecision {
  bool snapshot = false;
  std::string why;              // a snapshot's reason, for the run's notes
  std::vector<uint64_t> after;  // changes: each table's cursor
  std::string generation;
};
// `snapshot_pending`: a snapshot began (the slot was made again) and not
// every table has published from it yet — the old cursors are void.
// `read_keys`: each table's CaptureReadKey now.
CaptureDecision DecideCapture(const std::vector<std::optional<CaptureCursor>>& cursors,
                              const CdcSlotState& slot, const std::string& slot_name,
                              const std::vector<std::string>& read_keys, bool full_refresh,
                              bool snapshot_pending = false);

// A captured table's state for the catalog and the web UI: its slot as the
// server reports it now (exists, active, wal_status, lag_bytes, the
// server's and the slot's LSNs) and where the table's publication stands
// (`cursor`: its cursor_state). {"error": ...} when the server does not answer.
nlohmann::json CaptureStatusJson(const Project& project, const std::string& env_name,
                                 const SourceSpec& src, const nlohmann::json& cursor);

// /metrics: each captured source's slot as its server reports it now —
// sluice_cdc_slot_lag_bytes (the WAL it keeps: a stalled slot fills the
// source's disk; MariaDB: the binlog bytes past the least cursor of its
// tables, `cursors` by asset), sluice_cdc_slot_active, and
// sluice_cdc_slot_up (0 when the slot is missing, lost, or the server does
// not answer).
std::string CaptureMetricsText(const Project& project, const std::string& env_name,
                               const std::map<std::string, nlohmann::json>& cursors = {});

// /metrics for stream sources, asked of their servers now:
// sluice_stream_pending_messages (messages in the stream past the sequence
// the table's publication holds; `cursors`: each table's cursor_state) and
// sluice_stream_up (0 when the server or stream does not answer).
std::string StreamMetricsText(const Project& project, const std::string& env_name,
                              const std::map<std::string, nlohmann::json>& cursors);

}  // namespace sluice
