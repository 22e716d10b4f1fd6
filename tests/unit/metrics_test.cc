#include "proxy/metrics.h"

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

}  // namespace
}  // namespace mongoguard::proxy
