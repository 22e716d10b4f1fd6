// The Prometheus text format (version 0.0.4), written in one place: every
// family's `# HELP` and `# TYPE` lines, its samples, label values escaped.
// What the families are is declared in metric_registry.h; who holds the
// values (Metrics, the admin state, the fleet) passes them in.
#pragma once

#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <span>
#include <string>
#include <string_view>

namespace mongoguard::proxy {

enum class MetricType { kCounter, kGauge, kHistogram };

// One metric family as a scrape shows it. `labels` names the labels its
// samples carry, in the order a sample gives their values; unused slots
// stay empty. A histogram's `le` is the writer's, not listed here.
struct MetricFamily {
  std::string_view name;
  MetricType type;
  std::string_view help;
  std::array<std::string_view, 3> labels{};
};

// `value` with backslash, double quote and newline escaped, as a label value
// must be.
std::string escape_label_value(std::string_view value);

// Appends to a string (a scrape's body) that may already hold other families.
class PrometheusWriter {
 public:
  explicit PrometheusWriter(std::string& out) : out_(out) {}

  // `# HELP` and `# TYPE`, once per family, before its samples.
  void header(const MetricFamily& family);

  // One sample: `label_values` in the order of `family.labels`. Values are
  // written as {fmt} writes them by default (integers, shortest doubles);
  // pass a string for another format.
  template <class Value>
  void sample(const MetricFamily& family, std::initializer_list<std::string_view> label_values,
              const Value& value) {
    series(family.name, {}, family.labels, label_values);
    fmt::format_to(std::back_inserter(out_), " {}\n", value);
  }

  // A family of one unlabelled sample: header and value.
  template <class Value>
  void single(const MetricFamily& family, const Value& value) {
    header(family);
    sample(family, {}, value);
  }

  // A histogram's samples: `counts` has one count per bound and then the
  // count above the last bound (not cumulative); `sum` in the family's unit.
  void histogram_samples(const MetricFamily& family, std::span<const double> bounds,
                         std::span<const std::uint64_t> counts, double sum);

 private:
  // `name` + `suffix`, then `{label="value",...}` when there are values.
  void series(std::string_view name, std::string_view suffix,
              const std::array<std::string_view, 3>& labels,
              std::initializer_list<std::string_view> values);

  std::string& out_;
};

}  // namespace mongoguard::proxy
