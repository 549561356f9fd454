#include "orchestrate/capture_feed.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "core/log.h"
#include "core/redact.h"
#include "orchestrate/capture.h"

namespace sluice {

namespace {

constexpr int kWaitMs = 200;           // how often a stream looks at its feed's state
constexpr int64_t kFirstAskMs = 1000;  // asking for a run to start a stream: then doubled
constexpr int64_t kMostAskMs = 60000;
constexpr int64_t kAfterHaltMs = 10000;  // the halting run starts the stream again itself
// Batches without changes of the source's tables (another table's, a new
// binlog file) move the position every table holds: a run keeps it (the
// binlog's files expire) at most this often.
constexpr int64_t kQuietRunMs = 10000;
// A run takes at most this many batches of a table (one raw object each,
// loaded as one UNION): a run that fell behind catches up in several.
constexpr size_t kMaxTakeParts = 100;

// A batch of committed transactions, each table's changes stored.
struct FeedBatch {
  uint64_t start = 0;  // its first transaction's commit position
  uint64_t end = 0;    // the end of its last
  int64_t transactions = 0;
  std::map<std::string, FeedPart> parts;  // by asset; tables without changes have none
};

}  // namespace

struct CaptureFeeds::Feed {
  std::string source;
  int64_t publish_every_ms = 1000;
  std::optional<FeedStart> start;  // set: stream from it
  uint64_t epoch = 0;              // bumped by Start and Halt: a stream of another epoch ends
  bool streaming = false;          // the thread holds a stream now, of stream_epoch
  uint64_t stream_epoch = 0;
  bool quit = false;              // no longer kept
  std::string unsupported;        // why the database cannot be streamed ("" if it can)
  std::deque<FeedBatch> batches;  // stored, not yet confirmed
  uint64_t covered = 0;           // the end of the last batch closed (changes or not)
  uint64_t confirmed = 0;
  std::string last_error;
  int64_t next_ask_ms = 0;  // when to ask for a run while no stream runs
  int64_t ask_backoff_ms = kFirstAskMs;
  bool want_run = false;  // a batch came since the last ask
  bool quiet = false;     // ... without changes of the source's tables
  int64_t last_ask_ms = 0;
  int64_t stored_batches = 0;
  std::thread thread;
};

CaptureFeeds::CaptureFeeds(std::function<void(const std::string&)> request_run, Opener open)
    : request_run_(std::move(request_run)), open_(std::move(open)) {}

CaptureFeeds::~CaptureFeeds() { Stop(); }

void CaptureFeeds::Ask(const std::string& source) {
  // A thread boundary of its own: serve's queue must not end a stream.
  try {
    request_run_(source);
  } catch (const std::exception& e) {
    LOG_ERROR("capture", "{}: asking for a run: {}", source, e.what());
  } catch (...) {
    LOG_ERROR("capture", "{}: asking for a run: an unknown exception", source);
  }
}

uint64_t CaptureFeeds::Epoch(const std::string& source) {
  std::lock_guard lock(mu_);
  Feed* f = Find(source);
  return f ? f->epoch : 0;
}

void CaptureFeeds::Keep(const std::map<std::string, int64_t>& publish_every_ms) {
  std::lock_guard lock(mu_);
  if (stopping_) return;
  for (auto& [name, feed] : feeds_) {
    auto it = publish_every_ms.find(name);
    if (it == publish_every_ms.end()) {
      feed->quit = true;
    } else {
      feed->publish_every_ms = it->second;
    }
  }
  for (const auto& [name, every] : publish_every_ms) {
    auto& feed = feeds_[name];
    if (feed && !feed->quit) continue;
    if (feed) retired_.push_back(std::move(feed));
    feed = std::make_unique<Feed>();
    feed->source = name;
    feed->publish_every_ms = every;
    Feed* f = feed.get();
    f->thread = std::thread([this, f] {
      // A thread boundary: nothing it throws may end serve. A feed whose
      // loop failed this way stops (runs read the slot themselves).
      try {
        Loop(f);
      } catch (const std::exception& e) {
        LOG_ERROR("capture", "{}: the stream's thread failed: {}", f->source, e.what());
      } catch (...) {
        LOG_ERROR("capture", "{}: the stream's thread failed", f->source);
      }
      std::lock_guard lock(mu_);
      f->streaming = false;
      f->start.reset();
      f->quit = true;  // no longer there for Start, Take or Kept
      cv_.notify_all();
    });
  }
  cv_.notify_all();
}

void CaptureFeeds::Stop() {
  std::vector<Feed*> all;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    // Kept (not freed) until the destructor: a run may still wait in Halt.
    for (auto& [name, feed] : feeds_) retired_.push_back(std::move(feed));
    feeds_.clear();
    for (auto& feed : retired_) all.push_back(feed.get());
  }
  cv_.notify_all();
  for (Feed* feed : all) {
    if (feed->thread.joinable()) feed->thread.join();
  }
}

CaptureFeeds::Feed* CaptureFeeds::Find(const std::string& source) {
  auto it = feeds_.find(source);
  return it == feeds_.end() || it->second->quit ? nullptr : it->second.get();
}

bool CaptureFeeds::Kept(const std::string& source) {
  std::lock_guard lock(mu_);
  Feed* f = Find(source);
  return f && f->unsupported.empty();
}

bool CaptureFeeds::Streaming(const std::string& source, const std::string& generation) {
  std::lock_guard lock(mu_);
  Feed* f = Find(source);
  return f && f->start && f->start->generation == generation;
}

void CaptureFeeds::Start(const std::string& source, FeedStart start) {
  std::lock_guard lock(mu_);
  Feed* f = Find(source);
  if (!f || !f->unsupported.empty()) return;
  // Another run halted or started the stream since this one read the slot
  // (a snapshot may have made it again): its positions are not current.
  if (f->epoch != start.seen_epoch) return;
  start.request.db.cancel = nullptr;  // the run's, gone when it ends
  f->start = std::move(start);
  f->batches.clear();
  f->covered = 0;
  f->confirmed = 0;
  ++f->epoch;
  cv_.notify_all();
}

void CaptureFeeds::Unsupported(const std::string& source, const std::string& why) {
  std::lock_guard lock(mu_);
  if (Feed* f = Find(source)) f->unsupported = why;
}

void CaptureFeeds::Halt(const std::string& source, const std::string& why) {
  std::unique_lock lock(mu_);
  Feed* f = Find(source);
  if (!f) return;
  if (f->start) LOG_INFO("capture", "{}: stream stopped: {}", source, why);
  f->start.reset();
  f->batches.clear();
  const uint64_t halted = ++f->epoch;
  f->next_ask_ms = MonotonicMillis() + kAfterHaltMs;
  cv_.notify_all();
  // Until no stream started before this halt holds the slot (one a later
  // Start began may run).
  cv_.wait(lock, [&] { return !f->streaming || f->stream_epoch > halted || stopping_; });
}

Result<FeedTake> CaptureFeeds::Take(const std::string& source, const std::string& asset,
                                    uint64_t after) {
  std::lock_guard lock(mu_);
  Feed* f = Find(source);
  if (!f || !f->start) return Status::Busy("the stream of " + source + " stopped");
  FeedTake out;
  out.end = after;
  for (const FeedBatch& b : f->batches) {
    if (b.end <= after) continue;
    auto part = b.parts.find(asset);
    if (part != b.parts.end() && out.parts.size() == kMaxTakeParts) {
      f->want_run = true;  // the rest for the next run
      return out;
    }
    if (part != b.parts.end()) {
      if (part->second.counts.first_lsn < after) {
        return Status::Busy("a batch of the stream of " + source + " holds changes of " + asset +
                            " from before its cursor " + FormatLsn(after));
      }
      out.parts.push_back(part->second);
    }
    out.end = b.end;
    out.transactions += b.transactions;
  }
  // Batches since, if any, held no change of any table of the source.
  out.end = std::max(out.end, f->covered);
  return out;
}

void CaptureFeeds::Confirm(const std::string& source, const std::string& generation, uint64_t lsn) {
  std::lock_guard lock(mu_);
  Feed* f = Find(source);
  if (!f || !f->start || f->start->generation != generation) return;
  f->confirmed = std::max(f->confirmed, lsn);
  while (!f->batches.empty() && f->batches.front().end <= f->confirmed) f->batches.pop_front();
}

nlohmann::json CaptureFeeds::Health() {
  std::lock_guard lock(mu_);
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, f] : feeds_) {
    if (f->quit) continue;
    nlohmann::json one = {{"streaming", f->streaming && f->start.has_value()},
                          {"pending_batches", f->batches.size()},
                          {"stored_batches", f->stored_batches}};
    if (f->start) one["generation"] = f->start->generation;
    if (!f->last_error.empty()) one["last_error"] = f->last_error;
    if (!f->unsupported.empty()) one["unsupported"] = f->unsupported;
    out[name] = std::move(one);
  }
  return out;
}

void CaptureFeeds::Loop(Feed* feed) {
  // A thread boundary: whatever a stream throws ends that stream, never serve.
  std::unique_lock lock(mu_);
  while (!stopping_ && !feed->quit) {
    const int64_t now = MonotonicMillis();
    if (!feed->start) {
      if (!feed->unsupported.empty()) {
        cv_.wait(lock);
        continue;
      }
      if (now >= feed->next_ask_ms) {
        // A run reads the slot, and starts the stream where it leaves the tables.
        feed->next_ask_ms = now + feed->ask_backoff_ms;
        feed->ask_backoff_ms = std::min(feed->ask_backoff_ms * 2, kMostAskMs);
        lock.unlock();
        Ask(feed->source);
        lock.lock();
        continue;
      }
      cv_.wait_for(lock, std::chrono::milliseconds(feed->next_ask_ms - now));
      continue;
    }
    FeedStart start = *feed->start;
    const uint64_t epoch = feed->epoch;
    feed->streaming = true;
    feed->stream_epoch = epoch;
    lock.unlock();
    Status ended = Status::Ok();
    try {
      ended = Stream(feed, start, epoch);
    } catch (const std::exception& e) {
      ended = Status::Internal(std::string("the stream failed: ") + e.what());
    } catch (...) {
      ended = Status::Internal("the stream failed: an unknown exception");
    }
    lock.lock();
    feed->streaming = false;
    if (!ended.ok() && feed->epoch == epoch) {
      // The next run reads these changes from the slot (and says why, if
      // the cause stays), then starts a stream again.
      const std::string message = Redact(ended.message());
      LOG_WARN("capture", "{}: stream stopped: {}", feed->source, message);
      feed->covered = 0;
      feed->last_error = message;
      feed->start.reset();
      feed->batches.clear();
      ++feed->epoch;
      feed->next_ask_ms = MonotonicMillis();
    }
    cv_.notify_all();
  }
}

Status CaptureFeeds::Stream(Feed* feed, const FeedStart& start, uint64_t epoch) {
  CdcStreamOptions options;
  RawArchive* archive = start.archive;
  const Clock* clock = start.clock;
  options.new_path = [archive] { return archive->NewStagingPath(); };
  options.extracted_at = [clock] { return CaptureTimestamp(clock->Now()); };
  ASSIGN_OR_RETURN(std::unique_ptr<CdcStream> stream, open_(start.request, options));
  LOG_INFO("capture", "{}: streaming slot {} from {}", feed->source, start.request.slot, [&] {
    uint64_t least = UINT64_MAX;
    for (const CdcTable& t : start.request.tables) least = std::min(least, t.after);
    return FormatLsn(least);
  }());
  for (;;) {
    uint64_t confirmed = 0;
    bool caught_up = false;
    int wait = kWaitMs;
    int linger = 0;
    bool ask = false;
    {
      std::lock_guard lock(mu_);
      if (stopping_ || feed->quit || feed->epoch != epoch) return Status::Ok();
      confirmed = feed->confirmed;
      caught_up = feed->batches.empty();
      linger = CaptureLingerMs(feed->batches.size());
      if (feed->want_run) {
        const int64_t every =
            feed->quiet ? std::max(feed->publish_every_ms, kQuietRunMs) : feed->publish_every_ms;
        int64_t due = feed->last_ask_ms + every - MonotonicMillis();
        if (due <= 0) {
          ask = true;
          feed->want_run = false;
          feed->quiet = false;
          feed->last_ask_ms = MonotonicMillis();
        } else {
          wait = static_cast<int>(std::min<int64_t>(wait, due));
        }
      }
    }
    if (ask) Ask(feed->source);
    stream->Confirm(confirmed, caught_up);
    ASSIGN_OR_RETURN(std::optional<CdcRead> batch, stream->Next(wait, linger));
    if (batch) RETURN_IF_ERROR(StoreBatch(feed, start, std::move(*batch), epoch));
  }
}

Status CaptureFeeds::StoreBatch(Feed* feed, const FeedStart& start, CdcRead batch, uint64_t epoch) {
  const CdcRequest& req = start.request;
  FetchRecord rec;
  rec.source = feed->source;
  rec.url = DisplayDatabaseUrl(req.db.url) + " stream of slot " + req.slot;
  rec.started_at = start.clock->Now();
  const int64_t began = MonotonicMillis();
  FeedBatch stored;
  stored.start = batch.start;
  stored.end = batch.end;
  stored.transactions = batch.transactions;
  std::vector<FetchRecord> records;
  Status failed = Status::Ok();
  for (size_t i = 0; i < batch.tables.size() && i < start.assets.size(); ++i) {
    CdcTableRead& tr = batch.tables[i];
    if (tr.path.empty()) continue;
    if (!failed.ok()) {
      ::unlink(tr.path.c_str());
      continue;
    }
    Result<StoredObject> obj =
        start.archive->StoreTemp(feed->source, tr.path, tr.extract.sha256, tr.extract.bytes, "csv");
    if (!obj.ok()) {
      ::unlink(tr.path.c_str());
      failed = obj.status().WithContext("archiving the changes of " + start.assets[i]);
      continue;
    }
    FeedPart part;
    part.object = *obj;
    part.columns = DbColumnsToJson(tr.extract.columns);
    FetchRecord one = rec;
    one.bytes = static_cast<int64_t>(tr.extract.bytes);
    one.sha256 = tr.extract.sha256;
    one.object_path = obj->key;
    one.headers = {{"table", start.assets[i]},       {"read", "stream"},
                   {"rows", tr.extract.rows},        {"slot", req.slot},
                   {"from", FormatLsn(batch.start)}, {"to", FormatLsn(batch.end)},
                   {"columns", part.columns}};
    records.push_back(std::move(one));
    part.counts = std::move(tr);
    part.counts.path.clear();
    stored.parts[start.assets[i]] = std::move(part);
  }
  RETURN_IF_ERROR(failed);
  // The objects are durable here; their records follow.
  const int64_t took = MonotonicMillis() - began;
  for (FetchRecord& r : records) r.duration_ms = took;
  if (!records.empty()) RETURN_IF_ERROR(start.archive->LogFetches(std::move(records), {}));
  std::lock_guard lock(mu_);
  if (feed->epoch != epoch) return Status::Ok();  // halted meanwhile: the slot keeps them
  feed->ask_backoff_ms = kFirstAskMs;             // the stream works
  feed->covered = std::max(feed->covered, stored.end);
  if (stored.parts.empty()) {
    // None of the source's tables changed: their position moves all the
    // same, kept by a run now and then.
    if (!feed->want_run) feed->quiet = true;
    feed->want_run = true;
    return Status::Ok();
  }
  feed->want_run = true;
  feed->quiet = false;
  feed->batches.push_back(std::move(stored));
  ++feed->stored_batches;
  return Status::Ok();
}

int CaptureLingerMs(size_t waiting_batches) {
  constexpr size_t kStep = 8;  // batches waiting per 20 ms more
  const size_t steps = std::min<size_t>(waiting_batches / kStep, kMostLingerMs / kLingerMs);
  return static_cast<int>(std::min<size_t>(kLingerMs * (1 + steps), kMostLingerMs));
}

}  // namespace sluice
