#include "proxy/observe/prometheus.h"

#include <cassert>

namespace mongoguard::proxy {

namespace {

const char* type_name(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

void append_escaped(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  append_escaped(out, value);
  return out;
}

void PrometheusWriter::header(const MetricFamily& family) {
  fmt::format_to(std::back_inserter(out_), "# HELP {0} {1}\n# TYPE {0} {2}\n", family.name,
                 family.help, type_name(family.type));
}

void PrometheusWriter::series(std::string_view name, std::string_view suffix,
                              const std::array<std::string_view, 3>& labels,
                              std::initializer_list<std::string_view> values) {
  out_ += name;
  out_ += suffix;
  if (values.size() == 0) return;
  char separator = '{';
  std::size_t i = 0;
  for (std::string_view value : values) {
    // More values than the family declares labels is a mistake in the caller.
    assert(i < labels.size() && !labels[i].empty());
    if (i == labels.size()) break;
    out_ += separator;
    out_ += labels[i];
    out_ += "=\"";
    append_escaped(out_, value);
    out_ += '"';
    separator = ',';
    ++i;
  }
  out_ += '}';
}

void PrometheusWriter::histogram_samples(const MetricFamily& family, std::span<const double> bounds,
                                         std::span<const std::uint64_t> counts, double sum) {
  const std::array<std::string_view, 3> le{"le"};
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    const std::string bound = i < bounds.size() ? fmt::format("{}", bounds[i]) : "+Inf";
    series(family.name, "_bucket", le, {bound});
    fmt::format_to(std::back_inserter(out_), " {}\n", cumulative);
  }
  fmt::format_to(std::back_inserter(out_), "{0}_sum {1}\n{0}_count {2}\n", family.name, sum,
                 cumulative);
}

}  // namespace mongoguard::proxy
