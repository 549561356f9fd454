// MariaDB change capture (see cdc.h): the row-based binlog read as a
// replica reads it (COM_BINLOG_DUMP through Connector/C's replication API,
// non-blocking: the dump ends at the binlog's end), each row event decoded
// (binlog_row.h) and written to its table's change file.
//
// The server must log rows whole and describe them: log_bin on,
// binlog_format = ROW, binlog_row_image = FULL (a delete and an update then
// carry the whole row, key included) and binlog_row_metadata = FULL (each
// table map then names its columns, so a change is read by the names it
// was written with, across ALTER TABLEs). The url's user needs REPLICATION
// SLAVE and BINLOG MONITOR (MariaDB 10.5+; REPLICATION CLIENT before).
//
// A transaction is a binlog event group: GTID … XID (or COMMIT for
// non-transactional engines), or a GTID and one statement (DDL). Its
// position is where the group starts — the end of the group before it —
// so a table whose cursor is that end or less has not seen it.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "core/clock.h"
#include "core/hash.h"
#include "core/strings.h"
#include "ingest/binlog_row.h"
#include "ingest/cdc.h"
#include "ingest/mariadb_conn.h"

// After mysql.h (mariadb_conn.h), which it needs.
#include <mariadb_rpl.h>

namespace sluice {
namespace {

using mariadb::Conn;

constexpr uint64_t Position(uint64_t file, uint64_t offset) { return (file << 32) | offset; }

// "mariadb-bin.000012" -> 12.
Result<uint64_t> FileNumber(const std::string& name) {
  size_t dot = name.rfind('.');
  if (dot == std::string::npos || dot + 1 == name.size() ||
      name.find_first_not_of("0123456789", dot + 1) != std::string::npos ||
      name.size() - dot - 1 > 9) {
    return Status::DataError("binlog file '" + name + "' does not end in a number");
  }
  return std::stoull(name.substr(dot + 1));
}

// The file of `number` in the server's naming ("mariadb-bin" + ".000012").
std::string FileName(const std::string& base, uint64_t number) {
  return fmt::format("{}.{:06}", base, number);
}

struct BinlogFile {
  uint64_t number = 0;
  uint64_t size = 0;
};

struct ServerState {
  bool log_bin = false;
  std::string format, row_image, row_metadata, checksum;
  uint32_t server_id = 0;
  std::string base;  // the binlog's name without its number
  uint64_t current = 0;
  std::vector<BinlogFile> files;
};

Result<ServerState> ReadServer(const DbRequest& db, MYSQL* conn) {
  ServerState s;
  ASSIGN_OR_RETURN(mariadb::Rows settings,
                   mariadb::Query(db, conn,
                                  "SELECT @@log_bin, @@binlog_format, @@binlog_row_image, "
                                  "@@binlog_row_metadata, @@server_id, @@binlog_checksum",
                                  "reading the server's binlog settings"));
  if (settings.size() != 1 || settings[0].size() != 6) {
    return Status::DataError("the server did not say how it logs (is it MariaDB 10.5 or later?)");
  }
  auto value = [&](size_t i) { return settings[0][i].value_or(""); };
  s.log_bin = value(0) == "1";
  s.format = value(1);
  s.row_image = value(2);
  s.row_metadata = value(3);
  s.server_id = static_cast<uint32_t>(std::strtoul(value(4).c_str(), nullptr, 10));
  s.checksum = value(5);
  if (!s.log_bin) return s;
  ASSIGN_OR_RETURN(mariadb::Rows status,
                   mariadb::Query(db, conn, "SHOW MASTER STATUS", "reading the binlog position"));
  if (status.empty() || status[0].size() < 2 || !status[0][0] || !status[0][1]) {
    return DatabaseError(db, "the server reports no binlog position",
                         "grant the url's user BINLOG MONITOR (REPLICATION CLIENT before 10.5)");
  }
  const std::string& file = *status[0][0];
  ASSIGN_OR_RETURN(uint64_t number, FileNumber(file));
  s.base = file.substr(0, file.rfind('.'));
  s.current = Position(number, std::stoull(*status[0][1]));
  ASSIGN_OR_RETURN(mariadb::Rows logs,
                   mariadb::Query(db, conn, "SHOW BINARY LOGS", "listing the binlog files"));
  for (const auto& row : logs) {
    if (row.size() < 2 || !row[0] || !row[1]) continue;
    Result<uint64_t> n = FileNumber(*row[0]);
    if (!n.ok()) continue;
    s.files.push_back({*n, std::stoull(*row[1])});
  }
  return s;
}

// The server logs what capture needs; else an error with the settings.
Status CheckServer(const DbRequest& db, const ServerState& s) {
  std::vector<std::string> wrong;
  if (!s.log_bin) wrong.push_back("log_bin is off");
  if (s.format != "ROW") wrong.push_back("binlog_format is " + s.format);
  if (s.row_image != "FULL") wrong.push_back("binlog_row_image is " + s.row_image);
  if (s.row_metadata != "FULL") wrong.push_back("binlog_row_metadata is " + s.row_metadata);
  if (wrong.empty()) return Status::Ok();
  return DatabaseError(db, "change capture reads a row-based binlog, and here " + Join(wrong, ", "),
                       "set log_bin, server_id, binlog_format = ROW, binlog_row_image = FULL and "
                       "binlog_row_metadata = FULL in the server's configuration ([mariadb] "
                       "section) and restart it");
}

// A captured table's schema and name as the server has them.
struct TableName {
  std::string schema, name;
};

// Resolves `relation` ("db.table", or "table" in the url's database), and
// checks that capture can read it: InnoDB (one consistent snapshot), every
// text column UTF-8 (the binlog holds a column's bytes in its own
// character set), no column named like the capture's own, the key there.
Result<TableName> Resolve(const DbRequest& db, MYSQL* conn, const CdcTable& t,
                          std::vector<std::string>* defaulted) {
  ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitRelationName(t.relation));
  std::string schema_sql = "DATABASE()";
  auto literal = [&](const std::string& v) {
    std::string escaped(v.size() * 2 + 1, '\0');
    escaped.resize(mysql_real_escape_string(conn, escaped.data(), v.data(), v.size()));
    return "'" + escaped + "'";
  };
  if (parts.size() == 2) schema_sql = literal(parts[0]);
  const std::string name = parts.back();
  ASSIGN_OR_RETURN(mariadb::Rows table,
                   mariadb::Query(db, conn,
                                  "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, ENGINE FROM "
                                  "information_schema.TABLES WHERE TABLE_SCHEMA = " +
                                      schema_sql + " AND TABLE_NAME = " + literal(name),
                                  "finding table " + t.relation));
  if (table.size() != 1) {
    return DatabaseError(db, "change capture: table " + t.relation + " does not exist",
                         "check table: (database.table), and that the url's user may see it");
  }
  TableName out{table[0][0].value_or(""), table[0][1].value_or("")};
  if (table[0][2].value_or("") != "BASE TABLE") {
    return DatabaseError(db, "change capture: " + t.relation + " is not a table",
                         "capture changes of tables; read a view with query: instead");
  }
  if (table[0][3].value_or("") != "InnoDB") {
    return DatabaseError(
        db,
        "change capture: " + t.relation + " is " + table[0][3].value_or("?") +
            ", and only InnoDB tables are copied in one consistent snapshot",
        "ALTER TABLE " + t.relation + " ENGINE = InnoDB, or read it with incremental:");
  }
  ASSIGN_OR_RETURN(mariadb::Rows columns,
                   mariadb::Query(db, conn,
                                  "SELECT COLUMN_NAME, CHARACTER_SET_NAME, COLUMN_DEFAULT, "
                                  "IS_NULLABLE, EXTRA FROM information_schema.COLUMNS WHERE "
                                  "TABLE_SCHEMA = " +
                                      literal(out.schema) + " AND TABLE_NAME = " +
                                      literal(out.name) + " ORDER BY ORDINAL_POSITION",
                                  "reading the columns of " + t.relation));
  std::set<std::string> names;
  for (const auto& c : columns) {
    const std::string col = c[0].value_or("");
    names.insert(col);
    for (const char* own : kChangeColumns) {
      if (col == own || col == "_extracted_at") {
        return DatabaseError(db, "change capture: " + t.relation + " has a column named " + col,
                             "which capture writes itself: rename it at the source");
      }
    }
    const std::string charset = c[1].value_or("");
    if (!charset.empty() && charset != "utf8mb4" && charset != "utf8mb3" && charset != "utf8" &&
        charset != "ascii" && charset != "binary") {
      return DatabaseError(db,
                           "change capture: column " + col + " of " + t.relation + " is in " +
                               charset + ", and the binlog holds its bytes as they are",
                           "ALTER TABLE " + t.relation +
                               " CONVERT TO CHARACTER SET utf8mb4, or read it with "
                               "incremental:");
    }
    // A column whose older rows hold a value no change carries: one with a
    // default, or a NOT NULL one (its implicit default).
    const std::optional<std::string>& def = c[2];
    bool has_default = def && *def != "NULL";
    if (has_default || c[3].value_or("") == "NO") defaulted->push_back(col);
    const std::string extra = c[4].value_or("");
    if (extra.find("GENERATED") != std::string::npos && extra.find("STORED") == std::string::npos) {
      // A virtual column is not in the binlog's rows; the snapshot reads it.
      return DatabaseError(db,
                           "change capture: column " + col + " of " + t.relation +
                               " is virtual (computed when read), and no change carries it",
                           "make it PERSISTENT, or compute it in a model downstream");
    }
  }
  for (const std::string& k : t.key) {
    if (!names.count(k)) {
      return DatabaseError(db, "change capture: key column " + k + " is not in " + t.relation,
                           "set key: to the table's primary key");
    }
  }
  return out;
}

std::string HexOf(const std::string& bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

// Skips spaces and /* comments */; returns the next word, upper-cased, or
// an identifier (backticks removed).
struct Statement {
  const std::string& s;
  size_t at = 0;
  void Space() {
    for (;;) {
      while (at < s.size() && std::isspace(static_cast<unsigned char>(s[at]))) ++at;
      if (s.compare(at, 2, "/*") == 0) {
        size_t end = s.find("*/", at + 2);
        at = end == std::string::npos ? s.size() : end + 2;
        continue;
      }
      return;
    }
  }
  std::string Word() {
    Space();
    std::string w;
    if (at < s.size() && s[at] == '`') {
      for (++at; at < s.size(); ++at) {
        if (s[at] == '`') {
          if (at + 1 < s.size() && s[at + 1] == '`') {
            w += '`';
            ++at;
            continue;
          }
          ++at;
          break;
        }
        w += s[at];
      }
      return w;
    }
    while (at < s.size() &&
           (std::isalnum(static_cast<unsigned char>(s[at])) || s[at] == '_' || s[at] == '$')) {
      w += s[at++];
    }
    return w;
  }
  bool Dot() {
    Space();
    if (at < s.size() && s[at] == '.') {
      ++at;
      return true;
    }
    return false;
  }
};

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// The server id the dump registers with: one of the reader's own (from its
// slot name), never the server's (which would end the dump at once).
uint32_t ReaderServerId(const std::string& slot, uint32_t server_id) {
  std::string h = Sha256Hex(slot);
  uint32_t id = 0x40000000u | static_cast<uint32_t>(std::stoul(h.substr(0, 7), nullptr, 16));
  return id == server_id ? id ^ 1u : id;
}

struct RplDeleter {
  void operator()(MARIADB_RPL* r) const { mariadb_rpl_close(r); }
};
struct EventDeleter {
  void operator()(MARIADB_RPL_EVENT* e) const { mariadb_free_rpl_event(e); }
};

std::string Str(const MARIADB_STRING& s) { return std::string(s.str ? s.str : "", s.length); }
std::string Data(const MARIADB_CONST_DATA& d) {
  return std::string(reinterpret_cast<const char*>(d.data ? d.data : nullptr),
                     d.data ? d.length : 0);
}

// Reads the binlog from the least cursor to its end, writing each table's
// changes.
class BinlogReader {
 public:
  BinlogReader(const CdcRequest& req, std::vector<TableName> names,
               std::vector<std::unique_ptr<ChangeFile>>& files, CdcRead& read)
      : req_(req), names_(std::move(names)), files_(&files), read_(&read) {}

  // A stream's next batch: its files and counts (table maps, positions and
  // the order of changes go on).
  void Rebind(std::vector<std::unique_ptr<ChangeFile>>& files, CdcRead& read) {
    files_ = &files;
    read_ = &read;
  }
  // A stream describes its files once: a captured table whose table map
  // then differs (columns, types) ends it. Checked at each table's first
  // table map past its cursor: `same_as_described(table)` says whether the
  // table still has the columns its file was described with (that map is
  // the baseline the later ones must keep).
  void Strict(std::function<Status(int table)> same_as_described) {
    strict_ = true;
    same_as_described_ = std::move(same_as_described);
  }
  // The last event ended a transaction.
  bool committed() const { return committed_; }
  // A transaction began and has not ended.
  bool in_group() const { return in_group_; }

  // Starts the binlog dump at `from`. heartbeat_ms 0: it ends at the
  // binlog's end; else it waits there, the server sending a heartbeat
  // after each heartbeat_ms without events (a stream).
  Status Start(MYSQL* dump, const ServerState& server, uint64_t from, int heartbeat_ms) {
    // A stream registers apart from the runs' dumps: the server ends an
    // older dump of the same replica id.
    const std::string reader = heartbeat_ms == 0 ? req_.slot : req_.slot + "/stream";
    const DbRequest& db = req_.db;
    dump_ = dump;
    checksum_ = server.checksum != "NONE";
    base_ = server.base;
    RETURN_IF_ERROR(mariadb::Exec(db, dump,
                                  "SET @master_binlog_checksum = @@global.binlog_checksum, "
                                  "@mariadb_slave_capability = 4, @master_heartbeat_period = " +
                                      std::to_string(int64_t{heartbeat_ms} * 1000000),
                                  "preparing the binlog dump"));
    rpl_.reset(mariadb_rpl_init(dump));
    if (!rpl_) return mariadb::Error(db, dump, "starting the binlog dump");
    file_ = from >> 32;
    boundary_ = from;
    const std::string file = FileName(server.base, file_);
    const uint32_t offset = static_cast<uint32_t>(from);
    mariadb_rpl_optionsv(rpl_.get(), MARIADB_RPL_FILENAME, file.c_str(), file.size());
    mariadb_rpl_optionsv(rpl_.get(), MARIADB_RPL_START, static_cast<unsigned long>(offset));
    mariadb_rpl_optionsv(rpl_.get(), MARIADB_RPL_SERVER_ID,
                         static_cast<unsigned int>(ReaderServerId(reader, server.server_id)));
    if (heartbeat_ms == 0) {
      mariadb_rpl_optionsv(rpl_.get(), MARIADB_RPL_FLAGS,
                           static_cast<unsigned int>(MARIADB_RPL_BINLOG_DUMP_NON_BLOCK));
    }
    if (mariadb_rpl_open(rpl_.get()) != 0) {
      return mariadb::Error(db, dump,
                            "starting the binlog dump at " + file + ":" + std::to_string(offset));
    }
    return Status::Ok();
  }

  // Reads and handles the next event; false at the binlog's end (a dump
  // that ends there).
  Result<bool> Step() {
    committed_ = false;
    // A new event each time: Connector/C frees one handed back to it on
    // some of its error paths.
    std::unique_ptr<MARIADB_RPL_EVENT, EventDeleter> ev(mariadb_rpl_fetch(rpl_.get(), nullptr));
    if (!ev) {
      if (mysql_errno(dump_) != 0) {
        return mariadb::Error(req_.db, dump_, "reading the binlog after " + FormatLsn(seen_));
      }
      if (mariadb_rpl_errno(rpl_.get()) != 0) {
        return DatabaseError(req_.db, "reading the binlog after " + FormatLsn(seen_),
                             mariadb_rpl_error(rpl_.get()));
      }
      return false;
    }
    RETURN_IF_ERROR(Event(*ev));
    return true;
  }

  Status Run(MYSQL* dump, const ServerState& server, uint64_t from) {
    const DbRequest& db = req_.db;
    RETURN_IF_ERROR(Start(dump, server, from, 0));
    const int64_t deadline =
        db.timeout_seconds > 0 ? MonotonicMillis() + db.timeout_seconds * 1000 : 0;
    for (;;) {
      ASSIGN_OR_RETURN(bool more, Step());
      if (!more) break;  // the binlog's end (a non-blocking dump)
      if (stop_) break;
      if (db.cancel && db.cancel->load()) {
        return Status::Cancelled("the run was cancelled while reading the binlog");
      }
      if (deadline > 0 && MonotonicMillis() > deadline) {
        return Status(StatusCode::kTimeout, "reading the binlog took longer than " +
                                                std::to_string(db.timeout_seconds) +
                                                "s (raise timeout:, or set cdc.max_changes lower)");
      }
    }
    if (in_group_ && !stop_) {
      return Status::DataError("change capture: the binlog ended inside a transaction (after " +
                               FormatLsn(boundary_) + "); nothing was applied, run again");
    }
    if (!stop_ && seen_ < server.current) {
      // Connector/C ends a dump at an event it cannot read as if it were
      // the end: changes past it must not be taken as absent.
      return Status::DataError("change capture: the binlog dump stopped at " + FormatLsn(seen_) +
                               ", before the server's end " + FormatLsn(server.current) +
                               "; nothing was applied");
    }
    return Status::Ok();
  }

 private:
  Status Event(const MARIADB_RPL_EVENT& ev) {
    const uint64_t end = Position(file_, ev.next_event_pos);
    switch (ev.event_type) {
      case ROTATE_EVENT: {
        // Read from the event's bytes: Connector/C 3.3 misreads a real
        // (not artificial) rotate's position and name.
        const unsigned char* raw = ev.raw_data;
        const size_t header = 1 + 19;  // the packet's OK byte, the event header
        if (!raw || ev.raw_data_size < header + 8) {
          return Status::DataError("change capture: a binlog rotate event is cut short");
        }
        uint64_t size = 0, offset = 0;
        for (int i = 3; i >= 0; --i) size = (size << 8) | raw[1 + 9 + i];
        for (int i = 7; i >= 0; --i) offset = (offset << 8) | raw[header + i];
        const size_t tail = checksum_ ? 4 : 0;
        if (size < 19 + 8 + tail || 1 + size > ev.raw_data_size) {
          return Status::DataError("change capture: a binlog rotate event is cut short");
        }
        std::string name(reinterpret_cast<const char*>(raw + header + 8), size - 19 - 8 - tail);
        Result<uint64_t> number = FileNumber(name);
        if (!number.ok() || name.compare(0, base_.size() + 1, base_ + ".") != 0 ||
            *number < file_) {
          return Status::DataError("change capture: the binlog rotates to '" + name +
                                   "', which is not a file after " + FileName(base_, file_));
        }
        file_ = *number;
        const uint64_t to = Position(file_, offset);
        if (!in_group_ && to > boundary_) {
          boundary_ = to;
          // A quiet server moves on to a new file: the cursors follow, so
          // that purging the old one does not void them.
          if (ev.next_event_pos != 0) read().end = std::max(read().end, to);
        }
        seen_ = std::max(seen_, to);
        return Status::Ok();
      }
      case FORMAT_DESCRIPTION_EVENT:
      case HEARTBEAT_LOG_EVENT:
        return Status::Ok();  // its position is not the stream's
      case GTID_EVENT: {
        Status st = Boundary();
        in_group_ = true;
        standalone_ = (ev.event.gtid.flags & FL_STANDALONE) != 0;
        xa_ = (ev.event.gtid.flags & FL_PREPARED_XA) != 0;
        if (read().start == 0) read().start = boundary_;
        Seen(end);
        return st;
      }
      case TABLE_MAP_EVENT: {
        const auto& m = ev.event.table_map;
        ASSIGN_OR_RETURN(
            binlog::TableMap map,
            binlog::ParseTableMap(m.table_id, Str(m.database), Str(m.table), Str(m.column_types),
                                  Str(m.metadata), m.signed_indicator, Data(m.column_names),
                                  Data(m.enum_values), Data(m.set_values)));
        Mapped mapped;
        for (size_t t = 0; t < names_.size(); ++t) {
          if (names_[t].schema == map.database && names_[t].name == map.table) {
            mapped.table = static_cast<int>(t);
          }
        }
        if (mapped.table >= 0 && strict_ && Wanted(mapped.table)) {
          RETURN_IF_ERROR(SameShape(mapped.table, map));
        }
        if (mapped.table >= 0) {
          const auto& cols = (*files_)[mapped.table]->columns();
          for (const binlog::Column& c : map.columns) {
            int at = -1;
            for (size_t i = 0; i < cols.size(); ++i) {
              if (cols[i].name == c.name) at = static_cast<int>(i);
            }
            // A column dropped since: its values are not written.
            mapped.to_column.push_back(at);
          }
        }
        mapped.map = std::move(map);
        maps_[m.table_id] = std::move(mapped);
        Seen(end);
        return Status::Ok();
      }
      case WRITE_ROWS_EVENT_V1:
      case UPDATE_ROWS_EVENT_V1:
      case DELETE_ROWS_EVENT_V1:
      case WRITE_ROWS_EVENT:
      case UPDATE_ROWS_EVENT:
      case DELETE_ROWS_EVENT: {
        Seen(end);
        return Rows(ev);
      }
      case XID_EVENT:
        Seen(end);
        return Commit(end);
      case QUERY_EVENT: {
        Seen(end);
        return Query(Str(ev.event.query.statement), Str(ev.event.query.database), end);
      }
      case XA_PREPARE_LOG_EVENT:
        Seen(end);
        return Commit(end);
      case INCIDENT_EVENT:
        return DatabaseError(req_.db,
                             "change capture: the binlog has an incident event after " +
                                 FormatLsn(boundary_) + ": the server says changes may be missing",
                             "read every table again with sluice run SOURCE --full-refresh");
      case QUERY_COMPRESSED_EVENT:
      case WRITE_ROWS_COMPRESSED_EVENT_V1:
      case UPDATE_ROWS_COMPRESSED_EVENT_V1:
      case DELETE_ROWS_COMPRESSED_EVENT_V1:
      case WRITE_ROWS_COMPRESSED_EVENT:
      case UPDATE_ROWS_COMPRESSED_EVENT:
      case DELETE_ROWS_COMPRESSED_EVENT:
        return DatabaseError(req_.db, "change capture: the binlog is compressed",
                             "set log_bin_compress = OFF in the server's configuration, then "
                             "sluice run SOURCE --full-refresh");
      default:
        Seen(end);
        return Status::Ok();
    }
  }

  // A statement in the binlog: a group's start or end, a truncate, or
  // one that changes a captured table's rows without row events (DDL, a
  // session that logs statements) — which fails the read with the fix.
  Status Query(const std::string& sql, const std::string& db, uint64_t end) {
    Statement st{sql};
    const std::string first = Upper(st.Word());
    if (first == "BEGIN") {
      in_group_ = true;
      return Status::Ok();
    }
    if (first == "SAVEPOINT") {
      savepoints_[st.Word()] = group_rows_;
      return Status::Ok();
    }
    if (first == "ROLLBACK") {
      // Only a transaction that also changed a non-transactional table is
      // logged with its rollback: the rows it logged since did not happen.
      int64_t mark = 0;
      const bool to = Upper(st.Word()) == "TO";
      if (to) {
        std::string name = st.Word();
        if (Upper(name) == "SAVEPOINT") name = st.Word();
        auto it = savepoints_.find(name);
        mark = it == savepoints_.end() ? 0 : it->second;
      }
      if (group_rows_ > mark) {
        return Status::DataError(
            "change capture: a transaction in the binlog after " + FormatLsn(boundary_) +
            " changed a captured table, then rolled back (" + sql.substr(0, 40) +
            "); the server logged the rows it rolled back because it also changed a "
            "non-transactional table, and capture cannot take them out: read every table again "
            "with sluice run SOURCE --full-refresh");
      }
      if (to) return Status::Ok();  // the group goes on
      return Commit(end);
    }
    if (first == "XA") {
      // XA START … XA END, then XA PREPARE (or its event) ends the group; XA
      // COMMIT and XA ROLLBACK are groups of their own.
      const std::string second = Upper(st.Word());
      if (second == "START" || second == "BEGIN" || second == "END") {
        in_group_ = true;
        return Status::Ok();
      }
      return Commit(end);
    }
    if (first == "COMMIT") return Commit(end);
    if (first == "TRUNCATE") {
      RETURN_IF_ERROR(Truncate(st, db));
    } else {
      for (size_t t = 0; t < names_.size(); ++t) {
        if (!Wanted(static_cast<int>(t))) continue;
        const std::string table = names_[t].schema + "." + names_[t].name;
        switch (Touches(sql, db, names_[t])) {
          case Touch::kNone:
            break;
          case Touch::kDdl:
            return Status::DataError("change capture: `" + sql.substr(0, 80) +
                                     "` in the binlog replaces or drops the rows of " + table +
                                     " without a change for each: read every table again with "
                                     "sluice run SOURCE --full-refresh");
          case Touch::kStatement:
            return Status::DataError(
                "change capture: a change of " + table +
                " was logged as a statement, not as rows (a session set binlog_format), so its "
                "rows cannot be read: set binlog_format = ROW for every session, then sluice run "
                "SOURCE --full-refresh");
        }
      }
    }
    if (standalone_ || !in_group_) return Commit(end);
    return Status::Ok();
  }

  enum class Touch { kNone, kDdl, kStatement };

  // How statement `sql` (default database `db`) changes table `t`'s rows
  // without row events: DDL that drops, replaces or swaps them (DROP TABLE,
  // RENAME TABLE, CREATE OR REPLACE TABLE, partitions truncated, dropped
  // or exchanged), or a change logged as a statement. ALTERs that keep the
  // rows (columns, indexes) are read on from the next table map.
  static Touch Touches(const std::string& sql, const std::string& db, const TableName& t) {
    Statement st{sql};
    const std::string first = Upper(st.Word());
    if (first == "INSERT" || first == "UPDATE" || first == "DELETE" || first == "REPLACE" ||
        first == "LOAD") {
      return Mentions(sql, db, t) ? Touch::kStatement : Touch::kNone;
    }
    if (first == "RENAME") return Mentions(sql, db, t) ? Touch::kDdl : Touch::kNone;
    if (first == "DROP") {
      return Upper(st.Word()) == "TABLE" && Mentions(sql, db, t) ? Touch::kDdl : Touch::kNone;
    }
    if (first == "ALTER") {
      return Has(sql, {"PARTITION"}) && Has(sql, {"TRUNCATE", "DROP", "EXCHANGE"}) &&
                     Mentions(sql, db, t)
                 ? Touch::kDdl
                 : Touch::kNone;
    }
    if (first == "CREATE") {
      // CREATE [OR REPLACE] TABLE [IF NOT EXISTS] name: only the table made.
      std::string w = Upper(st.Word());
      if (w == "OR") {
        st.Word();
        w = Upper(st.Word());
      }
      if (w != "TABLE") return Touch::kNone;
      std::string name = st.Word();
      if (Upper(name) == "IF") {
        st.Word();
        st.Word();
        name = st.Word();
      }
      std::string schema = db;
      if (st.Dot()) {
        schema = name;
        name = st.Word();
      }
      return schema == t.schema && name == t.name ? Touch::kDdl : Touch::kNone;
    }
    return Touch::kNone;
  }

  // Whether `sql` has one of `words` (upper-case) as a word.
  static bool Has(const std::string& sql, const std::vector<std::string>& words) {
    Statement st{sql};
    while (st.at < sql.size()) {
      std::string w = st.Word();
      if (w.empty()) {
        ++st.at;
        continue;
      }
      if (std::find(words.begin(), words.end(), Upper(w)) != words.end()) return true;
    }
    return false;
  }

  // Whether `sql` names table `t` (as schema.name, or name in `db`).
  static bool Mentions(const std::string& sql, const std::string& db, const TableName& t) {
    Statement st{sql};
    while (st.at < sql.size()) {
      std::string w = st.Word();
      if (w.empty()) {
        ++st.at;
        continue;
      }
      std::string schema = db, name = w;
      if (st.Dot()) {
        schema = w;
        name = st.Word();
      }
      if (schema == t.schema && name == t.name) return true;
    }
    return false;
  }

  Status SameShape(int table, const binlog::TableMap& map) {
    std::set<std::string> described, sent;
    std::string shape;
    for (const DbColumn& c : (*files_)[table]->columns()) described.insert(c.name);
    for (const binlog::Column& c : map.columns) {
      sent.insert(c.name);
      shape += c.name + '\0' + std::to_string(c.type) + '/' + std::to_string(c.meta) + '/' +
               std::to_string(c.max_length) + (c.is_unsigned ? "u" : "") + '\n';
    }
    auto [first, fresh] = shapes_.emplace(table, shape);
    if (fresh && described == sent && same_as_described_) {
      RETURN_IF_ERROR(same_as_described_(table));
    }
    if (described != sent || (!fresh && first->second != shape)) {
      return ColumnsChanged(req_.tables[table].relation, "binlog");
    }
    return Status::Ok();
  }

  void Seen(uint64_t end) {
    if (end > Position(file_, 0)) seen_ = std::max(seen_, end);
  }

  // A group starts: an unfinished one before it is an error.
  Status Boundary() {
    if (in_group_) {
      return Status::DataError("change capture: a transaction in the binlog after " +
                               FormatLsn(boundary_) + " has no end");
    }
    return Status::Ok();
  }

  Status Commit(uint64_t end) {
    committed_ = true;
    in_group_ = false;
    group_rows_ = 0;
    savepoints_.clear();
    standalone_ = false;
    xa_ = false;
    boundary_ = end;
    read().end = std::max(read().end, end);
    ++read().transactions;
    if (req_.max_changes > 0 && changes_ >= req_.max_changes) {
      stop_ = true;
      read().more = true;
    }
    return Status::Ok();
  }

  struct Mapped {
    binlog::TableMap map;
    int table = -1;              // index in req.tables; -1: not captured here
    std::vector<int> to_column;  // each binlog column's index among the file's columns
  };

  bool Wanted(int table) const { return table >= 0 && boundary_ >= req_.tables[table].after; }

  Status Rows(const MARIADB_RPL_EVENT& ev) {
    const auto& r = ev.event.rows;
    auto it = maps_.find(r.table_id);
    if (it == maps_.end()) {
      return Status::DataError("change capture: a row event of table id " +
                               std::to_string(r.table_id) + " came without its table map");
    }
    const Mapped& m = it->second;
    if (!Wanted(m.table)) return Status::Ok();
    if (xa_) {
      return Status::DataError("change capture: an XA transaction changed " +
                               req_.tables[m.table].relation +
                               ", which capture does not apply yet; read it with incremental:");
    }
    if (r.column_count != m.map.columns.size()) {
      return Status::DataError("change capture: a row event of " + req_.tables[m.table].relation +
                               " has " + std::to_string(r.column_count) +
                               " columns and its table map " +
                               std::to_string(m.map.columns.size()));
    }
    const auto* data = static_cast<const unsigned char*>(r.row_data);
    const size_t size = r.row_data_size;
    const auto* present = reinterpret_cast<const unsigned char*>(r.column_bitmap);
    const auto* present_after = r.column_update_bitmap
                                    ? reinterpret_cast<const unsigned char*>(r.column_update_bitmap)
                                    : present;
    for (size_t i = 0; i < m.map.columns.size(); ++i) {
      if (!((present[i / 8] >> (i % 8)) & 1) || !((present_after[i / 8] >> (i % 8)) & 1)) {
        return DatabaseError(req_.db,
                             "change capture: a change of " + req_.tables[m.table].relation +
                                 " does not carry column " + m.map.columns[i].name,
                             "set binlog_row_image = FULL for every session");
      }
    }
    const bool update = r.type == UPDATE_ROWS;
    const bool remove = r.type == DELETE_ROWS;
    size_t at = 0;
    std::vector<binlog::Value> before, after;
    CdcTableRead& counts = read().tables[m.table];
    while (at < size) {
      ASSIGN_OR_RETURN(size_t used, binlog::DecodeRow(m.map, present, data + at, size - at,
                                                      update ? &before : &after));
      if (used == 0) return Status::DataError("change capture: an empty binlog row");
      at += used;
      if (update) {
        ASSIGN_OR_RETURN(used,
                         binlog::DecodeRow(m.map, present_after, data + at, size - at, &after));
        at += used;
      }
      ++changes_;
      if (remove) {
        ++counts.deletes;
        RETURN_IF_ERROR(Write(m, after, "delete"));
      } else if (update) {
        ++counts.updates;
        if (KeyChanged(m, before, after)) RETURN_IF_ERROR(Write(m, before, "delete"));
        RETURN_IF_ERROR(Write(m, after, "update"));
      } else {
        ++counts.inserts;
        RETURN_IF_ERROR(Write(m, after, "insert"));
      }
    }
    return Status::Ok();
  }

  bool KeyChanged(const Mapped& m, const std::vector<binlog::Value>& before,
                  const std::vector<binlog::Value>& after) const {
    for (const std::string& k : req_.tables[m.table].key) {
      for (size_t i = 0; i < m.map.columns.size(); ++i) {
        if (m.map.columns[i].name != k) continue;
        if (before[i].null != after[i].null || before[i].text != after[i].text) return true;
      }
    }
    return false;
  }

  Status Write(const Mapped& m, const std::vector<binlog::Value>& row, const char* op) {
    ChangeFile& file = *(*files_)[m.table];
    const auto& cols = file.columns();
    std::vector<std::optional<std::string>> values(cols.size());
    for (size_t i = 0; i < row.size() && i < m.to_column.size(); ++i) {
      int c = m.to_column[i];
      if (c < 0 || row[i].null) {
        if (c >= 0 && row[i].zero_date) ++zero_dates_;
        continue;
      }
      const DbColumn& col = cols[c];
      if (col.encoding == DbEncoding::kHex) {
        std::string bytes = row[i].text;
        // BINARY(n) is logged without its trailing zero bytes.
        const binlog::Column& bc = m.map.columns[i];
        if (bc.type == 254 && bytes.size() < bc.max_length) bytes.resize(bc.max_length, '\0');
        values[c] = HexOf(bytes);
      } else {
        values[c] = row[i].text;
      }
    }
    ++group_rows_;
    return file.Row(boundary_, seq_++, op, "", values);
  }

  Status Truncate(Statement& st, const std::string& default_db) {
    std::string word = st.Word();
    if (Upper(word) == "TABLE") word = st.Word();
    std::string schema = default_db, name = word;
    if (st.Dot()) {
      schema = word;
      name = st.Word();
    }
    for (size_t t = 0; t < names_.size(); ++t) {
      if (names_[t].schema != schema || names_[t].name != name || !Wanted(static_cast<int>(t))) {
        continue;
      }
      ++read().tables[t].truncates;
      ++changes_;
      std::vector<std::optional<std::string>> none((*files_)[t]->columns().size());
      RETURN_IF_ERROR((*files_)[t]->Row(boundary_, seq_++, "truncate", "", none));
    }
    return Status::Ok();
  }

 public:
  int64_t zero_dates() const { return zero_dates_; }

 private:
  CdcRead& read() { return *read_; }

  const CdcRequest& req_;
  std::vector<TableName> names_;
  std::vector<std::unique_ptr<ChangeFile>>* files_;
  CdcRead* read_;
  MYSQL* dump_ = nullptr;
  std::unique_ptr<MARIADB_RPL, RplDeleter> rpl_;
  std::map<uint64_t, Mapped> maps_;
  std::map<int, std::string> shapes_;  // strict: each table's first table map checked
  std::function<Status(int)> same_as_described_;
  std::string base_;
  uint64_t file_ = 0;
  uint64_t boundary_ = 0;  // where the current (or next) group starts
  uint64_t seen_ = 0;      // the end of the last event read
  bool in_group_ = false, standalone_ = false, xa_ = false, stop_ = false, checksum_ = true;
  bool strict_ = false, committed_ = false;
  int64_t changes_ = 0, seq_ = 0, zero_dates_ = 0;
  int64_t group_rows_ = 0;                     // captured rows written in the current group
  std::map<std::string, int64_t> savepoints_;  // group_rows_ at each of its savepoints
};

int OpenFile(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

Result<CdcSlotState> Inspect(const CdcRequest& req) {
  RegisterDatabaseSecrets(req.db.url);
  ASSIGN_OR_RETURN(Conn conn, mariadb::Connect(req.db));
  ASSIGN_OR_RETURN(ServerState server, ReadServer(req.db, conn.get()));
  CdcSlotState s;
  s.expected_plugin = "binlog";
  s.exists = server.log_bin;
  if (!s.exists) return s;
  s.plugin = "binlog";
  s.current = server.current;
  if (!server.files.empty()) s.oldest = Position(server.files.front().number, 4);
  s.confirmed = s.oldest;
  uint64_t least = UINT64_MAX;
  for (const CdcTable& t : req.tables) least = std::min(least, t.after);
  if (least != UINT64_MAX && least != 0) s.confirmed = least;
  // The binlog bytes from the least cursor to the server's end.
  int64_t lag = 0;
  for (const BinlogFile& f : server.files) {
    uint64_t from = f.number == (s.confirmed >> 32) ? static_cast<uint32_t>(s.confirmed) : 0;
    uint64_t to = f.number == (s.current >> 32) ? static_cast<uint32_t>(s.current) : f.size;
    if (f.number < (s.confirmed >> 32) || f.number > (s.current >> 32) || to < from) continue;
    lag += static_cast<int64_t>(to - from);
  }
  s.lag_bytes = lag;
  return s;
}

// A connection to a server that logs what capture needs, and its state.
Result<std::pair<Conn, ServerState>> Open(const DbRequest& db) {
  RegisterDatabaseSecrets(db.url);
  ASSIGN_OR_RETURN(Conn conn, mariadb::Connect(db));
  ASSIGN_OR_RETURN(ServerState server, ReadServer(db, conn.get()));
  RETURN_IF_ERROR(CheckServer(db, server));
  return std::make_pair(std::move(conn), std::move(server));
}

Result<CdcRead> Snapshot(const CdcRequest& req) {
  const DbRequest& db = req.db;
  ASSIGN_OR_RETURN(auto opened, Open(db));
  Conn& conn = opened.first;  // (the server's state: checked by Open)
  std::vector<std::string> relations;
  for (const CdcTable& t : req.tables) {
    std::vector<std::string> defaulted;
    ASSIGN_OR_RETURN(TableName name, Resolve(db, conn.get(), t, &defaulted));
    relations.push_back(mariadb::QuoteIdent(name.schema) + "." + mariadb::QuoteIdent(name.name));
  }
  for (const char* setup :
       {"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        "SET SESSION TRANSACTION READ ONLY", "START TRANSACTION WITH CONSISTENT SNAPSHOT"}) {
    RETURN_IF_ERROR(mariadb::Exec(db, conn.get(), setup, "starting the snapshot"));
  }
  // Where the snapshot stands in the binlog: every transaction before it
  // is in the copy, every one after it is a change to read.
  ASSIGN_OR_RETURN(mariadb::Rows status,
                   mariadb::Query(db, conn.get(), "SHOW STATUS LIKE 'binlog_snapshot_%'",
                                  "reading the snapshot's binlog position"));
  std::string file, offset;
  for (const auto& row : status) {
    if (row.size() < 2) continue;
    if (row[0].value_or("") == "Binlog_snapshot_file") file = row[1].value_or("");
    if (row[0].value_or("") == "Binlog_snapshot_position") offset = row[1].value_or("");
  }
  if (file.empty() || offset.empty()) {
    return DatabaseError(db, "the server does not say where its snapshot stands in the binlog",
                         "change capture needs MariaDB (binlog_snapshot_file); for MySQL read "
                         "the tables with incremental:");
  }
  ASSIGN_OR_RETURN(uint64_t number, FileNumber(file));
  CdcRead out;
  out.start = out.end = Position(number, std::stoull(offset));
  for (size_t i = 0; i < req.tables.size(); ++i) {
    const CdcTable& t = req.tables[i];
    DbRequest one = db;
    one.table = t.relation;
    one.constants = {{"_op", "VARCHAR", "snapshot"},
                     {"_extracted_at", "TIMESTAMP", req.extracted_at}};
    int fd = OpenFile(t.path);
    if (fd < 0) return Status::IOError("cannot create " + t.path + ": " + std::strerror(errno));
    Result<DbExtract> extract = [&]() -> Result<DbExtract> {
      CsvFileWriter writer(fd);
      ASSIGN_OR_RETURN(DbExtract e,
                       mariadb::Stream(one, conn.get(), "SELECT * FROM " + relations[i], writer));
      ASSIGN_OR_RETURN(e.sha256, writer.Finish());
      e.bytes = writer.bytes();
      return e;
    }();
    ::close(fd);
    if (!extract.ok()) {
      for (const CdcTable& u : req.tables) ::unlink(u.path.c_str());
      return extract.status();
    }
    CdcTableRead tr;
    tr.extract = std::move(*extract);
    tr.inserts = tr.extract.rows;
    for (std::string& note : tr.extract.notes) out.notes.push_back(t.relation + ": " + note);
    out.tables.push_back(std::move(tr));
  }
  (void)mysql_query(conn.get(), "COMMIT");
  return out;
}

Result<CdcRead> Read(const CdcRequest& req) {
  const DbRequest& db = req.db;
  ASSIGN_OR_RETURN(auto opened, Open(db));
  Conn& conn = opened.first;
  ServerState& server = opened.second;
  uint64_t from = UINT64_MAX;
  for (const CdcTable& t : req.tables) from = std::min(from, t.after);
  if (from == UINT64_MAX || from == 0) {
    return Status::Internal("a binlog read needs every table's cursor");
  }
  CdcRead read;
  read.tables.resize(req.tables.size());
  std::vector<TableName> names;
  std::vector<std::unique_ptr<ChangeFile>> files;
  for (size_t i = 0; i < req.tables.size(); ++i) {
    const CdcTable& t = req.tables[i];
    ASSIGN_OR_RETURN(TableName name, Resolve(db, conn.get(), t, &read.tables[i].defaulted));
    DbRequest one = db;
    one.table = t.relation;
    ASSIGN_OR_RETURN(std::vector<DbColumn> columns,
                     mariadb::Describe(one, conn.get(),
                                       "SELECT * FROM " + mariadb::QuoteIdent(name.schema) + "." +
                                           mariadb::QuoteIdent(name.name)));
    int fd = OpenFile(t.path);
    if (fd < 0) return Status::IOError("cannot create " + t.path + ": " + std::strerror(errno));
    files.push_back(std::make_unique<ChangeFile>(std::move(columns), fd));
    RETURN_IF_ERROR(files.back()->Header(req.extracted_at));
    names.push_back(std::move(name));
  }
  Status done = Status::Ok();
  int64_t zero_dates = 0;
  if (from < server.current) {
    ASSIGN_OR_RETURN(Conn dump, mariadb::Connect(db));
    BinlogReader reader(req, names, files, read);
    done = reader.Run(dump.get(), server, from);
    zero_dates = reader.zero_dates();
  }
  if (done.ok()) {
    for (size_t i = 0; i < files.size(); ++i) {
      Result<DbExtract> e = files[i]->Finish();
      if (!e.ok()) {
        done = e.status();
        break;
      }
      read.tables[i].extract = std::move(*e);
    }
  }
  files.clear();
  if (!done.ok()) {
    for (const CdcTable& t : req.tables) ::unlink(t.path.c_str());
    return done;
  }
  if (zero_dates > 0) {
    read.notes.push_back(std::to_string(zero_dates) +
                         " zero date(s) ('0000-00-00') loaded as NULL");
  }
  return read;
}

Status Confirm(const CdcRequest&, uint64_t) {
  // No slot: the server keeps its binlog for its own time.
  return Status::Ok();
}

// The resident reader (CdcStream): a binlog dump that waits at the
// binlog's end (the server sends a heartbeat after kHeartbeatMs without
// events, so the reader looks at the time that often), one batch of files
// at a time. Nothing to confirm: the server keeps its binlog for its own
// time, and the runs keep the positions the tables hold.
class MariaDbStream : public CdcStream {
 public:
  MariaDbStream(CdcRequest req, CdcStreamOptions options)
      : req_(std::move(req)), opt_(std::move(options)) {
    req_.max_changes = 0;  // batches are closed by time, not size
  }
  ~MariaDbStream() override { Discard(); }

  Status Open() {
    const DbRequest& db = req_.db;
    ASSIGN_OR_RETURN(auto opened, ::sluice::Open(db));
    Conn& conn = opened.first;
    ServerState& server = opened.second;
    uint64_t from = UINT64_MAX;
    std::vector<TableName> names;
    for (const CdcTable& t : req_.tables) {
      from = std::min(from, t.after);
      std::vector<std::string> defaulted;
      ASSIGN_OR_RETURN(TableName name, Resolve(db, conn.get(), t, &defaulted));
      defaulted_.push_back(std::move(defaulted));
      relations_.push_back("SELECT * FROM " + mariadb::QuoteIdent(name.schema) + "." +
                           mariadb::QuoteIdent(name.name));
      DbRequest one = db;
      one.table = t.relation;
      ASSIGN_OR_RETURN(std::vector<DbColumn> columns,
                       mariadb::Describe(one, conn.get(), relations_.back()));
      columns_.push_back(std::move(columns));
      names.push_back(std::move(name));
    }
    if (req_.tables.empty() || from == 0) {
      return Status::Invalid("a change stream starts from the cursors of its tables");
    }
    // The dump waits at the binlog's end, heartbeats coming every 10 ms: a
    // read that waits 30 s is a connection gone.
    DbRequest quiet = db;
    quiet.timeout_seconds = 30;
    ASSIGN_OR_RETURN(dump_, mariadb::Connect(quiet));
    side_ = std::move(conn);
    reader_ = std::make_unique<BinlogReader>(req_, std::move(names), files_, batch_);
    reader_->Strict([this](int table) { return SameAsDescribed(table); });
    return reader_->Start(dump_.get(), server, from, kHeartbeatMs);
  }

  Result<std::optional<CdcRead>> Next(int wait_ms, int linger_ms) override {
    const int64_t deadline = MonotonicMillis() + wait_ms;
    for (;;) {
      if (!open_) RETURN_IF_ERROR(StartBatch());
      ASSIGN_OR_RETURN(bool more, reader_->Step());
      if (!more) {
        return DatabaseError(req_.db, "the server ended the binlog dump",
                             "it may have been restarted; the stream starts again");
      }
      const int64_t now = MonotonicMillis();
      if (reader_->in_group() && !stamped_) {
        // The batch's rows were read from now (it may have waited long).
        const std::string at = opt_.extracted_at ? opt_.extracted_at() : req_.extracted_at;
        for (auto& f : files_) f->Restamp(at);
        stamped_ = true;
      }
      if (reader_->committed() && first_commit_ms_ == 0) first_commit_ms_ = now;
      // A new binlog file while no transaction came: the batch closes
      // empty, so the tables' position follows it. (Checked after the
      // commit is noted: a commit moves the end too, and must linger.)
      if (first_commit_ms_ == 0 && !reader_->in_group() && batch_.end > covered_) {
        return CloseBatch();
      }
      if (first_commit_ms_ > 0 && now - first_commit_ms_ >= linger_ms && !reader_->in_group()) {
        return CloseBatch();
      }
      if (now >= deadline && first_commit_ms_ == 0) return std::optional<CdcRead>();
    }
  }

  void Confirm(uint64_t, bool) override {}

 private:
  static constexpr int kHeartbeatMs = 10;

  // Table `table` still has the columns its file was described with.
  Status SameAsDescribed(int table) {
    DbRequest one = req_.db;
    one.table = req_.tables[table].relation;
    ASSIGN_OR_RETURN(std::vector<DbColumn> now,
                     mariadb::Describe(one, side_.get(), relations_[table]));
    if (!SameColumns(columns_[table], now)) {
      return ColumnsChanged(req_.tables[table].relation, "binlog");
    }
    return Status::Ok();
  }

  Status StartBatch() {
    Discard();
    batch_ = CdcRead{};
    batch_.tables.resize(req_.tables.size());
    const std::string extracted_at = opt_.extracted_at ? opt_.extracted_at() : req_.extracted_at;
    for (size_t i = 0; i < req_.tables.size(); ++i) {
      std::string path = opt_.new_path();
      int fd = OpenFile(path);
      if (fd < 0) return Status::IOError("cannot create " + path + ": " + std::strerror(errno));
      paths_.push_back(path);
      files_.push_back(std::make_unique<ChangeFile>(columns_[i], fd));
      RETURN_IF_ERROR(files_.back()->Header(extracted_at));
      batch_.tables[i].defaulted = defaulted_[i];
    }
    reader_->Rebind(files_, batch_);
    open_ = true;
    stamped_ = false;
    return Status::Ok();
  }

  Result<std::optional<CdcRead>> CloseBatch() {
    for (size_t i = 0; i < files_.size(); ++i) {
      ASSIGN_OR_RETURN(DbExtract extract, files_[i]->Finish());
      batch_.tables[i].extract = std::move(extract);
      batch_.tables[i].first_lsn = files_[i]->first_lsn();
    }
    files_.clear();
    for (size_t i = 0; i < paths_.size(); ++i) {
      if (batch_.tables[i].extract.rows > 0) {
        batch_.tables[i].path = paths_[i];
      } else {
        ::unlink(paths_[i].c_str());
      }
    }
    paths_.clear();
    open_ = false;
    first_commit_ms_ = 0;
    covered_ = std::max(covered_, batch_.end);
    return std::optional<CdcRead>(std::move(batch_));
  }

  void Discard() {
    files_.clear();
    for (const std::string& p : paths_) ::unlink(p.c_str());
    paths_.clear();
    open_ = false;
  }

  CdcRequest req_;
  CdcStreamOptions opt_;
  Conn side_;  // the tables' descriptions
  Conn dump_;
  std::vector<std::string> relations_;  // each table's SELECT, as described
  std::vector<std::vector<DbColumn>> columns_;
  std::vector<std::vector<std::string>> defaulted_;  // CdcTableRead::defaulted, at Open
  std::vector<std::unique_ptr<ChangeFile>> files_;
  std::vector<std::string> paths_;
  CdcRead batch_;
  std::unique_ptr<BinlogReader> reader_;  // after dump_: closed before it
  bool open_ = false;
  bool stamped_ = false;  // the batch's files say when its first transaction came
  int64_t first_commit_ms_ = 0;
  uint64_t covered_ = 0;  // the end of the last batch handed out
};

Result<std::unique_ptr<CdcStream>> OpenStream(const CdcRequest& req, CdcStreamOptions options) {
  auto stream = std::make_unique<MariaDbStream>(req, std::move(options));
  RETURN_IF_ERROR(stream->Open());
  return std::unique_ptr<CdcStream>(std::move(stream));
}

}  // namespace

const CdcDriver& MariaDbCdc() {
  static const CdcDriver driver{Inspect, Snapshot, Read, Confirm, OpenStream};
  return driver;
}

}  // namespace sluice
