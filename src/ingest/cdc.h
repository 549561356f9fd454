// Change data capture (DESIGN §2): PostgreSQL's logical decoding with the
// built-in pgoutput plugin, read through a replication slot the source owns
// and a publication that lists its tables (cdc_postgres.cpp); MariaDB's
// row-based binlog, read as a replica would (cdc_mariadb.cpp). The
// functions below choose the database's driver by req.db.url.
//
// The contract, for exactly-once application per table:
//  - The first read (or one after the slot or binlog was lost) snapshots:
//    every table is copied at one point of the change stream — PostgreSQL:
//    the slot is created with an exported snapshot the copy reads in;
//    MariaDB: one START TRANSACTION WITH CONSISTENT SNAPSHOT, whose binlog
//    position the server reports (binlog_snapshot_file/position) — so the
//    copy and the changes meet exactly there: nothing missed, nothing twice.
//  - A later read takes the committed transactions after the least cursor,
//    in commit order (PostgreSQL: peeks the slot, never consuming it, after
//    a heartbeat transaction of its own so that the slot can advance while
//    the tables are quiet; MariaDB: a binlog dump from that position that
//    ends at the binlog's end). A table's changes are written only for
//    transactions at or past the table's cursor: ones its publication
//    already holds are skipped.
//  - Each table's publication stores its cursor (the end of the last
//    transaction read); the caller confirms the slot (Confirm) only up to
//    the least cursor of its tables, after their publications commit. A
//    kill -9 anywhere reads the same transactions again, and skips them.
//    MariaDB has no slot: the server keeps its binlog for its own time
//    (binlog_expire_logs_seconds), and a cursor in a purged binlog file
//    snapshots again.
//
// A cursor is a 64-bit position written as an LSN ("16/B374D848"):
// PostgreSQL's WAL position; for MariaDB the binlog file's number (the
// high half) and the offset in it (the low half).
//
// A change file is CSV in the `database` decoder's form: the table's
// columns (the same types as its snapshot) after _lsn (the transaction's
// position), _seq (order in the read), _op (insert, update, delete,
// truncate), _unchanged (a '0'/'1' mark a column, 1 = an unchanged TOASTed
// value the change did not carry) and _extracted_at.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
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
  DbExtract extract;       // columns, rows, bytes, sha256 of the file written
  std::string path;        // a stream's batch: where the file is (no rows: none)
  uint64_t first_lsn = 0;  // a stream's batch: the first change's transaction
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
  std::string plugin;           // what decodes it: pgoutput; "binlog" for MariaDB
  std::string expected_plugin;  // what Sluice reads: another one must be made again
  std::string wal_status;       // reserved, extended, unreserved, lost
  uint64_t confirmed = 0;       // confirmed_flush_lsn
  uint64_t current = 0;         // the server's WAL position now
  int64_t lag_bytes = 0;        // current - confirmed: WAL the slot keeps
  std::string wal_level;
  // MariaDB: the first position the server still has (its oldest binlog
  // file's start); a cursor before it lost changes. 0: not known.
  uint64_t oldest = 0;
};

// The slot as the server sees it now (and the server's wal_level).
// MariaDB: the binlog (exists: log_bin is on; oldest; current) and the bytes
// of it past the least cursor of req.tables (their `after`), if any.
Result<CdcSlotState> InspectSlot(const CdcRequest& req);

// Checks the server and copies every table at one point of its change
// stream; `end` = `start` = that point. PostgreSQL: checks wal_level,
// encoding and the publication (created when missing and the user may;
// every table must be in it), drops any slot of req.slot's name, creates
// it with an exported snapshot and copies inside it. MariaDB: checks the
// binlog settings and the tables, and copies them in one consistent
// snapshot whose binlog position the server reports.
Result<CdcRead> SnapshotTables(const CdcRequest& req);

// Reads the committed transactions after the least cursor (PostgreSQL:
// peeks the slot, after a heartbeat of its own; MariaDB: a binlog dump to
// the binlog's end) and writes each table's changes at or past its cursor.
Result<CdcRead> ReadChanges(const CdcRequest& req);

// Lets the server forget the slot's WAL before `lsn` (after the tables'
// publications hold every change before it). MariaDB: nothing to do.
Status ConfirmSlot(const CdcRequest& req, uint64_t lsn);

// The columns of a change file: kChangeColumns, the table's, _extracted_at.
std::vector<DbColumn> ChangeFileColumns(const std::vector<DbColumn>& table_columns);

// A table's change file, written a row at a time (the drivers').
class ChangeFile {
 public:
  ChangeFile(std::vector<DbColumn> columns, int fd);  // owns fd
  ~ChangeFile();
  ChangeFile(const ChangeFile&) = delete;
  ChangeFile& operator=(const ChangeFile&) = delete;

  const std::vector<DbColumn>& columns() const { return columns_; }
  Status Header(const std::string& extracted_at);
  // values: one a column of columns() (nullopt: NULL), as the decoder reads
  // them (hex for bytes); unchanged: "" (NULL) or a '0'/'1' mark a column.
  Status Row(uint64_t lsn, int64_t seq, const char* op, const std::string& unchanged,
             const std::vector<std::optional<std::string>>& values);
  Result<DbExtract> Finish();
  // The first row's _lsn (0: none yet).
  uint64_t first_lsn() const { return first_lsn_; }
  // Rows from now on say they were read at `extracted_at`.
  void Restamp(const std::string& extracted_at) { extracted_at_ = extracted_at; }

 private:
  std::vector<DbColumn> columns_;
  uint64_t first_lsn_ = 0;
  int fd_;
  CsvFileWriter out_;
  std::string extracted_at_;
  int64_t rows_ = 0;
};

// A resident reader of the change stream (`serve`; orchestrate/
// capture_feed.h): it stays connected, from the least cursor of
// req.tables on, and hands out batches of whole transactions as they
// commit, each table's changes at or past its cursor in a file of its own
// (CdcTableRead::path, at a new_path(); a table without changes in the
// batch has none). PostgreSQL: START_REPLICATION on the slot, answering
// the server's keepalives with standby status updates whose flush position
// moves only by Confirm — the slot keeps every change a publication does
// not hold yet. A captured table whose columns change ends the stream with
// an error (a run then reads the slot the usual way, which follows the
// schema); so does any error of the connection.
class CdcStream {
 public:
  virtual ~CdcStream() = default;
  // The next batch: waits up to wait_ms for a commit; once one came, the
  // batch takes what commits within linger_ms of it (the caller lengthens
  // it while the batches it stored wait to be applied). nullopt: no commit.
  virtual Result<std::optional<CdcRead>> Next(int wait_ms, int linger_ms) = 0;
  // The server may forget the changes before `lsn` (sent with the next
  // status update, within Next). `caught_up`: lsn is the end of the last
  // batch handed out, so while no transaction is on its way the server may
  // forget what it has decoded past it too (its keepalive position: what
  // the tables' quiet time would otherwise keep). Any thread.
  virtual void Confirm(uint64_t lsn, bool caught_up) = 0;
};

struct CdcStreamOptions {
  std::function<std::string()> new_path;      // a fresh path for a batch's file
  std::function<std::string()> extracted_at;  // a batch's _extracted_at (null: the request's)
};

// A stream's check (the drivers'): `now` describes the same columns as
// `described` (names, types, how they are written).
bool SameColumns(const std::vector<DbColumn>& described, const std::vector<DbColumn>& now);
// The error that stops a stream whose captured table's columns changed: a
// run then reads `log` (the slot, the binlog) itself, following them.
Status ColumnsChanged(const std::string& relation, const std::string& log);

// Whether the URL's database has a change stream (OpenChangeStream).
bool CdcStreamSupported(const std::string& url);

// Opens req's change stream (req.tables' `after` are the cursors).
// Unimplemented for a database that has none.
Result<std::unique_ptr<CdcStream>> OpenChangeStream(const CdcRequest& req,
                                                    CdcStreamOptions options);

// One database's change capture; the functions above choose by URL.
struct CdcDriver {
  Result<CdcSlotState> (*inspect)(const CdcRequest&);
  Result<CdcRead> (*snapshot)(const CdcRequest&);
  Result<CdcRead> (*read)(const CdcRequest&);
  Status (*confirm)(const CdcRequest&, uint64_t);
  Result<std::unique_ptr<CdcStream>> (*open_stream)(const CdcRequest&, CdcStreamOptions);
};
const CdcDriver& PostgresCdc();
const CdcDriver& MariaDbCdc();

}  // namespace sluice
