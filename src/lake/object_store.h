// Where raw objects and fetch logs live. The local filesystem is the one
// implementation today; an S3-compatible store plugs in behind the same
// interface later. Keys are '/'-separated paths relative to the lake root.
// Thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace sluice {

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  // A folder on local disk for temp files that PutFile will take over.
  virtual std::string StagingDir() const = 0;
  // Moves a complete, fsynced local file under key, atomically: afterwards
  // the object is complete or absent. When key already exists (same content,
  // as keys are content hashes) the temp file is discarded.
  virtual Status PutFile(const std::string& key, const std::string& tmp_path) = 0;
  // PutFile whose move is not yet durable: for group commits, which call
  // SyncFolder(key) before anything refers to the object.
  virtual Status PutFileUnsynced(const std::string& key, const std::string& tmp_path) = 0;
  // Makes the moves into key's folder durable (local stores: fsync it).
  virtual Status SyncFolder(const std::string& key) = 0;
  virtual bool Exists(const std::string& key) const = 0;
  // Appends one record durably (fetch logs).
  virtual Status Append(const std::string& key, const std::string& record) = 0;
  virtual Result<std::string> Read(const std::string& key) const = 0;
  virtual Result<std::vector<std::string>> List(const std::string& prefix) const = 0;
  // A path DuckDB can read the object from (local stores: the file itself).
  virtual Result<std::string> LocalPath(const std::string& key) const = 0;
};

Result<std::unique_ptr<ObjectStore>> OpenLocalObjectStore(const std::string& root);

}  // namespace sluice
