// Counters and histograms for /metrics, rendered in Prometheus' text format
// (version 0.0.4). Label sets are kept as given (callers keep them bounded:
// route patterns, statuses, never user values). Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class MetricsRegistry {
 public:
  // Declares a metric (its HELP line); histograms take their upper bounds.
  void Counter(const std::string& name, const std::string& help);
  void Histogram(const std::string& name, const std::string& help, std::vector<double> bounds);
  // Adds to a counter / records one observation (an undeclared name is ignored).
  void Add(const std::string& name, const MetricLabels& labels, double value = 1);
  void Observe(const std::string& name, const MetricLabels& labels, double value);
  // Every metric, HELP and TYPE lines first, series in label order.
  std::string Text() const;

 private:
  struct Series {
    double sum = 0;
    uint64_t count = 0;
    std::vector<uint64_t> buckets;  // histograms: observations <= each bound
  };
  struct Metric {
    std::string help;
    bool histogram = false;
    std::vector<double> bounds;
    std::map<std::string, Series> series;  // by rendered labels: {a="x",b="y"}
  };
  mutable std::mutex mu_;
  std::map<std::string, Metric> metrics_;  // GUARDED_BY(mu_)
};

// A label value escaped for the text format (\\, \", \n).
std::string EscapeLabelValue(const std::string& value);

}  // namespace sluice
