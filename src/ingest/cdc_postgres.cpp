// PostgreSQL change capture (see cdc.h): pgoutput's protocol (version 1)
// read through pg_logical_slot_peek_binary_changes, one row a message,
// streamed in single-row mode, each table's changes written to its file;
// or, for a resident reader, streamed by START_REPLICATION (PgStream).
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "core/clock.h"
#include "core/strings.h"
#include "ingest/cdc.h"
#include "ingest/postgres_conn.h"

namespace sluice {

namespace {

using pg::Conn;
using pg::Res;

// The server can decode: wal_level logical, UTF-8 text.
Status CheckServer(const DbRequest& req, PGconn* conn) {
  ASSIGN_OR_RETURN(Res r, pg::Query(req, conn,
                                    "SELECT current_setting('wal_level'), "
                                    "current_setting('server_encoding')",
                                    {}, "reading the server's settings"));
  std::string level = PQgetvalue(r.get(), 0, 0), encoding = PQgetvalue(r.get(), 0, 1);
  if (level != "logical") {
    return DatabaseError(req, "change capture needs wal_level = logical (it is " + level + ")",
                         "set wal_level = logical (and max_replication_slots, max_wal_senders "
                         ">= 1) in postgresql.conf and restart PostgreSQL");
  }
  if (encoding != "UTF8") {
    return DatabaseError(req, "change capture reads UTF8 databases; this one is " + encoding,
                         "read it with table: (a full or incremental read) instead");
  }
  return Status::Ok();
}

// A table's schema and name as the catalog has them.
struct RelName {
  std::string schema, name;
  bool operator<(const RelName& o) const {
    return std::tie(schema, name) < std::tie(o.schema, o.name);
  }
};

Result<RelName> Resolve(const DbRequest& req, PGconn* conn, const std::string& relation) {
  ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitRelationName(relation));
  std::vector<std::string> quoted;
  for (const std::string& p : parts) quoted.push_back(QuoteIdent(p));
  ASSIGN_OR_RETURN(Res r, pg::Query(req, conn,
                                    "SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN "
                                    "pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = "
                                    "to_regclass($1)",
                                    {Join(quoted, ".")}, "finding table " + relation));
  if (PQntuples(r.get()) != 1) {
    return DatabaseError(req, "change capture: table " + relation + " does not exist",
                         "check table: (schema.table), and that the url's user may see it");
  }
  std::string kind = PQgetvalue(r.get(), 0, 2);
  if (kind == "p") {
    return DatabaseError(req, "change capture: " + relation + " is a partitioned table",
                         "its changes arrive under its partitions' names: capture the "
                         "partitions as tables of their own, or read it with incremental:");
  }
  if (kind != "r") {
    return DatabaseError(req, "change capture: " + relation + " is not a table",
                         "capture changes of tables; read a view with query: instead");
  }
  return RelName{PQgetvalue(r.get(), 0, 0), PQgetvalue(r.get(), 0, 1)};
}

std::string Qualified(const RelName& r) { return QuoteIdent(r.schema) + "." + QuoteIdent(r.name); }

// Every table is in the publication (created, with them, when missing).
Status EnsurePublication(const CdcRequest& req, PGconn* conn, const std::vector<RelName>& rels,
                         bool create) {
  const DbRequest& db = req.db;
  ASSIGN_OR_RETURN(Res pub, pg::Query(db, conn,
                                      "SELECT puballtables, pubinsert AND pubupdate AND pubdelete "
                                      "AND pubtruncate FROM pg_publication WHERE pubname = $1",
                                      {req.publication}, "reading publication " + req.publication));
  if (PQntuples(pub.get()) == 0 && !create) {
    return DatabaseError(db, "publication " + req.publication + " is gone",
                         "its changes no longer reach the slot: read every table again with "
                         "sluice run SOURCE --full-refresh");
  }
  if (PQntuples(pub.get()) == 0) {
    std::vector<std::string> list;
    for (const RelName& r : rels) list.push_back(Qualified(r));
    std::string create =
        "CREATE PUBLICATION " + QuoteIdent(req.publication) + " FOR TABLE " + Join(list, ", ");
    Status st = pg::Exec(db, conn, create, "creating publication " + req.publication);
    if (!st.ok()) {
      return Status::DataError(st.message() + " (create it as the tables' owner: " + create + ")");
    }
    return Status::Ok();
  }
  if (std::string(PQgetvalue(pub.get(), 0, 1)) != "t") {
    return DatabaseError(db, "publication " + req.publication + " does not publish every change",
                         "it must publish inserts, updates, deletes and truncates: ALTER "
                         "PUBLICATION " +
                             QuoteIdent(req.publication) +
                             " SET (publish = 'insert, update, delete, truncate')");
  }
  // PostgreSQL 15 publications may filter rows and columns: then the
  // stream is not the table.
  ASSIGN_OR_RETURN(
      Res version,
      pg::Query(db, conn, "SELECT current_setting('server_version_num')::int >= 150000", {},
                "reading the server's version"));
  const bool filters = std::string(PQgetvalue(version.get(), 0, 0)) == "t";
  ASSIGN_OR_RETURN(
      Res in, pg::Query(db, conn,
                        std::string("SELECT t.schemaname, t.tablename, ") +
                            (filters ? "EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN "
                                       "pg_publication p ON p.oid = pr.prpubid WHERE p.pubname = "
                                       "t.pubname AND pr.prrelid = to_regclass(quote_ident("
                                       "t.schemaname) || '.' || quote_ident(t.tablename)) AND "
                                       "(pr.prqual IS NOT NULL OR pr.prattrs IS NOT NULL))"
                                     : "false") +
                            " FROM pg_publication_tables t WHERE t.pubname = $1",
                        {req.publication}, "listing publication " + req.publication));
  std::set<RelName> published, filtered;
  for (int i = 0; i < PQntuples(in.get()); ++i) {
    RelName r{PQgetvalue(in.get(), i, 0), PQgetvalue(in.get(), i, 1)};
    published.insert(r);
    if (std::string(PQgetvalue(in.get(), i, 2)) == "t") filtered.insert(r);
  }
  for (const RelName& r : rels) {
    if (filtered.count(r)) {
      return DatabaseError(db,
                           "publication " + req.publication + " filters the rows or columns of " +
                               Qualified(r) + ": its changes would not be the table",
                           "publish the whole table (no WHERE, no column list)");
    }
  }
  std::vector<std::string> missing;
  for (const RelName& r : rels) {
    if (!published.count(r)) missing.push_back(Qualified(r));
  }
  if (!missing.empty()) {
    return DatabaseError(
        db,
        "publication " + req.publication + " lacks " + Join(missing, ", ") +
            ": its changes would never arrive",
        "ALTER PUBLICATION " + QuoteIdent(req.publication) + " ADD TABLE " + Join(missing, ", "));
  }
  return Status::Ok();
}

// Columns the stream cannot carry, or that would collide with the
// capture's own.
Status CheckColumns(const DbRequest& db, PGconn* conn, const RelName& rel, const CdcTable& t) {
  ASSIGN_OR_RETURN(Res r,
                   pg::Query(db, conn,
                             "SELECT attname, attgenerated <> '' FROM pg_attribute WHERE "
                             "attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
                             {Qualified(rel)}, "reading the columns of " + t.relation));
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    std::string name = PQgetvalue(r.get(), i, 0);
    if (std::string(PQgetvalue(r.get(), i, 1)) == "t") {
      return DatabaseError(db,
                           "change capture: column " + name + " of " + t.relation +
                               " is generated, and logical decoding does not carry it",
                           "compute it in a model downstream, or read the table with incremental:");
    }
    for (const char* own : {"_lsn", "_seq", "_op", "_unchanged", "_extracted_at"}) {
      if (name == own) {
        return DatabaseError(db,
                             "change capture: column " + name + " of " + t.relation +
                                 " has the name of a column change capture adds",
                             "read the table with incremental:, or rename the column");
      }
    }
  }
  return Status::Ok();
}

// A delete (or a key-changing update) carries the table's replica
// identity: the key must be within it, or the row could not be found.
Status CheckIdentity(const DbRequest& db, PGconn* conn, const RelName& rel, const CdcTable& t) {
  ASSIGN_OR_RETURN(
      Res r,
      pg::Query(db, conn,
                "SELECT c.relreplident, a.attname FROM pg_class c "
                "LEFT JOIN pg_index i ON i.indrelid = c.oid AND "
                "((c.relreplident = 'd' AND i.indisprimary) OR "
                "(c.relreplident = 'i' AND i.indisreplident)) "
                "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey) "
                "WHERE c.oid = to_regclass($1)",
                {Qualified(rel)}, "reading the replica identity of " + t.relation));
  if (PQntuples(r.get()) == 0) return Status::Ok();
  if (std::string(PQgetvalue(r.get(), 0, 0)) == "f") return Status::Ok();  // FULL: every column
  std::set<std::string> identity;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    if (!PQgetisnull(r.get(), i, 1)) identity.insert(PQgetvalue(r.get(), i, 1));
  }
  for (const std::string& k : t.key) {
    if (!identity.count(k)) {
      std::vector<std::string> id(identity.begin(), identity.end());
      return DatabaseError(db,
                           "change capture: key column " + k + " of " + t.relation +
                               " is not in its replica identity (" +
                               (id.empty() ? std::string("none") : Join(id, ", ")) +
                               "), so its deletes would not say which row",
                           "set key: to the primary key, or ALTER TABLE " + Qualified(rel) +
                               " REPLICA IDENTITY FULL");
    }
  }
  return Status::Ok();
}

// Reads pgoutput's big-endian fields; a short message sets `bad`.
struct Reader {
  const unsigned char* p;
  const unsigned char* end;
  bool bad = false;
  bool Has(size_t n) {
    if (static_cast<size_t>(end - p) < n) bad = true;
    return !bad;
  }
  uint8_t U8() { return Has(1) ? *p++ : 0; }
  uint64_t Int(int bytes) {
    if (!Has(static_cast<size_t>(bytes))) return 0;
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | *p++;
    return v;
  }
  std::string Str() {  // NUL-terminated
    const unsigned char* z = static_cast<const unsigned char*>(std::memchr(p, 0, end - p));
    if (!z) {
      bad = true;
      return "";
    }
    std::string s(reinterpret_cast<const char*>(p), z - p);
    p = z + 1;
    return s;
  }
  std::string Bytes(size_t n) {
    if (!Has(n)) return "";
    std::string s(reinterpret_cast<const char*>(p), n);
    p += n;
    return s;
  }
};

// One column of a tuple: null, unchanged (a TOASTed value not sent), or text.
struct Value {
  enum Kind { kNull, kUnchanged, kText } kind = kNull;
  std::string text;
};

bool ReadTuple(Reader& r, std::vector<Value>* out) {
  int n = static_cast<int>(r.Int(2));
  out->assign(n, Value{});
  for (int i = 0; i < n && !r.bad; ++i) {
    uint8_t kind = r.U8();
    if (kind == 'n') continue;
    if (kind == 'u') {
      (*out)[i].kind = Value::kUnchanged;
    } else if (kind == 't') {
      uint32_t len = static_cast<uint32_t>(r.Int(4));
      (*out)[i].kind = Value::kText;
      (*out)[i].text = r.Bytes(len);
    } else {
      return false;
    }
  }
  return !r.bad;
}

// A table's change file: rows buffered, their special columns turned into
// the decoder's text by the server (the snapshot's own expressions), then
// written.
class ChangeWriter {
 public:
  struct Row {
    uint64_t lsn = 0;
    int64_t seq = 0;
    const char* op = "";
    std::string unchanged;  // "" when none
    std::vector<std::optional<std::string>> values;
  };

  ChangeWriter(const CdcTable& table, std::vector<DbColumn> columns, int fd)
      : table_(table), file_(std::move(columns), fd) {}

  const std::vector<DbColumn>& columns() const { return file_.columns(); }
  uint64_t first_lsn() const { return file_.first_lsn(); }

  Status Header(const std::string& extracted_at) { return file_.Header(extracted_at); }

  Status Add(Row row, const DbRequest& db, PGconn* convert) {
    rows_.push_back(std::move(row));
    if (rows_.size() >= 4096) return Flush(db, convert);
    return Status::Ok();
  }

  Status Flush(const DbRequest& db, PGconn* convert) {
    if (rows_.empty()) return Status::Ok();
    for (size_t c = 0; c < columns().size(); ++c) {
      const DbColumn& col = columns()[c];
      if (col.encoding == DbEncoding::kHex) {
        // bytea's text is "\x" and hex (bytea_output = hex).
        for (Row& row : rows_) {
          auto& v = row.values[c];
          if (v && v->size() >= 2 && (*v)[0] == '\\' && (*v)[1] == 'x') v->erase(0, 2);
        }
        continue;
      }
      std::string expr = pg::ValueExpr(col, "(u.v::" + col.source_type + ")");
      if (expr == "(u.v::" + col.source_type + ")") continue;
      nlohmann::json values = nlohmann::json::array();
      for (const Row& row : rows_) {
        values.push_back(row.values[c] ? nlohmann::json(*row.values[c]) : nlohmann::json());
      }
      ASSIGN_OR_RETURN(
          Res r, pg::Query(db, convert,
                           "SELECT " + expr +
                               " FROM json_array_elements_text($1::json) "
                               "WITH ORDINALITY AS u(v, i) ORDER BY u.i",
                           {values.dump()},
                           "writing the changes of column " + col.name + " of " + table_.relation));
      if (PQntuples(r.get()) != static_cast<int>(rows_.size())) {
        return Status::Internal("converting column " + col.name + " lost values");
      }
      for (size_t i = 0; i < rows_.size(); ++i) {
        if (PQgetisnull(r.get(), static_cast<int>(i), 0)) {
          rows_[i].values[c].reset();
        } else {
          rows_[i].values[c] = std::string(PQgetvalue(r.get(), static_cast<int>(i), 0),
                                           PQgetlength(r.get(), static_cast<int>(i), 0));
        }
      }
    }
    for (const Row& row : rows_) {
      RETURN_IF_ERROR(file_.Row(row.lsn, row.seq, row.op, row.unchanged, row.values));
    }
    rows_.clear();
    return Status::Ok();
  }

  Result<DbExtract> Finish(const DbRequest& db, PGconn* convert) {
    RETURN_IF_ERROR(Flush(db, convert));
    return file_.Finish();
  }

 private:
  const CdcTable& table_;
  ChangeFile file_;
  std::vector<Row> rows_;
};

// pgoutput's relation message, mapped onto one of the read's tables.
struct Relation {
  int table = -1;                  // index in req.tables; -1: not captured here
  std::vector<std::string> names;  // its columns, as the change was written
  std::vector<int> to_column;      // each one's index among the table's columns
  std::string shape;               // names, type oids and typmods
  bool checked = false;            // a stream compared it with its files (ChangeReader::Strict)
};

class ChangeReader {
 public:
  ChangeReader(const CdcRequest& req, PGconn* convert, std::vector<RelName> rels,
               std::vector<std::unique_ptr<ChangeWriter>>& writers, CdcRead& read)
      : req_(req), convert_(convert), rels_(std::move(rels)), writers_(&writers), read_(&read) {}

  // A stream's next batch: its files and counts (relations and the order
  // of changes go on).
  void Rebind(std::vector<std::unique_ptr<ChangeWriter>>& writers, CdcRead& read) {
    writers_ = &writers;
    read_ = &read;
  }
  // A stream describes its files once, when it opens: a captured table
  // whose columns then differ (names or types) ends it. Checked at each
  // table's first change past its cursor: `same_as_described(table)` says
  // whether the table still has the columns its file was described with
  // (the first relation message is the baseline the later ones must keep).
  void Strict(std::function<Status(int table)> same_as_described) {
    strict_ = true;
    same_as_described_ = std::move(same_as_described);
  }
  // The last message was a transaction's commit.
  bool committed() const { return committed_; }
  // A transaction began and has not committed yet.
  bool in_transaction() const { return in_transaction_; }

  Status Message(const unsigned char* data, size_t size) {
    Reader r{data, data + size};
    uint8_t type = r.U8();
    committed_ = false;
    switch (type) {
      case 'B': {
        in_transaction_ = true;
        final_lsn_ = r.Int(8);
        (void)r.Int(8);  // commit time
        (void)r.Int(4);  // xid
        if (!r.bad && (read().start == 0 || final_lsn_ < read().start)) read().start = final_lsn_;
        break;
      }
      case 'C': {
        (void)r.U8();
        (void)r.Int(8);  // commit lsn
        uint64_t end = r.Int(8);
        if (!r.bad) {
          read().end = std::max(read().end, end);
          ++read().transactions;
          committed_ = true;
          in_transaction_ = false;
        }
        break;
      }
      case 'R': {
        uint32_t id = static_cast<uint32_t>(r.Int(4));
        RelName name{r.Str(), r.Str()};
        (void)r.U8();  // replica identity
        int n = static_cast<int>(r.Int(2));
        Relation rel;
        for (size_t t = 0; t < rels_.size(); ++t) {
          if (!(rels_[t] < name) && !(name < rels_[t])) rel.table = static_cast<int>(t);
        }
        for (int i = 0; i < n && !r.bad; ++i) {
          (void)r.U8();  // flags
          rel.names.push_back(r.Str());
          rel.shape += rel.names.back() + '\0' + std::to_string(r.Int(4));  // type oid
          rel.shape += '/' + std::to_string(r.Int(4)) + '\n';               // typmod
        }
        if (rel.table >= 0) {
          const auto& cols = writer(rel.table).columns();
          for (const std::string& col : rel.names) {
            int at = -1;
            for (size_t c = 0; c < cols.size(); ++c) {
              if (cols[c].name == col) at = static_cast<int>(c);
            }
            // A column dropped since: its values are not written (the
            // table keeps it, as null for rows changed from now on).
            rel.to_column.push_back(at);
          }
        }
        relations_[id] = std::move(rel);
        break;
      }
      case 'I':
      case 'U':
      case 'D': {
        uint32_t id = static_cast<uint32_t>(r.Int(4));
        auto it = relations_.find(id);
        if (it == relations_.end()) {
          return Status::DataError("change capture: a change of relation " + std::to_string(id) +
                                   " came before its description (protocol error)");
        }
        Relation& rel = it->second;
        std::vector<Value> old_tuple, new_tuple;
        uint8_t part = r.U8();
        bool has_old = false;
        const bool old_full = part == 'O';
        if (type != 'I' && (part == 'K' || part == 'O')) {
          if (!ReadTuple(r, &old_tuple)) return Bad();
          has_old = true;
          if (type == 'U') part = r.U8();
        }
        if (type != 'D') {
          if (part != 'N' || !ReadTuple(r, &new_tuple)) return Bad();
        } else if (!has_old) {
          return Bad();
        }
        if (rel.table < 0 || final_lsn_ < req_.tables[rel.table].after) break;
        if (strict_ && !rel.checked) {
          RETURN_IF_ERROR(SameShape(rel));
          rel.checked = true;
        }
        CdcTableRead& counts = read().tables[rel.table];
        if (type == 'D') {
          ++counts.deletes;
          RETURN_IF_ERROR(KeyRow(rel, old_tuple, "delete"));
        } else if (type == 'U') {
          ++counts.updates;
          // REPLICA IDENTITY FULL: the old row has every value, TOASTed ones too.
          for (size_t c = 0; old_full && c < new_tuple.size() && c < old_tuple.size(); ++c) {
            if (new_tuple[c].kind == Value::kUnchanged && old_tuple[c].kind != Value::kUnchanged) {
              new_tuple[c] = old_tuple[c];
            }
          }
          if (has_old && KeyChanged(rel, old_tuple, new_tuple)) {
            for (size_t c = 0; c < new_tuple.size(); ++c) {
              if (new_tuple[c].kind == Value::kUnchanged) {
                return DatabaseError(
                    req_.db,
                    "change capture: an update of " + req_.tables[rel.table].relation +
                        " changed its key and did not carry the unchanged (TOASTed) value of " +
                        rel.names[c] + ", which the row under its new key needs",
                    "ALTER TABLE " + req_.tables[rel.table].relation +
                        " REPLICA IDENTITY FULL (the old row then carries it), then sluice run "
                        "SOURCE --full-refresh");
              }
            }
            RETURN_IF_ERROR(KeyRow(rel, old_tuple, "delete"));
          }
          RETURN_IF_ERROR(Row(rel, new_tuple, "update"));
        } else {
          ++counts.inserts;
          RETURN_IF_ERROR(Row(rel, new_tuple, "insert"));
        }
        break;
      }
      case 'T': {
        int n = static_cast<int>(r.Int(4));
        (void)r.U8();
        for (int i = 0; i < n && !r.bad; ++i) {
          auto it = relations_.find(static_cast<uint32_t>(r.Int(4)));
          if (it == relations_.end() || it->second.table < 0) continue;
          int t = it->second.table;
          if (final_lsn_ < req_.tables[t].after) continue;
          ++read().tables[t].truncates;
          ChangeWriter::Row row;
          row.lsn = final_lsn_;
          row.seq = seq_++;
          row.op = "truncate";
          row.values.assign(writer(t).columns().size(), std::nullopt);
          RETURN_IF_ERROR(writer(t).Add(std::move(row), req_.db, convert_));
        }
        break;
      }
      default:
        break;  // origin, type, message: nothing to apply
    }
    return r.bad ? Bad() : Status::Ok();
  }

 private:
  CdcRead& read() { return *read_; }
  ChangeWriter& writer(int table) { return *(*writers_)[table]; }

  Status SameShape(const Relation& rel) {
    const CdcTable& t = req_.tables[rel.table];
    std::set<std::string> described, sent(rel.names.begin(), rel.names.end());
    for (const DbColumn& c : writer(rel.table).columns()) described.insert(c.name);
    auto [first, fresh] = shapes_.emplace(rel.table, rel.shape);
    if (fresh && described == sent && same_as_described_) {
      RETURN_IF_ERROR(same_as_described_(rel.table));
    }
    if (described != sent || (!fresh && first->second != rel.shape)) {
      return ColumnsChanged(t.relation, "slot");
    }
    return Status::Ok();
  }

  Status Bad() {
    return Status::DataError("change capture: a pgoutput message of slot " + req_.slot +
                             " is malformed (protocol version 1 expected)");
  }

  std::vector<int> KeyPositions(const Relation& rel) const {
    std::vector<int> at;
    for (const std::string& k : req_.tables[rel.table].key) {
      int found = -1;
      for (size_t i = 0; i < rel.names.size(); ++i) {
        if (rel.names[i] == k) found = static_cast<int>(i);
      }
      at.push_back(found);
    }
    return at;
  }

  bool KeyChanged(const Relation& rel, const std::vector<Value>& before,
                  const std::vector<Value>& after) const {
    for (int i : KeyPositions(rel)) {
      if (i < 0 || i >= static_cast<int>(before.size()) || i >= static_cast<int>(after.size())) {
        continue;
      }
      if (before[i].kind != Value::kText || after[i].kind != Value::kText) continue;
      if (before[i].text != after[i].text) return true;
    }
    return false;
  }

  Status KeyRow(const Relation& rel, const std::vector<Value>& tuple, const char* op) {
    const CdcTable& t = req_.tables[rel.table];
    std::vector<int> keys = KeyPositions(rel);
    ChangeWriter::Row row;
    row.lsn = final_lsn_;
    row.seq = seq_++;
    row.op = op;
    row.values.assign(writer(rel.table).columns().size(), std::nullopt);
    for (size_t k = 0; k < keys.size(); ++k) {
      int i = keys[k];
      if (i < 0 || i >= static_cast<int>(tuple.size()) || tuple[i].kind != Value::kText ||
          rel.to_column[i] < 0) {
        return DatabaseError(req_.db,
                             "change capture: a delete of " + t.relation +
                                 " carried no value for key column " + t.key[k],
                             "set key: to the primary key, or ALTER TABLE " + t.relation +
                                 " REPLICA IDENTITY FULL, then sluice run SOURCE --full-refresh");
      }
      row.values[rel.to_column[i]] = tuple[i].text;
    }
    return writer(rel.table).Add(std::move(row), req_.db, convert_);
  }

  Status Row(const Relation& rel, const std::vector<Value>& tuple, const char* op) {
    size_t width = writer(rel.table).columns().size();
    ChangeWriter::Row row;
    row.lsn = final_lsn_;
    row.seq = seq_++;
    row.op = op;
    row.values.assign(width, std::nullopt);
    // Columns the change does not describe (added since) are kept as they are.
    std::string unchanged(width, std::string_view(op) == "update" ? '1' : '0');
    for (size_t i = 0; i < tuple.size() && i < rel.to_column.size(); ++i) {
      int c = rel.to_column[i];
      if (c < 0) continue;
      unchanged[c] = tuple[i].kind == Value::kUnchanged ? '1' : '0';
      if (tuple[i].kind == Value::kText) row.values[c] = tuple[i].text;
    }
    if (unchanged.find('1') != std::string::npos) row.unchanged = unchanged;
    return writer(rel.table).Add(std::move(row), req_.db, convert_);
  }

  const CdcRequest& req_;
  PGconn* convert_;
  std::vector<RelName> rels_;
  std::vector<std::unique_ptr<ChangeWriter>>* writers_;
  CdcRead* read_;
  std::map<uint32_t, Relation> relations_;
  std::map<int, std::string> shapes_;  // strict: each table's first relation message checked
  std::function<Status(int)> same_as_described_;
  uint64_t final_lsn_ = 0;
  int64_t seq_ = 0;
  bool strict_ = false;
  bool committed_ = false;
  bool in_transaction_ = false;
};

// Runs the peek in single-row mode, each message handed to `reader`,
// waiting on the socket so that a cancel or the timeout stops the server.
Status Peek(const CdcRequest& req, PGconn* conn, ChangeReader& reader, int64_t* messages) {
  const DbRequest& db = req.db;
  std::string limit = req.max_changes > 0 ? std::to_string(req.max_changes) : "";
  const char* values[] = {req.slot.c_str(), limit.empty() ? nullptr : limit.c_str(), nullptr};
  std::string publications = QuoteIdent(req.publication);
  values[2] = publications.c_str();
  if (!PQsendQueryParams(conn,
                         "SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, "
                         "$2::int, 'proto_version', '1', 'publication_names', $3, "
                         "'messages', 'true')",
                         3, nullptr, values, nullptr, nullptr, /*resultFormat=*/1) ||
      !PQsetSingleRowMode(conn)) {
    return DatabaseError(db, "PostgreSQL cannot start reading slot " + req.slot,
                         PQerrorMessage(conn));
  }
  const int64_t deadline =
      db.timeout_seconds > 0 ? MonotonicMillis() + db.timeout_seconds * 1000 : 0;
  Status failed = Status::Ok();
  for (;;) {
    while (!PQisBusy(conn)) {
      Res res(PQgetResult(conn));
      if (!res) return failed;
      ExecStatusType st = PQresultStatus(res.get());
      if (st == PGRES_SINGLE_TUPLE) {
        ++*messages;
        if (failed.ok()) {
          failed =
              reader.Message(reinterpret_cast<const unsigned char*>(PQgetvalue(res.get(), 0, 0)),
                             static_cast<size_t>(PQgetlength(res.get(), 0, 0)));
          if (!failed.ok()) {
            if (PGcancel* c = PQgetCancel(conn)) {
              char err[256];
              (void)PQcancel(c, err, sizeof err);
              PQfreeCancel(c);
            }
          }
        }
      } else if (st != PGRES_TUPLES_OK && failed.ok()) {
        std::string m = PQresultErrorMessage(res.get());
        failed = DatabaseError(db, "PostgreSQL failed reading slot " + req.slot, m);
      }
    }
    bool cancelled = db.cancel && db.cancel->load();
    bool late = deadline > 0 && MonotonicMillis() > deadline;
    if ((cancelled || late) && failed.ok()) {
      if (PGcancel* c = PQgetCancel(conn)) {
        char err[256];
        (void)PQcancel(c, err, sizeof err);
        PQfreeCancel(c);
      }
      failed = cancelled ? Status::Cancelled("the run was cancelled while reading slot " + req.slot)
                         : Status(StatusCode::kTimeout,
                                  "reading slot " + req.slot + " took longer than " +
                                      std::to_string(db.timeout_seconds) +
                                      "s; raise timeout: or lower max_changes:");
    }
    pollfd p{PQsocket(conn), POLLIN, 0};
    (void)::poll(&p, 1, 200);
    if (!PQconsumeInput(conn)) {
      return DatabaseError(db, "PostgreSQL's connection broke while reading slot " + req.slot,
                           PQerrorMessage(conn));
    }
  }
}

// Runs `sql`, waiting on the socket so that a cancel or the timeout
// cancels it on the server.
Result<Res> ExecWaiting(const DbRequest& req, PGconn* conn, const std::string& sql,
                        const std::string& what) {
  if (!PQsendQuery(conn, sql.c_str())) {
    return DatabaseError(req, "PostgreSQL failed " + what, PQerrorMessage(conn));
  }
  const int64_t deadline =
      req.timeout_seconds > 0 ? MonotonicMillis() + req.timeout_seconds * 1000 : 0;
  std::optional<Status> stopped;
  int64_t give_up = 0;  // after a cancel: the caller closes the connection
  Res last;
  for (;;) {
    if (give_up > 0 && MonotonicMillis() > give_up) return *stopped;
    while (!PQisBusy(conn)) {
      Res r(PQgetResult(conn));
      if (!r) {
        if (stopped) return *stopped;
        ExecStatusType st = last ? PQresultStatus(last.get()) : PGRES_FATAL_ERROR;
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
          std::string m = last ? PQresultErrorMessage(last.get()) : PQerrorMessage(conn);
          return DatabaseError(req, "PostgreSQL failed " + what, m);
        }
        return last;
      }
      last = std::move(r);
    }
    bool cancelled = req.cancel && req.cancel->load();
    bool late = deadline > 0 && MonotonicMillis() > deadline;
    if ((cancelled || late) && !stopped) {
      if (PGcancel* c = PQgetCancel(conn)) {
        char err[256];
        (void)PQcancel(c, err, sizeof err);
        PQfreeCancel(c);
      }
      give_up = MonotonicMillis() + 10000;
      stopped = cancelled
                    ? Status::Cancelled("the run was cancelled while " + what)
                    : Status(StatusCode::kTimeout,
                             what + " took longer than " + std::to_string(req.timeout_seconds) +
                                 "s (a long transaction on the server holds it up?)");
    }
    pollfd p{PQsocket(conn), POLLIN, 0};
    (void)::poll(&p, 1, 200);
    if (!PQconsumeInput(conn)) {
      return DatabaseError(req, "PostgreSQL's connection broke while " + what,
                           PQerrorMessage(conn));
    }
  }
}

int OpenFile(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

// A stream just closed (a resident reader stopping) leaves its slot active
// until the server's process notices: a peek or a drop waits for that.
Status WaitUntilInactive(const DbRequest& db, PGconn* conn, const std::string& slot) {
  for (int i = 0; i < 100; ++i) {
    ASSIGN_OR_RETURN(Res r, pg::Query(db, conn,
                                      "SELECT active_pid FROM pg_replication_slots WHERE "
                                      "slot_name = $1 AND active",
                                      {slot}, "looking at slot " + slot));
    if (PQntuples(r.get()) == 0) return Status::Ok();
    ::usleep(50000);
  }
  return DatabaseError(db, "slot " + slot + " is held by another reader",
                       "another process streams it; stop that reader (or use another slot:)");
}

Result<CdcSlotState> Inspect(const CdcRequest& req) {
  RegisterDatabaseSecrets(req.db.url);
  ASSIGN_OR_RETURN(Conn conn, pg::Connect(req.db));
  ASSIGN_OR_RETURN(
      Res r, pg::Query(req.db, conn.get(),
                       "SELECT s.plugin, s.active, s.wal_status, s.confirmed_flush_lsn::text, "
                       "pg_current_wal_lsn()::text, current_setting('wal_level'), "
                       "s.slot_name IS NOT NULL FROM (SELECT 1) AS d LEFT JOIN "
                       "pg_replication_slots s ON s.slot_name = $1 AND s.database = "
                       "current_database()",
                       {req.slot}, "reading slot " + req.slot));
  CdcSlotState s;
  s.expected_plugin = "pgoutput";
  s.exists = std::string(PQgetvalue(r.get(), 0, 6)) == "t";
  s.wal_level = PQgetvalue(r.get(), 0, 5);
  ASSIGN_OR_RETURN(s.current, ParseLsn(PQgetvalue(r.get(), 0, 4)));
  if (!s.exists) return s;
  s.plugin = PQgetvalue(r.get(), 0, 0);
  s.active = std::string(PQgetvalue(r.get(), 0, 1)) == "t";
  s.wal_status = PQgetvalue(r.get(), 0, 2);
  if (!PQgetisnull(r.get(), 0, 3)) {
    ASSIGN_OR_RETURN(s.confirmed, ParseLsn(PQgetvalue(r.get(), 0, 3)));
  }
  s.lag_bytes = s.current > s.confirmed ? static_cast<int64_t>(s.current - s.confirmed) : 0;
  return s;
}

Result<CdcRead> Snapshot(const CdcRequest& req) {
  RegisterDatabaseSecrets(req.db.url);
  const DbRequest& db = req.db;
  ASSIGN_OR_RETURN(Conn conn, pg::Connect(db));
  RETURN_IF_ERROR(CheckServer(db, conn.get()));
  std::vector<RelName> rels;
  for (const CdcTable& t : req.tables) {
    ASSIGN_OR_RETURN(RelName rel, Resolve(db, conn.get(), t.relation));
    RETURN_IF_ERROR(CheckIdentity(db, conn.get(), rel, t));
    RETURN_IF_ERROR(CheckColumns(db, conn.get(), rel, t));
    rels.push_back(rel);
  }
  RETURN_IF_ERROR(EnsurePublication(req, conn.get(), rels, /*create=*/true));
  // The slot starts again: an older one of this name (a snapshot that
  // never published, or a slot from before a full refresh) goes.
  RETURN_IF_ERROR(WaitUntilInactive(db, conn.get(), req.slot));
  RETURN_IF_ERROR(pg::Query(db, conn.get(),
                            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                            "WHERE slot_name = $1",
                            {req.slot}, "dropping the old slot " + req.slot)
                      .status());
  Result<CdcRead> read = [&]() -> Result<CdcRead> {
    ASSIGN_OR_RETURN(Conn repl, pg::Connect(db, /*replication=*/true));
    // Creating the slot waits for the transactions running now to end: a
    // cancel or the timeout must still stop it.
    ASSIGN_OR_RETURN(Res created, ExecWaiting(db, repl.get(),
                                              "CREATE_REPLICATION_SLOT " + QuoteIdent(req.slot) +
                                                  " LOGICAL pgoutput EXPORT_SNAPSHOT",
                                              "creating replication slot " + req.slot +
                                                  " (max_replication_slots may be reached; the "
                                                  "url's user needs REPLICATION)"));
    CdcRead out;
    ASSIGN_OR_RETURN(out.start, ParseLsn(PQgetvalue(created.get(), 0, 1)));
    out.end = out.start;
    std::string snapshot = PQgetvalue(created.get(), 0, 2);
    // The snapshot lives while `repl` stays idle: every table is copied now.
    for (const CdcTable& t : req.tables) {
      DbRequest one = db;
      one.table = t.relation;
      one.snapshot = snapshot;
      one.constants = {{"_op", "VARCHAR", "snapshot"},
                       {"_extracted_at", "TIMESTAMP", req.extracted_at}};
      CdcTableRead tr;
      ASSIGN_OR_RETURN(tr.extract, ExtractToFile(one, t.path));
      tr.inserts = tr.extract.rows;
      out.tables.push_back(std::move(tr));
    }
    return out;
  }();
  if (!read.ok()) {
    // A slot no table will read from keeps WAL for nothing. Its connection
    // is closed, but the server's process may still hold it a moment.
    for (int i = 0; i < 50; ++i) {
      Result<Res> left =
          pg::Query(db, conn.get(), "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                    {req.slot}, "looking for slot " + req.slot);
      if (!left.ok() || PQntuples(left->get()) == 0) break;
      if (std::string(PQgetvalue(left->get(), 0, 0)) == "f") {
        (void)pg::Query(db, conn.get(), "SELECT pg_drop_replication_slot($1)", {req.slot},
                        "dropping the unused slot " + req.slot);
        break;
      }
      ::usleep(100000);
    }
  }
  return read;
}

// Columns added with a default after rows existed (atthasmissing): those
// rows hold the default, and no change says so (CdcTableRead::defaulted).
Result<std::vector<std::string>> Defaulted(const DbRequest& db, PGconn* conn, const RelName& rel,
                                           const CdcTable& t) {
  ASSIGN_OR_RETURN(Res missing,
                   pg::Query(db, conn,
                             "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) "
                             "AND attnum > 0 AND NOT attisdropped AND atthasmissing",
                             {Qualified(rel)}, "reading the columns of " + t.relation));
  std::vector<std::string> out;
  for (int i = 0; i < PQntuples(missing.get()); ++i) out.push_back(PQgetvalue(missing.get(), i, 0));
  return out;
}

Result<CdcRead> Read(const CdcRequest& req) {
  RegisterDatabaseSecrets(req.db.url);
  const DbRequest& db = req.db;
  ASSIGN_OR_RETURN(Conn peek, pg::Connect(db));
  ASSIGN_OR_RETURN(Conn side, pg::Connect(db));
  RETURN_IF_ERROR(CheckServer(db, side.get()));
  std::vector<RelName> rels;
  std::vector<std::unique_ptr<ChangeWriter>> writers;
  CdcRead read;
  read.tables.resize(req.tables.size());
  for (const CdcTable& t : req.tables) {
    ASSIGN_OR_RETURN(RelName rel, Resolve(db, side.get(), t.relation));
    RETURN_IF_ERROR(CheckColumns(db, side.get(), rel, t));
    ASSIGN_OR_RETURN(read.tables[writers.size()].defaulted, Defaulted(db, side.get(), rel, t));
    DbRequest one = db;
    one.table = t.relation;
    ASSIGN_OR_RETURN(std::string relation, pg::RelationSql(one));
    ASSIGN_OR_RETURN(std::vector<DbColumn> columns, pg::Describe(one, side.get(), relation));
    int fd = OpenFile(t.path);
    if (fd < 0) return Status::IOError("cannot create " + t.path + ": " + std::strerror(errno));
    writers.push_back(std::make_unique<ChangeWriter>(t, std::move(columns), fd));
    RETURN_IF_ERROR(writers.back()->Header(req.extracted_at));
    rels.push_back(rel);
  }
  RETURN_IF_ERROR(EnsurePublication(req, side.get(), rels, /*create=*/false));
  // A heartbeat: a transaction of the read's own, so that the slot moves
  // on while the tables are quiet (the server's other writes keep WAL).
  Status beat = pg::Query(db, side.get(), "SELECT pg_logical_emit_message(true, 'sluice', $1)",
                          {req.slot}, "writing a heartbeat")
                    .status();
  if (!beat.ok()) {
    read.notes.push_back("no heartbeat (" + beat.message() +
                         "): the slot moves only when its tables change");
  }
  RETURN_IF_ERROR(WaitUntilInactive(db, side.get(), req.slot));
  ChangeReader reader(req, side.get(), rels, writers, read);
  int64_t messages = 0;
  Status peeked = Peek(req, peek.get(), reader, &messages);
  if (peeked.ok()) {
    for (size_t i = 0; i < writers.size(); ++i) {
      Result<DbExtract> e = writers[i]->Finish(db, side.get());
      if (!e.ok()) {
        peeked = e.status();
        break;
      }
      DbExtract extract = std::move(*e);
      extract.notes = {};
      read.tables[i].extract = std::move(extract);
    }
  }
  writers.clear();
  if (!peeked.ok()) {
    for (const CdcTable& t : req.tables) ::unlink(t.path.c_str());
    return peeked;
  }
  read.more = req.max_changes > 0 && messages >= req.max_changes;
  return read;
}

Status Confirm(const CdcRequest& req, uint64_t lsn) {
  RegisterDatabaseSecrets(req.db.url);
  ASSIGN_OR_RETURN(Conn conn, pg::Connect(req.db));
  // Never back (the server refuses), never past what it has written.
  return pg::Query(req.db, conn.get(),
                   "SELECT pg_replication_slot_advance(slot_name, $2::pg_lsn) FROM "
                   "pg_replication_slots WHERE slot_name = $1 AND database = current_database() "
                   "AND confirmed_flush_lsn < $2::pg_lsn",
                   {req.slot, FormatLsn(lsn)}, "confirming slot " + req.slot)
      .status();
}

// Big-endian fields of the replication protocol's own messages.
uint64_t GetInt(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
void PutInt(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// The resident reader (CdcStream): START_REPLICATION on the slot, pgoutput
// messages read as the peek reads them, one batch of files at a time.
class PgStream : public CdcStream {
 public:
  PgStream(CdcRequest req, CdcStreamOptions options)
      : req_(std::move(req)), opt_(std::move(options)) {}
  ~PgStream() override { Discard(); }

  Status Open() {
    RegisterDatabaseSecrets(req_.db.url);
    const DbRequest& db = req_.db;
    ASSIGN_OR_RETURN(side_, pg::Connect(db));
    RETURN_IF_ERROR(CheckServer(db, side_.get()));
    uint64_t start = UINT64_MAX;
    for (const CdcTable& t : req_.tables) {
      ASSIGN_OR_RETURN(RelName rel, Resolve(db, side_.get(), t.relation));
      RETURN_IF_ERROR(CheckColumns(db, side_.get(), rel, t));
      DbRequest one = db;
      one.table = t.relation;
      ASSIGN_OR_RETURN(std::string relation, pg::RelationSql(one));
      ASSIGN_OR_RETURN(std::vector<DbColumn> columns, pg::Describe(one, side_.get(), relation));
      columns_.push_back(std::move(columns));
      relations_.push_back(relation);
      ASSIGN_OR_RETURN(std::vector<std::string> defaulted, Defaulted(db, side_.get(), rel, t));
      defaulted_.push_back(std::move(defaulted));
      rels_.push_back(rel);
      start = std::min(start, t.after);
    }
    if (req_.tables.empty() || start == 0) {
      return Status::Invalid("a change stream starts from the cursors of its tables");
    }
    confirmed_.store(start);
    RETURN_IF_ERROR(EnsurePublication(req_, side_.get(), rels_, /*create=*/false));
    // The flush position never goes back (PostgreSQL before 17 would take
    // it back): it starts where the slot is.
    ASSIGN_OR_RETURN(Res slot, pg::Query(db, side_.get(),
                                         "SELECT confirmed_flush_lsn::text FROM "
                                         "pg_replication_slots WHERE slot_name = $1",
                                         {req_.slot}, "reading slot " + req_.slot));
    if (PQntuples(slot.get()) == 1 && !PQgetisnull(slot.get(), 0, 0)) {
      ASSIGN_OR_RETURN(sent_flush_, ParseLsn(PQgetvalue(slot.get(), 0, 0)));
    }
    ASSIGN_OR_RETURN(repl_, pg::Connect(db, /*replication=*/true));
    // pgoutput writes values with the walsender's settings: the peek's.
    RETURN_IF_ERROR(pg::Exec(db, repl_.get(),
                             "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; "
                             "SET extra_float_digits = 3; SET bytea_output = 'hex'",
                             "setting up the replication session"));
    char* names = PQescapeLiteral(repl_.get(), QuoteIdent(req_.publication).c_str(),
                                  QuoteIdent(req_.publication).size());
    if (!names) return DatabaseError(db, "quoting a publication name", PQerrorMessage(repl_.get()));
    std::string sql = "START_REPLICATION SLOT " + QuoteIdent(req_.slot) + " LOGICAL " +
                      FormatLsn(start) + " (proto_version '1', publication_names " + names +
                      ", messages 'true')";
    PQfreemem(names);
    Res started(PQexec(repl_.get(), sql.c_str()));
    if (!started || PQresultStatus(started.get()) != PGRES_COPY_BOTH) {
      std::string m = started ? PQresultErrorMessage(started.get()) : PQerrorMessage(repl_.get());
      return DatabaseError(db, "PostgreSQL cannot stream slot " + req_.slot, m);
    }
    reader_ = std::make_unique<ChangeReader>(req_, side_.get(), rels_, writers_, batch_);
    reader_->Strict([this](int table) { return SameAsDescribed(table); });
    last_status_ms_ = last_message_ms_ = MonotonicMillis();
    return Status::Ok();
  }

  Result<std::optional<CdcRead>> Next(int wait_ms, int linger_ms) override {
    const int64_t deadline = MonotonicMillis() + wait_ms;
    for (;;) {
      int64_t now = MonotonicMillis();
      if (now - last_status_ms_ >= kStatusEveryMs) {
        RETURN_IF_ERROR(SendStatus(/*reply=*/true));
      } else if (confirmed_.load() > sent_flush_ ||
                 (caught_up_.load() && keepalive_ > sent_flush_ && !open_ &&
                  !reader_->in_transaction())) {
        RETURN_IF_ERROR(SendStatus(false));
      }
      char* buf = nullptr;
      int n = PQgetCopyData(repl_.get(), &buf, /*async=*/1);
      if (n > 0) {
        std::unique_ptr<char, decltype(&PQfreemem)> held(buf, PQfreemem);
        last_message_ms_ = MonotonicMillis();
        if (buf[0] == 'w' && n >= 25) {
          received_ = std::max(received_, GetInt(buf + 9, 8));
          if (!open_) RETURN_IF_ERROR(StartBatch());
          RETURN_IF_ERROR(reader_->Message(reinterpret_cast<const unsigned char*>(buf + 25),
                                           static_cast<size_t>(n - 25)));
          if (reader_->committed()) {
            if (first_commit_ms_ == 0) first_commit_ms_ = MonotonicMillis();
            if (MonotonicMillis() - first_commit_ms_ >= linger_ms) return CloseBatch();
          }
        } else if (buf[0] == 'k' && n >= 18) {
          keepalive_ = std::max(keepalive_, GetInt(buf + 1, 8));
          received_ = std::max(received_, keepalive_);
          if (buf[17]) RETURN_IF_ERROR(SendStatus(false));
        }
        continue;
      }
      if (n == -1) {
        Res end(PQgetResult(repl_.get()));
        std::string m = end ? PQresultErrorMessage(end.get()) : PQerrorMessage(repl_.get());
        return DatabaseError(req_.db, "PostgreSQL ended the stream of slot " + req_.slot, m);
      }
      if (n == -2) {
        return DatabaseError(req_.db, "PostgreSQL's stream of slot " + req_.slot + " broke",
                             PQerrorMessage(repl_.get()));
      }
      now = MonotonicMillis();
      if (now - last_message_ms_ > kSilentMs) {
        // Each status update asks for a reply: a server this quiet is gone.
        return DatabaseError(req_.db,
                             "PostgreSQL's stream of slot " + req_.slot + " fell silent for " +
                                 std::to_string(kSilentMs / 1000) + " s",
                             "the connection is lost; the stream starts again");
      }
      const bool lingered = first_commit_ms_ > 0 && now - first_commit_ms_ >= linger_ms;
      if (lingered && !reader_->in_transaction()) return CloseBatch();
      if (now >= deadline) return std::optional<CdcRead>();
      int64_t until = deadline;
      if (first_commit_ms_ > 0) until = std::min(until, first_commit_ms_ + linger_ms);
      until = std::min(until, last_status_ms_ + kStatusEveryMs);
      pollfd p{PQsocket(repl_.get()), POLLIN, 0};
      (void)::poll(&p, 1, static_cast<int>(std::clamp<int64_t>(until - now, 1, 1000)));
      if (!PQconsumeInput(repl_.get())) {
        return DatabaseError(req_.db, "PostgreSQL's stream of slot " + req_.slot + " broke",
                             PQerrorMessage(repl_.get()));
      }
    }
  }

  void Confirm(uint64_t lsn, bool caught_up) override {
    uint64_t was = confirmed_.load();
    while (lsn > was && !confirmed_.compare_exchange_weak(was, lsn)) {
    }
    caught_up_.store(caught_up);
  }

 private:
  static constexpr int64_t kStatusEveryMs = 10000;  // wal_sender_timeout is 60 s by default
  static constexpr int64_t kSilentMs = 30000;       // three status updates unanswered

  // Table `table` still has the columns its files were described with.
  Status SameAsDescribed(int table) {
    DbRequest one = req_.db;
    one.table = req_.tables[table].relation;
    ASSIGN_OR_RETURN(std::vector<DbColumn> now, pg::Describe(one, side_.get(), relations_[table]));
    if (!SameColumns(columns_[table], now)) {
      return ColumnsChanged(req_.tables[table].relation, "slot");
    }
    return Status::Ok();
  }

  // A standby status update: written up to what came, flushed (and
  // applied) up to what the tables' publications hold.
  Status SendStatus(bool reply) {
    uint64_t flush = std::max(confirmed_.load(), sent_flush_);
    if (caught_up_.load() && !open_ && !reader_->in_transaction()) {
      flush = std::max(flush, keepalive_);
    }
    std::string m = "r";
    PutInt(m, std::max(received_, flush), 8);
    PutInt(m, flush, 8);
    PutInt(m, flush, 8);
    // Microseconds since 2000-01-01, PostgreSQL's epoch.
    auto since = std::chrono::duration_cast<std::chrono::microseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count() -
                 946684800000000LL;
    PutInt(m, static_cast<uint64_t>(since), 8);
    m.push_back(reply ? 1 : 0);
    if (PQputCopyData(repl_.get(), m.data(), static_cast<int>(m.size())) != 1 ||
        PQflush(repl_.get()) != 0) {
      return DatabaseError(req_.db, "PostgreSQL's stream of slot " + req_.slot + " broke",
                           PQerrorMessage(repl_.get()));
    }
    sent_flush_ = flush;
    last_status_ms_ = MonotonicMillis();
    return Status::Ok();
  }

  Status StartBatch() {
    Discard();
    batch_ = CdcRead{};
    batch_.tables.resize(req_.tables.size());
    if (opt_.extracted_at) req_.extracted_at = opt_.extracted_at();
    for (size_t i = 0; i < req_.tables.size(); ++i) {
      std::string path = opt_.new_path();
      int fd = OpenFile(path);
      if (fd < 0) return Status::IOError("cannot create " + path + ": " + std::strerror(errno));
      paths_.push_back(path);
      writers_.push_back(std::make_unique<ChangeWriter>(req_.tables[i], columns_[i], fd));
      RETURN_IF_ERROR(writers_.back()->Header(req_.extracted_at));
    }
    for (size_t i = 0; i < req_.tables.size(); ++i) batch_.tables[i].defaulted = defaulted_[i];
    reader_->Rebind(writers_, batch_);
    open_ = true;
    return Status::Ok();
  }

  Result<std::optional<CdcRead>> CloseBatch() {
    for (size_t i = 0; i < writers_.size(); ++i) {
      ASSIGN_OR_RETURN(DbExtract extract, writers_[i]->Finish(req_.db, side_.get()));
      extract.notes = {};
      batch_.tables[i].extract = std::move(extract);
      batch_.tables[i].first_lsn = writers_[i]->first_lsn();
    }
    writers_.clear();
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
    return std::optional<CdcRead>(std::move(batch_));
  }

  // An unfinished batch's files.
  void Discard() {
    writers_.clear();
    for (const std::string& p : paths_) ::unlink(p.c_str());
    paths_.clear();
    open_ = false;
  }

  CdcRequest req_;
  CdcStreamOptions opt_;
  Conn side_, repl_;
  std::vector<RelName> rels_;
  std::vector<std::string> relations_;  // each table's SELECT, as described
  std::vector<std::vector<DbColumn>> columns_;
  std::vector<std::vector<std::string>> defaulted_;  // CdcTableRead::defaulted, at Open
  std::vector<std::unique_ptr<ChangeWriter>> writers_;
  std::vector<std::string> paths_;
  CdcRead batch_;
  std::unique_ptr<ChangeReader> reader_;
  bool open_ = false;
  int64_t first_commit_ms_ = 0;  // when the open batch's first transaction committed
  uint64_t received_ = 0;        // the WAL end the server said it sent
  uint64_t keepalive_ = 0;       // the position its keepalives say it decoded to
  std::atomic<uint64_t> confirmed_{0};
  std::atomic<bool> caught_up_{false};
  uint64_t sent_flush_ = 0;
  int64_t last_status_ms_ = 0;
  int64_t last_message_ms_ = 0;
};

Result<std::unique_ptr<CdcStream>> OpenStream(const CdcRequest& req, CdcStreamOptions options) {
  auto stream = std::make_unique<PgStream>(req, std::move(options));
  RETURN_IF_ERROR(stream->Open());
  return std::unique_ptr<CdcStream>(std::move(stream));
}

}  // namespace

const CdcDriver& PostgresCdc() {
  static const CdcDriver driver{Inspect, Snapshot, Read, Confirm, OpenStream};
  return driver;
}

}  // namespace sluice
