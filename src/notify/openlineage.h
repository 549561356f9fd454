// OpenLineage (openlineage.io): each task of a run sent to a collector
// (Marquez, or any endpoint that takes the spec's RunEvent) as a START when
// it begins and a COMPLETE, FAIL or ABORT when it ends, with the assets it
// read as inputs and the one it published as output (its row count as the
// outputStatistics facet); each run is a parent job of its tasks, with
// events of its own. Run ids are UUIDs derived from (project, environment,
// run id and start, task), so a task's START and end share one and a run
// id used again (a new environment) gets new ones. Every error text is
// redacted; the api_key goes only into the Authorization header.
//
// Delivery never slows a run: events queue for one sender thread, which
// posts them in order and tries a failing collector again (3 attempts,
// doubling backoff) before it drops the event with a warning.
#pragma once

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "config/project.h"
#include "core/clock.h"
#include "graph/asset_graph.h"
#include "notify/notifier.h"

namespace sluice {

struct LineageContext {
  std::string job_namespace;      // jobs: the spec's namespace (default: the project)
  std::string dataset_namespace;  // datasets: "duckdb://" + the warehouse file
  std::string publish_namespace;  // exported files: "file://" + the publish folder
  std::string project, env;       // what run ids are derived from
};

// The RunEvent for one runner event (run_start, task_start, task_end,
// run_end; engine/engine.h's event stream), or null for the others.
// `run_key`: the run's id and start time, the seed of every run id it sends.
nlohmann::json OpenLineageEvent(const nlohmann::json& runner_event, const std::string& run_key,
                                const AssetGraph& graph, const LineageContext& context, Micros now);

// A UUID (version 4 layout) derived from `seed`.
std::string UuidFrom(const std::string& seed);

class OpenLineageSender {
 public:
  OpenLineageSender(OpenLineageSpec spec, std::vector<SecretProvider> secrets,
                    DeliveryOptions options);
  // Waits up to `flush_ms` for queued events, then stops.
  ~OpenLineageSender();
  OpenLineageSender(const OpenLineageSender&) = delete;
  OpenLineageSender& operator=(const OpenLineageSender&) = delete;
  // Queues an event (at most 10,000 wait; past that the oldest is dropped).
  void Send(nlohmann::json event);
  // Waits until every queued event was sent or dropped, up to timeout_ms.
  void Flush(int64_t timeout_ms);

 private:
  void Loop();
  OpenLineageSpec spec_;
  std::vector<SecretProvider> secrets_;
  DeliveryOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<nlohmann::json> queue_;  // GUARDED_BY(mu_)
  bool sending_ = false;              // GUARDED_BY(mu_): an event is being posted
  bool stop_ = false;                 // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace sluice
