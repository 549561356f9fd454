#include "orchestrate/task_records.h"

#include <chrono>
#include <exception>
#include <utility>

#include "core/log.h"

namespace sluice {

void TaskRecordBatch::Add(TaskRecord record) {
  std::vector<TaskRecord> now;
  {
    std::lock_guard lock(mu_);
    if (closed_) {
      now.push_back(std::move(record));
    } else {
      pending_.push_back(std::move(record));
      if (!writer_.joinable()) writer_ = std::thread([this] { Loop(); });
      if (pending_.size() < kMaxBatch) return;
      now.swap(pending_);
    }
  }
  Write(now);
}

void TaskRecordBatch::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
  std::vector<TaskRecord> rest;
  {
    std::lock_guard lock(mu_);
    rest.swap(pending_);
  }
  Write(rest);
}

void TaskRecordBatch::Loop() {
  std::unique_lock lock(mu_);
  while (!closed_) {
    wake_.wait_for(lock, std::chrono::milliseconds(kMaxDelayMs), [this] { return closed_; });
    std::vector<TaskRecord> batch;
    batch.swap(pending_);
    lock.unlock();
    Write(batch);
    lock.lock();
  }
}

void TaskRecordBatch::Write(const std::vector<TaskRecord>& batch) {
  if (batch.empty() || store_ == nullptr) return;
  try {  // a thread boundary (the writer's)
    Status st = store_->RecordTasks(batch);
    if (!st.ok()) LOG_WARN("runner", "cannot record {} tasks: {}", batch.size(), st.message());
  } catch (const std::exception& e) {
    LOG_ERROR("runner", "recording {} tasks failed: {}", batch.size(), e.what());
  }
}

}  // namespace sluice
