// limits and shutdown_grace: defaults, values, and errors with positions.
#include <gtest/gtest.h>

#include "config/config.h"

namespace mongoguard::config {
namespace {

using namespace std::chrono_literals;

TEST(ConfigLimits, DefaultsWhenAbsent) {
  auto r = parse_config("rules: []\n", "f.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->limits.max_connections, 0u);  // from the open-file limit
  EXPECT_EQ(r.config->limits.max_pending_holds, 1000u);
  EXPECT_EQ(r.config->limits.max_message_size, 48'000'000);
  EXPECT_EQ(r.config->shutdown_grace, 10s);
}

TEST(ConfigLimits, ValuesAreRead) {
  auto r = parse_config(
      "limits:\n  max_connections: 9000\n  max_pending_holds: 0\n  max_message_size: 16777216\n"
      "shutdown_grace: 0s\n",
      "f.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.config->limits.max_connections, 9000u);
  EXPECT_EQ(r.config->limits.max_pending_holds, 0u);
  EXPECT_EQ(r.config->limits.max_message_size, 16777216);
  EXPECT_EQ(r.config->shutdown_grace, 0ms);
}

TEST(ConfigLimits, ErrorsCarryTheirPositions) {
  struct Case {
    const char* text;
    const char* message;
    int line;
  };
  for (const auto& c : {
           Case{"limits:\n  max_message_size: 1000\n", "max_message_size must be a whole number",
                2},
           Case{"limits:\n  max_message_size: 48000001\n", "between 4096 and 48000000", 2},
           Case{"limits:\n  max_connections: lots\n", "max_connections must be a whole number", 2},
           Case{"limits:\n  max_pending_holds: -3\n", "max_pending_holds must be a whole", 2},
           Case{"limits:\n  max_conns: 3\n", "unknown key 'max_conns' in limits", 2},
           Case{"limits: 5\n", "limits must be a mapping", 1},
           Case{"shutdown_grace: 5 seconds\n", "bad duration '5 seconds' for shutdown_grace", 1},
       }) {
    auto r = parse_config(c.text, "f.yaml");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.errors.front().message.find(c.message), std::string::npos)
        << c.text << " -> " << r.errors.front().to_string();
    EXPECT_EQ(r.errors.front().line, c.line) << c.text;
  }
}

TEST(ConfigAdmin, UnreadyAfterFailuresDefaultsToThreeAndIsValidated) {
  auto r = parse_config("rules: []\n", "f.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->admin_unready_after_failures, 3u);
  r = parse_config("admin:\n  unready_after_failures: 0\n", "f.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.config->admin_unready_after_failures, 0u);
  r = parse_config("admin:\n  listen: 127.0.0.1:9901\n  unready_after_failures: many\n", "f.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.errors.front().to_string(),
            "f.yaml:3:27: admin.unready_after_failures must be a whole number between 0 and "
            "1000000");
}

}  // namespace
}  // namespace mongoguard::config
