// Resident change readers (`sluice serve`): one thread per captured source
// holds the source's change stream open (ingest/cdc.h, CdcStream) and
// writes each batch of committed transactions to the raw lake as it closes
// — object and fetch-log record durable within milliseconds of the commit —
// then asks serve for a run of the source. That run takes the batches from
// here instead of reading the slot itself, applies them like any read of
// changes and publishes; its confirmation (the least cursor its tables
// hold) goes back to the server through the stream's status updates.
//
// The feed is a faster path for what runs already do, never a second
// decision-maker: a run that reads the slot itself (before the first
// stream, after any stream error, for a snapshot) decides everything as
// before and, when every table of the source stands in one generation,
// starts the stream where they stand (Start). Whatever goes wrong in the
// stream — a connection lost, a table's columns changed, a run and the
// stream reading the same changes — halts it and drops its batches that no
// publication holds (they stay in the lake as history): the next run reads
// those changes from the slot again, and starts a new stream.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/status.h"
#include "ingest/cdc.h"
#include "lake/raw_archive.h"

namespace sluice {

// One table's changes in one batch, stored in the lake.
struct FeedPart {
  StoredObject object;
  nlohmann::json columns;  // the file's columns (DbColumnsToJson)
  CdcTableRead counts;     // inserts, updates, deletes, truncates, rows
};

// Where a stream starts: the source's tables, each at the position its
// publication (or the last read, for a table without changes) holds.
struct FeedStart {
  CdcRequest request;               // db (no cancel flag), slot, publication, tables
  std::vector<std::string> assets;  // the asset of each of request.tables
  std::string generation;           // the cursors' generation (a snapshot's position)
  RawArchive* archive = nullptr;    // where batches are stored; outlives the feeds
  const Clock* clock = nullptr;
  uint64_t seen_epoch = 0;  // Epoch() when the run read the slot: a later Halt or Start wins
};

// A table's batches past its cursor.
struct FeedTake {
  std::vector<FeedPart> parts;  // in commit order; empty: no changes
  uint64_t end = 0;             // the cursor they move the table to (batches without
                                // its changes count too)
  int64_t transactions = 0;
};

// How long a batch waits for more commits after its first: 20 ms while
// runs keep up, longer as stored batches wait to be applied (20 ms more per
// 8 waiting, at most 1 s), so a run that fell behind takes a few large
// batches instead of ever more small ones — each a raw object a table, read
// and applied on its own — and catches up.
inline constexpr int kLingerMs = 20;
inline constexpr int kMostLingerMs = 1000;
int CaptureLingerMs(size_t waiting_batches);

class CaptureFeeds {
 public:
  using Opener =
      std::function<Result<std::unique_ptr<CdcStream>>(const CdcRequest&, CdcStreamOptions)>;
  // request_run(source): serve runs the source (soon; repeated asks while
  // one waits are one run). `open`: how a stream is opened (a fake stream
  // in unit tests; OpenChangeStream otherwise).
  explicit CaptureFeeds(std::function<void(const std::string& source)> request_run,
                        Opener open = OpenChangeStream);
  ~CaptureFeeds();
  CaptureFeeds(const CaptureFeeds&) = delete;
  CaptureFeeds& operator=(const CaptureFeeds&) = delete;

  // The captured sources to stream, each with the least time between the
  // runs its batches ask for (0: a run per batch, as soon as the last
  // ends). Feeds of sources not listed stop; new ones ask for a first run.
  void Keep(const std::map<std::string, int64_t>& publish_every_ms);
  // Stops every stream (their batches not applied stay in the slot).
  void Stop();

  // Whether the source is kept (a run may start its stream).
  bool Kept(const std::string& source);
  // The source's stream generation counter, bumped by every Start and
  // Halt: a run notes it before it reads the slot (FeedStart::seen_epoch).
  uint64_t Epoch(const std::string& source);
  // Whether the source's stream runs in `generation`: a run takes its
  // batches (Take) instead of reading the slot.
  bool Streaming(const std::string& source, const std::string& generation);
  // A run read the slot itself and every table stands at one generation:
  // the stream (re)starts from there. Ignored unless kept, and when a Halt
  // or Start came after the run noted the epoch.
  void Start(const std::string& source, FeedStart start);
  // The source's database has no stream (runs read it; no more asking).
  void Unsupported(const std::string& source, const std::string& why);
  // Stops the stream and drops its batches (a snapshot comes, a run found
  // them unusable or reads the slot itself); returns once no stream
  // started before it holds the slot.
  void Halt(const std::string& source, const std::string& why);
  // The batches holding `asset`'s changes past `after` (at most 100: the
  // rest wait for the next run, which is asked for). An error when a
  // batch holds changes on both sides of `after` (a run applied some of
  // them from the slot): the caller halts the stream and reads the slot.
  Result<FeedTake> Take(const std::string& source, const std::string& asset, uint64_t after);
  // Every table of the source holds the changes before `lsn` (positions of
  // `generation`): the server may forget them, and batches that end there
  // are dropped.
  void Confirm(const std::string& source, const std::string& generation, uint64_t lsn);
  // {source: {streaming, generation, batches, last_error, ...}} for /healthz.
  nlohmann::json Health();

 private:
  struct Feed;
  Feed* Find(const std::string& source);  // REQUIRES(mu_); null unless kept
  void Ask(const std::string& source);    // request_run_, its exceptions caught
  void Loop(Feed* feed);
  Status Stream(Feed* feed, const FeedStart& start, uint64_t epoch);
  Status StoreBatch(Feed* feed, const FeedStart& start, CdcRead batch, uint64_t epoch);

  std::function<void(const std::string&)> request_run_;
  Opener open_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                               // GUARDED_BY(mu_)
  std::map<std::string, std::unique_ptr<Feed>> feeds_;  // GUARDED_BY(mu_)
  std::vector<std::unique_ptr<Feed>> retired_;          // GUARDED_BY(mu_): joined at Stop
};

}  // namespace sluice
