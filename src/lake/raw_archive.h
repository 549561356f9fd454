// The raw archive (DESIGN §5 "The lake"): every body stored once under
// raw/<source>/objects/<sha256>.<ext>, and every fetch attempt recorded in
// raw/<source>/log/dt=YYYY-MM-DD/hour=HH/fetches.ndjson and in metadata.
// Order of writes: object (temp, fsync, rename, fsync dir) before its log
// record, so a logged object always exists. Nothing here deletes raw data.
// Thread-safe.
#pragma once

#include <string>

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
  Result<StoredObject> StoreLocalFile(const std::string& source, const std::string& partition,
                                      const std::string& path, const std::string& ext);
  // Hashes a local file the same way without storing it (for `plan`).
  Result<std::string> PeekLocalFile(const std::string& path);
  // Moves an already-written temp file (HTTP bodies) into the archive.
  Result<StoredObject> StoreTemp(const std::string& source, const std::string& tmp_path,
                                 const std::string& sha256, uint64_t bytes, const std::string& ext);
  // A fresh temp path in the store's staging area (cleared at start-up), for
  // bodies written before StoreTemp moves them in.
  std::string NewStagingPath() const;
  // Appends a fetch record to the dated log and to metadata.
  Status LogFetch(FetchRecord record);
  static std::string ObjectKey(const std::string& source, const std::string& sha256,
                               const std::string& ext);
  ObjectStore* store() const { return store_; }

 private:
  ObjectStore* store_;
  MetadataStore* metadata_;
  const Clock* clock_;
};

}  // namespace sluice
