#include "notify/openlineage.h"

#include <utility>

#include "core/hash.h"
#include "core/log.h"
#include "core/redact.h"
#include "core/secrets.h"
#include "core/strings.h"
#include "ingest/http_client.h"

namespace sluice {
namespace {

using nlohmann::json;

constexpr const char* kProducer = "https://github.com/sluice-data/sluice/tree/v" SLUICE_VERSION;
constexpr const char* kSchema =
    "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
constexpr size_t kMaxQueued = 10000;

// A facet: what the spec asks of every one, and its own fields.
json Facet(const char* schema, json fields) {
  fields["_producer"] = kProducer;
  fields["_schemaURL"] = schema;
  return fields;
}

json JobType(const char* type) {
  return Facet(
      "https://openlineage.io/spec/facets/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
      {{"processingType", "BATCH"}, {"integration", "SLUICE"}, {"jobType", type}});
}

std::string RunUuid(const LineageContext& c, const std::string& run_key, const std::string& job) {
  return UuidFrom(c.project + "\n" + c.env + "\n" + run_key + "\n" + job);
}

json Dataset(const std::string& ns, const std::string& name) {
  return {{"namespace", ns}, {"name", name}};
}

}  // namespace

std::string UuidFrom(const std::string& seed) {
  std::string h = Sha256Hex(seed).substr(0, 32);
  h[12] = '4';
  h[16] = "89ab"[std::stoi(h.substr(16, 1), nullptr, 16) & 3];
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

json OpenLineageEvent(const json& e, const std::string& run_id, const AssetGraph& graph,
                      const LineageContext& c, Micros now) {
  std::string type = e.value("type", "");
  if (type != "run_start" && type != "run_end" && type != "task_start" && type != "task_end") {
    return nullptr;
  }
  json event = {{"eventTime", FormatTimestamp(now)},
                {"producer", kProducer},
                {"schemaURL", kSchema},
                {"inputs", json::array()},
                {"outputs", json::array()}};
  const std::string run_job = "run";
  if (type == "run_start" || type == "run_end") {
    event["eventType"] = type == "run_start"            ? "START"
                         : e.value("exit_code", 0) == 0 ? "COMPLETE"
                                                        : "FAIL";
    event["run"] = {{"runId", RunUuid(c, run_id, run_job)}};
    event["job"] = {{"namespace", c.job_namespace},
                    {"name", run_job},
                    {"facets", {{"jobType", JobType("DAG")}}}};
    return event;
  }
  std::string asset = e.value("asset", "");
  std::string status = e.value("status", "");
  if (type == "task_start") {
    event["eventType"] = "START";
  } else if (status == "success" || status == "skipped") {
    event["eventType"] = "COMPLETE";
  } else if (status == "cancelled" || status == "interrupted") {
    event["eventType"] = "ABORT";
  } else {
    event["eventType"] = "FAIL";
  }
  json run = {{"runId", RunUuid(c, run_id, asset)}};
  json facets = {
      {"parent",
       Facet("https://openlineage.io/spec/facets/1-1-0/ParentRunFacet.json#/$defs/ParentRunFacet",
             {{"run", {{"runId", RunUuid(c, run_id, run_job)}}},
              {"job", {{"namespace", c.job_namespace}, {"name", run_job}}}})}};
  std::string error = e.value("error", "");
  if (event["eventType"] == "FAIL" && !error.empty()) {
    facets["errorMessage"] = Facet(
        "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/"
        "ErrorMessageRunFacet",
        {{"message", Redact(error)}, {"programmingLanguage", "SQL"}});
  }
  run["facets"] = facets;
  event["run"] = run;
  event["job"] = {
      {"namespace", c.job_namespace}, {"name", asset}, {"facets", {{"jobType", JobType("TASK")}}}};
  json output;
  if (StartsWith(asset, "export:")) {
    std::string name = asset.substr(7);
    for (const ExportNode& x : graph.exports) {
      if (x.name != name) continue;
      for (const std::string& up : x.upstream) {
        event["inputs"].push_back(Dataset(c.dataset_namespace, up));
      }
    }
    output = Dataset(c.publish_namespace, name);
  } else if (const AssetNode* node = graph.Find(asset)) {
    for (const std::string& up : node->upstream) {
      event["inputs"].push_back(Dataset(c.dataset_namespace, up));
    }
    output = Dataset(c.dataset_namespace, node->name);
  } else {
    output = Dataset(c.dataset_namespace, asset);
  }
  int64_t rows = e.value("rows", int64_t{-1});
  if (type == "task_end" && status == "success" && rows >= 0) {
    output["outputFacets"] = {
        {"outputStatistics",
         Facet("https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/"
               "$defs/OutputStatisticsOutputDatasetFacet",
               {{"rowCount", rows}})}};
  }
  event["outputs"].push_back(std::move(output));
  return event;
}

OpenLineageSender::OpenLineageSender(OpenLineageSpec spec, std::vector<SecretProvider> secrets,
                                     DeliveryOptions options)
    : spec_(std::move(spec)), secrets_(std::move(secrets)), options_(std::move(options)) {
  thread_ = std::thread([this] { Loop(); });
}

OpenLineageSender::~OpenLineageSender() {
  Flush(5000);
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void OpenLineageSender::Send(json event) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= kMaxQueued) {
      LOG_WARN("openlineage", "{} events wait for the collector; the oldest is dropped",
               queue_.size());
      queue_.pop_front();
    }
    queue_.push_back(std::move(event));
  }
  cv_.notify_all();
}

void OpenLineageSender::Flush(int64_t timeout_ms) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
               [this] { return queue_.empty() && !sending_; });
}

void OpenLineageSender::Loop() {
  std::unique_ptr<HttpClient> client;
  SecretResolver resolver(secrets_);
  const std::string where = "openlineage at " + spec_.loc.ToString();
  while (true) {
    json event;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) {
        // Past the flush's patience: what still waits is dropped.
        if (!queue_.empty()) {
          LOG_WARN("openlineage", "{}: {} event(s) not sent before the owner stopped", where,
                   queue_.size());
        }
        return;
      }
      event = std::move(queue_.front());
      queue_.pop_front();
      sending_ = true;
    }
    try {  // a thread boundary
      if (!client) client = NewCurlHttpClient();
      Result<std::string> url = resolver.Substitute(spec_.url);
      std::vector<std::pair<std::string, std::string>> headers;
      Status st = url.status();
      if (st.ok() && !spec_.api_key.empty()) {
        Result<std::string> key = resolver.Substitute(spec_.api_key);
        st = key.status();
        if (st.ok()) headers.emplace_back("Authorization", "Bearer " + *key);
      }
      // Text that is not UTF-8 (a program's error) is replaced, never thrown on.
      if (st.ok()) {
        st = PostJson(*client, *url,
                      event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), headers,
                      options_);
      }
      if (!st.ok()) {
        LOG_WARN("openlineage", "{}: a {} event of {} was not delivered: {}", where,
                 event.value("eventType", ""), event["job"].value("name", ""),
                 Redact(st.message()));
      }
    } catch (const std::exception& ex) {
      LOG_ERROR("openlineage", "{}: sending an event: {}", where, ex.what());
    }
    {
      std::lock_guard lock(mu_);
      sending_ = false;
    }
    cv_.notify_all();
  }
}

}  // namespace sluice
