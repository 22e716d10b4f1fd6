#include "proxy/observe/metrics.h"

#include <algorithm>

namespace mongoguard::proxy {

void Metrics::count_rejected(wire::DecodeError reason) {
  auto slot = static_cast<std::size_t>(reason);
  if (slot < rejected_.size()) rejected_[slot].fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t Metrics::rejected(wire::DecodeError reason) const {
  auto slot = static_cast<std::size_t>(reason);
  return slot < rejected_.size() ? rejected_[slot].load(std::memory_order_relaxed) : 0;
}

namespace {

// OP_REPLY, OP_UPDATE, OP_INSERT, OP_QUERY, OP_GET_MORE, OP_DELETE,
// OP_KILL_CURSORS, OP_COMPRESSED, OP_MSG: the relay's opcode slots.
constexpr std::int32_t kOpcodes[] = {1, 2001, 2002, 2004, 2005, 2006, 2007, 2012, 2013};
static_assert(std::size(kOpcodes) == RelayCounters::kOpcodeSlots);

template <class Atomic>
auto load(const Atomic& a) {
  return a.load(std::memory_order_relaxed);
}

// One sample per slot, labelled `label_of(slot)`; a slot whose label is
// null is not shown.
template <std::size_t N, class LabelOf>
void render_slots(PrometheusWriter& writer, const MetricFamily& family,
                  const std::array<std::atomic<std::uint64_t>, N>& slots, LabelOf label_of) {
  for (std::size_t i = 0; i < N; ++i) {
    if (const char* label = label_of(i)) writer.sample(family, {label}, load(slots[i]));
  }
}

}  // namespace

DurationHistogram::DurationHistogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {}

void DurationHistogram::observe(std::chrono::nanoseconds d) {
  const double seconds = std::chrono::duration<double>(d).count();
  std::size_t slot = 0;
  while (slot < bounds_.size() && seconds > bounds_[slot]) ++slot;
  counts_[slot].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<std::uint64_t>(std::max<std::int64_t>(d.count(), 0)),
                    std::memory_order_relaxed);
}

void DurationHistogram::render(PrometheusWriter& writer, const MetricFamily& family) const {
  std::vector<std::uint64_t> counts(bounds_.size() + 1);
  for (std::size_t i = 0; i < counts.size(); ++i) counts[i] = load(counts_[i]);
  writer.histogram_samples(family, bounds_, counts, static_cast<double>(load(sum_ns_)) / 1e9);
}

void DurationHistogram::render(std::string& out, std::string_view name,
                               std::string_view help) const {
  const MetricFamily family{name, MetricType::kHistogram, help};
  PrometheusWriter writer(out);
  writer.header(family);
  render(writer, family);
}

void Metrics::count_namespace_documents(const std::string& ns, policy::Operation op,
                                        std::int64_t n) {
  if (n <= 0) return;
  std::lock_guard lock(namespaces_mutex_);
  std::string label = ns.empty() ? "other" : ns;
  if (!named_namespaces_.contains(label)) {
    if (label == "other" || named_namespaces_.size() >= kNamedNamespaces) {
      label = "other";
    } else {
      named_namespaces_.insert(label);
    }
  }
  namespace_documents_[{label, op}] += static_cast<std::uint64_t>(n);
}

bool Metrics::count_unknown_command(std::string_view name) {
  std::string label;
  for (char c : name.substr(0, 64)) label += (c >= 0x20 && c < 0x7f) ? c : '?';
  std::lock_guard lock(unknown_mutex_);
  auto it = unknown_commands_.find(label);
  if (it != unknown_commands_.end()) {
    ++it->second;
    return false;
  }
  // Room for kNamedUnknownCommands names besides "other".
  if (unknown_commands_.size() - unknown_commands_.count("other") >= kNamedUnknownCommands) {
    auto [other, first] = unknown_commands_.try_emplace("other", 0);
    ++other->second;
    return first;
  }
  unknown_commands_.emplace(std::move(label), 1);
  return true;
}

void Metrics::count_verdict(std::string_view rule, std::string_view verdict) {
  const std::pair<std::string_view, std::string_view> key(rule, verdict);
  std::lock_guard lock(verdicts_mutex_);
  auto it = verdicts_.find(key);
  if (it == verdicts_.end()) {
    it = verdicts_.emplace(std::pair<std::string, std::string>(rule, verdict), 0).first;
  }
  ++it->second;
}

void Metrics::count_hold_outcome(policy::HoldOutcome outcome) {
  auto slot = static_cast<std::size_t>(outcome);
  if (slot < hold_outcomes_.size()) hold_outcomes_[slot].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::count_documents(policy::Operation op, std::int64_t n) {
  auto slot = static_cast<std::size_t>(op);
  if (slot < documents_.size() && n > 0) {
    documents_[slot].fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
  }
}

void Metrics::count_opcode(std::int32_t opcode) {
  // Nearly every message is an OP_MSG, the last of the list.
  constexpr std::size_t kOpMsgSlot = std::size(kOpcodes) - 1;
  static_assert(kOpcodes[kOpMsgSlot] == 2013);
  if (opcode == kOpcodes[kOpMsgSlot]) {
    relay.add(RelayCounters::kOpcodeFirst + kOpMsgSlot, 1);
    return;
  }
  for (std::size_t i = 0; i < std::size(kOpcodes); ++i) {
    if (kOpcodes[i] == opcode) {
      relay.add(RelayCounters::kOpcodeFirst + i, 1);
      return;
    }
  }
}

std::string Metrics::render_prometheus() const {
  std::string out;
  PrometheusWriter writer(out);
#define MG_RENDER_COUNTER(member, name, help) \
  writer.single(MetricFamily{name, MetricType::kCounter, help}, load(member));
#define MG_RENDER_GAUGE(member, name, help) \
  writer.single(MetricFamily{name, MetricType::kGauge, help}, load(member));
#define MG_RENDER_FAMILY(id, type, name, help, ...) \
  render_family(writer, Family::id, MetricFamily{name, MetricType::type, help, {__VA_ARGS__}});
  MONGOGUARD_METRICS(MG_RENDER_COUNTER, MG_RENDER_GAUGE, MG_RENDER_FAMILY)
#undef MG_RENDER_COUNTER
#undef MG_RENDER_GAUGE
#undef MG_RENDER_FAMILY
  return out;
}

void Metrics::render_family(PrometheusWriter& writer, Family id, const MetricFamily& family) const {
  writer.header(family);
  switch (id) {
    case Family::tls_handshake_failures:
      writer.sample(family, {"client"}, load(tls_handshake_failures_client));
      writer.sample(family, {"upstream"}, load(tls_handshake_failures_upstream));
      return;
    case Family::rejected_frames:
      return render_slots(writer, family, rejected_, [](std::size_t i) -> const char* {
        // Slot 0 is kNone; "unknown" names a value no decode error has.
        const char* name = i == 0 ? nullptr : wire::error_name(static_cast<wire::DecodeError>(i));
        return name && std::string_view(name) != "unknown" ? name : nullptr;
      });
    case Family::client_messages:
      return writer.sample(family, {}, relay.sum(RelayCounters::kClientMessages));
    case Family::client_bytes:
      return writer.sample(family, {}, relay.sum(RelayCounters::kClientBytes));
    case Family::upstream_messages:
      return writer.sample(family, {}, relay.sum(RelayCounters::kUpstreamMessages));
    case Family::upstream_bytes:
      return writer.sample(family, {}, relay.sum(RelayCounters::kUpstreamBytes));
    case Family::compressed_messages:
      return writer.sample(family, {}, relay.sum(RelayCounters::kCompressedMessages));
    case Family::messages:
      for (std::size_t i = 0; i < std::size(kOpcodes); ++i) {
        writer.sample(family, {wire::opcode_name(kOpcodes[i])},
                      relay.sum(RelayCounters::kOpcodeFirst + i));
      }
      return;
    case Family::holds_resolved:
      return render_slots(writer, family, hold_outcomes_, [](std::size_t i) {
        return policy::hold_outcome_name(static_cast<policy::HoldOutcome>(i));
      });
    case Family::documents_affected:
      return render_slots(writer, family, documents_, [](std::size_t i) {
        return policy::operation_name(static_cast<policy::Operation>(i));
      });
    case Family::verdicts:
      return render_verdicts(writer, family);
    case Family::namespace_documents:
      return render_namespace_documents(writer, family);
    case Family::unknown_commands:
      return render_unknown_commands(writer, family);
    case Family::hold_wait:
      return hold_wait.render(writer, family);
    case Family::inspected_reply:
      return inspected_reply.render(writer, family);
  }
}

void Metrics::render_verdicts(PrometheusWriter& writer, const MetricFamily& family) const {
  std::lock_guard lock(verdicts_mutex_);
  for (const auto& [key, count] : verdicts_) writer.sample(family, {key.first, key.second}, count);
}

void Metrics::render_namespace_documents(PrometheusWriter& writer,
                                         const MetricFamily& family) const {
  std::lock_guard lock(namespaces_mutex_);
  for (const auto& [key, count] : namespace_documents_) {
    writer.sample(family, {key.first, policy::operation_name(key.second)}, count);
  }
}

void Metrics::render_unknown_commands(PrometheusWriter& writer, const MetricFamily& family) const {
  std::lock_guard lock(unknown_mutex_);
  for (const auto& [name, count] : unknown_commands_) writer.sample(family, {name}, count);
}

static_assert(kMetricBreakers == 200, "metric::kBreakerUsed and its peers name the bound");

void render_breaker_gauges(std::string& out, const std::vector<policy::BreakerState>& breakers) {
  PrometheusWriter writer(out);
  writer.single(metric::kBreakers, breakers.size());
  const std::size_t shown = std::min(breakers.size(), kMetricBreakers);
  struct Gauge {
    const MetricFamily& family;
    std::int64_t (*value)(const policy::BreakerState&);
  };
  const Gauge gauges[] = {
      {metric::kBreakerUsed, [](const policy::BreakerState& b) { return b.used; }},
      {metric::kBreakerLimit, [](const policy::BreakerState& b) { return b.limit; }},
      {metric::kBreakerTripped,
       [](const policy::BreakerState& b) { return static_cast<std::int64_t>(b.tripped); }},
  };
  for (const auto& g : gauges) {
    writer.header(g.family);
    for (std::size_t i = 0; i < shown; ++i) {
      const auto& b = breakers[i];
      writer.sample(g.family, {b.name, b.rule, policy::format_duration(b.per)}, g.value(b));
    }
  }
}

}  // namespace mongoguard::proxy
