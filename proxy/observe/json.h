// JSON shapes shared by the admin API, the web page and the webhooks: holds,
// breakers and the human sentences chat tools show. Pure functions of their
// inputs (time is passed in), so they are unit-tested without sockets.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "policy/budget.h"
#include "policy/holds.h"

namespace mongoguard::proxy {

// Serialises without throwing: bytes that are not UTF-8 (a filter's strings
// are the client's) become U+FFFD.
std::string dump_json(const nlohmann::json& value);

// "2024-05-01T12:00:00.123Z"
std::string iso_time(std::chrono::system_clock::time_point t);
nlohmann::json hold_json(const policy::HoldInfo& hold, policy::TimePoint now);
// A hold's preview: {count, more, ids, documents (with `values`)}, null when
// none was read, {error} when the read failed.
nlohmann::json hold_preview_json(const policy::HoldInfo& hold, bool values);
nlohmann::json breaker_json(const policy::BreakerState& breaker, policy::TimePoint now);

// Where a webhook's reader goes from here: the proxy's name and, with
// admin.public_url, a link to the hold on the page.
struct EventLinks {
  std::string proxy;
  std::string public_url;  // "" = no link
};

// Slack-compatible one-line summaries.
// The Slack-style text of a webhook event: escaped for Slack's markup
// ('&', '<', '>') and with control characters spelled out.
std::string slack_text(std::string_view text);
std::string hold_text(const policy::HoldInfo& hold, const EventLinks& links = {});
std::string resolved_text(const policy::HoldInfo& hold, const policy::HoldDecision& decision,
                          const EventLinks& links = {});
std::string tripped_text(const policy::BreakerState& breaker);

// What a hold is, in the words operators read: "3 document(s)", "50
// documents in 3.1 s", "user bob@admin, app shell, driver PyMongo 4.10,
// from 10.0.0.7:51234", and what approving it releases.
std::string hold_size_text(const policy::HoldInfo& hold);
std::string hold_rate_text(const policy::HoldInfo& hold);
std::string hold_who_text(const policy::HoldInfo& hold);
std::string hold_releases_text(const policy::HoldInfo& hold);

// Webhook bodies: {event, text, hold|breaker, ...}.
nlohmann::json hold_event(const policy::HoldInfo& hold, policy::TimePoint now,
                          const EventLinks& links = {});
nlohmann::json resolved_event(const policy::HoldInfo& hold, const policy::HoldDecision& decision,
                              policy::TimePoint now, const EventLinks& links = {});
nlohmann::json tripped_event(const policy::BreakerState& breaker, policy::TimePoint now);

// An http:// URL: a webhook target, or with `allow_https` also an https://
// one (ctl's --admin), whose port is then 443 unless given. No credentials.
struct HttpUrl {
  std::string host;
  std::string port = "80";
  std::string target = "/";  // path and query
  bool https = false;
  // The Host header: host, plus ":port" when it is not 80.
  std::string host_header() const;
};
std::optional<HttpUrl> parse_http_url(std::string_view url, bool allow_https = false);

}  // namespace mongoguard::proxy
