#include "core/metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace sluice {
namespace {

std::string RenderLabels(const MetricLabels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    out += labels[i].first + "=\"" + EscapeLabelValue(labels[i].second) + "\"";
  }
  return out + "}";
}

// "{a="x"}" plus le="0.5" -> "{a="x",le="0.5"}".
std::string WithLe(const std::string& labels, const std::string& le) {
  std::string item = "le=\"" + le + "\"";
  if (labels.empty()) return "{" + item + "}";
  return labels.substr(0, labels.size() - 1) + "," + item + "}";
}

std::string Number(double v) { return fmt::format("{}", v); }

}  // namespace

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void MetricsRegistry::Counter(const std::string& name, const std::string& help) {
  std::lock_guard lock(mu_);
  Metric& m = metrics_[name];
  m.help = help;
}

void MetricsRegistry::Histogram(const std::string& name, const std::string& help,
                                std::vector<double> bounds) {
  std::sort(bounds.begin(), bounds.end());
  std::lock_guard lock(mu_);
  Metric& m = metrics_[name];
  m.help = help;
  m.histogram = true;
  m.bounds = std::move(bounds);
}

void MetricsRegistry::Add(const std::string& name, const MetricLabels& labels, double value) {
  std::lock_guard lock(mu_);
  auto it = metrics_.find(name);
  if (it == metrics_.end() || it->second.histogram) return;
  Series& s = it->second.series[RenderLabels(labels)];
  s.sum += value;
}

void MetricsRegistry::Observe(const std::string& name, const MetricLabels& labels, double value) {
  std::lock_guard lock(mu_);
  auto it = metrics_.find(name);
  if (it == metrics_.end() || !it->second.histogram) return;
  Metric& m = it->second;
  Series& s = m.series[RenderLabels(labels)];
  if (s.buckets.empty()) s.buckets.assign(m.bounds.size(), 0);
  for (size_t i = 0; i < m.bounds.size(); ++i) {
    if (value <= m.bounds[i]) ++s.buckets[i];
  }
  s.sum += value;
  ++s.count;
}

std::string MetricsRegistry::Text() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, m] : metrics_) {
    out += "# HELP " + name + " " + m.help + "\n";
    out += "# TYPE " + name + (m.histogram ? " histogram\n" : " counter\n");
    for (const auto& [labels, s] : m.series) {
      if (!m.histogram) {
        out += name + labels + " " + Number(s.sum) + "\n";
        continue;
      }
      for (size_t i = 0; i < m.bounds.size(); ++i) {
        out += name + "_bucket" + WithLe(labels, Number(m.bounds[i])) + " " +
               std::to_string(s.buckets[i]) + "\n";
      }
      out += name + "_bucket" + WithLe(labels, "+Inf") + " " + std::to_string(s.count) + "\n";
      out += name + "_sum" + labels + " " + Number(s.sum) + "\n";
      out += name + "_count" + labels + " " + std::to_string(s.count) + "\n";
    }
  }
  return out;
}

}  // namespace sluice
