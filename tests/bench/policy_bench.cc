// classify + decide for one delete against a 100-rule policy: the cost the
// proxy adds to every destructive command on top of relaying it.
#include <benchmark/benchmark.h>
#include <bson/bson.h>

#include <string>
#include <vector>

#include "bson/wire.h"
#include "config/config.h"
#include "policy/command_catalogue.h"
#include "policy/command_info.h"
#include "policy/policy.h"

namespace {

using namespace mongoguard;

std::string hundred_rules() {
  std::string yaml = "rules:\n";
  // 99 rules that do not match the benchmark's namespace but must each be
  // checked, in the shapes ops teams write, then one that matches.
  for (int i = 0; i < 99; ++i) {
    yaml += "  - name: rule-" + std::to_string(i) + "\n";
    switch (i % 4) {
      case 0:
        yaml += "    match: { namespace: \"db" + std::to_string(i) +
                ".*\", operations: [delete, update], filter: unfiltered }\n    action: block\n";
        break;
      case 1:
        yaml += "    match: { namespace: [\"app.coll" + std::to_string(i) + "\", \"app.other" +
                std::to_string(i) +
                "\"], operations: [drop, dropIndexes] }\n"
                "    action: block\n";
        break;
      case 2:
        yaml += "    match: { namespace: \"app.c" + std::to_string(i) +
                "*\", users: [\"u1\", \"u2\"] }\n    action: log\n";
        break;
      default:
        yaml += "    match: { namespace: \"*.x" + std::to_string(i) +
                "\", clients: [\"10.0.0.0/8\"], apps: [\"batch\"] }\n    action: hold\n";
    }
  }
  yaml +=
      "  - name: families-deletes\n    match: { namespace: \"app.families\", operations: "
      "[delete], filter: unfiltered }\n    action: block\n";
  return yaml;
}

std::vector<std::uint8_t> delete_message() {
  bson_t body = BSON_INITIALIZER;
  bson_append_utf8(&body, "delete", -1, "families", -1);
  bson_t deletes, stmt, q;
  bson_append_array_begin(&body, "deletes", -1, &deletes);
  bson_append_document_begin(&deletes, "0", -1, &stmt);
  bson_append_document_begin(&stmt, "q", -1, &q);
  bson_oid_t oid;
  bson_oid_init_from_string(&oid, "6b072c6f04886b1a1431f2dd");
  bson_append_oid(&q, "_id", -1, &oid);
  bson_append_document_end(&stmt, &q);
  bson_append_int32(&stmt, "limit", -1, 1);
  bson_append_document_end(&deletes, &stmt);
  bson_append_array_end(&body, &deletes);
  bson_append_bool(&body, "ordered", -1, true);
  bson_append_utf8(&body, "$db", -1, "app", -1);
  auto message = wire::build_op_msg(&body, 7, 0);
  bson_destroy(&body);
  return message;
}

constexpr benchmark::IterationCount kFixedIterations = 20000;

// One decision each, kept out of line so that callgrind can count exactly the
// instructions inside (--toggle-collect).
[[gnu::noinline]] policy::Action classify_and_decide_once(const policy::Policy& policy,
                                                          const std::vector<std::uint8_t>& message,
                                                          std::vector<std::uint8_t>& scratch,
                                                          const policy::Identity& who) {
  auto request = wire::decode_request(message, scratch);
  auto info = policy::classify(request.view);
  return policy::decide(policy, *info, who).action;
}

[[gnu::noinline]] policy::Action decide_once(const policy::Policy& policy,
                                             const policy::CommandInfo& info,
                                             const policy::Identity& who) {
  return policy::decide(policy, info, who).action;
}

void BM_ClassifyAndDecideDelete(benchmark::State& state) {
  auto loaded = config::parse_config(hundred_rules(), "bench.yaml");
  if (!loaded.ok() || loaded.config->policy->rules.size() != 100) {
    state.SkipWithError("policy did not load");
    return;
  }
  const auto& policy = *loaded.config->policy;
  const auto message = delete_message();
  std::vector<std::uint8_t> scratch;
  policy::Identity who;
  who.app = "shell";
  who.client_ip = policy::parse_ip("127.0.0.1");
  for (auto _ : state) {
    benchmark::DoNotOptimize(classify_and_decide_once(policy, message, scratch, who));
  }
}
BENCHMARK(BM_ClassifyAndDecideDelete)->Repetitions(9)->ReportAggregatesOnly(true);
// A fixed number of iterations, for counting instructions under callgrind
// (scripts/bench.sh collects only inside the *_once functions and divides by
// this count).
BENCHMARK(BM_ClassifyAndDecideDelete)
    ->Name("Fixed_ClassifyAndDecideDelete")
    ->Iterations(kFixedIterations);

void BM_DecideOnly(benchmark::State& state) {
  auto loaded = config::parse_config(hundred_rules(), "bench.yaml");
  const auto& policy = *loaded.config->policy;
  const auto message = delete_message();
  std::vector<std::uint8_t> scratch;
  auto request = wire::decode_request(message, scratch);
  auto info = policy::classify(request.view);
  policy::Identity who;
  who.app = "shell";
  who.client_ip = policy::parse_ip("127.0.0.1");
  for (auto _ : state) {
    benchmark::DoNotOptimize(decide_once(policy, *info, who));
  }
}
BENCHMARK(BM_DecideOnly)->Repetitions(9)->ReportAggregatesOnly(true);
BENCHMARK(BM_DecideOnly)->Name("Fixed_DecideOnly")->Iterations(kFixedIterations);

void BM_HotPathDecodeOnly(benchmark::State& state) {
  const auto message = delete_message();
  std::vector<std::uint8_t> scratch;
  for (auto _ : state) {
    auto request = wire::decode_request(message, scratch);
    benchmark::DoNotOptimize(request.view.command.data());
  }
}
BENCHMARK(BM_HotPathDecodeOnly)->Repetitions(9)->ReportAggregatesOnly(true);

// What the hot path adds per command for the unknown-command check and the
// inspected-command check: one hash and one compare each.
void BM_CommandLookupFind(benchmark::State& state) {
  std::string_view name = "find";
  for (auto _ : state) {
    benchmark::DoNotOptimize(name);
    benchmark::DoNotOptimize(policy::command_kind(name));
    benchmark::DoNotOptimize(policy::is_inspected_command(name));
  }
}
BENCHMARK(BM_CommandLookupFind)->Repetitions(9)->ReportAggregatesOnly(true);

}  // namespace

BENCHMARK_MAIN();
