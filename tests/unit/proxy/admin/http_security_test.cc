// Admin endpoint security without sockets: which listen addresses need
// HTTPS and a token, and raw HTTP bytes answered as the listener would.
#include <gtest/gtest.h>

#include "proxy/admin/http.h"

namespace mongoguard::proxy {
namespace {

TEST(AdminExposure, LoopbackIsAlwaysAllowed) {
  for (const char* host : {"127.0.0.1", "127.0.0.53", "::1", "localhost"}) {
    EXPECT_FALSE(admin_exposure_problem(HostPort{host, 9901}, false, false)) << host;
  }
}

TEST(AdminExposure, AnythingElseNeedsTlsAndAToken) {
  for (const char* host : {"0.0.0.0", "::", "10.0.0.5", "admin.internal"}) {
    const HostPort where{host, 9901};
    EXPECT_FALSE(admin_exposure_problem(where, true, true)) << host;
    auto no_tls = admin_exposure_problem(where, false, true);
    ASSERT_TRUE(no_tls) << host;
    EXPECT_NE(no_tls->find("not a loopback address"), std::string::npos) << *no_tls;
    EXPECT_NE(no_tls->find("only with admin.tls (cert and key) configured"), std::string::npos)
        << *no_tls;
    auto no_token = admin_exposure_problem(where, true, false);
    ASSERT_TRUE(no_token);
    EXPECT_NE(no_token->find("only with a token file configured"), std::string::npos) << *no_token;
    auto neither = admin_exposure_problem(where, false, false);
    ASSERT_TRUE(neither);
    EXPECT_NE(neither->find("admin.tls (cert and key) and a token file"), std::string::npos);
  }
}

struct RawAdmin : ::testing::Test {
  asio::io_context io;
  Metrics metrics;
  policy::HoldRegistry holds;
  policy::BudgetBook budgets;
  DecisionLog decisions;
  Notifier notifier{io, {}};
  AdminState state{metrics,
                   holds,
                   budgets,
                   decisions,
                   notifier,
                   nullptr,
                   nullptr,
                   [] { return std::string("s3cret"); },
                   [] { return true; }};

  std::string answer(std::string_view raw) {
    return answer_raw_admin_request(state, raw, policy::Clock::now());
  }
};

TEST_F(RawAdmin, AnswersWhatTheListenerWould) {
  auto ok = answer("GET /api/holds HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
  EXPECT_NE(ok.find("{\"holds\":[]}"), std::string::npos) << ok;
  auto denied = answer("GET /api/holds HTTP/1.1\r\nAuthorization: Bearer s3cre\r\n\r\n");
  EXPECT_EQ(denied.rfind("HTTP/1.1 401", 0), 0u) << denied;
  EXPECT_NE(denied.find("WWW-Authenticate: Bearer"), std::string::npos) << denied;
  EXPECT_EQ(answer("GET /healthz HTTP/1.0\r\n\r\n").rfind("HTTP/1.0 200", 0), 0u);
}

TEST_F(RawAdmin, IncompleteOrBrokenRequestsGetNoAnswer) {
  EXPECT_EQ(answer(""), "");
  EXPECT_EQ(answer("GET /api/holds HTTP/1.1\r\nHost:"), "");
  EXPECT_EQ(answer("POST /api/reload HTTP/1.1\r\nContent-Length: 10\r\n\r\n{}"), "");
  EXPECT_EQ(answer("\x16\x03\x01 not http at all\r\n\r\n"), "");
}

TEST_F(RawAdmin, OversizedBodyIs413) {
  std::string raw =
      "POST /api/reload HTTP/1.1\r\nAuthorization: Bearer s3cret\r\nContent-Length: 70000\r\n\r\n";
  raw += std::string(70000, 'x');
  EXPECT_EQ(answer(raw).rfind("HTTP/1.1 413", 0), 0u);
}

}  // namespace
}  // namespace mongoguard::proxy
