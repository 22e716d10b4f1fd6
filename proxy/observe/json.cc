#include "proxy/observe/json.h"

#include <cctype>
#include <cstdio>
#include <ctime>

#include "bson/text.h"
#include "config/url.h"
#include "policy/duration.h"

namespace mongoguard::proxy {

using nlohmann::json;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

namespace {

double seconds_between(policy::TimePoint from, policy::TimePoint to) {
  return static_cast<double>(duration_cast<milliseconds>(to - from).count()) / 1000.0;
}

// Seconds from now until `t`, never negative.
double seconds_until(policy::TimePoint t, policy::TimePoint now) {
  return t > now ? seconds_between(now, t) : 0.0;
}

// "from 127.0.0.1 app=shell user=bob", leaving out what is unknown.
std::string who(const policy::HoldInfo& hold) {
  std::string out;
  if (!hold.client.empty()) out += " from " + hold.client;
  if (!hold.app.empty()) out += " app=" + hold.app;
  if (!hold.user.empty()) out += " user=" + hold.user;
  return out;
}

}  // namespace

std::string dump_json(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string iso_time(std::chrono::system_clock::time_point t) {
  const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  long frac = static_cast<long>(ms % 1000);
  if (frac < 0) {
    frac += 1000;
    --secs;
  }
  // Every audited operation stamps its record: the calendar part is worked
  // out once a second per thread, the milliseconds appended by hand.
  struct Cached {
    std::time_t secs = -1;
    char text[64] = {};
    int length = 0;
  };
  thread_local Cached cached;
  if (cached.secs != secs || cached.length <= 0) {
    std::tm tm{};
    gmtime_r(&secs, &tm);
    cached.length = std::snprintf(cached.text, sizeof cached.text, "%04d-%02d-%02dT%02d:%02d:%02d.",
                                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                  tm.tm_min, tm.tm_sec);
    cached.secs = secs;
    if (cached.length <= 0 || cached.length >= static_cast<int>(sizeof cached.text)) {
      cached.length = 0;
      return {};
    }
  }
  std::string out;
  out.reserve(static_cast<std::size_t>(cached.length) + 4);
  out.append(cached.text, static_cast<std::size_t>(cached.length));
  out += static_cast<char>('0' + frac / 100);
  out += static_cast<char>('0' + frac / 10 % 10);
  out += static_cast<char>('0' + frac % 10);
  out += 'Z';
  return out;
}

namespace {

// A JSON text mongoguard rendered itself; a string when it does not parse.
json parsed(const std::string& text) {
  auto value = json::parse(text, nullptr, false);
  return value.is_discarded() ? json(text) : value;
}

}  // namespace

json hold_preview_json(const policy::HoldInfo& hold, bool values) {
  if (!hold.previewed) {
    return hold.preview_error.empty() ? json() : json{{"error", hold.preview_error}};
  }
  json ids = json::array();
  const auto& id_texts =
      values || !hold.redact_values ? hold.preview_ids : hold.preview_ids_redacted;
  for (const auto& id : id_texts) ids.push_back(parsed(id));
  json out{{"count", hold.preview.size()}, {"more", hold.preview_more}, {"ids", std::move(ids)}};
  if (values) {
    json documents = json::array();
    for (const auto& doc : hold.preview) documents.push_back(parsed(doc));
    out["documents"] = std::move(documents);
  }
  return out;
}

namespace {

// The webhooks' receivers need no token: a hold's preview there is its
// _ids only (redacted under audit.redact), never the documents.
json webhook_hold(const policy::HoldInfo& hold, policy::TimePoint now);

}  // namespace

std::string hold_size_text(const policy::HoldInfo& hold) {
  if (hold.documents) return std::to_string(*hold.documents) + " document(s)";
  if (hold.at_least > 0) return "at least " + std::to_string(hold.at_least) + " documents";
  return "an unmeasured number of documents";
}

std::string hold_rate_text(const policy::HoldInfo& hold) {
  if (hold.breaker.empty() && hold.recent_seconds <= 0) return "";
  char span[32];
  if (hold.recent_seconds < 120) {
    std::snprintf(span, sizeof span, "%.1f s", hold.recent_seconds);
  } else {
    std::snprintf(span, sizeof span, "%.0f min", hold.recent_seconds / 60);
  }
  return std::to_string(hold.recent_documents) + " documents in " + span + " on " + hold.ns;
}

std::string hold_who_text(const policy::HoldInfo& hold) {
  std::string out = "user " + (hold.user.empty() ? std::string("(not authenticated)") : hold.user);
  out += ", app " + (hold.app.empty() ? std::string("(none given)") : hold.app);
  if (!hold.driver.empty()) out += ", driver " + hold.driver;
  if (!hold.client.empty()) out += ", from " + hold.client;
  return out;
}

std::string hold_releases_text(const policy::HoldInfo& hold) {
  std::string out =
      "this one " + hold.operation + " on " + hold.ns + " (" + hold_size_text(hold) + ")";
  if (!hold.breaker.empty()) {
    out += "; breaker " + hold.breaker + " stays tripped until an operator resumes it";
  }
  if (hold.approvals_needed > 1) {
    out += "; needs " + std::to_string(hold.approvals_needed) + " different operators to approve";
  }
  return out;
}

json hold_json(const policy::HoldInfo& hold, policy::TimePoint now) {
  json approvals = json::array();
  for (const auto& a : hold.approvals) {
    approvals.push_back({{"by", a.by}, {"reason", a.reason}, {"at", iso_time(a.at)}});
  }
  json rate = nullptr;
  if (!hold.breaker.empty() || hold.recent_seconds > 0) {
    rate = {{"documents", hold.recent_documents},
            {"seconds", hold.recent_seconds},
            {"text", hold_rate_text(hold)}};
  }
  return json{
      {"id", hold.id},
      {"breaker", hold.breaker},
      {"rule", hold.rule},
      {"operation", hold.operation},
      {"ns", hold.ns},
      {"command", hold.command},
      {"connection", hold.connection},
      {"client", hold.client},
      {"user", hold.user},
      {"app", hold.app},
      {"driver", hold.driver},
      {"who", hold_who_text(hold)},
      {"filter", hold.filter},
      {"statements", hold.statements},
      {"documents", hold.documents ? json(*hold.documents) : json(nullptr)},
      {"documents_at_least", hold.at_least},
      {"size", hold_size_text(hold)},
      {"rate", std::move(rate)},
      {"documents_in_window", hold.documents_in_window},
      {"limit", hold.limit},
      {"reason", hold.reason},
      {"releases", hold_releases_text(hold)},
      {"approvals_needed", hold.approvals_needed},
      {"approvals", std::move(approvals)},
      {"created", iso_time(hold.created_wall)},
      {"waiting_seconds", now > hold.created ? seconds_between(hold.created, now) : 0.0},
      {"preview", hold_preview_json(hold, true)},
  };
}

namespace {

json webhook_hold(const policy::HoldInfo& hold, policy::TimePoint now) {
  auto body = hold_json(hold, now);
  body["preview"] = hold_preview_json(hold, false);
  return body;
}

}  // namespace

json breaker_json(const policy::BreakerState& b, policy::TimePoint now) {
  json out{
      {"name", b.name},
      {"rule", b.rule},
      {"ns", b.ns},
      {"used", b.used},
      {"limit", b.limit},
      {"per", policy::format_duration(b.per)},
      {"per_seconds", static_cast<double>(b.per.count()) / 1000.0},
      {"tripped", b.tripped},
      {"auto_resume", b.auto_resume},
  };
  out["tripped_seconds_ago"] =
      b.tripped_at ? json(now > *b.tripped_at ? seconds_between(*b.tripped_at, now) : 0.0)
                   : json(nullptr);
  out["drains_in_seconds"] = b.drains_at ? json(seconds_until(*b.drains_at, now)) : json(nullptr);
  json allowance{{"documents", b.allowance_documents}};
  allowance["expires_in_seconds"] =
      b.allowance_until ? json(seconds_until(*b.allowance_until, now)) : json(nullptr);
  out["allowance"] = std::move(allowance);
  return out;
}

// A webhook's "text" as Slack-style receivers read it: '&', '<' and '>'
// escaped (so no client's appName or namespace can write <!channel> or a
// <link|label>), control characters spelled out (so none starts a line of
// its own).
std::string slack_text(std::string_view text) {
  const std::string plain = wire::control_escaped(text);
  std::string out;
  out.reserve(plain.size());
  for (const char c : plain) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string proxy_tag(const EventLinks& links) {
  return links.proxy.empty() ? "mongoguard" : "mongoguard " + links.proxy;
}

std::string hold_link(const EventLinks& links, std::uint64_t id) {
  return links.public_url.empty() ? "" : links.public_url + "/#hold-" + std::to_string(id);
}

std::string hold_text(const policy::HoldInfo& hold, const EventLinks& links) {
  std::string out = proxy_tag(links) + ": " + hold.operation + " on " + hold.ns + " held, " +
                    hold_size_text(hold);
  if (const auto rate = hold_rate_text(hold); !rate.empty()) out += "; " + rate;
  out += "; " + hold_who_text(hold) + " (rule " + hold.rule;
  if (!hold.breaker.empty()) out += ", breaker " + hold.breaker;
  out += ") — hold #" + std::to_string(hold.id);
  const auto link = hold_link(links, hold.id);
  out += link.empty() ? ", approve or reject at the admin page" : ": " + link;
  return out;
}

std::string resolved_text(const policy::HoldInfo& hold, const policy::HoldDecision& decision,
                          const EventLinks& links) {
  std::string out = proxy_tag(links) + ": hold #" + std::to_string(hold.id) + " (" +
                    hold.operation + " on " + hold.ns + ", rule " + hold.rule + ")" + who(hold) +
                    " " + policy::hold_outcome_name(decision.outcome);
  if (!decision.by.empty()) out += " by " + decision.by;
  if (!decision.reason.empty()) out += ": " + decision.reason;
  return out;
}

std::string tripped_text(const policy::BreakerState& b) {
  return "mongoguard: breaker " + b.name + " tripped: " + std::to_string(b.used) + "/" +
         std::to_string(b.limit) + " documents in " + policy::format_duration(b.per) + " on " +
         b.ns + " (rule " + b.rule + "); further operations are held until an operator decides";
}

json hold_event(const policy::HoldInfo& hold, policy::TimePoint now, const EventLinks& links) {
  json out{{"event", "hold"},
           {"text", slack_text(hold_text(hold, links))},
           {"hold", webhook_hold(hold, now)},
           {"proxy", links.proxy}};
  if (const auto link = hold_link(links, hold.id); !link.empty()) out["url"] = link;
  return out;
}

json resolved_event(const policy::HoldInfo& hold, const policy::HoldDecision& decision,
                    policy::TimePoint now, const EventLinks& links) {
  json out{{"event", "resolved"},
           {"text", slack_text(resolved_text(hold, decision, links))},
           {"hold", webhook_hold(hold, now)},
           {"proxy", links.proxy},
           {"decision",
            {{"outcome", policy::hold_outcome_name(decision.outcome)},
             {"by", decision.by},
             {"reason", decision.reason}}}};
  if (const auto link = hold_link(links, hold.id); !link.empty()) out["url"] = link;
  return out;
}

json tripped_event(const policy::BreakerState& breaker, policy::TimePoint now) {
  return json{{"event", "tripped"},
              {"text", slack_text(tripped_text(breaker))},
              {"breaker", breaker_json(breaker, now)}};
}

std::string HttpUrl::host_header() const {
  const std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return port == "80" ? h : h + ":" + port;
}

std::optional<HttpUrl> parse_http_url(std::string_view text, bool allow_https) {
  std::string error;
  auto url = config::parse_url(text, error);
  if (!url || url->userinfo) return std::nullopt;  // no credentials
  std::string scheme = url->scheme;
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const bool https = allow_https && scheme == "https";
  if ((scheme != "http" && !https) || url->host.empty()) return std::nullopt;
  HttpUrl out;
  out.host = url->host;
  out.https = https;
  if (https) out.port = "443";
  if (url->port) {
    if (!config::parse_port(*url->port)) return std::nullopt;
    out.port = *url->port;
  }
  out.target = url->path + (url->query ? "?" + *url->query : "");
  if (out.target.empty() || out.target[0] != '/') out.target.insert(0, "/");
  return out;
}

}  // namespace mongoguard::proxy
