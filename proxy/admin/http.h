// The admin HTTP endpoint: the operators' JSON API (holds, breakers,
// decisions, reload), /metrics, /healthz, /readyz and the web page at /.
// Runs on the main thread's io_context, away from the data path.
//
// Every path but /, /healthz and /readyz needs `Authorization: Bearer
// <token>`; the page itself carries no data and asks for the token.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/admin/state.h"
#include "proxy/net/asio.h"
#include "proxy/net/endpoint.h"
#include "proxy/net/refusals.h"
#include "proxy/net/tls.h"

namespace mongoguard::proxy {

// One request as the router sees it, free of Beast types so the routing and
// every endpoint can be tested without sockets.
struct AdminRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, as sent
  std::string body;
  std::string authorization;    // the Authorization header
  std::string operator_header;  // X-Mongoguard-Operator
  std::string peer;             // the client's address, without its port ("" = unknown)
};

struct AdminResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Set when the answer needs other proxies (fleet mode): the server awaits
  // it for the real response. Only after the request was authenticated.
  std::function<awaitable<AdminResponse>()> deferred;
  // How long the listener waits before sending it (a refused token from an
  // address that keeps failing: see AuthFailures).
  std::chrono::milliseconds delay{0};
};

AdminResponse handle_admin_request(AdminState& state, const AdminRequest& request,
                                   policy::TimePoint now);

// Helpers, exposed for tests.
// Percent-decodes one path segment or query component; nullopt on a bad
// escape. `plus_is_space` for query strings (form encoding).
std::optional<std::string> url_decode(std::string_view in, bool plus_is_space = false);
// "/api/breakers/a%3Ab/reset" -> {"api", "breakers", "a:b", "reset"}; a
// trailing slash is ignored. nullopt on a bad escape.
std::optional<std::vector<std::string>> split_path(std::string_view path);
// The value of `name` in a query string ("limit=5&x=y"), decoded.
std::optional<std::string> query_param(std::string_view query, std::string_view name);
// The body of a POST: empty, or a JSON object; nullopt with `problem` set
// when neither.
std::optional<nlohmann::json> admin_body_object(const AdminRequest& request, std::string& problem);
// The operator's name: the body's "by", else the X-Mongoguard-Operator
// header. Empty when neither names anyone.
std::string admin_operator_name(const AdminRequest& request, const nlohmann::json& body);
// An operator's POST: its body (an object), who they are and why.
struct AdminOperatorAction {
  nlohmann::json body;
  std::string by;
  std::string reason;  // the body's "reason"; "" when it gives none
  bool named = false;  // `by` is a named operator's token, not a claimed name
};
// nullopt with the 400 answer in `refusal` when the body is not an object,
// gives a bad reason, or (the shared token) names nobody: admin_operator_name.
// A named operator's token names them; a "by" it sends is ignored.
std::optional<AdminOperatorAction> admin_operator_action(const AdminRequest& request,
                                                         const AdminOperator* who,
                                                         AdminResponse& refusal);
// Most characters an operator's reason may have.
inline constexpr std::size_t kMaxReason = 500;
// A hold id in a path ("123"); nullopt when not a number.
std::optional<std::uint64_t> admin_hold_id(std::string_view text);
// What a grant's body asks for: "documents" (a positive integer) and/or
// "minutes" (positive, at most a week); nullopt with `problem` set otherwise.
struct AdminGrant {
  std::int64_t documents = 0;
  std::optional<std::chrono::milliseconds> duration;
  // "5 document(s) and free passage for 10m", for the audit log.
  std::string details() const;
};
std::optional<AdminGrant> admin_grant(const nlohmann::json& body, std::string& problem);
// Compares in time that depends only on the lengths, not on where they differ.
bool constant_time_equal(std::string_view a, std::string_view b);
// True when `authorization` is "Bearer <token>" and token is non-empty.
bool bearer_matches(std::string_view authorization, std::string_view token);

// What the listener does with one request, without a socket: parses `raw`
// with the listener's limits, answers it and returns the serialized
// response ("" when the bytes are not a complete request). For fuzzing and
// tests.
std::string answer_raw_admin_request(AdminState& state, std::string_view raw,
                                     policy::TimePoint now);

// Why the admin endpoint must not listen on `listen` with this setup, or
// nullopt when it may: anything but a loopback address needs HTTPS and a
// token, since the API can approve held deletes.
std::optional<std::string> admin_exposure_problem(const HostPort& listen, bool tls,
                                                  bool token_configured);

class AdminHttp {
 public:
  // `tls` set: HTTPS only.
  AdminHttp(asio::io_context& io, const tcp::endpoint& endpoint, AdminState& state,
            std::shared_ptr<ssl::context> tls = nullptr);
  // Connections beyond this many open at once are closed on accept
  // (admin.max_connections).
  void set_max_connections(std::size_t n) { max_connections_ = n; }
  void start();
  void stop();
  tcp::endpoint local_endpoint() const;
  bool is_tls() const { return is_tls_; }
  // New certificates (admin.tls reloaded): connections accepted from now on
  // use them, open ones keep theirs. Ignored when the endpoint is plain
  // HTTP: that changes on restart only. Any thread.
  void set_tls(std::shared_ptr<ssl::context> tls) {
    if (is_tls_ && tls) tls_.store(std::move(tls), std::memory_order_release);
  }

 private:
  awaitable<void> accept_loop();
  awaitable<void> serve(tcp::socket socket);
  template <typename Stream>
  awaitable<void> serve_requests(Stream& stream, const std::string& peer);
  bool refuse_over_limit(tcp::socket& socket);

  tcp::acceptor acceptor_;
  AdminState& state_;
  const bool is_tls_;
  std::atomic<std::shared_ptr<ssl::context>> tls_;
  std::size_t max_connections_ = 16;
  std::size_t open_ = 0;  // connections being served (admin thread only)
  OverLimitRefusals refusals_;
};

}  // namespace mongoguard::proxy
