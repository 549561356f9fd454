// A run's task records, written to metadata in batches: a no-op run of
// 10,000 models made 10,000 SQLite transactions, one per skipped task.
// Records wait at most kMaxDelayMs (a thread of the batch's own writes
// them), or until kMaxBatch are pending; Close() writes the rest and must
// come before the run is marked finished. A record that cannot be written
// is logged, never thrown (the run's outcome does not depend on it).
//
// Thread-safe: Add() from the run's task threads.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

#include "metadata/metadata_store.h"

namespace sluice {

class TaskRecordBatch {
 public:
  static constexpr size_t kMaxBatch = 512;
  static constexpr int kMaxDelayMs = 200;

  explicit TaskRecordBatch(MetadataStore* store) : store_(store) {}
  ~TaskRecordBatch() { Close(); }
  TaskRecordBatch(const TaskRecordBatch&) = delete;
  TaskRecordBatch& operator=(const TaskRecordBatch&) = delete;

  void Add(TaskRecord record);
  // Writes what is pending and stops the writer; Add() after it writes at once.
  void Close();

 private:
  void Loop();
  void Write(const std::vector<TaskRecord>& batch);

  MetadataStore* const store_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::vector<TaskRecord> pending_;  // GUARDED_BY(mu_)
  bool closed_ = false;              // GUARDED_BY(mu_)
  std::thread writer_;               // started with the first record
};

}  // namespace sluice
