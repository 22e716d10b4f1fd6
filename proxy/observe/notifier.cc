#include "proxy/observe/notifier.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <map>

#include "config/url.h"
#include "proxy/observe/json.h"

namespace mongoguard::proxy {

namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kMaxPending = 1000;  // per target
constexpr int kMaxAttempts = 5;
constexpr auto kFirstBackoff = 500ms;
constexpr auto kRequestTimeout = 5s;

bool wants(const WebhookTarget& target, const std::string& event) {
  return target.events.empty() ||
         std::find(target.events.begin(), target.events.end(), event) != target.events.end();
}

}  // namespace

// Everything below runs on `io` only: public calls post there, so no locks.
// Each target has its own queue and one delivery coroutine, so a slow
// receiver delays only its own events, and each receiver sees them in order.
struct Notifier::Impl : std::enable_shared_from_this<Notifier::Impl> {
  struct Queue {
    WebhookTarget target;
    std::optional<HttpUrl> url;
    std::deque<std::pair<std::string, std::string>> pending;  // event, body
    bool sending = false;
    bool removed = false;
    std::uint64_t dropped = 0;
  };

  explicit Impl(asio::io_context& context) : io(context) {}

  void replace(std::vector<WebhookTarget> targets) {
    std::map<std::string, std::shared_ptr<Queue>> next;
    for (auto& target : targets) {
      auto it = queues.find(target.url);
      std::shared_ptr<Queue> q;
      if (it != queues.end()) {
        q = it->second;
      } else {
        q = std::make_shared<Queue>();
        q->url = parse_http_url(target.url);
        if (!q->url)
          spdlog::warn("notify: ignoring webhook {}: not an http:// URL",
                       config::redacted_url(target.url, true));
      }
      q->target = std::move(target);
      next[q->target.url] = q;
    }
    for (auto& [url, q] : queues) {
      if (!next.count(url)) q->removed = true;
    }
    queues = std::move(next);
  }

  // Any thread: the body is rendered by the caller, queued on `io`.
  void submit(std::string event, const nlohmann::json& body) {
    asio::post(io, [self = shared_from_this(), e = std::move(event), b = dump_json(body)] {
      self->enqueue(e, b);
    });
  }

  void enqueue(const std::string& event, const std::string& body) {
    if (stopped) return;
    for (auto& [url, q] : queues) {
      if (!q->url || !wants(q->target, event)) continue;
      q->pending.emplace_back(event, body);
      if (q->pending.size() > kMaxPending) {
        q->pending.pop_front();
        if (q->dropped++ % 100 == 0) {
          spdlog::warn("notify: {} is not keeping up; dropped {} oldest event(s) so far",
                       config::redacted_url(url, true), q->dropped);
        }
      }
      if (!q->sending) {
        q->sending = true;
        asio::co_spawn(
            io, [self = shared_from_this(), queue = q] { return self->drain(queue); },
            asio::detached);
      }
    }
  }

  awaitable<void> drain(std::shared_ptr<Queue> q) {
    while (!stopped && !q->removed && !q->pending.empty()) {
      auto [event, body] = std::move(q->pending.front());
      q->pending.pop_front();
      auto backoff = std::chrono::duration_cast<std::chrono::milliseconds>(kFirstBackoff);
      for (int attempt = 1;; ++attempt) {
        std::string error = co_await post(*q->url, body);
        if (error.empty()) break;
        if (attempt >= kMaxAttempts || stopped || q->removed) {
          spdlog::warn("notify: giving up on {} event to {} after {} attempt(s): {}", event,
                       config::redacted_url(q->target.url, true), attempt, error);
          break;
        }
        spdlog::debug("notify: {} event to {} failed (attempt {}): {}", event,
                      config::redacted_url(q->target.url, true), attempt, error);
        asio::steady_timer timer(io, backoff);
        error_code ignored;
        co_await timer.async_wait(asio::redirect_error(use_awaitable, ignored));
        backoff *= 2;
      }
    }
    q->sending = false;
  }

  // One POST; returns "" on a 2xx reply, else what went wrong.
  awaitable<std::string> post(const HttpUrl& url, const std::string& body) {
    error_code ec;
    auto token = asio::redirect_error(use_awaitable, ec);
    tcp::resolver resolver(io);
    auto results = co_await resolver.async_resolve(url.host, url.port, token);
    if (ec) co_return "resolve: " + ec.message();
    beast::tcp_stream stream(io);
    stream.expires_after(kRequestTimeout);
    co_await stream.async_connect(results, token);
    if (ec) co_return "connect: " + ec.message();
    http::request<http::string_body> request{http::verb::post, url.target, 11};
    request.set(http::field::host, url.host_header());
    request.set(http::field::user_agent, "mongoguard/" MONGOGUARD_VERSION);
    request.set(http::field::content_type, "application/json");
    request.keep_alive(false);
    request.body() = body;
    request.prepare_payload();
    co_await http::async_write(stream, request, token);
    if (ec) co_return "send: " + ec.message();
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024);
    co_await http::async_read(stream, buffer, parser, token);
    if (ec) co_return "reply: " + ec.message();
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    const auto status = parser.get().result_int();
    if (status < 200 || status >= 300) co_return "HTTP " + std::to_string(status);
    co_return "";
  }

  asio::io_context& io;
  std::map<std::string, std::shared_ptr<Queue>> queues;
  std::atomic<bool> stopped{false};
};

Notifier::Notifier(asio::io_context& io, std::vector<WebhookTarget> targets)
    : impl_(std::make_shared<Impl>(io)) {
  impl_->replace(std::move(targets));
}

Notifier::~Notifier() {
  // In-flight deliveries keep the Impl alive and stop at their next step.
  impl_->stopped = true;
}

void Notifier::set_targets(std::vector<WebhookTarget> targets) {
  asio::post(impl_->io,
             [impl = impl_, t = std::move(targets)]() mutable { impl->replace(std::move(t)); });
}

void Notifier::set_links(EventLinks links) {
  std::lock_guard lock(links_mutex_);
  links_ = std::move(links);
}

EventLinks Notifier::links() const {
  std::lock_guard lock(links_mutex_);
  return links_;
}

void Notifier::hold_created(const policy::HoldInfo& hold) {
  impl_->submit("hold", hold_event(hold, policy::Clock::now(), links()));
}

void Notifier::hold_resolved(const policy::HoldInfo& hold, const policy::HoldDecision& decision) {
  impl_->submit("resolved", resolved_event(hold, decision, policy::Clock::now(), links()));
}

void Notifier::breaker_tripped(const policy::BreakerState& breaker) {
  impl_->submit("tripped", tripped_event(breaker, policy::Clock::now()));
}

}  // namespace mongoguard::proxy
