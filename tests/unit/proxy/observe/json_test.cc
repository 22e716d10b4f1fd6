// Shapes and sentences shared by the admin API and the webhooks, the
// webhook URL parser and the ctl helpers.
#include "proxy/observe/json.h"

#include <gtest/gtest.h>

#include "policy/duration.h"
#include "proxy/cli/ctl.h"

namespace mongoguard::proxy {
namespace {

using namespace std::chrono_literals;

TEST(AdminParseHttpUrl, HostPortPath) {
  auto u = parse_http_url("http://hooks.example:8080/services/T0/B1?x=1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "hooks.example");
  EXPECT_EQ(u->port, "8080");
  EXPECT_EQ(u->target, "/services/T0/B1?x=1");
  EXPECT_EQ(u->host_header(), "hooks.example:8080");

  u = parse_http_url("HTTP://127.0.0.1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->port, "80");
  EXPECT_EQ(u->target, "/");
  EXPECT_EQ(u->host_header(), "127.0.0.1");

  u = parse_http_url("http://[::1]:9000/hook#frag");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->target, "/hook");
  EXPECT_EQ(u->host_header(), "[::1]:9000");

  u = parse_http_url("http://h?only=query");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->target, "/?only=query");
}

TEST(AdminParseHttpUrl, Refuses) {
  for (const char* bad :
       {"https://h/x", "ftp://h", "h:80/x", "http://", "http://:80/", "http://h:/", "http://h:0/",
        "http://h:65536/", "http://h:8x/", "http://user:pw@h/", "http://[::1/"}) {
    EXPECT_FALSE(parse_http_url(bad)) << bad;
  }
}

TEST(AdminJson, IsoTimeAndDurations) {
  EXPECT_EQ(iso_time(std::chrono::system_clock::time_point(1'700'000'000'123ms)),
            "2023-11-14T22:13:20.123Z");
  // The calendar part is cached per second: the milliseconds change within
  // it, and moving to another second (either way) renders that one.
  using TP = std::chrono::system_clock::time_point;
  EXPECT_EQ(iso_time(TP(1'700'000'000'007ms)), "2023-11-14T22:13:20.007Z");
  EXPECT_EQ(iso_time(TP(1'700'000'000'090ms)), "2023-11-14T22:13:20.090Z");
  EXPECT_EQ(iso_time(TP(1'700'000'001'000ms)), "2023-11-14T22:13:21.000Z");
  EXPECT_EQ(iso_time(TP(1'699'999'999'999ms)), "2023-11-14T22:13:19.999Z");
  EXPECT_EQ(iso_time(TP(-1ms)), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(iso_time(TP(0ms)), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(policy::format_duration(60s), "1m");
  EXPECT_EQ(policy::format_duration(90s), "90s");
  EXPECT_EQ(policy::format_duration(2h), "2h");
  EXPECT_EQ(policy::format_duration(250ms), "250ms");
  EXPECT_EQ(policy::format_duration(0ms), "0ms");
}

policy::HoldInfo sample_hold() {
  policy::HoldInfo h;
  h.id = 7;
  h.breaker = "families-delete-budget:app.families";
  h.rule = "families-delete-budget";
  h.operation = "delete";
  h.ns = "app.families";
  h.client = "127.0.0.1";
  h.user = "bob";
  h.app = "shell";
  h.documents_in_window = 50;
  h.limit = 50;
  return h;
}

TEST(AdminJson, HoldSentences) {
  auto h = sample_hold();
  h.documents = 3;
  h.recent_documents = 50;
  h.recent_seconds = 3.14;
  h.driver = "PyMongo 4.10.1";
  EXPECT_EQ(hold_text(h),
            "mongoguard: delete on app.families held, 3 document(s); 50 documents in 3.1 s on "
            "app.families; user bob, app shell, driver PyMongo 4.10.1, from 127.0.0.1 (rule "
            "families-delete-budget, breaker families-delete-budget:app.families) — hold #7, "
            "approve or reject at the admin page");
  EXPECT_EQ(
      resolved_text(h, {policy::HoldOutcome::kRejected, "alice", "a loop, not a migration", {}}),
      "mongoguard: hold #7 (delete on app.families, rule families-delete-budget) from "
      "127.0.0.1 app=shell user=bob rejected by alice: a loop, not a migration");
  EXPECT_EQ(resolved_text(h, {policy::HoldOutcome::kTimedOut, "", "", {}}).substr(0, 30),
            "mongoguard: hold #7 (delete on");
  h.breaker.clear();
  h.recent_seconds = 0;  // a plain hold with nothing counted lately
  h.user.clear();
  h.documents.reset();
  h.at_least = 1000;
  EXPECT_EQ(hold_text(h, {"proxy-a", "https://guard.example"}),
            "mongoguard proxy-a: delete on app.families held, at least 1000 documents; user (not "
            "authenticated), app shell, driver PyMongo 4.10.1, from 127.0.0.1 (rule "
            "families-delete-budget) — hold #7: https://guard.example/#hold-7");
  EXPECT_EQ(hold_releases_text(h), "this one delete on app.families (at least 1000 documents)");
}

TEST(AdminJson, EventBodies) {
  const auto now = policy::Clock::now();
  auto h = sample_hold();
  h.created = now - 2s;
  auto body = hold_event(h, now);
  EXPECT_EQ(body["event"], "hold");
  EXPECT_EQ(body["hold"]["id"], 7);
  EXPECT_NEAR(body["hold"]["waiting_seconds"].get<double>(), 2.0, 0.01);
  EXPECT_TRUE(body["text"].is_string());

  body = resolved_event(h, {policy::HoldOutcome::kApproved, "alice"}, now);
  EXPECT_EQ(body["event"], "resolved");
  EXPECT_EQ(body["decision"]["outcome"], "approved");
  EXPECT_EQ(body["decision"]["by"], "alice");

  policy::BreakerState b;
  b.name = "r:app.families";
  b.rule = "r";
  b.ns = "app.families";
  b.used = 51;
  b.limit = 50;
  b.per = 60s;
  b.tripped = true;
  b.tripped_at = now - 1s;
  b.drains_at = now + 59s;
  body = tripped_event(b, now);
  EXPECT_EQ(body["event"], "tripped");
  EXPECT_EQ(body["text"],
            "mongoguard: breaker r:app.families tripped: 51/50 documents in 1m on app.families "
            "(rule r); further operations are held until an operator decides");
  EXPECT_EQ(body["breaker"]["per"], "1m");
  EXPECT_NEAR(body["breaker"]["drains_in_seconds"].get<double>(), 59.0, 0.01);
  EXPECT_TRUE(body["breaker"]["allowance"]["expires_in_seconds"].is_null());
}

TEST(AdminJson, AHoldsPreviewShowsDocumentsToTheTokenAndOnlyIdsToWebhooks) {
  policy::HoldInfo hold;
  hold.id = 4;
  hold.rule = "budget";
  hold.operation = "delete";
  hold.ns = "app.family";
  hold.created = policy::Clock::now();
  EXPECT_TRUE(hold_json(hold, hold.created)["preview"].is_null());  // none read
  hold.preview_error = "the read failed";
  EXPECT_EQ(hold_json(hold, hold.created)["preview"]["error"], "the read failed");
  hold.preview_error.clear();
  hold.previewed = true;
  hold.preview = {R"({ "_id" : 1, "ssn" : "123" })", R"({ "_id" : "x" })"};
  hold.preview_ids = {"1", R"("x")"};
  hold.preview_ids_redacted = {R"("<int32>")", R"("<string>")"};
  hold.preview_more = true;
  const auto api = hold_json(hold, hold.created)["preview"];
  EXPECT_EQ(api["count"], 2);
  EXPECT_EQ(api["more"], true);
  EXPECT_EQ(api["documents"][0]["ssn"], "123");
  EXPECT_EQ(api["ids"], nlohmann::json::parse(R"([1, "x"])"));
  // Webhooks: no documents, and the ids redacted under audit.redact.
  const auto event = hold_event(hold, hold.created)["hold"]["preview"];
  EXPECT_FALSE(event.contains("documents"));
  EXPECT_EQ(event["ids"], nlohmann::json::parse(R"(["<int32>", "<string>"])"));
  EXPECT_EQ(event["count"], 2);
  hold.redact_values = false;
  EXPECT_EQ(hold_event(hold, hold.created)["hold"]["preview"]["ids"],
            nlohmann::json::parse(R"([1, "x"])"));
  const auto resolved = resolved_event(hold, {policy::HoldOutcome::kRejected, "bob"}, hold.created);
  EXPECT_FALSE(resolved["hold"]["preview"].contains("documents"));
}

TEST(AdminJson, DumpReplacesInvalidUtf8) {
  nlohmann::json v{{"filter", std::string("\xff\xfe")}};
  EXPECT_EQ(dump_json(v), "{\"filter\":\"\xef\xbf\xbd\xef\xbf\xbd\"}");
}

TEST(AdminCtl, UrlEncode) {
  EXPECT_EQ(tools::url_encode("r:app.families:app=my app/x"),
            "r%3Aapp.families%3Aapp%3Dmy%20app%2Fx");
  EXPECT_EQ(tools::url_encode("AZaz09-_.~"), "AZaz09-_.~");
}

TEST(AdminCtl, FormatTable) {
  EXPECT_EQ(tools::format_table({"ID", "NAMESPACE"}, {{"1", "app.families"}, {"12", "x"}}),
            "ID  NAMESPACE\n"
            "1   app.families\n"
            "12  x\n");
}

// Client text in a webhook's Slack-style text: no <!channel>, no link of
// its own, no new line.
TEST(AdminJson, WebhookTextEscapesSlackMarkupAndControls) {
  const auto now = policy::Clock::now();
  auto h = sample_hold();
  h.app = "<!channel> <https://evil.example|Approve hold here> & more\nINFO fake";
  const auto text = hold_event(h, now)["text"].get<std::string>();
  EXPECT_EQ(text.find('<'), std::string::npos) << text;
  EXPECT_EQ(text.find('>'), std::string::npos) << text;
  EXPECT_EQ(text.find('\n'), std::string::npos) << text;
  EXPECT_NE(text.find("&lt;!channel&gt; &lt;https://evil.example|Approve hold here&gt; &amp; "
                      "more\\x0aINFO fake"),
            std::string::npos)
      << text;
  EXPECT_EQ(slack_text("a < b && c > d"), "a &lt; b &amp;&amp; c &gt; d");
}

}  // namespace
}  // namespace mongoguard::proxy
