#include "proxy/enforcer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <deque>

#include "proxy/journal/journal_test_util.h"
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
  awaitable<policy::ReserveResult> reserve(const std::vector<policy::ReserveRequest>& requests,
                                           bool) override {
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
  awaitable<bool> settle(const policy::ReserveRequest&, const policy::Reservation&, std::int64_t,
                         policy::TimePoint) override {
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
  std::int64_t measured = 1000;  // what every count answers
  awaitable<policy::Measured> count(const policy::Measurement&) override {
    ++counts;
    co_return policy::Measured{measured, ""};
  }
  // The journal's reads, and their scripted answers (an error when none is left).
  std::vector<std::vector<std::uint8_t>> asked;
  std::deque<Asked> answers;
  awaitable<Asked> ask(const std::vector<std::uint8_t>& command) override {
    asked.push_back(command);
    if (answers.empty()) co_return Asked{{}, "no answer scripted"};
    auto answer = std::move(answers.front());
    answers.pop_front();
    co_return answer;
  }
  void watch_while_held() override { ++watches; }
  bool closed() const override { return false; }
  bool gone = false;
  bool client_gone() override { return gone; }
};

struct EnforcerTest : ::testing::Test {
  EnforcerTest() {
    auto loaded = config::parse_config(kPolicy, "policy.yaml");
    EXPECT_TRUE(loaded.ok());
    store.replace(std::make_shared<const config::Config>(std::move(*loaded.config)));
  }

  // Starts judging the delete (or `command`) `statement` on app.families;
  // `out` is set once the enforcer decides.
  void start(std::string_view statement, std::optional<Decision>& out,
             const std::string& command = "delete", const std::string& array = "deletes") {
    frame = MsgBuilder()
                .body("{\"" + command + "\": \"families\", \"" + array + "\": [" +
                      std::string(statement) + R"(], "$db": "app"})")
                .build(3);
    auto decoded = wire::decode_request(frame, scratch, 48 * 1024 * 1024);
    ASSERT_TRUE(decoded.ok());
    auto info = policy::classify(decoded.view);
    ASSERT_TRUE(info);
    asio::co_spawn(io, judge_one(decoded.view, std::move(*info), out), asio::detached);
    run_until([&] { return out.has_value() || enforcer.held_id() != 0; });
  }

  // A plain coroutine, not a capturing lambda (whose captures the UBSan
  // build reads as null).
  awaitable<void> judge_one(wire::Request request, policy::CommandInfo info,
                            std::optional<Decision>& out) {
    out = co_await enforcer.judge(request, std::move(info), next);
  }

  // Runs the context until `done()` (or a second passes).
  template <class Done>
  void run_until(Done done) {
    for (int i = 0; i < 200 && !done(); ++i) {
      io.restart();  // a context that ran out of work stays stopped until restarted
      io.run_for(5ms);
    }
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

TEST_F(EnforcerTest, AnApprovedHoldWhoseClientHasGoneIsNeverForwarded) {
  ledger.trip = true;
  std::optional<Decision> decision;
  start(R"({"q": {"_id": 1}, "limit": 1})", decision);
  ASSERT_FALSE(decision);
  connection.gone = true;
  holds.resolve(enforcer.held_id(), {policy::HoldOutcome::kApproved, "carol"});
  run_until([&] { return decision.has_value(); });
  ASSERT_TRUE(decision);
  EXPECT_EQ(decision->kind, Decision::Kind::kClose);
  EXPECT_NE(decision->message.find("never forwarded"), std::string::npos) << decision->message;
  EXPECT_EQ(ledger.reserves, 1);  // the first judgement only: nothing reserved for it
  EXPECT_FALSE(next);
}

// A journaled budget: the enforcer reads what a delete or update will
// affect on the client's connection (the scripted `answers`) and stores it
// before forwarding.
struct EnforcerJournalTest : EnforcerTest {
  void configure(const std::string& journal_settings) {
    const std::string text = "journal:\n  path: " + path + "\n" + journal_settings + kPolicy;
    auto loaded = config::parse_config(text, "policy.yaml");
    ASSERT_TRUE(loaded.ok()) << loaded.errors.front().to_string();
    store.replace(std::make_shared<const config::Config>(std::move(*loaded.config)));
    journal_store = std::make_unique<journal::Store>(journal::StoreOptions{path});
    ASSERT_TRUE(journal_store->wait_opened(5s));
    services.journal = journal_store.get();
  }

  // A find's reply holding `documents` (JSON array text), cursor exhausted.
  static Asked batch(const std::string& documents) {
    return Asked{journal::testing::bson_of(R"({"cursor": {"firstBatch": )" + documents +
                                           R"(, "id": 0, "ns": "app.families"}, "ok": 1})"),
                 ""};
  }

  std::vector<journal::Row> rows() {
    EXPECT_TRUE(journal_store->flush(5s));
    journal::Reader reader(path);
    return reader.list({});
  }

  std::optional<Decision> judge_update(std::string_view statement) {
    std::optional<Decision> out;
    start(statement, out, "update", "updates");
    return out;
  }

  awaitable<void> forwarded() { co_await enforcer.after_forward(); }

  // Judges the delete `statement`, expecting a hold: its reason, once the
  // hold is rejected and the client answered.
  std::string held_reason(std::string_view statement, std::optional<Decision>& out) {
    start(statement, out);
    EXPECT_FALSE(out);
    const auto pending = holds.pending();
    EXPECT_EQ(pending.size(), 1u);
    std::string reason = pending.empty() ? "" : pending.front().reason;
    holds.resolve_all({policy::HoldOutcome::kRejected, "bob"});
    run_until([&] { return out.has_value(); });
    return reason;
  }

  journal::testing::TempFolder folder;
  std::string path = folder.file("journal.db");
  std::unique_ptr<journal::Store> journal_store;
};

TEST_F(EnforcerJournalTest, ADeleteWithinBudgetIsJournaledBeforeItIsForwarded) {
  configure("");
  connection.answers.push_back(batch(R"([{"_id": 1, "name": "Ada"}])"));
  const auto decision = judge(R"({"q": {"_id": 1}, "limit": 1})");
  ASSERT_TRUE(decision);
  EXPECT_EQ(decision->kind, Decision::Kind::kForward);
  ASSERT_EQ(connection.asked.size(), 1u);
  bson_t find;
  ASSERT_TRUE(bson_init_static(&find, connection.asked[0].data(), connection.asked[0].size()));
  bson_iter_t it;
  ASSERT_TRUE(bson_iter_init_find(&it, &find, "find"));
  EXPECT_STREQ(bson_iter_utf8(&it, nullptr), "families");
  ASSERT_TRUE(next);
  EXPECT_EQ(next->journaled, 1);
  EXPECT_EQ(metrics.journal_entries.load(), 1u);
  EXPECT_EQ(metrics.journal_documents.load(), 1u);
  const auto stored = rows();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].ns, "app.families");
  EXPECT_EQ(stored[0].rule, "delete-budget");
  EXPECT_EQ(stored[0].op, journal::Operation::kDelete);
  EXPECT_EQ(stored[0].before, journal::testing::bson_of(R"({"_id": 1, "name": "Ada"})"));
  EXPECT_EQ(stored[0].filter, journal::testing::bson_of(R"({"_id": 1})"));
  EXPECT_FALSE(stored[0].after);
  EXPECT_FALSE(enforcer.after_pending());
}

TEST_F(EnforcerJournalTest, AReadThatFailsHoldsTheDeleteAndNothingIsForwarded) {
  configure("");  // on_error: hold; no answer scripted: the read fails
  std::optional<Decision> decision;
  const auto reason = held_reason(R"({"q": {"_id": 1}, "limit": 1})", decision);
  EXPECT_NE(reason.find("could not be journaled"), std::string::npos) << reason;
  EXPECT_NE(reason.find("no answer scripted"), std::string::npos) << reason;
  ASSERT_TRUE(decision);
  EXPECT_EQ(decision->kind, Decision::Kind::kAnswer);
  EXPECT_NE(decision->message.find("held by rule 'delete-budget'"), std::string::npos)
      << decision->message;
  EXPECT_EQ(ledger.holds_added, 1);
  EXPECT_EQ(metrics.journal_failures.load(), 1u);
  EXPECT_FALSE(next);
  EXPECT_TRUE(rows().empty());
}

TEST_F(EnforcerJournalTest, MoreDocumentsThanTheJournalTakesIsHeld) {
  configure("  max_documents: 2\n");
  connection.measured = 3;  // within the budget of 5: held for the journal alone
  connection.answers.push_back(batch(R"([{"_id": 1}, {"_id": 2}, {"_id": 3}])"));
  std::optional<Decision> decision;
  const auto reason = held_reason(R"({"q": {"_id": {"$gt": 0}}, "limit": 0})", decision);
  EXPECT_NE(reason.find("more than 2 documents"), std::string::npos) << reason;
  ASSERT_TRUE(decision);
  EXPECT_EQ(decision->kind, Decision::Kind::kAnswer);
  EXPECT_FALSE(next);
  EXPECT_TRUE(rows().empty());
}

TEST_F(EnforcerJournalTest, OnErrorForwardLetsItThroughAndCountsTheFailure) {
  configure("  on_error: forward\n");
  const auto decision = judge(R"({"q": {"_id": 1}, "limit": 1})");
  ASSERT_TRUE(decision);
  EXPECT_EQ(decision->kind, Decision::Kind::kForward);
  EXPECT_EQ(ledger.holds_added, 0);
  EXPECT_EQ(metrics.journal_failures.load(), 1u);
  ASSERT_TRUE(next);
  ASSERT_TRUE(next->audit);
  EXPECT_FALSE(next->journaled);
  EXPECT_TRUE(rows().empty());
}

TEST_F(EnforcerJournalTest, AnUnwritableJournalHoldsTheDelete) {
  path = "/proc/mongoguard-no-such-dir/journal.db";
  const std::string text = "journal:\n  path: " + path + "\n" + kPolicy;
  auto loaded = config::parse_config(text, "policy.yaml");
  ASSERT_TRUE(loaded.ok());
  store.replace(std::make_shared<const config::Config>(std::move(*loaded.config)));
  journal_store = std::make_unique<journal::Store>(journal::StoreOptions{path});
  journal_store->wait_opened(5s);
  EXPECT_FALSE(journal_store->healthy());
  services.journal = journal_store.get();
  connection.answers.push_back(batch(R"([{"_id": 1}])"));
  std::optional<Decision> decision;
  const auto reason = held_reason(R"({"q": {"_id": 1}, "limit": 1})", decision);
  EXPECT_NE(reason.find("the journal refused it"), std::string::npos) << reason;
  ASSERT_TRUE(decision);
  EXPECT_EQ(decision->kind, Decision::Kind::kAnswer);
  EXPECT_FALSE(next);
}

TEST_F(EnforcerJournalTest, AnUpdateKeepsItsAfterImageReadBehindTheWrite) {
  configure("");
  // The update rule: budgets updates too.
  auto loaded = config::parse_config("journal:\n  path: " + path + R"(
rules:
  - name: update-budget
    match: { namespace: "app.*", operations: [update] }
    limit:
      - { documents: 5, per: 1m }
    action: hold
)",
                                     "policy.yaml");
  ASSERT_TRUE(loaded.ok());
  store.replace(std::make_shared<const config::Config>(std::move(*loaded.config)));
  connection.answers.push_back(batch(R"([{"_id": 4, "n": 1}])"));
  const auto decision = judge_update(R"({"q": {"_id": 4}, "u": {"$inc": {"n": 1}}})");
  ASSERT_TRUE(decision);
  EXPECT_EQ(decision->kind, Decision::Kind::kForward);
  ASSERT_TRUE(enforcer.after_pending());
  connection.answers.push_back(batch(R"([{"_id": 4, "n": 2}])"));
  bool done = false;
  asio::co_spawn(io, forwarded(), [&](std::exception_ptr) { done = true; });
  run_until([&] { return done; });
  ASSERT_TRUE(done);
  EXPECT_FALSE(enforcer.after_pending());
  ASSERT_EQ(connection.asked.size(), 2u);  // the before read, then the after read
  const auto stored = rows();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].op, journal::Operation::kUpdate);
  EXPECT_EQ(stored[0].before, journal::testing::bson_of(R"({"_id": 4, "n": 1})"));
  ASSERT_TRUE(stored[0].after);
  EXPECT_EQ(*stored[0].after, journal::testing::bson_of(R"({"_id": 4, "n": 2})"));
}

}  // namespace
}  // namespace mongoguard::proxy
