#include "proxy/enforcer.h"

#include <gtest/gtest.h>

#include <chrono>

#include "wire_test_util.h"

namespace mongoguard::proxy {
namespace {

using namespace std::chrono_literals;
using wire::testing::MsgBuilder;

constexpr const char* kPolicy = R"(
rules:
  - name: no-unfiltered-writes
    match: { namespace: "*.*", operations: [delete], filter: unfiltered }
    action: block
  - name: delete-budget
    match: { namespace: "app.*", operations: [delete] }
    limit:
      - { documents: 5, per: 1m }
    action: hold
)";

// Says yes (or, once `trip` is set, that the breaker is tripped) and
// counts what it was asked.
class FakeLedger final : public BudgetLedger {
 public:
  bool trip = false;
  int reserves = 0;
  int holds_added = 0;
  int holds_removed = 0;

  std::optional<std::int64_t> headroom(const std::string&, std::int64_t limit,
                                       policy::TimePoint) override {
    return limit;
  }
  asio::awaitable<policy::ReserveResult> reserve(
      const std::vector<policy::ReserveRequest>& requests, bool) override {
    ++reserves;
    policy::ReserveResult out;
    out.reserved = !trip;
    for (const auto& r : requests) {
      out.admissions.push_back(trip ? policy::Admission::kTripped : policy::Admission::kPass);
      out.tripped_now.push_back(false);
      if (trip) {
        out.states.push_back(policy::BreakerState{r.key, "delete-budget", r.ns, 5, 5});
      } else {
        out.states.push_back(std::nullopt);
        out.reservations.push_back({r.key, r.ns, 1, r.documents});
      }
    }
    co_return out;
  }
  asio::awaitable<bool> settle(const policy::ReserveRequest&, const policy::Reservation&,
                               std::int64_t, policy::TimePoint) override {
    co_return false;
  }
  std::optional<policy::BreakerState> breaker(const std::string&, policy::TimePoint) override {
    return std::nullopt;
  }
  void hold_added(const policy::HoldInfo&, std::chrono::milliseconds) override { ++holds_added; }
  void hold_removed(std::uint64_t) override { ++holds_removed; }
};

class FakeConnection final : public EnforcerConnection {
 public:
  int counts = 0;
  int watches = 0;
  asio::awaitable<policy::Measured> count(const policy::Measurement&) override {
    ++counts;
    co_return policy::Measured{1000, ""};
  }
  void watch_while_held() override { ++watches; }
  bool closed() const override { return false; }
};

struct EnforcerTest : ::testing::Test {
  EnforcerTest() {
    auto loaded = config::parse_config(kPolicy, "policy.yaml");
    EXPECT_TRUE(loaded.ok());
    store.replace(std::make_shared<const config::Config>(std::move(*loaded.config)));
  }

  // Starts judging the delete `statement` on app.families; `out` is set
  // once the enforcer decides.
  void start(std::string_view statement, std::optional<Decision>& out) {
    frame = MsgBuilder()
                .body(std::string(R"({"delete": "families", "deletes": [)") +
                      std::string(statement) + R"(], "$db": "app"})")
                .build(3);
    auto decoded = wire::decode_request(frame, scratch, 48 * 1024 * 1024);
    ASSERT_TRUE(decoded.ok());
    auto info = policy::classify(decoded.view);
    ASSERT_TRUE(info);
    asio::co_spawn(
        io,
        [&, request = decoded.view, info = std::move(*info)]() -> asio::awaitable<void> {
          out = co_await enforcer.judge(request, info, next);
        },
        asio::detached);
    run_until([&] { return out.has_value() || enforcer.held_id() != 0; });
  }

  // Runs the context until `done()` (or a second passes).
  template <class Done>
  void run_until(Done done) {
    for (int i = 0; i < 200 && !done(); ++i) io.run_for(5ms);
  }

  // Judges `statement`; a hold is rejected by bob.
  std::optional<Decision> judge(std::string_view statement) {
    std::optional<Decision> out;
    start(statement, out);
    if (!out) {
      holds.resolve_all({policy::HoldOutcome::kRejected, "bob"});
      run_until([&] { return out.has_value(); });
    }
    return out;
  }

  std::vector<std::uint8_t> frame;
  std::vector<std::uint8_t> scratch;
  asio::io_context io;
  Metrics metrics;
  AuditLog audit;
  policy::HoldRegistry holds;
  Notifier notifier{io, {}};
  CollectionSizes sizes;
  PolicyStore store{std::make_shared<const config::Config>()};
  FakeLedger ledger;
  SessionServices services{metrics, store, audit, holds, ledger, notifier, sizes};
  FakeConnection connection;
  policy::Identity identity;
  Enforcer enforcer{1, identity, services, connection};
  std::unique_ptr<PendingReply> next;
};

TEST_F(EnforcerTest, ABlockedCommandIsAnsweredAndTheLedgerNeverAsked) {
  const auto decision = judge(R"({"q": {}, "limit": 0})");
  ASSERT_TRUE(decision);
  EXPECT_EQ(decision->kind, Decision::Kind::kAnswer);
  EXPECT_EQ(decision->code, 13);
  EXPECT_NE(decision->message.find("no-unfiltered-writes"), std::string::npos);
  EXPECT_EQ(ledger.reserves, 0);
  EXPECT_FALSE(next);
  EXPECT_EQ(metrics.blocked_operations.load(), 1u);
}

TEST_F(EnforcerTest, WithinBudgetIsForwardedAndTheReplySettlesTheReservation) {
  const auto decision = judge(R"({"q": {"_id": 1}, "limit": 1})");
  ASSERT_TRUE(decision);
  EXPECT_EQ(decision->kind, Decision::Kind::kForward);
  EXPECT_EQ(ledger.reserves, 1);
  EXPECT_EQ(connection.counts, 0);  // one document at most: nothing to measure
  ASSERT_TRUE(next);
  ASSERT_TRUE(next->audit);
  ASSERT_EQ(next->reservations.size(), 1u);
  EXPECT_EQ(next->reservations[0].documents, 1);
  EXPECT_EQ(next->requests.size(), 1u);
  EXPECT_EQ(next->ns, "app.families");
}

TEST_F(EnforcerTest, ATrippedBudgetHoldsAndARejectionIsAnswered) {
  ledger.trip = true;
  const auto decision = judge(R"({"q": {"_id": 1}, "limit": 1})");
  ASSERT_TRUE(decision);
  EXPECT_EQ(decision->kind, Decision::Kind::kAnswer);
  EXPECT_EQ(decision->code, 13);
  EXPECT_NE(decision->message.find("held by rule 'delete-budget'"), std::string::npos);
  EXPECT_NE(decision->message.find("rejected by bob"), std::string::npos);
  EXPECT_EQ(connection.watches, 1);
  EXPECT_EQ(ledger.holds_added, 1);
  EXPECT_EQ(ledger.holds_removed, 1);
  EXPECT_EQ(enforcer.held_id(), 0u);
  EXPECT_FALSE(next);
}

TEST_F(EnforcerTest, AnApprovedHoldReservesInFullAndForwards) {
  ledger.trip = true;
  std::optional<Decision> decision;
  start(R"({"q": {"_id": 1}, "limit": 1})", decision);
  ASSERT_FALSE(decision);
  EXPECT_NE(enforcer.held_id(), 0u);
  ledger.trip = false;
  holds.resolve(enforcer.held_id(), {policy::HoldOutcome::kApproved, "carol"});
  run_until([&] { return decision.has_value(); });
  ASSERT_TRUE(decision);
  EXPECT_EQ(decision->kind, Decision::Kind::kForward);
  EXPECT_EQ(ledger.reserves, 2);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->reservations.size(), 1u);
}

}  // namespace
}  // namespace mongoguard::proxy
