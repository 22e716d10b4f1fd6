// The admin API without sockets: path decoding, token checks, and every
// endpoint through handle_admin_request against real registries.
#include "proxy/admin/http.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace mongoguard::proxy {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

TEST(AdminUrlDecode, DecodesEscapes) {
  EXPECT_EQ(url_decode("a%3Ab.c%2Fd"), "a:b.c/d");
  EXPECT_EQ(url_decode("plain"), "plain");
  EXPECT_EQ(url_decode("a+b"), "a+b");
  EXPECT_EQ(url_decode("a+b", true), "a b");
  EXPECT_EQ(url_decode("%e2%80%94"), "\xe2\x80\x94");
}

TEST(AdminUrlDecode, RefusesBadEscapes) {
  EXPECT_FALSE(url_decode("%"));
  EXPECT_FALSE(url_decode("%4"));
  EXPECT_FALSE(url_decode("abc%zz"));
  EXPECT_FALSE(url_decode("%G0"));
}

TEST(AdminSplitPath, SplitsAndDecodesSegments) {
  EXPECT_EQ(split_path("/"), std::vector<std::string>{});
  EXPECT_EQ(split_path("/api/holds/"), (std::vector<std::string>{"api", "holds"}));
  EXPECT_EQ(split_path("/api/breakers/r%3Aapp.families%3Aapp%3Dx%2Fy/reset"),
            (std::vector<std::string>{"api", "breakers", "r:app.families:app=x/y", "reset"}));
  EXPECT_FALSE(split_path("api/holds"));
  EXPECT_FALSE(split_path("/api/%zz"));
}

TEST(AdminQuery, FindsParameters) {
  EXPECT_EQ(query_param("limit=5", "limit"), "5");
  EXPECT_EQ(query_param("a=1&limit=7&b", "limit"), "7");
  EXPECT_EQ(query_param("x=a+b%21", "x"), "a b!");
  EXPECT_EQ(query_param("flag", "flag"), "");
  EXPECT_FALSE(query_param("a=1", "limit"));
  EXPECT_FALSE(query_param("", "limit"));
}

TEST(AdminToken, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("secret", "secret"));
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_FALSE(constant_time_equal("secret", "secreT"));
  EXPECT_FALSE(constant_time_equal("secret", "secret2"));
  EXPECT_FALSE(constant_time_equal("secret", ""));
  EXPECT_FALSE(constant_time_equal(std::string_view("a\0", 2), "a"));
}

TEST(AdminToken, BearerMatches) {
  EXPECT_TRUE(bearer_matches("Bearer s3cret", "s3cret"));
  EXPECT_TRUE(bearer_matches("bearer  s3cret ", "s3cret"));
  EXPECT_FALSE(bearer_matches("Bearer s3cre", "s3cret"));
  EXPECT_FALSE(bearer_matches("Basic s3cret", "s3cret"));
  EXPECT_FALSE(bearer_matches("s3cret", "s3cret"));
  EXPECT_FALSE(bearer_matches("", "s3cret"));
  // No token configured: nothing matches, not even an empty bearer.
  EXPECT_FALSE(bearer_matches("Bearer ", ""));
}

// Real registries behind an AdminState, as the Server wires them.
struct AdminApi : ::testing::Test {
  asio::io_context io;
  Metrics metrics;
  policy::HoldRegistry holds;
  policy::BudgetBook budgets;
  DecisionLog decisions;
  Notifier notifier{io, {}};
  std::string token = "t0ken";
  bool ready = true;
  bool reload_ok = true;
  std::vector<std::string> audited;
  AdminState state{metrics,
                   holds,
                   budgets,
                   decisions,
                   notifier,
                   [this](std::string& errors) {
                     if (!reload_ok) errors = "policy.yaml:3:5: unknown key 'rulez'\nsecond\n";
                     return reload_ok;
                   },
                   [this](const std::string& action, const std::string& by,
                          const std::string& target, const std::string& details) {
                     audited.push_back(action + "|" + by + "|" + target + "|" + details);
                   },
                   [this] { return token; },
                   [this] { return ready; }};
  policy::TimePoint now = policy::Clock::now();
  policy::Rule rule;
  std::vector<policy::HoldDecision> outcomes;

  AdminApi() {
    rule.name = "families-delete-budget";
    rule.action = policy::Action::kHold;
    rule.limit = policy::Limit{};
    rule.limit->windows.push_back({.documents = 2, .per = 60s});
  }

  AdminResponse call(const std::string& method, const std::string& target,
                     const std::string& body = "", const std::string& op = "") {
    return handle_admin_request(state, AdminRequest{method, target, body, "Bearer t0ken", op}, now);
  }
  static json parse(const AdminResponse& r) { return json::parse(r.body); }

  std::uint64_t add_hold(const std::string& breaker) {
    policy::HoldInfo info;
    info.breaker = breaker;
    info.rule = rule.name;
    info.operation = "delete";
    info.ns = "app.families";
    info.client = "127.0.0.1:5000";
    info.user = "bob";
    info.app = "shell";
    info.filter = "{\"_id\": \"?\"}";
    info.documents_in_window = 2;
    info.limit = 2;
    info.created = now - 3s;
    info.created_wall = std::chrono::system_clock::now();
    return holds.add(info, [this](const policy::HoldDecision& d) { outcomes.push_back(d); });
  }
};

TEST_F(AdminApi, OpenPathsNeedNoToken) {
  for (const char* path : {"/healthz", "/readyz", "/"}) {
    auto r = handle_admin_request(state, AdminRequest{"GET", path, "", "", ""}, now);
    EXPECT_EQ(r.status, 200u) << path;
  }
  EXPECT_NE(call("GET", "/").body.find("<title>mongoguard</title>"), std::string::npos);
  ready = false;
  EXPECT_EQ(call("GET", "/readyz").status, 503u);
}

TEST_F(AdminApi, EverythingElseNeedsTheToken) {
  for (const char* path :
       {"/metrics", "/api/holds", "/api/breakers", "/api/decisions", "/api/nothing-here"}) {
    for (const char* auth : {"", "Bearer wrong", "Bearer t0ke", "Basic t0ken"}) {
      auto r = handle_admin_request(state, AdminRequest{"GET", path, "", auth, ""}, now);
      EXPECT_EQ(r.status, 401u) << path << " " << auth;
      EXPECT_TRUE(parse(r).contains("error"));
    }
  }
  auto r = handle_admin_request(state, AdminRequest{"POST", "/api/reload", "", "", ""}, now);
  EXPECT_EQ(r.status, 401u);
  token.clear();  // no token configured: the API is off
  EXPECT_EQ(call("GET", "/api/holds").status, 401u);
  EXPECT_EQ(call("GET", "/healthz").status, 200u);
}

TEST_F(AdminApi, UnknownPathsAndMethods) {
  EXPECT_EQ(call("GET", "/api/nothing").status, 404u);
  EXPECT_EQ(call("GET", "/nothing").status, 404u);
  EXPECT_EQ(call("POST", "/api/holds").status, 405u);
  EXPECT_EQ(call("GET", "/api/holds/1/approve").status, 405u);
  EXPECT_EQ(call("GET", "/api/%zz").status, 400u);
}

TEST_F(AdminApi, ListsHolds) {
  auto id = add_hold("families-delete-budget:app.families");
  auto r = call("GET", "/api/holds");
  ASSERT_EQ(r.status, 200u);
  auto list = parse(r)["holds"];
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["id"], id);
  EXPECT_EQ(list[0]["ns"], "app.families");
  EXPECT_EQ(list[0]["user"], "bob");
  EXPECT_EQ(list[0]["limit"], 2);
  EXPECT_NEAR(list[0]["waiting_seconds"].get<double>(), 3.0, 0.01);
}

TEST_F(AdminApi, ApprovesAndRejectsHolds) {
  auto a = add_hold("");
  auto b = add_hold("");
  auto r = call("POST", "/api/holds/" + std::to_string(a) + "/approve", R"({"by":"alice"})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(parse(r)["outcome"], "approved");
  r = call("POST", "/api/holds/" + std::to_string(b) + "/reject", "", "carol");
  ASSERT_EQ(r.status, 200u) << r.body;
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].outcome, policy::HoldOutcome::kApproved);
  EXPECT_EQ(outcomes[0].by, "alice");
  EXPECT_EQ(outcomes[1].outcome, policy::HoldOutcome::kRejected);
  EXPECT_EQ(outcomes[1].by, "carol");
  ASSERT_EQ(audited.size(), 2u);
  EXPECT_EQ(audited[0].substr(0, 14), "approve|alice|");
  EXPECT_EQ(holds.size(), 0u);
  // Already resolved / never existed / not a number.
  EXPECT_EQ(call("POST", "/api/holds/" + std::to_string(a) + "/approve", R"({"by":"x"})").status,
            404u);
  EXPECT_EQ(call("POST", "/api/holds/999/reject", R"({"by":"x"})").status, 404u);
  EXPECT_EQ(call("POST", "/api/holds/abc/reject", R"({"by":"x"})").status, 404u);
}

TEST_F(AdminApi, HoldDecisionsNeedAnOperatorAndValidJson) {
  auto id = std::to_string(add_hold(""));
  EXPECT_EQ(call("POST", "/api/holds/" + id + "/approve").status, 400u);
  EXPECT_EQ(call("POST", "/api/holds/" + id + "/approve", R"({"by":""})").status, 400u);
  EXPECT_EQ(call("POST", "/api/holds/" + id + "/approve", R"({"by":42})").status, 400u);
  EXPECT_EQ(call("POST", "/api/holds/" + id + "/approve", "{nope").status, 400u);
  EXPECT_EQ(call("POST", "/api/holds/" + id + "/approve", "[1]").status, 400u);
  EXPECT_EQ(holds.size(), 1u);
  EXPECT_TRUE(outcomes.empty());
}

TEST_F(AdminApi, BreakersListResetAndGrant) {
  const std::string key = "families-delete-budget:app.families";
  budgets.record(rule, key, "app.families", 3, now);
  add_hold(key);
  auto r = call("GET", "/api/breakers");
  ASSERT_EQ(r.status, 200u);
  auto list = parse(r)["breakers"];
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["name"], key);
  EXPECT_EQ(list[0]["used"], 3);
  EXPECT_EQ(list[0]["limit"], 2);
  EXPECT_EQ(list[0]["per"], "1m");
  EXPECT_EQ(list[0]["tripped"], true);
  EXPECT_EQ(list[0]["pending_holds"], 1);
  EXPECT_NEAR(list[0]["drains_in_seconds"].get<double>(), 60.0, 0.01);

  const std::string path = "/api/breakers/families-delete-budget%3Aapp.families";
  EXPECT_EQ(call("POST", path + "/grant", R"({"by":"alice"})").status, 400u);
  EXPECT_EQ(call("POST", path + "/grant", R"({"by":"alice","documents":-1})").status, 400u);
  EXPECT_EQ(call("POST", path + "/grant", R"({"by":"alice","minutes":"5"})").status, 400u);
  r = call("POST", path + "/grant", R"({"by":"alice","documents":10,"minutes":5})");
  ASSERT_EQ(r.status, 200u) << r.body;
  auto granted = parse(r)["breaker"];
  EXPECT_EQ(granted["allowance"]["documents"], 10);
  EXPECT_NEAR(granted["allowance"]["expires_in_seconds"].get<double>(), 300.0, 0.01);
  EXPECT_EQ(granted["tripped"], false);
  EXPECT_EQ(audited.back(),
            "grant|alice|" + key + "|10 document(s) and free passage for 5m; released 1 hold(s)");

  EXPECT_EQ(call("POST", path + "/reset", "", "bob").status, 200u);
  EXPECT_EQ(parse(call("GET", "/api/breakers"))["breakers"][0]["used"], 0);
  EXPECT_EQ(call("POST", path + "/reset").status, 400u);
  EXPECT_EQ(call("POST", "/api/breakers/none/reset", R"({"by":"a"})").status, 404u);
  EXPECT_EQ(call("POST", "/api/breakers/none/grant", R"({"by":"a","documents":1})").status, 404u);
}

TEST_F(AdminApi, ApproveAllAndRejectAllResolveABreakersHolds) {
  const std::string key = "families-delete-budget:app.families";
  budgets.record(rule, key, "app.families", 3, now);
  add_hold(key);
  add_hold(key);
  add_hold("other");
  auto r = call("POST", "/api/breakers/" + key + "/reject-all", R"({"by":"alice"})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(parse(r)["resolved"], 2);
  EXPECT_EQ(holds.size(), 1u);
  r = call("POST", "/api/breakers/other/approve-all", R"({"by":"alice"})");
  EXPECT_EQ(parse(r)["resolved"], 1);
  EXPECT_EQ(outcomes.back().outcome, policy::HoldOutcome::kApproved);
  EXPECT_EQ(call("POST", "/api/breakers/nobody/approve-all", R"({"by":"a"})").status, 404u);
  EXPECT_EQ(call("POST", "/api/breakers/" + key + "/approve-all").status, 400u);
}

TEST_F(AdminApi, DecisionsAreRawJsonNewestFirst) {
  for (int i = 0; i < 600; ++i) decisions.add(R"({"n":)" + std::to_string(i) + "}");
  auto r = call("GET", "/api/decisions");
  ASSERT_EQ(r.status, 200u);
  auto list = parse(r)["decisions"];
  ASSERT_EQ(list.size(), 50u);
  EXPECT_EQ(list[0]["n"], 599);
  EXPECT_EQ(parse(call("GET", "/api/decisions?limit=3"))["decisions"].size(), 3u);
  EXPECT_EQ(parse(call("GET", "/api/decisions?limit=100000"))["decisions"].size(), 500u);
  EXPECT_EQ(call("GET", "/api/decisions?limit=0").status, 400u);
  EXPECT_EQ(call("GET", "/api/decisions?limit=x").status, 400u);
}

TEST_F(AdminApi, Reload) {
  auto r = call("POST", "/api/reload");
  EXPECT_EQ(r.status, 200u);
  reload_ok = false;
  r = call("POST", "/api/reload");
  ASSERT_EQ(r.status, 422u);
  EXPECT_EQ(parse(r)["errors"][0], "policy.yaml:3:5: unknown key 'rulez'");
  EXPECT_EQ(parse(r)["errors"].size(), 2u);
  EXPECT_EQ(call("POST", "/api/reload", "not json").status, 400u);
}

TEST_F(AdminApi, MetricsAddHoldAndBreakerGauges) {
  const std::string key = "families-delete-budget:app.families";
  budgets.record(rule, key, "app.families", 3, now);
  add_hold(key);
  auto r = call("GET", "/metrics");
  ASSERT_EQ(r.status, 200u);
  EXPECT_NE(r.body.find("\nmongoguard_holds_pending 1\n"), std::string::npos);
  EXPECT_NE(r.body.find("\nmongoguard_breakers_tripped 1\n"), std::string::npos);
  EXPECT_NE(r.body.find("# TYPE mongoguard_holds_pending gauge"), std::string::npos);
}

TEST_F(AdminApi, DecisionsFilterByRuleNamespaceAndOutcome) {
  decisions.add(R"({"time":1,"verdict":"allow","rule":"a","matched_rules":["a","b"],)"
                R"("targets":[{"operation":"delete","ns":"app.x"}],"outcome":"forwarded"})");
  decisions.add(R"({"time":2,"verdict":"hold","rule":"b","matched_rules":["b"],)"
                R"("targets":[{"operation":"delete","ns":"app.y"}],"outcome":"rejected by al"})");
  decisions.add(R"({"time":3,"verdict":"block","rule":"c","matched_rules":["c"],)"
                R"("targets":[{"operation":"drop","ns":"app.x"}],"outcome":"blocked"})");
  decisions.add(R"({"time":4,"operator_action":"reject","by":"al","target":"7",)"
                R"j("details":"delete on app.y (rule b)"})j");
  decisions.add(R"({"time":5,"operator_action":"reset","by":"al","target":"b:app.y@1h"})");
  decisions.add("not json");
  const auto times = [this](const std::string& query) {
    std::vector<int> out;
    auto r = call("GET", "/api/decisions?" + query);
    EXPECT_EQ(r.status, 200u) << query;
    const auto body = parse(r);
    for (const auto& d : body["decisions"]) out.push_back(d.value("time", 0));
    return out;
  };
  EXPECT_EQ(times("rule=b"), (std::vector<int>{5, 4, 2, 1}));  // matched_rules count too
  EXPECT_EQ(times("ns=app.x"), (std::vector<int>{3, 1}));
  EXPECT_EQ(times("ns=app.y&rule=b"), (std::vector<int>{5, 4, 2}));
  EXPECT_EQ(times("outcome=rejected"), (std::vector<int>{2}));
  EXPECT_EQ(times("outcome=Block"), (std::vector<int>{3}));  // the verdict, any case
  EXPECT_EQ(times("outcome=reset"), (std::vector<int>{5}));  // an operator action
  EXPECT_EQ(times("outcome=forwarded&ns=app.x&rule=a"), (std::vector<int>{1}));
  EXPECT_EQ(times("rule=a%20b"), std::vector<int>{});
  EXPECT_EQ(times("rule=b&limit=2"), (std::vector<int>{5, 4}));
  EXPECT_EQ(parse(call("GET", "/api/decisions"))["decisions"].size(), 6u);  // unfiltered: all
}

TEST_F(AdminApi, RatesShowTheLastHourAndTheBudgets) {
  RateHistory rates;
  auto policy = std::make_shared<policy::Policy>();
  std::string error;
  rule.namespaces.push_back(*policy::NamespaceGlob::parse("app.*", error));
  rule.limit->windows.push_back({.documents = 600, .per = 3600s});
  rule.limit->group_by_app = true;
  policy->rules.push_back(rule);
  policy::Rule other;
  other.name = "elsewhere";
  other.namespaces.push_back(*policy::NamespaceGlob::parse("other.*", error));
  other.limit = policy::Limit{};
  other.limit->windows.push_back({.documents = 1, .per = 60s});
  policy->rules.push_back(other);
  state.rates = &rates;
  state.policy = [&] { return policy; };
  const auto wall = std::chrono::system_clock::now();
  rates.add("app.families", 4, wall);
  rates.add("app.families", 3, wall - 2min);
  budgets.record(rule, "families-delete-budget:app.quiet", "app.quiet", 1, now);

  auto r = call("GET", "/api/rates");
  ASSERT_EQ(r.status, 200u) << r.body;
  auto body = parse(r);
  ASSERT_EQ(body["namespaces"].size(), 2u) << body;
  const auto& families = body["namespaces"][0];
  EXPECT_EQ(families["ns"], "app.families");
  ASSERT_EQ(families["per_minute"].size(), 60u);
  EXPECT_EQ(families["per_minute"][59], 4);
  EXPECT_EQ(families["per_minute"][57], 3);
  ASSERT_EQ(families["budgets"].size(), 2u);
  EXPECT_EQ(families["budgets"][0]["rule"], "families-delete-budget");
  EXPECT_EQ(families["budgets"][0]["documents"], 2);
  EXPECT_EQ(families["budgets"][0]["per_seconds"], 60);
  EXPECT_EQ(families["budgets"][0]["per"], "1m");
  EXPECT_EQ(families["budgets"][1]["per_minute"], 10);  // 600 per hour
  EXPECT_EQ(families["budgets"][1]["group_by"], json::array({"app"}));
  // A namespace a breaker counts is listed while quiet.
  EXPECT_EQ(body["namespaces"][1]["ns"], "app.quiet");
  EXPECT_EQ(body["namespaces"][1]["per_minute"][59], 0);
  EXPECT_TRUE(body["now"].is_string());
  state.rates = nullptr;
  EXPECT_EQ(call("GET", "/api/rates").status, 404u);
  EXPECT_EQ(handle_admin_request(state, AdminRequest{"GET", "/api/rates", "", "", ""}, now).status,
            401u);
}

TEST_F(AdminApi, StatusSaysWhatIsLoadedAndHowTheLastReloadWent) {
  AdminStatus status;
  status.policy_file = "/etc/mongoguard/policy.yaml";
  status.decisions_read_back = 12;
  state.status = &status;
  auto body = parse(call("GET", "/api/status"));
  EXPECT_EQ(body["policy_file"], "/etc/mongoguard/policy.yaml");
  EXPECT_TRUE(body["last_reload"].is_null());
  EXPECT_EQ(body["version"], MONGOGUARD_VERSION);
  EXPECT_EQ(body["decisions_read_back"]["records"], 12);
  const std::string loaded = body["loaded_at"];
  EXPECT_EQ(loaded.size(), 24u);  // 2026-12-03T12:51:21.123Z
  const auto later = status.started_at + 90s;
  status.reloaded(false, "policy.yaml:3:5: unknown key\nsecond\n", "SIGHUP", later);
  body = parse(call("GET", "/api/status"));
  EXPECT_EQ(body["last_reload"]["ok"], false);
  EXPECT_EQ(body["last_reload"]["errors"], json::array({"policy.yaml:3:5: unknown key", "second"}));
  EXPECT_EQ(body["loaded_at"], loaded);  // a refused file loads nothing
  status.reloaded(true, "", "admin API", later);
  body = parse(call("GET", "/api/status"));
  EXPECT_EQ(body["last_reload"]["ok"], true);
  EXPECT_EQ(body["last_reload"]["errors"], json::array());
  EXPECT_EQ(body["loaded_at"], body["last_reload"]["at"]);
}

}  // namespace
}  // namespace mongoguard::proxy
