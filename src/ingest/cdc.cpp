// Change capture's driver-independent parts: cursors as LSN text, the
// change file's columns, and the choice of driver by URL.
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

#include "core/strings.h"
#include "ingest/cdc.h"

namespace sluice {

std::string FormatLsn(uint64_t lsn) {
  return fmt::format("{:X}/{:X}", static_cast<uint32_t>(lsn >> 32), static_cast<uint32_t>(lsn));
}

Result<uint64_t> ParseLsn(const std::string& text) {
  size_t slash = text.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == text.size() || slash > 8 ||
      text.size() - slash - 1 > 8) {
    return Status::Invalid("'" + text + "' is not an LSN (e.g. 16/B374D848)");
  }
  uint64_t hi = 0, lo = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (i == slash) continue;
    char c = text[i];
    int v = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                   : -1;
    if (v < 0) return Status::Invalid("'" + text + "' is not an LSN (e.g. 16/B374D848)");
    uint64_t& part = i < slash ? hi : lo;
    part = part * 16 + static_cast<uint64_t>(v);
  }
  return (hi << 32) | lo;
}

std::vector<DbColumn> ChangeFileColumns(const std::vector<DbColumn>& table_columns) {
  std::vector<DbColumn> out = {{"_lsn", "pg_lsn", "UBIGINT", DbEncoding::kPlain},
                               {"_seq", "bigint", "BIGINT", DbEncoding::kPlain},
                               {"_op", "text", "VARCHAR", DbEncoding::kPlain},
                               {"_unchanged", "text", "VARCHAR", DbEncoding::kPlain}};
  for (const DbColumn& c : table_columns) out.push_back(c);
  out.push_back({"_extracted_at", "timestamp", "TIMESTAMP", DbEncoding::kPlain});
  return out;
}

ChangeFile::ChangeFile(std::vector<DbColumn> columns, int fd)
    : columns_(std::move(columns)), fd_(fd), out_(fd) {}

ChangeFile::~ChangeFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status ChangeFile::Header(const std::string& extracted_at) {
  extracted_at_ = extracted_at;
  for (const DbColumn& c : ChangeFileColumns(columns_))
    RETURN_IF_ERROR(out_.Text(c.name.data(), c.name.size()));
  return out_.EndRow();
}

Status ChangeFile::Row(uint64_t lsn, int64_t seq, const char* op, const std::string& unchanged,
                       const std::vector<std::optional<std::string>>& values) {
  if (rows_ == 0) first_lsn_ = lsn;
  std::string l = std::to_string(lsn), s = std::to_string(seq);
  RETURN_IF_ERROR(out_.Text(l.data(), l.size()));
  RETURN_IF_ERROR(out_.Text(s.data(), s.size()));
  RETURN_IF_ERROR(out_.Text(op, std::strlen(op)));
  RETURN_IF_ERROR(unchanged.empty() ? out_.Null() : out_.Text(unchanged.data(), unchanged.size()));
  for (const auto& v : values) RETURN_IF_ERROR(v ? out_.Text(v->data(), v->size()) : out_.Null());
  RETURN_IF_ERROR(out_.Text(extracted_at_.data(), extracted_at_.size()));
  ++rows_;
  return out_.EndRow();
}

Result<DbExtract> ChangeFile::Finish() {
  DbExtract e;
  e.columns = ChangeFileColumns(columns_);
  ASSIGN_OR_RETURN(e.sha256, out_.Finish());
  e.bytes = out_.bytes();
  e.rows = rows_;
  return e;
}

namespace {

Result<const CdcDriver*> DriverFor(const CdcRequest& req) {
  if (IsPostgresUrl(req.db.url)) return &PostgresCdc();
  if (StartsWith(req.db.url, "mysql://") || StartsWith(req.db.url, "mariadb://")) {
    return &MariaDbCdc();
  }
  return Status::Invalid(
      "cdc: captures changes from PostgreSQL (logical decoding) and MariaDB "
      "(its binlog); " +
      DisplayDatabaseUrl(req.db.url) + " is neither: read its tables whole or with incremental:");
}

}  // namespace

Result<CdcSlotState> InspectSlot(const CdcRequest& req) {
  ASSIGN_OR_RETURN(const CdcDriver* d, DriverFor(req));
  return d->inspect(req);
}

Result<CdcRead> SnapshotTables(const CdcRequest& req) {
  ASSIGN_OR_RETURN(const CdcDriver* d, DriverFor(req));
  return d->snapshot(req);
}

Result<CdcRead> ReadChanges(const CdcRequest& req) {
  ASSIGN_OR_RETURN(const CdcDriver* d, DriverFor(req));
  return d->read(req);
}

bool SameColumns(const std::vector<DbColumn>& described, const std::vector<DbColumn>& now) {
  if (described.size() != now.size()) return false;
  for (size_t i = 0; i < now.size(); ++i) {
    const DbColumn& a = described[i];
    const DbColumn& b = now[i];
    if (a.name != b.name || a.source_type != b.source_type || a.type != b.type ||
        a.encoding != b.encoding) {
      return false;
    }
  }
  return true;
}

Status ColumnsChanged(const std::string& relation, const std::string& log) {
  return Status::Busy("change capture: the columns of " + relation +
                      " changed at the source; the stream stops and a run reads the " + log +
                      " (which follows the new columns)");
}

bool CdcStreamSupported(const std::string& url) {
  CdcRequest req;
  req.db.url = url;
  Result<const CdcDriver*> d = DriverFor(req);
  return d.ok() && (*d)->open_stream != nullptr;
}

Result<std::unique_ptr<CdcStream>> OpenChangeStream(const CdcRequest& req,
                                                    CdcStreamOptions options) {
  ASSIGN_OR_RETURN(const CdcDriver* d, DriverFor(req));
  if (!d->open_stream) {
    return Status::Invalid("this database's changes are read by runs, not streamed");
  }
  return d->open_stream(req, std::move(options));
}

Status ConfirmSlot(const CdcRequest& req, uint64_t lsn) {
  ASSIGN_OR_RETURN(const CdcDriver* d, DriverFor(req));
  return d->confirm(req, lsn);
}

}  // namespace sluice
