// libFuzzer target for the URL reader (config/url.h) and the Redis URL
// parser built on it: arbitrary text must never crash, and what parses must
// be made of the text it came from.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/config.h"
#include "config/url.h"

namespace config = mongoguard::config;

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

void check_parts(std::string_view text, const config::Url& url) {
  check(text.find(url.hostport) != std::string_view::npos);
  check(url.path.empty() || url.path.front() == '/');
  if (url.port) {
    check(url.hostport.size() >= url.port->size() + 1);
    check(std::string_view(url.hostport).ends_with(":" + *url.port));
  }
  if (url.bracketed) check(url.hostport.starts_with("[" + url.host + "]"));
  if (!url.scheme.empty()) check(text.starts_with(url.scheme + "://"));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string error;
  for (const bool last_at : {false, true}) {
    if (auto url = config::parse_url(text, error, {.userinfo_to_last_at = last_at})) {
      check_parts(text, *url);
      (void)url->user();
      (void)url->password();
      if (url->port) (void)config::parse_port(*url->port);
    } else {
      check(!error.empty());
    }
  }
  error.clear();
  if (auto redis = config::parse_redis_url(text, error)) {
    check(!redis->host.empty() && redis->port > 0 && redis->db >= 0);
  } else {
    check(!error.empty());
  }
  return 0;
}
