// The raw archive (DESIGN §5 "The lake"): every body stored once under
// raw/<source>/objects/<sha256>.<ext>, and every fetch attempt recorded in
// raw/<source>/log/dt=YYYY-MM-DD/hour=HH/fetches.ndjson and in metadata.
// Order of writes: object (temp, fsync, rename, fsync dir) before its log
// record, so a logged object always exists. Nothing here deletes raw data.
// Thread-safe; a FetchLogBatch is used by one thread.
#pragma once

#include <atomic>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"
#include "lake/object_store.h"
#include "metadata/metadata_store.h"

namespace sluice {

struct StoredObject {
  std::string sha256;
  std::string key;         // relative to the lake root
  std::string local_path;  // where DuckDB reads it
  uint64_t bytes = 0;
  bool reused = false;  // already stored (same content), nothing copied
};

class RawArchive {
 public:
  RawArchive(ObjectStore* store, MetadataStore* metadata, const Clock* clock)
      : store_(store), metadata_(metadata), clock_(clock) {}

  // Archives a local file for `source`: hashed while copied into the lake.
  // The file is re-hashed only when its size, mtime or inode changed since the
  // last time (the file-stat cache). Logs the attempt.
  //
  // With `deferred`, when the file had to be copied, the copy is returned at
  // once (local_path in the staging area, readable now) and *deferred is set
  // to the rest: fsync it, put it under its final name (a link: the staged
  // name stays readable), sync the folder, log the fetch. The caller runs it
  // (on any thread) before anything names the object, and removes the staged
  // file when done reading it; staging is cleared at start-up anyway.
  Result<StoredObject> StoreLocalFile(const std::string& source, const std::string& partition,
                                      const std::string& path, const std::string& ext,
                                      std::function<Status()>* deferred = nullptr);
  // Hashes a local file the same way without storing it (for `plan`).
  Result<std::string> PeekLocalFile(const std::string& path);
  // Moves an already-written temp file (HTTP bodies) into the archive. With a
  // batch, the move is made durable by the batch's commit, before any record.
  Result<StoredObject> StoreTemp(const std::string& source, const std::string& tmp_path,
                                 const std::string& sha256, uint64_t bytes, const std::string& ext,
                                 class FetchLogBatch* batch = nullptr);
  // A fresh temp path in the store's staging area (cleared at start-up), for
  // bodies written before StoreTemp moves them in.
  std::string NewStagingPath() const;
  // Appends a fetch record to the dated log and to metadata.
  Status LogFetch(FetchRecord record);
  // Appends several, after making the objects' folders durable: one sync of
  // each folder, one of each log file and one metadata transaction.
  Status LogFetches(std::vector<FetchRecord> records, const std::set<std::string>& folders);
  static std::string ObjectKey(const std::string& source, const std::string& sha256,
                               const std::string& ext);
  ObjectStore* store() const { return store_; }
  // Bytes of the fetches logged since this archive was opened (/metrics).
  int64_t logged_bytes() const { return logged_bytes_.load(); }

 private:
  std::atomic<int64_t> logged_bytes_{0};
  ObjectStore* store_;
  MetadataStore* metadata_;
  const Clock* clock_;
};

// A group commit of fetch records (a paginated API's pages): objects are
// stored without syncing their folder and records are held, then committed
// together every kMaxPending records and on Commit() or destruction. A crash
// before the commit loses only the held records; their objects are complete
// (and content-addressed, so the next fetch stores them again as no-ops).
class FetchLogBatch {
 public:
  static constexpr size_t kMaxPending = 64;
  explicit FetchLogBatch(RawArchive* archive) : archive_(archive) {}
  FetchLogBatch(const FetchLogBatch&) = delete;
  FetchLogBatch& operator=(const FetchLogBatch&) = delete;
  ~FetchLogBatch();  // commits what is held; a failure is logged

  void AddObject(const std::string& key) { folders_.insert(key); }
  Status Add(FetchRecord record);
  Status Commit();

 private:
  RawArchive* archive_;
  std::vector<FetchRecord> pending_;
  std::set<std::string> folders_;  // object keys whose folder needs a sync
};

}  // namespace sluice
