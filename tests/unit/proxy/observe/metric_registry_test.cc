#include "proxy/observe/metric_registry.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "proxy/observe/metrics.h"

namespace mongoguard::proxy {
namespace {

struct Declared {
  std::string name;
  std::string type;
  std::string help;
};

std::vector<Declared> declared() {
  std::vector<Declared> out;
#define MG_TEST_COUNTER(member, name, help) out.push_back({name, "counter", help});
#define MG_TEST_GAUGE(member, name, help) out.push_back({name, "gauge", help});
#define MG_TEST_FAMILY(id, type, name, help, ...)                        \
  out.push_back({name,                                                   \
                 MetricType::type == MetricType::kCounter ? "counter"    \
                 : MetricType::type == MetricType::kGauge ? "gauge"      \
                                                          : "histogram", \
                 help});
  MONGOGUARD_METRICS(MG_TEST_COUNTER, MG_TEST_GAUGE, MG_TEST_FAMILY)
#undef MG_TEST_COUNTER
#undef MG_TEST_GAUGE
#undef MG_TEST_FAMILY
  return out;
}

TEST(MetricRegistry, NamesAreUniqueAndPrefixed) {
  std::set<std::string> names;
  for (const auto& d : declared()) {
    EXPECT_EQ(d.name.rfind("mongoguard_", 0), 0u) << d.name;
    EXPECT_TRUE(names.insert(d.name).second) << d.name << " declared twice";
    EXPECT_FALSE(d.help.empty()) << d.name;
  }
}

TEST(MetricRegistry, EveryDeclaredFamilyIsRenderedInOrderWithItsHelpAndType) {
  const Metrics metrics;
  const std::string text = metrics.render_prometheus();
  std::size_t at = 0;
  for (const auto& d : declared()) {
    const std::string header =
        "# HELP " + d.name + " " + d.help + "\n# TYPE " + d.name + " " + d.type + "\n";
    const auto found = text.find(header, at);
    ASSERT_NE(found, std::string::npos) << d.name << " missing or out of order";
    at = found + header.size();
  }
}

TEST(MetricRegistry, CounterMembersAreWhatTheSamplesShow) {
  Metrics metrics;
  metrics.relay.add(RelayCounters::kClientMessages, 3);
  metrics.connections_open.fetch_sub(1, std::memory_order_relaxed);
  metrics.tls_handshake_failures_upstream.fetch_add(2, std::memory_order_relaxed);
  const std::string text = metrics.render_prometheus();
  EXPECT_NE(text.find("\nmongoguard_client_messages_total 3\n"), std::string::npos);
  EXPECT_NE(text.find("\nmongoguard_connections_open -1\n"), std::string::npos);
  EXPECT_NE(text.find("\nmongoguard_tls_handshake_failures_total{side=\"client\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("\nmongoguard_tls_handshake_failures_total{side=\"upstream\"} 2\n"),
            std::string::npos);
}

TEST(MetricRegistry, LabelledFamiliesNameTheirDeclaredLabels) {
  Metrics metrics;
  metrics.count_verdict("no \"unfiltered\" deletes", "would block");
  metrics.count_hold_outcome(policy::HoldOutcome::kApproved);
  metrics.count_opcode(2013);
  metrics.count_rejected(static_cast<wire::DecodeError>(1));
  const std::string text = metrics.render_prometheus();
  EXPECT_NE(
      text.find(
          "\nmongoguard_verdicts_total{rule=\"no \\\"unfiltered\\\" deletes\",verdict=\"would "
          "block\"} 1\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("\nmongoguard_holds_resolved_total{outcome=\"approved\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("\nmongoguard_messages_total{opcode=\"OP_MSG\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("\nmongoguard_rejected_frames_total{reason=\""), std::string::npos);
}

TEST(MetricRegistry, ScrapeTimeFamiliesAreDeclaredWithTheirLabels) {
  for (const MetricFamily* f :
       {&metric::kBreakerUsed, &metric::kBreakerLimit, &metric::kBreakerTripped}) {
    EXPECT_EQ(f->labels[0], "breaker");
    EXPECT_EQ(f->labels[1], "rule");
    EXPECT_EQ(f->labels[2], "per");
  }
  EXPECT_EQ(metric::kFleetLocalAdmits.type, MetricType::kCounter);
  EXPECT_EQ(metric::kHoldsPending.type, MetricType::kGauge);
}

}  // namespace
}  // namespace mongoguard::proxy
