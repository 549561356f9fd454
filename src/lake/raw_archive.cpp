#include "lake/raw_archive.h"

#include <cstring>

#include <fcntl.h>

#include <atomic>
#include <map>

#include <fmt/format.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/redact.h"
#include "core/utf8.h"

namespace sluice {
namespace {

std::string StagingPath(ObjectStore* store) {
  static std::atomic<uint64_t> counter{0};
  return JoinPath(store->StagingDir(), fmt::format("{}-{}.part", ::getpid(), counter.fetch_add(1)));
}

// The file-stat cache is keyed by path; a path that holds a secret is keyed
// by its hash instead, so the secret never reaches metadata.
std::string StatKey(const std::string& path) {
  return ContainsSecret(path) ? "sha256:" + Sha256Hex(path) : path;
}

}  // namespace

std::string RawArchive::ObjectKey(const std::string& source, const std::string& sha256,
                                  const std::string& ext) {
  return "raw/" + source + "/objects/" + sha256 + (ext.empty() ? "" : "." + ext);
}

Result<std::string> RawArchive::PeekLocalFile(const std::string& path) {
  ASSIGN_OR_RETURN(FileStat st, StatFile(path));
  ASSIGN_OR_RETURN(auto cached, metadata_->GetFileStat(StatKey(path)));
  if (cached && cached->size == st.size && cached->mtime_ns == st.mtime_ns &&
      cached->inode == st.inode) {
    return cached->sha256;
  }
  return Sha256File(path);
}

Result<StoredObject> RawArchive::StoreLocalFile(const std::string& source,
                                                const std::string& partition,
                                                const std::string& path, const std::string& ext,
                                                std::function<Status()>* deferred) {
  Micros started = clock_->Now();
  int64_t t0 = MonotonicMillis();
  FetchRecord rec;
  rec.source = source;
  rec.partition = partition;
  rec.url = "file://" + path;
  rec.started_at = started;

  auto finish = [&](const Status& st, const StoredObject* obj) -> Status {
    rec.duration_ms = MonotonicMillis() - t0;
    if (obj) {
      rec.bytes = static_cast<int64_t>(obj->bytes);
      rec.sha256 = obj->sha256;
      rec.object_path = obj->key;
      rec.headers = {{"reused", obj->reused}};
    }
    if (!st.ok()) rec.error = st.message();
    return LogFetch(rec);
  };

  Result<FileStat> st = StatFile(path);
  if (!st.ok()) {
    (void)finish(st.status(), nullptr);
    return st.status();
  }
  ASSIGN_OR_RETURN(auto cached, metadata_->GetFileStat(StatKey(path)));
  if (cached && cached->size == st->size && cached->mtime_ns == st->mtime_ns &&
      cached->inode == st->inode) {
    StoredObject obj;
    obj.sha256 = cached->sha256;
    obj.key = ObjectKey(source, obj.sha256, ext);
    obj.bytes = st->size;
    obj.reused = true;
    if (store_->Exists(obj.key)) {
      ASSIGN_OR_RETURN(obj.local_path, store_->LocalPath(obj.key));
      RETURN_IF_ERROR(finish(Status::Ok(), &obj));
      return obj;
    }
  }
  std::string tmp = StagingPath(store_);
  Result<CopyResult> copied = CopyAndHash(path, tmp, /*sync=*/deferred == nullptr);
  if (!copied.ok()) {
    (void)finish(copied.status(), nullptr);
    return copied.status();
  }
  // The file may have changed while we copied: the stat we cache must be the
  // one we hashed, so re-stat and only cache when nothing moved.
  ASSIGN_OR_RETURN(FileStat after, StatFile(path));
  if (deferred) {
    StoredObject staged;
    staged.sha256 = copied->sha256;
    staged.bytes = copied->bytes;
    staged.key = ObjectKey(source, staged.sha256, ext);
    staged.local_path = tmp;
    RememberUtf8Verdict(tmp, copied->utf8_invalid_at);
    FileStat before = *st;
    CopyResult result = *copied;
    // Everything below must finish before anything names the object: the
    // order (durable bytes, final name, synced folder, then the record) is
    // the one of a store that is not deferred.
    *deferred = [this, source, path, ext, tmp, before, after, result, rec, t0]() mutable -> Status {
      auto fail = [&](const Status& err) {
        rec.duration_ms = MonotonicMillis() - t0;
        rec.error = err.message();
        (void)LogFetch(rec);
        return err;
      };
      {
        Result<UniqueFd> fd = UniqueFd::Open(tmp, O_RDONLY);
        if (!fd.ok()) return fail(fd.status());
        if (SysFsync(fd->get()) != 0) {
          return fail(Status::IOError(tmp + ": fsync failed: " + std::strerror(errno)));
        }
      }
      std::string link = tmp + ".durable";
      if (::link(tmp.c_str(), link.c_str()) != 0) {
        return fail(Status::IOError(link + ": cannot link: " + std::strerror(errno)));
      }
      Result<StoredObject> stored = StoreTemp(source, link, result.sha256, result.bytes, ext);
      if (!stored.ok()) {
        ::unlink(link.c_str());
        return fail(stored.status());
      }
      RememberUtf8Verdict(stored->local_path, result.utf8_invalid_at);
      if (after.size == before.size && after.mtime_ns == before.mtime_ns &&
          after.inode == before.inode) {
        Status cached = metadata_->PutFileStat(FileStatRecord{
            StatKey(path), before.size, before.mtime_ns, before.inode, result.sha256});
        if (!cached.ok()) return fail(cached);
      }
      rec.duration_ms = MonotonicMillis() - t0;
      rec.bytes = static_cast<int64_t>(stored->bytes);
      rec.sha256 = stored->sha256;
      rec.object_path = stored->key;
      rec.headers = {{"reused", stored->reused}};
      return LogFetch(rec);
    };
    return staged;
  }
  Result<StoredObject> stored = StoreTemp(source, tmp, copied->sha256, copied->bytes, ext);
  if (!stored.ok()) {
    (void)finish(stored.status(), nullptr);  // every attempt is logged, failed ones too
    return stored.status();
  }
  RememberUtf8Verdict(stored->local_path, copied->utf8_invalid_at);
  StoredObject obj = std::move(stored).value();
  if (after.size == st->size && after.mtime_ns == st->mtime_ns && after.inode == st->inode) {
    RETURN_IF_ERROR(metadata_->PutFileStat(
        FileStatRecord{StatKey(path), st->size, st->mtime_ns, st->inode, copied->sha256}));
  }
  RETURN_IF_ERROR(finish(Status::Ok(), &obj));
  return obj;
}

Result<StoredObject> RawArchive::StoreTemp(const std::string& source, const std::string& tmp_path,
                                           const std::string& sha256, uint64_t bytes,
                                           const std::string& ext, FetchLogBatch* batch) {
  StoredObject obj;
  obj.sha256 = sha256;
  obj.bytes = bytes;
  obj.key = ObjectKey(source, sha256, ext);
  obj.reused = store_->Exists(obj.key);
  if (batch) {
    RETURN_IF_ERROR(store_->PutFileUnsynced(obj.key, tmp_path));
    batch->AddObject(obj.key);
  } else {
    RETURN_IF_ERROR(store_->PutFile(obj.key, tmp_path));
  }
  ASSIGN_OR_RETURN(obj.local_path, store_->LocalPath(obj.key));
  return obj;
}

std::string RawArchive::NewStagingPath() const { return StagingPath(store_); }

namespace {

// The dated log file a record goes to, and its line.
std::pair<std::string, std::string> LogLine(FetchRecord& record) {
  record.url = Redact(record.url);
  record.error = Redact(record.error);
  std::string date = FormatDate(record.started_at);
  std::string ts = FormatTimestamp(record.started_at);
  std::string hour = ts.substr(11, 2);
  nlohmann::json line = {{"source", record.source},
                         {"partition", record.partition},
                         {"url", record.url},
                         {"time", ts},
                         {"status", record.status},
                         {"bytes", record.bytes},
                         {"sha256", record.sha256},
                         {"object", record.object_path},
                         {"duration_ms", record.duration_ms},
                         {"headers", record.headers},
                         {"error", record.error}};
  return {"raw/" + record.source + "/log/dt=" + date + "/hour=" + hour + "/fetches.ndjson",
          DumpRedacted(line) + "\n"};
}

}  // namespace

Status RawArchive::LogFetch(FetchRecord record) { return LogFetches({std::move(record)}, {}); }

Status RawArchive::LogFetches(std::vector<FetchRecord> records,
                              const std::set<std::string>& folders) {
  std::set<std::string> synced;
  for (const std::string& key : folders) {
    if (synced.insert(Dirname(key)).second) RETURN_IF_ERROR(store_->SyncFolder(key));
  }
  std::map<std::string, std::string> lines;  // log file -> its new lines, in order
  for (FetchRecord& record : records) {
    auto [key, line] = LogLine(record);
    lines[key] += line;
  }
  for (const auto& [key, text] : lines) RETURN_IF_ERROR(store_->Append(key, text));
  RETURN_IF_ERROR(metadata_->RecordFetches(records));
  for (const FetchRecord& record : records) logged_bytes_ += std::max<int64_t>(record.bytes, 0);
  return Status::Ok();
}

FetchLogBatch::~FetchLogBatch() {
  Status st = Commit();
  if (!st.ok()) LOG_ERROR("lake", "committing held fetch records failed: {}", st.message());
}

Status FetchLogBatch::Add(FetchRecord record) {
  pending_.push_back(std::move(record));
  return pending_.size() >= kMaxPending ? Commit() : Status::Ok();
}

Status FetchLogBatch::Commit() {
  if (pending_.empty() && folders_.empty()) return Status::Ok();
  std::vector<FetchRecord> records = std::move(pending_);
  std::set<std::string> folders = std::move(folders_);
  pending_.clear();
  folders_.clear();
  return archive_->LogFetches(std::move(records), folders);
}

}  // namespace sluice
