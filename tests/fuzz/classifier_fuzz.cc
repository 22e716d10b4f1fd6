// libFuzzer target for the command classifier: a client message is decoded
// as the proxy decodes it, classified, and judged against a fixed policy
// (decide, budget_charges, the budget book), as the session would. Checks
// that what classifies is self-consistent and that compressing a message
// never changes how it is classified (compression must not be a way around
// the policy). Any input that also parses as a BSON document is classified
// as a command body too, so the fuzzer can mutate bodies directly.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "bson/wire.h"
#include "config/config.h"
#include "policy/admission.h"
#include "policy/budget.h"
#include "policy/command_info.h"
#include "policy/measured_filter.h"
#include "policy/policy.h"

namespace wire = mongoguard::wire;
namespace policy = mongoguard::policy;

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

// Every operation under a rule of each kind: unfiltered and legacy writes
// blocked, a budget that holds, a log rule, an allow exemption, dry-run.
constexpr std::string_view kPolicy = R"(
mode: enforce
rules:
  - name: unfiltered
    match: { namespace: "*.*", filter: unfiltered }
    action: block
  - name: budget
    match: { namespace: "app.*", operations: [delete, update, replace, findAndModify, bulkWrite] }
    limit: { documents: 5, per: 1m, group_by: [app] }
    action: hold
  - name: schema
    match:
      namespace: ["app.*", "admin.*", "*.*"]
      operations: [drop, dropDatabase, renameCollection, dropIndexes, aggregateOut,
                   mapReduceOut, convertToCapped, emptycapped, ttlChange, applyOps, dropSearchIndex]
    action: block
  - name: watch
    match: { namespace: "log.*" }
    action: log
  - name: exempt
    match: { namespace: "app.*", apps: ["migrator"] }
    action: allow
  - name: trial
    match: { namespace: "trial.*" }
    action: block
    mode: dry-run
)";

const policy::Policy& fixed_policy() {
  static const policy::Policy p = [] {
    auto loaded = mongoguard::config::parse_config(kPolicy, "classifier_fuzz.yaml");
    check(loaded.ok());
    return *loaded.config->policy;
  }();
  return p;
}

void check_info(const policy::CommandInfo& info) {
  check(!info.targets.empty());
  for (const auto& t : info.targets) {
    check(t.matches.has(t.op));
    check(t.statements == t.single_statements + t.multi_statements);
    check(t.statements >= 0 && t.single_statements >= 0 && t.multi_statements >= 0);
    // t.ns may be empty or half a namespace: a rename without `to`, say. The
    // server refuses those; the classifier still reports what it saw.
    (void)t.filter_redacted();
    (void)t.filter_json();
  }
}

void judge(const policy::CommandInfo& info) {
  check_info(info);
  static policy::BudgetBook book;
  const auto now = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  for (const char* app : {"", "migrator"}) {
    policy::Identity who;
    who.app = app;
    who.user = "u";
    const policy::Verdict v = policy::decide(fixed_policy(), info, who);
    if (v.would != policy::Action::kAllow) check(v.rule != nullptr && v.target != nullptr);
    if (v.action != policy::Action::kAllow) (void)v.error_message();
    // Measured "unfiltered": every planned count names a real target that
    // has a filter to count, and a measurement can only make it stricter.
    const auto counts = policy::plan_filter_counts(fixed_policy(), info, who, v.action, v.would);
    if (!counts.empty()) {
      auto measured_info = info;
      for (const auto& c : counts) {
        check(c.target < info.targets.size() && !info.targets[c.target].multi.empty());
        check(!c.rules.empty() && policy::filter_count_cap(c, 100) >= 101);
        measured_info.targets[c.target].measured = policy::MeasuredShare{100, 100, false, ""};
      }
      const auto after = policy::decide(fixed_policy(), measured_info, who);
      check(!policy::stricter(v.would, after.would));
      if (after.action != policy::Action::kAllow) (void)after.error_message();
    }
    // Both steps of admission, with made-up measurements: every request
    // bounds what its budget is charged, and what the book reserves for an
    // enforced request that passed never exceeds what was left.
    const auto plan = policy::plan_admission(
        fixed_policy(), info, who,
        [&](const std::string& key, std::int64_t limit) { return book.headroom(key, limit, now); });
    std::vector<policy::Measured> measured;
    for (std::size_t i = 0; i < plan.measurements.size(); ++i) {
      check(plan.measurements[i].cap >= 1 && plan.measurements[i].target != nullptr);
      if (i % 3 == 2) {
        measured.push_back({std::nullopt, "fuzz"});
      } else {
        measured.push_back({static_cast<std::int64_t>(i % 2 ? plan.measurements[i].cap : i), ""});
      }
    }
    const auto set = policy::reservation_requests(fixed_policy(), plan, measured);
    check(set.charge_request.size() == plan.charges.size());
    for (const auto& charge : plan.charges) {
      check(charge.charge.rule != nullptr && charge.charge.target != nullptr &&
            charge.charge.known >= 0);
    }
    for (const auto& r : set.requests) check(r.documents >= 0 && r.at_least >= 0);
    const auto got = book.reserve(set.requests, now);
    check(got.admissions.size() == set.requests.size());
    if (got.reserved) {
      check(got.reservations.size() == set.requests.size());
      for (const auto& r : got.reservations) {
        book.settle(r, static_cast<std::int64_t>(info.targets.size()), now);
      }
    }
    const auto verdict = policy::judge_budgets(fixed_policy(), plan, set, got);
    check(!got.reserved || set.failed.empty() || verdict.action != policy::Action::kAllow ||
          verdict.charge != nullptr);
  }
}

// Same operations on the same namespaces in the same order.
bool same_targets(const policy::CommandInfo& a, const policy::CommandInfo& b) {
  if (a.targets.size() != b.targets.size()) return false;
  for (std::size_t i = 0; i < a.targets.size(); ++i) {
    const auto& x = a.targets[i];
    const auto& y = b.targets[i];
    if (x.op != y.op || x.ns != y.ns || x.matches.bits != y.matches.bits || x.filter != y.filter ||
        x.statements != y.statements)
      return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::int32_t kLimit = 1 << 20;
  // Give mutated messages a messageLength that matches, so they get past
  // framing and into the classifier.
  std::vector<std::uint8_t> msg(data, data + size);
  if (msg.size() >= 16) {
    const auto n = static_cast<std::uint32_t>(msg.size());
    for (int i = 0; i < 4; ++i)
      msg[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n >> (8 * i));
  }
  const wire::Bytes bytes(msg.data(), msg.size());
  std::vector<std::uint8_t> scratch;
  const auto req = wire::decode_request(bytes, scratch, kLimit);
  if (req.ok()) {
    const auto info = policy::classify(req.view, bytes, scratch);
    // The name check the hot path uses must never skip what classifies.
    if (info && req.view.msg) check(policy::is_inspected_command(req.view.command));
    if (info) judge(*info);

    // Compressed, the same message must classify the same.
    if (!req.view.compressed &&
        req.view.effective_opcode == static_cast<std::int32_t>(wire::OpCode::kMsg)) {
      for (auto c : {wire::CompressorId::kNoop, wire::CompressorId::kSnappy,
                     wire::CompressorId::kZlib, wire::CompressorId::kZstd}) {
        const auto packed = wire::compress(bytes, c);
        std::vector<std::uint8_t> scratch2;
        const auto req2 =
            wire::decode_request(wire::Bytes(packed.data(), packed.size()), scratch2, kLimit);
        check(req2.ok());
        const auto info2 =
            policy::classify(req2.view, wire::Bytes(packed.data(), packed.size()), scratch2);
        check(info.has_value() == info2.has_value());
        if (info) check(same_targets(*info, *info2));
      }
    }
  }

  if (auto doc = wire::parse_document(wire::Bytes(data, size))) {
    bson_t body;
    if (doc->as_bson(&body)) {
      for (std::string_view db : {"app", "admin"}) {
        if (auto info = policy::classify_command(&body, db)) judge(*info);
      }
    }
  }
  return 0;
}
