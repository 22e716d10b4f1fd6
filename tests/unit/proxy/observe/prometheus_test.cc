#include "proxy/observe/prometheus.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mongoguard::proxy {
namespace {

constexpr MetricFamily kRequests{
    "x_requests_total", MetricType::kCounter, "Requests, by path.", {"path", "method"}};

TEST(PrometheusWriter, HeaderNamesHelpAndType) {
  std::string out;
  PrometheusWriter(out).header(kRequests);
  EXPECT_EQ(out, "# HELP x_requests_total Requests, by path.\n# TYPE x_requests_total counter\n");
}

TEST(PrometheusWriter, SamplesCarryTheDeclaredLabelsInOrder) {
  std::string out;
  PrometheusWriter writer(out);
  writer.sample(kRequests, {"/a", "GET"}, 3);
  writer.sample(kRequests, {"/b", "POST"}, std::uint64_t{18446744073709551615u});
  EXPECT_EQ(out,
            "x_requests_total{path=\"/a\",method=\"GET\"} 3\n"
            "x_requests_total{path=\"/b\",method=\"POST\"} 18446744073709551615\n");
}

TEST(PrometheusWriter, LabelValuesAreEscaped) {
  EXPECT_EQ(escape_label_value(R"(a"b\c)"), R"(a\"b\\c)");
  EXPECT_EQ(escape_label_value("line\nnext"), R"(line\nnext)");
  EXPECT_EQ(escape_label_value("app.families"), "app.families");
  std::string out;
  PrometheusWriter(out).sample(kRequests, {"say \"hi\"\n", R"(\)"}, 1);
  EXPECT_EQ(out, R"(x_requests_total{path="say \"hi\"\n",method="\\"} 1)"
                 "\n");
}

TEST(PrometheusWriter, SingleIsAFamilyOfOneUnlabelledSample) {
  constexpr MetricFamily open{"x_open", MetricType::kGauge, "Open now."};
  std::string out;
  PrometheusWriter writer(out);
  writer.single(open, -2);
  writer.single(MetricFamily{"x_age_seconds", MetricType::kGauge, "Age."}, "1.500");
  EXPECT_EQ(out,
            "# HELP x_open Open now.\n# TYPE x_open gauge\nx_open -2\n"
            "# HELP x_age_seconds Age.\n# TYPE x_age_seconds gauge\nx_age_seconds 1.500\n");
}

TEST(PrometheusWriter, HistogramBucketsAccumulateUpToInf) {
  constexpr MetricFamily wait{"x_wait_seconds", MetricType::kHistogram, "Waits."};
  const std::vector<double> bounds{0.5, 1, 2.5};
  const std::vector<std::uint64_t> counts{1, 0, 2, 4};
  std::string out;
  PrometheusWriter(out).histogram_samples(wait, bounds, counts, 12.25);
  EXPECT_EQ(out,
            "x_wait_seconds_bucket{le=\"0.5\"} 1\n"
            "x_wait_seconds_bucket{le=\"1\"} 1\n"
            "x_wait_seconds_bucket{le=\"2.5\"} 3\n"
            "x_wait_seconds_bucket{le=\"+Inf\"} 7\n"
            "x_wait_seconds_sum 12.25\n"
            "x_wait_seconds_count 7\n");
}

}  // namespace
}  // namespace mongoguard::proxy
