// Outgoing notifications (webhooks) about holds and breakers. Calls return at
// once: delivery happens in the background with retries, so a slow or dead
// receiver never slows the data path. Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "policy/budget.h"
#include "policy/holds.h"
#include "proxy/net/asio.h"
#include "proxy/observe/json.h"

namespace mongoguard::proxy {

struct WebhookTarget {
  std::string url;                  // http://host:port/path (plain HTTP)
  std::vector<std::string> events;  // any of "hold", "resolved", "tripped"; empty = all
};

class Notifier {
 public:
  // Deliveries run on `io` (the main thread's context, not a worker's).
  Notifier(asio::io_context& io, std::vector<WebhookTarget> targets);
  ~Notifier();

  // Replaces the targets (config reload).
  void set_targets(std::vector<WebhookTarget> targets);
  // The proxy's name and admin.public_url, put into every event.
  void set_links(EventLinks links);

  void hold_created(const policy::HoldInfo& hold);
  void hold_resolved(const policy::HoldInfo& hold, const policy::HoldDecision& decision);
  void breaker_tripped(const policy::BreakerState& breaker);

 private:
  EventLinks links() const;

  struct Impl;
  std::shared_ptr<Impl> impl_;
  mutable std::mutex links_mutex_;
  EventLinks links_;
};

}  // namespace mongoguard::proxy
