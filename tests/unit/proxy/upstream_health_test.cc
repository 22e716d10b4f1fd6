// UpstreamHealth: consecutive failures, the readiness reason, the gauge, and
// what the prober is asked to retry.
#include "proxy/upstream_health.h"

#include <gtest/gtest.h>

namespace mongoguard::proxy {
namespace {

const HostPort kServer{"127.0.0.1", 27018};

TEST(UpstreamHealth, UnreadyAfterTheConfiguredFailuresInARowAndReadyAfterOneSuccess) {
  Metrics metrics;
  UpstreamHealth health({kServer}, metrics);
  EXPECT_EQ(metrics.upstream_reachable.load(), 1);
  health.connect_failed(kServer, "Connection refused");
  health.connect_failed(kServer, "Connection refused");
  EXPECT_EQ(metrics.upstream_reachable.load(), 0);
  EXPECT_FALSE(health.unready_reason());
  health.connect_failed(kServer, "Connection refused");
  EXPECT_EQ(health.unready_reason().value_or(""),
            "upstream 127.0.0.1:27018 unreachable (3 consecutive failed connects): Connection "
            "refused");
  health.connected(kServer);
  EXPECT_FALSE(health.unready_reason());
  EXPECT_EQ(metrics.upstream_reachable.load(), 1);
  EXPECT_TRUE(health.probe_targets().empty());
}

TEST(UpstreamHealth, ZeroNeverMakesItUnready) {
  Metrics metrics;
  UpstreamHealth health({kServer}, metrics);
  health.set_unready_after(0);
  for (int i = 0; i < 10; ++i) health.connect_failed(kServer, "timed out");
  EXPECT_FALSE(health.unready_reason());
  EXPECT_EQ(metrics.upstream_reachable.load(), 0);
}

TEST(UpstreamHealth, ProbesCountAndAProbeThatConnectsRecovers) {
  Metrics metrics;
  UpstreamHealth health({kServer}, metrics);
  health.connect_failed(kServer, "Connection refused");
  ASSERT_EQ(health.probe_targets().size(), 1u);
  health.probed(kServer, std::string("Connection refused"));
  health.probed(kServer, std::string("Connection refused"));
  EXPECT_TRUE(health.unready_reason());
  health.probed(kServer, std::nullopt);
  EXPECT_FALSE(health.unready_reason());
  EXPECT_EQ(metrics.upstream_reachable.load(), 1);
}

TEST(UpstreamHealth, ATcpProbeDoesNotClearAFailedTlsHandshake) {
  Metrics metrics;
  UpstreamHealth health({kServer}, metrics);
  health.set_unready_after(1);
  health.connect_failed(kServer, "TLS handshake failed: certificate verify failed", true);
  EXPECT_TRUE(health.probe_targets().empty());
  health.probed(kServer, std::nullopt);
  EXPECT_TRUE(health.unready_reason());
  health.connected(kServer);
  EXPECT_FALSE(health.unready_reason());
}

}  // namespace
}  // namespace mongoguard::proxy
