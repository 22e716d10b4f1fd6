#include "proxy/admin/http.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <map>
#include <sstream>

#include "policy/duration.h"
#include "proxy/admin/fleet_admin.h"
#include "proxy/admin/page.h"
#include "proxy/admin/router.h"
#include "proxy/journal/store.h"
#include "proxy/observe/json.h"
#include "proxy/observe/metric_registry.h"

namespace mongoguard::proxy {

namespace beast = boost::beast;
namespace http = beast::http;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kMaxBody = 64 * 1024;
constexpr std::size_t kDefaultDecisions = 50;
constexpr std::size_t kMaxDecisions = 500;
constexpr auto kIdleTimeout = 30s;
constexpr auto kHandshakeTimeout = 10s;
constexpr std::size_t kMaxHeader = 16 * 1024;

using Parser = http::request_parser<http::string_body>;
using Response = http::response<http::string_body>;

void limit(Parser& parser) {
  parser.header_limit(kMaxHeader);
  parser.body_limit(kMaxBody);
}

}  // namespace

std::optional<json> admin_body_object(const AdminRequest& request, std::string& problem) {
  const auto first = request.body.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return json::object();
  json parsed = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    problem = "request body is not valid JSON";
    return std::nullopt;
  }
  if (!parsed.is_object()) {
    problem = "request body must be a JSON object";
    return std::nullopt;
  }
  return parsed;
}

std::string admin_operator_name(const AdminRequest& request, const json& body) {
  if (auto it = body.find("by"); it != body.end() && it->is_string()) {
    auto name = it->get<std::string>();
    if (name.find_first_not_of(" \t") != std::string::npos) return name;
  }
  const auto& header = request.operator_header;
  if (header.find_first_not_of(" \t") != std::string::npos) return header;
  return "";
}

std::optional<AdminOperatorAction> admin_operator_action(const AdminRequest& request,
                                                         AdminResponse& refusal) {
  std::string problem;
  auto body = admin_body_object(request, problem);
  if (!body) {
    refusal = admin_error(400, problem);
    return std::nullopt;
  }
  std::string by = admin_operator_name(request, *body);
  if (by.empty()) {
    refusal =
        admin_error(400, "say who you are: {\"by\": \"NAME\"} or an X-Mongoguard-Operator header");
    return std::nullopt;
  }
  return AdminOperatorAction{std::move(*body), std::move(by)};
}

std::optional<std::uint64_t> admin_hold_id(std::string_view text) {
  std::uint64_t id = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return id;
}

std::optional<AdminGrant> admin_grant(const json& body, std::string& problem) {
  AdminGrant grant;
  if (auto it = body.find("documents"); it != body.end()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() <= 0) {
      problem = "\"documents\" must be a positive integer";
      return std::nullopt;
    }
    grant.documents = it->get<std::int64_t>();
  }
  if (auto it = body.find("minutes"); it != body.end()) {
    if (!it->is_number() || !(it->get<double>() > 0) || it->get<double>() > 7 * 24 * 60) {
      problem = "\"minutes\" must be a positive number of minutes, at most a week";
      return std::nullopt;
    }
    grant.duration = std::chrono::milliseconds(std::llround(it->get<double>() * 60'000.0));
  }
  if (grant.documents == 0 && !grant.duration) {
    problem = "grant needs \"documents\": N and/or \"minutes\": T";
    return std::nullopt;
  }
  return grant;
}

std::string AdminGrant::details() const {
  std::string out;
  if (documents > 0) out += std::to_string(documents) + " document(s)";
  if (duration) {
    if (!out.empty()) out += " and ";
    out += "free passage for " + policy::format_duration(*duration);
  }
  return out;
}

namespace {

std::string render_metrics(AdminState& state, policy::TimePoint now) {
  std::string out = state.metrics.render_prometheus();
  const auto breakers = state.budgets.breakers(now);
  const auto tripped = std::count_if(breakers.begin(), breakers.end(),
                                     [](const policy::BreakerState& b) { return b.tripped; });
  // The alert "a hold has waited too long" needs the oldest one's age.
  double oldest_hold_seconds = 0;
  const auto steady_now = std::chrono::steady_clock::now();
  for (const auto& hold : state.holds.pending()) {
    oldest_hold_seconds = std::max(
        oldest_hold_seconds, std::chrono::duration<double>(steady_now - hold.created).count());
  }
  PrometheusWriter writer(out);
  writer.single(metric::kHoldsPending, state.holds.size());
  writer.single(metric::kBreakersTrippedNow, tripped);
  writer.single(metric::kHoldOldestAge, fmt::format("{:.3f}", oldest_hold_seconds));
  render_breaker_gauges(out, breakers);
  if (state.journal) {
    const auto& counters = state.journal->counters();
    writer.single(metric::kJournalDropped, counters.dropped_documents.load());
    writer.single(metric::kJournalExpired, counters.expired_documents.load());
    writer.single(metric::kJournalWriteFailures, counters.failed_writes.load());
    writer.single(metric::kJournalCorruptFiles, counters.corrupt_files.load());
    writer.single(metric::kJournalHealthy, state.journal->healthy() ? 1 : 0);
  }
  if (state.fleet) out += fleet_metrics(*state.fleet);
  return out;
}

void audit(AdminState& state, const std::string& action, const std::string& by,
           const std::string& target, const std::string& details) {
  if (state.audit_operator_action) state.audit_operator_action(action, by, target, details);
}

AdminResponse list_holds(AdminState& state, policy::TimePoint now) {
  json holds = json::array();
  for (const auto& hold : state.holds.pending()) holds.push_back(hold_json(hold, now));
  return admin_json(200, json{{"holds", std::move(holds)}});
}

AdminResponse resolve_hold(AdminState& state, const AdminRequest& request, const std::string& id,
                           bool approve) {
  AdminResponse refusal;
  auto action_of = admin_operator_action(request, refusal);
  if (!action_of) return refusal;
  const std::string& by = action_of->by;
  auto number = admin_hold_id(id);
  std::optional<policy::HoldInfo> hold;
  if (number) hold = state.holds.find(*number);
  if (!hold) return admin_error(404, "no pending hold " + id);
  const policy::HoldDecision decision{
      approve ? policy::HoldOutcome::kApproved : policy::HoldOutcome::kRejected, by};
  if (!state.holds.resolve(*number, decision)) {
    return admin_error(404, "hold " + id + " is no longer pending");
  }
  audit(state, approve ? "approve" : "reject", by, id,
        hold->operation + " on " + hold->ns + " (rule " + hold->rule + ")");
  spdlog::info("admin: hold {} ({} on {}) {} by {}", id, hold->operation, hold->ns,
               policy::hold_outcome_name(decision.outcome), by);
  return admin_json(
      200,
      json{{"id", *number}, {"outcome", policy::hold_outcome_name(decision.outcome)}, {"by", by}});
}

AdminResponse list_breakers(AdminState& state, policy::TimePoint now) {
  std::map<std::string, std::size_t> pending;
  for (const auto& hold : state.holds.pending()) ++pending[hold.breaker];
  json breakers = json::array();
  for (const auto& b : state.budgets.breakers(now)) {
    json entry = breaker_json(b, now);
    auto it = pending.find(b.name);
    entry["pending_holds"] = it == pending.end() ? 0 : it->second;
    breakers.push_back(std::move(entry));
  }
  return admin_json(200, json{{"breakers", std::move(breakers)}});
}

AdminResponse breaker_reply(AdminState& state, const std::string& name, const std::string& by,
                            policy::TimePoint now) {
  auto after = state.budgets.breaker(name, now);
  return admin_json(
      200, json{{"breaker", after ? breaker_json(*after, now) : json(nullptr)}, {"by", by}});
}

// approve-all, reject-all: every pending hold of the breaker.
AdminResponse resolve_breaker_holds(AdminState& state, const std::string& name,
                                    const std::string& action, const std::string& by,
                                    policy::TimePoint now) {
  const bool approve = action == "approve-all";
  const policy::HoldDecision decision{
      approve ? policy::HoldOutcome::kApproved : policy::HoldOutcome::kRejected, by};
  const bool known = state.budgets.breaker(name, now).has_value();
  const std::size_t count = state.holds.resolve_breaker(name, decision);
  if (!known && count == 0) return admin_error(404, "no breaker or pending holds named " + name);
  audit(state, action, by, name, std::to_string(count) + " hold(s)");
  spdlog::info("admin: {} on {} by {}: {} hold(s)", action, name, by, count);
  return admin_json(200, json{{"breaker", name},
                              {"outcome", policy::hold_outcome_name(decision.outcome)},
                              {"resolved", count},
                              {"by", by}});
}

AdminResponse reset_breaker(AdminState& state, const std::string& name, const std::string& by,
                            policy::TimePoint now) {
  if (!state.budgets.reset(name)) return admin_error(404, "no breaker named " + name);
  audit(state, "reset", by, name, "");
  spdlog::info("admin: breaker {} reset by {}", name, by);
  return breaker_reply(state, name, by, now);
}

AdminResponse grant_breaker(AdminState& state, const json& body, const std::string& name,
                            const std::string& by, policy::TimePoint now) {
  std::string problem;
  auto grant = admin_grant(body, problem);
  if (!grant) return admin_error(400, problem);
  if (!state.budgets.grant(name, grant->documents, grant->duration, now)) {
    return admin_error(404, "no breaker named " + name);
  }
  const std::string details = grant->details();
  audit(state, "grant", by, name, details);
  spdlog::info("admin: breaker {} granted {} by {}", name, details, by);
  return breaker_reply(state, name, by, now);
}

AdminResponse breaker_action(AdminState& state, const AdminRequest& request,
                             const std::string& name, const std::string& action,
                             policy::TimePoint now) {
  AdminResponse refusal;
  auto action_of = admin_operator_action(request, refusal);
  if (!action_of) return refusal;
  if (action == "approve-all" || action == "reject-all") {
    return resolve_breaker_holds(state, name, action, action_of->by, now);
  }
  if (action == "reset") return reset_breaker(state, name, action_of->by, now);
  return grant_breaker(state, action_of->body, name, action_of->by, now);
}

AdminResponse readiness(AdminState& state) {
  const bool ready = !state.ready || state.ready();
  if (!ready) return admin_text(503, "not ready\n");
  if (state.upstream_unready) {
    if (auto why = state.upstream_unready()) return admin_text(503, "not ready: " + *why + "\n");
  }
  // Fleet mode without Redis still enforces (local budgets): ready, degraded.
  if (state.fleet) return fleet_readiness(*state.fleet);
  return admin_text(200, "ready\n");
}

AdminResponse list_decisions(AdminState& state, std::string_view query) {
  std::size_t limit = kDefaultDecisions;
  if (auto given = query_param(query, "limit")) {
    std::size_t n = 0;
    auto [end, ec] = std::from_chars(given->data(), given->data() + given->size(), n);
    if (ec != std::errc() || end != given->data() + given->size() || n == 0) {
      return admin_error(400, "limit must be a positive integer");
    }
    limit = std::min(n, kMaxDecisions);
  }
  // The records are JSON already: embed them as they are.
  std::string out = "{\"decisions\":[";
  bool first = true;
  for (const auto& record : state.decisions.recent(limit)) {
    if (!first) out += ',';
    first = false;
    if (json::accept(record)) {
      out += record;
    } else {
      out += dump_json(json{{"unparsed", record}});
    }
  }
  out += "]}\n";
  return AdminResponse{200, "application/json", std::move(out)};
}

AdminResponse reload(AdminState& state, const AdminRequest& request) {
  std::string problem;
  auto body = admin_body_object(request, problem);
  if (!body) return admin_error(400, problem);
  const std::string by = admin_operator_name(request, *body);
  if (!state.reload) return admin_error(503, "reload is not available");
  std::string errors;
  if (!state.reload(errors)) {
    json lines = json::array();
    std::size_t start = 0;
    while (start < errors.size()) {
      auto end = errors.find('\n', start);
      if (end == std::string::npos) end = errors.size();
      if (end > start) lines.push_back(errors.substr(start, end - start));
      start = end + 1;
    }
    return admin_json(422, json{{"error", "configuration refused; the running one stays"},
                                {"errors", std::move(lines)}});
  }
  audit(state, "reload", by.empty() ? "api" : by, "config", "");
  return admin_json(200, json{{"ok", true}});
}

}  // namespace

std::optional<std::string> url_decode(std::string_view in, bool plus_is_space) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      const int hi = hex(in[i + 1]);
      const int lo = hex(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::vector<std::string>> split_path(std::string_view path) {
  std::vector<std::string> segments;
  if (path.empty() || path[0] != '/') return std::nullopt;
  path.remove_prefix(1);
  while (!path.empty()) {
    const auto slash = path.find('/');
    auto decoded = url_decode(path.substr(0, slash));
    if (!decoded) return std::nullopt;
    segments.push_back(std::move(*decoded));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  if (!segments.empty() && segments.back().empty()) segments.pop_back();
  return segments;
}

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    auto key = url_decode(pair.substr(0, eq), true);
    if (key && *key == name) {
      return url_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Walk the longer string in full; any length difference fails at the end.
  const std::size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(i < a.size() ? a[i] : 0);
    const auto y = static_cast<unsigned char>(i < b.size() ? b[i] : 0);
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

bool bearer_matches(std::string_view authorization, std::string_view token) {
  if (token.empty()) return false;
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() < kScheme.size()) return false;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return false;
  }
  authorization.remove_prefix(kScheme.size());
  while (!authorization.empty() && authorization.front() == ' ') authorization.remove_prefix(1);
  while (!authorization.empty() && authorization.back() == ' ') authorization.remove_suffix(1);
  return constant_time_equal(authorization, token);
}

void add_local_admin_routes(AdminRouter& router) {
  constexpr auto kOpen = AdminAuth::kOpen;
  constexpr auto kToken = AdminAuth::kToken;
  // Open to anyone: liveness, readiness, and the page (which holds no data).
  router.add({"GET", "/healthz", kOpen, [](const AdminCall&) { return admin_text(200, "ok\n"); }});
  router.add({"GET", "/readyz", kOpen, [](const AdminCall& c) { return readiness(c.state); }});
  router.add(
      {"GET", "/", kOpen, [](const AdminCall&) {
         return AdminResponse{200, "text/html; charset=utf-8", std::string(admin_page_html()), {}};
       }});
  router.add(
      {"GET", "/metrics", kToken, [](const AdminCall& c) {
         return AdminResponse{200, "text/plain; version=0.0.4", render_metrics(c.state, c.now), {}};
       }});
  router.add(
      {"GET", "/api/holds", kToken, [](const AdminCall& c) { return list_holds(c.state, c.now); }});
  router.add({"POST", "/api/holds/*/approve|reject", kToken, [](const AdminCall& c) {
                return resolve_hold(c.state, c.request, c.segments[2], c.segments[3] == "approve");
              }});
  router.add({"GET", "/api/breakers", kToken,
              [](const AdminCall& c) { return list_breakers(c.state, c.now); }});
  router.add({"POST", "/api/breakers/*/reset|grant|approve-all|reject-all", kToken,
              [](const AdminCall& c) {
                return breaker_action(c.state, c.request, c.segments[2], c.segments[3], c.now);
              }});
  router.add({"GET", "/api/decisions", kToken,
              [](const AdminCall& c) { return list_decisions(c.state, c.query); }});
  router.add({"POST", "/api/reload", kToken,
              [](const AdminCall& c) { return reload(c.state, c.request); }});
  add_journal_admin_routes(router);
}

namespace {

// What one read attempt asks for: `ec` is how reading the request ended.
// Sets `keep_alive`, `version` and `head`; nullopt when the connection should
// just close. The answer may carry a deferred part (fleet mode) for the
// listener to await.
std::optional<AdminResponse> answer(AdminState& state, Parser& parser, error_code ec,
                                    bool& keep_alive, unsigned& version, bool& head,
                                    policy::TimePoint now) {
  keep_alive = false;
  head = false;
  version = 11;
  if (ec == http::error::body_limit) return admin_error(413, "request body larger than 64 KiB");
  if (ec) return std::nullopt;
  const auto& request = parser.get();
  keep_alive = request.keep_alive();
  version = request.version();
  head = request.method() == http::verb::head;
  AdminRequest admin{std::string(request.method_string()), std::string(request.target()),
                     request.body(), std::string(request[http::field::authorization]),
                     std::string(request["X-Mongoguard-Operator"])};
  try {
    return handle_admin_request(state, admin, now);
  } catch (const std::exception& e) {
    spdlog::error("admin: {} {} failed: {}", admin.method, admin.target, e.what());
    return admin_error(500, "internal error");
  }
}

Response render(AdminResponse result, unsigned version, bool keep_alive, bool head) {
  if (head) result.body.clear();
  Response response{static_cast<http::status>(result.status), version};
  response.set(http::field::server, "mongoguard");
  response.set(http::field::content_type, result.content_type);
  response.set(http::field::cache_control, "no-store");
  if (result.status == 401) response.set(http::field::www_authenticate, "Bearer");
  response.keep_alive(keep_alive);
  response.body() = std::move(result.body);
  response.prepare_payload();
  return response;
}

}  // namespace

std::string answer_raw_admin_request(AdminState& state, std::string_view raw,
                                     policy::TimePoint now) {
  Parser parser;
  limit(parser);
  parser.eager(true);
  error_code ec;
  std::size_t used = 0;
  while (!ec && used < raw.size() && !parser.is_done()) {
    used += parser.put(asio::buffer(raw.data() + used, raw.size() - used), ec);
    if (ec == http::error::need_more) break;
  }
  // The listener closes quietly on a connection that ends before a whole
  // header (end_of_stream, partial_message).
  if (!parser.is_header_done() && ec != http::error::body_limit) return "";
  if (!ec && !parser.is_done()) {
    // The peer closed after what it sent: a request without a length ends here.
    parser.put_eof(ec);
  }
  if (ec == http::error::need_more || (!parser.is_done() && !ec)) return "";
  bool keep_alive = false;
  bool head = false;
  unsigned version = 11;
  auto result = answer(state, parser, ec, keep_alive, version, head, now);
  if (!result) return "";
  // Deferred answers exist only in fleet mode, which needs the listener's
  // event loop; here the immediate part is the answer.
  std::ostringstream out;
  out << render(std::move(*result), version, keep_alive, head);
  return out.str();
}

std::optional<std::string> admin_exposure_problem(const HostPort& listen, bool tls,
                                                  bool token_configured) {
  bool loopback = listen.host == "localhost";
  error_code ec;
  const auto address = asio::ip::make_address(listen.host, ec);
  if (!ec) loopback = address.is_loopback();
  if (loopback || (tls && token_configured)) return std::nullopt;
  std::string missing;
  if (!tls) missing = "admin.tls (cert and key)";
  if (!token_configured) missing += std::string(missing.empty() ? "" : " and ") + "a token file";
  return "the admin endpoint " + listen.to_string() +
         " is not a loopback address; it may listen there only with " + missing +
         " configured (the API can approve held deletes)";
}

AdminHttp::AdminHttp(asio::io_context& io, const tcp::endpoint& endpoint, AdminState& state,
                     std::shared_ptr<ssl::context> tls)
    : acceptor_(io, endpoint), state_(state), tls_(std::move(tls)) {}

void AdminHttp::start() {
  asio::co_spawn(
      acceptor_.get_executor(), [this] { return accept_loop(); }, asio::detached);
}

void AdminHttp::stop() {
  error_code ignored;
  acceptor_.close(ignored);
}

tcp::endpoint AdminHttp::local_endpoint() const { return acceptor_.local_endpoint(); }

asio::awaitable<void> AdminHttp::accept_loop() {
  while (acceptor_.is_open()) {
    error_code ec;
    tcp::socket socket =
        co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      spdlog::warn("admin: accept failed: {}", ec.message());
      asio::steady_timer pause(acceptor_.get_executor(), 50ms);
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    asio::co_spawn(
        acceptor_.get_executor(),
        [this, s = std::move(socket)]() mutable { return serve(std::move(s)); }, asio::detached);
  }
}

asio::awaitable<void> AdminHttp::serve(tcp::socket socket) {
  if (!tls_) {
    beast::tcp_stream stream(std::move(socket));
    co_await serve_requests(stream);
    error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return;
  }
  beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *tls_);
  error_code ec;
  beast::get_lowest_layer(stream).expires_after(kHandshakeTimeout);
  co_await stream.async_handshake(ssl::stream_base::server,
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    spdlog::debug("admin: TLS handshake failed: {}", ec.message());
    co_return;
  }
  co_await serve_requests(stream);
  beast::get_lowest_layer(stream).expires_after(kHandshakeTimeout);
  co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
}

template <typename Stream>
asio::awaitable<void> AdminHttp::serve_requests(Stream& stream) {
  beast::flat_buffer buffer;
  for (;;) {
    Parser parser;
    limit(parser);
    error_code ec;
    beast::get_lowest_layer(stream).expires_after(kIdleTimeout);
    co_await http::async_read(stream, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, ec));
    bool keep_alive = false;
    bool head = false;
    unsigned version = 11;
    auto result = answer(state_, parser, ec, keep_alive, version, head, policy::Clock::now());
    if (!result) break;
    if (result->deferred) {
      try {
        result = co_await result->deferred();
      } catch (const std::exception& e) {
        spdlog::error("admin: fleet request failed: {}", e.what());
        result = admin_error(500, "internal error");
      }
    }
    auto response = render(std::move(*result), version, keep_alive, head);
    beast::get_lowest_layer(stream).expires_after(kIdleTimeout);
    co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !keep_alive) break;
  }
}

}  // namespace mongoguard::proxy
