// libFuzzer target for the policy loader: config::parse_config on arbitrary
// text. It must never crash or hang; it either loads a complete config or
// reports at least one error with a position inside the text. A policy that
// loads is then used to decide a few fixed commands, so fuzzed rules reach
// rule matching and budget keys too.
#include <bson/bson.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "policy/command_info.h"
#include "policy/policy.h"

namespace policy = mongoguard::policy;

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

// One command of each family the rules can name.
constexpr const char* kCommands[] = {
    R"({"delete": "c", "deletes": [{"q": {}, "limit": 0}], "$db": "app"})",
    R"({"update": "c", "updates": [{"q": {"a": 1}, "u": {"$set": {"b": 1}}, "multi": true}], "$db": "app"})",
    R"({"drop": "c", "$db": "app"})",
    R"({"bulkWrite": 1, "ops": [{"delete": 0, "filter": {}, "multi": true}], "nsInfo": [{"ns": "app.c"}, {"ns": "b.d"}], "$db": "admin"})",
    R"({"aggregate": "c", "pipeline": [{"$merge": {"into": {"db": "other", "coll": "x"}}}], "cursor": {}, "$db": "app"})",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto result = mongoguard::config::parse_config(text, "fuzz.yaml");
  if (!result.ok()) {
    check(!result.errors.empty() && !result.config);
    for (const auto& e : result.errors) {
      check(e.line >= 0 && e.column >= 0 && !e.message.empty());
      check(!e.to_string().empty());
    }
    return 0;
  }
  check(result.config->policy != nullptr);
  const policy::Policy& p = *result.config->policy;
  for (const auto& rule : p.rules) check(!rule.name.empty());

  static const auto infos = [] {
    std::vector<policy::CommandInfo> out;
    for (const char* json : kCommands) {
      bson_error_t error;
      bson_t* body = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(json), -1, &error);
      check(body != nullptr);
      bson_iter_t it;
      check(bson_iter_init_find(&it, body, "$db"));
      auto info = policy::classify_command(body, bson_iter_utf8(&it, nullptr));
      bson_destroy(body);
      check(info.has_value());
      out.push_back(std::move(*info));
    }
    return out;
  }();
  policy::Identity who;
  who.app = "shell";
  who.user = "alice";
  for (const auto& info : infos) {
    const auto v = policy::decide(p, info, who);
    if (v.would != policy::Action::kAllow) check(v.rule != nullptr);
    for (const auto& charge : policy::budget_charges(p, info, who)) check(!charge.key.empty());
  }
  return 0;
}
