#include "proxy/observe/metrics.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace mongoguard::proxy {
namespace {

using namespace std::chrono_literals;

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(Metrics, NamespacesARuleMatchedAreNamedUpToTheCap) {
  Metrics m;
  m.count_namespace_documents("app.families", policy::Operation::kDelete, 3);
  m.count_namespace_documents("app.families", policy::Operation::kDelete, 2);
  m.count_namespace_documents("app.families", policy::Operation::kUpdate, 1);
  m.count_namespace_documents("", policy::Operation::kDelete, 7);  // no rule matched
  m.count_namespace_documents("app.zero", policy::Operation::kDelete, 0);
  const auto text = m.render_prometheus();
  EXPECT_TRUE(has_line(
      text,
      R"(mongoguard_namespace_documents_affected_total{namespace="app.families",operation="delete"} 5)"));
  EXPECT_TRUE(has_line(
      text,
      R"(mongoguard_namespace_documents_affected_total{namespace="app.families",operation="update"} 1)"));
  EXPECT_TRUE(has_line(
      text,
      R"(mongoguard_namespace_documents_affected_total{namespace="other",operation="delete"} 7)"));
  EXPECT_EQ(text.find("app.zero"), std::string::npos);
}

TEST(Metrics, NamespacesPastTheCapCountAsOther) {
  Metrics m;
  for (std::size_t i = 0; i < Metrics::kNamedNamespaces + 20; ++i) {
    m.count_namespace_documents("db.c" + std::to_string(i), policy::Operation::kDelete, 1);
  }
  // A namespace named before the cap keeps its own series.
  m.count_namespace_documents("db.c0", policy::Operation::kDelete, 1);
  const auto text = m.render_prometheus();
  EXPECT_TRUE(has_line(
      text,
      R"(mongoguard_namespace_documents_affected_total{namespace="db.c0",operation="delete"} 2)"));
  EXPECT_TRUE(has_line(
      text,
      R"(mongoguard_namespace_documents_affected_total{namespace="db.c99",operation="delete"} 1)"));
  EXPECT_EQ(text.find("namespace=\"db.c100\""), std::string::npos);
  EXPECT_TRUE(has_line(
      text,
      R"(mongoguard_namespace_documents_affected_total{namespace="other",operation="delete"} 20)"));
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  DurationHistogram h({0.01, 1});
  h.observe(5ms);
  h.observe(500ms);
  h.observe(3s);
  std::string out;
  h.render(out, "x_seconds", "help");
  EXPECT_TRUE(has_line(out, "# TYPE x_seconds histogram"));
  EXPECT_TRUE(has_line(out, R"(x_seconds_bucket{le="0.01"} 1)"));
  EXPECT_TRUE(has_line(out, R"(x_seconds_bucket{le="1"} 2)"));
  EXPECT_TRUE(has_line(out, R"(x_seconds_bucket{le="+Inf"} 3)"));
  EXPECT_TRUE(has_line(out, "x_seconds_sum 3.505"));
  EXPECT_NE(out.find("\nx_seconds_count 3\n"), std::string::npos);
}

TEST(Metrics, BreakerGaugesNameEachWindowUpToTheBound) {
  std::vector<policy::BreakerState> breakers;
  policy::BreakerState minute;
  minute.name = "deletes:app.family@1m";
  minute.rule = "deletes";
  minute.used = 4;
  minute.limit = 50;
  minute.per = 1min;
  policy::BreakerState hour = minute;
  hour.name = "deletes:app.family@1h";
  hour.used = 300;
  hour.limit = 300;
  hour.per = 1h;
  hour.tripped = true;
  breakers = {hour, minute};
  std::string out;
  render_breaker_gauges(out, breakers);
  EXPECT_TRUE(has_line(out, "mongoguard_breakers 2"));
  for (
      const char* line :
      {R"(mongoguard_breaker_used{breaker="deletes:app.family@1h",rule="deletes",per="1h"} 300)",
       R"(mongoguard_breaker_limit{breaker="deletes:app.family@1m",rule="deletes",per="1m"} 50)",
       R"(mongoguard_breaker_tripped{breaker="deletes:app.family@1h",rule="deletes",per="1h"} 1)",
       R"(mongoguard_breaker_tripped{breaker="deletes:app.family@1m",rule="deletes",per="1m"} 0)"}) {
    EXPECT_TRUE(has_line(out, line)) << line;
  }
  EXPECT_TRUE(has_line(out, "# TYPE mongoguard_breaker_used gauge"));

  // Names a client chooses (group_by app) cannot grow /metrics without end.
  breakers.clear();
  for (int i = 0; i < 250; ++i) {
    minute.name = "deletes:app.family:app=\"x" + std::to_string(1000 + i);
    breakers.push_back(minute);
  }
  out.clear();
  render_breaker_gauges(out, breakers);
  EXPECT_TRUE(has_line(out, "mongoguard_breakers 250"));
  std::size_t used_lines = 0;
  for (auto at = out.find("\nmongoguard_breaker_used{"); at != std::string::npos;
       at = out.find("\nmongoguard_breaker_used{", at + 1)) {
    ++used_lines;
  }
  EXPECT_EQ(used_lines, kMetricBreakers);
  EXPECT_NE(out.find(R"(breaker="deletes:app.family:app=\"x1000")"), std::string::npos)
      << "quotes in a label are escaped";
  EXPECT_EQ(out.find("x1200"), std::string::npos) << "past the bound";
}

}  // namespace
}  // namespace mongoguard::proxy
