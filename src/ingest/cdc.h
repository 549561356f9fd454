// Change data capture from PostgreSQL (DESIGN §2): logical decoding with
// the built-in pgoutput plugin, read through a replication slot the source
// owns and a publication that lists its tables.
//
// The contract, for exactly-once application per table:
//  - The first read (or one after the slot was lost) snapshots: it creates
//    the slot with an exported snapshot and copies every table inside that
//    snapshot, so the copy and the slot's changes meet exactly at the slot's
//    consistent point — nothing missed, nothing twice.
//  - A later read peeks (never consumes) the slot's committed transactions,
//    in commit order, after a heartbeat transaction of its own (so that the
//    slot can advance while the tables are quiet). A table's changes are
//    written only for transactions whose commit record starts at or past
//    the table's cursor: ones its publication already holds are skipped.
//  - Each table's publication stores its cursor (the end of the last
//    transaction read); the caller confirms the slot (Confirm) only up to
//    the least cursor of its tables, after their publications commit. A
//    kill -9 anywhere reads the same transactions again, and skips them.
//
// A change file is CSV in the `database` decoder's form: the table's
// columns (the same types as its snapshot) after _lsn (the transaction's
// commit LSN), _seq (order in the read), _op (insert, update, delete,
// truncate), _unchanged (a '0'/'1' mark a column, 1 = an unchanged TOASTed
// value the change did not carry) and _extracted_at.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "ingest/database.h"

namespace sluice {

// The columns a change file has before the table's own.
inline constexpr const char* kChangeColumns[] = {"_lsn", "_seq", "_op", "_unchanged"};
// The columns every captured table has after its own.
inline constexpr const char* kCaptureColumns[] = {"_op", "_extracted_at"};

std::string FormatLsn(uint64_t lsn);
Result<uint64_t> ParseLsn(const std::string& text);

struct CdcTable {
  std::string relation;          // "schema.table" or "table"
  std::vector<std::string> key;  // the columns a delete is matched on
  uint64_t after = 0;            // its cursor: transactions before it are held already
  std::string path;              // where its file is written
};

struct CdcRequest {
  DbRequest db;  // url, timeout, cancel (table and query unused)
  std::string slot;
  std::string publication;
  int64_t max_changes = 0;   // at most this many messages a read (whole transactions); 0: all
  std::string extracted_at;  // the read's time, as DuckDB writes a TIMESTAMP (UTC)
  std::vector<CdcTable> tables;
};

struct CdcTableRead {
  DbExtract extract;  // columns, rows, bytes, sha256 of the file written
  int64_t inserts = 0, updates = 0, deletes = 0, truncates = 0;
  // Columns added with a default after rows existed (atthasmissing): those
  // rows hold the default, and no change says so.
  std::vector<std::string> defaulted;
};

struct CdcRead {
  uint64_t start = 0;  // a snapshot's consistent point; a read's first transaction
  uint64_t end = 0;    // the cursor every table may move to (0: nothing read)
  int64_t transactions = 0;
  bool more = false;                 // max_changes stopped it: more changes are waiting
  std::vector<CdcTableRead> tables;  // as req.tables
  std::vector<std::string> notes;
};

struct CdcSlotState {
  bool exists = false;
  bool active = false;
  std::string plugin;
  std::string wal_status;  // reserved, extended, unreserved, lost
  uint64_t confirmed = 0;  // confirmed_flush_lsn
  uint64_t current = 0;    // the server's WAL position now
  int64_t lag_bytes = 0;   // current - confirmed: WAL the slot keeps
  std::string wal_level;
};

// The slot as the server sees it now (and the server's wal_level).
Result<CdcSlotState> InspectSlot(const CdcRequest& req);

// Checks the server (wal_level, encoding) and the publication (created when
// missing and the user may; every table must be in it), then drops any slot
// of req.slot's name, creates it with an exported snapshot and copies every
// table inside it. `end` = `start` = the slot's consistent point.
Result<CdcRead> SnapshotTables(const CdcRequest& req);

// Peeks the slot's transactions (after a heartbeat of its own) and writes
// each table's changes at or past its cursor.
Result<CdcRead> ReadChanges(const CdcRequest& req);

// Lets the server forget the slot's WAL before `lsn` (after the tables'
// publications hold every change before it).
Status ConfirmSlot(const CdcRequest& req, uint64_t lsn);

}  // namespace sluice
