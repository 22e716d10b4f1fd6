// Closed-loop load generator for MongoDB wire-protocol relays.
//
// Each connection sends hello, then loops: one command, wait for its reply,
// next command. Commands follow --mix in a fixed weighted rotation (find:90,
// delete:10 = 9 finds then 1 delete), each padded to --message-bytes (whole
// message). Writes are filtered by _id in database "bench", so the example
// policy lets them through without a budget. Every request is timed; the
// percentiles come from the full sorted sample, not from buckets.
//
//   loadgen --target HOST:PORT --connections N --duration SECONDS
//           --message-bytes N [--mix find:90,delete:10] [--threads N] [--json]
//   loadgen --target HOST:PORT --connections N --duration SECONDS --idle
//
// Prints one JSON object with --json, a short human summary otherwise.
// --idle: opens the connections, says hello on each, prints
// {"idle_connections": READY, "failed_connections": F} (flushed), then holds
// them open and silent for --duration seconds: for measuring what idle
// connections cost a relay.
// Exit status 1 when no connection could complete its hello.

#include <bson/bson.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bson/wire.h"
#include "proxy/net/asio.h"  // first: <utility> before Asio's awaitable.hpp

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
namespace wire = mongoguard::wire;

enum class Op { kFind, kInsert, kUpdate, kDelete };

struct MixEntry {
  Op op;
  std::string name;
  int weight;
};

struct Settings {
  std::string host;
  std::string port;
  int connections = 1;
  double duration_s = 5;
  std::size_t message_bytes = 1024;
  std::vector<MixEntry> mix{{Op::kFind, "find", 1}};
  std::string mix_text = "find:1";
  int threads = 1;
  bool json = false;
  bool idle = false;
};

// Per-connection results; merged after the run.
struct Stats {
  std::vector<std::uint32_t> latency_ns;  // one per completed request
  std::uint64_t errors = 0;               // ok != 1, bad responseTo, undecodable reply
  bool hello_ok = false;
  bool io_failed = false;
  std::string failure;
};

struct Connection {
  explicit Connection(asio::io_context& io) : socket(io) {}
  tcp::socket socket;
  Stats stats;
  std::vector<std::vector<std::uint8_t>> requests;  // one per rotation slot
  std::int32_t next_id = 1;
};

// Builds the command `op` as an OP_MSG of about `target` bytes in total.
std::vector<std::uint8_t> build_command(Op op, std::int64_t id, std::size_t target) {
  auto build = [&](std::size_t pad_len) {
    const std::string pad(pad_len, 'p');
    bson_t body = BSON_INITIALIZER;
    switch (op) {
      case Op::kFind: {
        BSON_APPEND_UTF8(&body, "find", "bench");
        bson_t filter;
        BSON_APPEND_DOCUMENT_BEGIN(&body, "filter", &filter);
        BSON_APPEND_INT64(&filter, "_id", id);
        bson_append_document_end(&body, &filter);
        BSON_APPEND_INT32(&body, "limit", 1);
        BSON_APPEND_BOOL(&body, "singleBatch", true);
        if (pad_len) BSON_APPEND_UTF8(&body, "comment", pad.c_str());
        break;
      }
      case Op::kInsert: {
        BSON_APPEND_UTF8(&body, "insert", "bench");
        bson_t docs, doc;
        BSON_APPEND_ARRAY_BEGIN(&body, "documents", &docs);
        BSON_APPEND_DOCUMENT_BEGIN(&docs, "0", &doc);
        BSON_APPEND_INT64(&doc, "_id", id);
        if (pad_len) BSON_APPEND_UTF8(&doc, "pad", pad.c_str());
        bson_append_document_end(&docs, &doc);
        bson_append_array_end(&body, &docs);
        break;
      }
      case Op::kUpdate: {
        BSON_APPEND_UTF8(&body, "update", "bench");
        bson_t updates, stmt, q, u, set;
        BSON_APPEND_ARRAY_BEGIN(&body, "updates", &updates);
        BSON_APPEND_DOCUMENT_BEGIN(&updates, "0", &stmt);
        BSON_APPEND_DOCUMENT_BEGIN(&stmt, "q", &q);
        BSON_APPEND_INT64(&q, "_id", id);
        bson_append_document_end(&stmt, &q);
        BSON_APPEND_DOCUMENT_BEGIN(&stmt, "u", &u);
        BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);
        if (pad_len) {
          BSON_APPEND_UTF8(&set, "pad", pad.c_str());
        } else {
          BSON_APPEND_INT32(&set, "v", 1);
        }
        bson_append_document_end(&u, &set);
        bson_append_document_end(&stmt, &u);
        BSON_APPEND_BOOL(&stmt, "multi", false);
        bson_append_document_end(&updates, &stmt);
        bson_append_array_end(&body, &updates);
        break;
      }
      case Op::kDelete: {
        BSON_APPEND_UTF8(&body, "delete", "bench");
        bson_t deletes, stmt, q;
        BSON_APPEND_ARRAY_BEGIN(&body, "deletes", &deletes);
        BSON_APPEND_DOCUMENT_BEGIN(&deletes, "0", &stmt);
        BSON_APPEND_DOCUMENT_BEGIN(&stmt, "q", &q);
        BSON_APPEND_INT64(&q, "_id", id);
        bson_append_document_end(&stmt, &q);
        BSON_APPEND_INT32(&stmt, "limit", 1);
        bson_append_document_end(&deletes, &stmt);
        bson_append_array_end(&body, &deletes);
        if (pad_len) BSON_APPEND_UTF8(&body, "comment", pad.c_str());
        break;
      }
    }
    BSON_APPEND_BOOL(&body, "ordered", true);
    BSON_APPEND_UTF8(&body, "$db", "bench");
    auto message = wire::build_op_msg(&body, 0, 0);
    bson_destroy(&body);
    return message;
  };
  auto message = build(0);
  // Guess the pad length from the unpadded size, then correct it once by the
  // difference (string element overhead differs a little between commands).
  if (target > message.size() + 16) {
    std::size_t pad_len = target - message.size() - 10;
    message = build(pad_len);
    if (message.size() != target && pad_len + target > message.size()) {
      pad_len = pad_len + target - message.size();
      message = build(pad_len);
    }
  }
  return message;
}

std::int32_t set_request_id(std::vector<std::uint8_t>& message, std::int32_t id) {
  auto h = wire::read_header(message);
  h.request_id = id;
  wire::write_header(message.data(), h);
  return id;
}

// True when the reply body's `ok` is 1.
bool reply_ok(const std::vector<std::uint8_t>& reply) {
  const auto decoded = wire::decode_op_msg(reply, false);
  if (!decoded.ok()) return false;
  bson_t body;
  if (!decoded.view.body.as_bson(&body)) return false;
  bson_iter_t it;
  return bson_iter_init_find(&it, &body, "ok") && bson_iter_as_double(&it) == 1.0;
}

// Sends `request` and reads the reply into `reply`. False on a protocol or
// I/O failure (recorded in stats).
asio::awaitable<bool> round_trip(Connection& c, std::vector<std::uint8_t>& request,
                                 std::vector<std::uint8_t>& reply) {
  const std::int32_t id = set_request_id(request, c.next_id++);
  co_await asio::async_write(c.socket, asio::buffer(request), asio::use_awaitable);
  reply.resize(wire::kHeaderSize);
  co_await asio::async_read(c.socket, asio::buffer(reply.data(), wire::kHeaderSize),
                            asio::use_awaitable);
  const auto h = wire::read_header(reply);
  if (wire::check_header(h) != wire::DecodeError::kNone) {
    c.stats.failure = "bad reply header";
    co_return false;
  }
  reply.resize(static_cast<std::size_t>(h.message_length));
  co_await asio::async_read(
      c.socket, asio::buffer(reply.data() + wire::kHeaderSize, reply.size() - wire::kHeaderSize),
      asio::use_awaitable);
  if (h.response_to != id) {
    c.stats.failure = "responseTo mismatch";
    co_return false;
  }
  co_return true;
}

asio::awaitable<void> connect_and_hello(Connection& c, const tcp::resolver::results_type& ends) {
  try {
    co_await asio::async_connect(c.socket, ends, asio::use_awaitable);
    c.socket.set_option(tcp::no_delay(true));
    bson_t body = BSON_INITIALIZER;
    BSON_APPEND_INT32(&body, "hello", 1);
    BSON_APPEND_BOOL(&body, "helloOk", true);
    bson_t client, app;
    BSON_APPEND_DOCUMENT_BEGIN(&body, "client", &client);
    BSON_APPEND_DOCUMENT_BEGIN(&client, "application", &app);
    BSON_APPEND_UTF8(&app, "name", "loadgen");
    bson_append_document_end(&client, &app);
    bson_append_document_end(&body, &client);
    BSON_APPEND_UTF8(&body, "$db", "admin");
    auto hello = wire::build_op_msg(&body, 0, 0);
    bson_destroy(&body);
    std::vector<std::uint8_t> reply;
    if (co_await round_trip(c, hello, reply)) c.stats.hello_ok = reply_ok(reply);
    if (!c.stats.hello_ok && c.stats.failure.empty()) c.stats.failure = "hello refused";
  } catch (const boost::system::system_error& e) {
    c.stats.failure = e.what();
  }
}

asio::awaitable<void> run_loop(Connection& c, Clock::time_point deadline) {
  std::vector<std::uint8_t> reply;
  reply.reserve(64 * 1024);
  std::size_t slot = 0;
  try {
    for (;;) {
      const auto start = Clock::now();
      if (start >= deadline) break;
      auto& request = c.requests[slot];
      slot = slot + 1 == c.requests.size() ? 0 : slot + 1;
      if (!co_await round_trip(c, request, reply)) {
        c.stats.io_failed = true;
        break;
      }
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
      c.stats.latency_ns.push_back(
          static_cast<std::uint32_t>(std::min<std::int64_t>(ns.count(), UINT32_MAX)));
      if (!reply_ok(reply)) ++c.stats.errors;
    }
  } catch (const boost::system::system_error& e) {
    c.stats.io_failed = true;
    c.stats.failure = e.what();
  }
}

bool parse_mix(std::string_view text, Settings& s) {
  s.mix.clear();
  s.mix_text = std::string(text);
  while (!text.empty()) {
    const auto comma = text.find(',');
    const auto item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const auto colon = item.find(':');
    const std::string name(item.substr(0, colon));
    const int weight = colon == std::string_view::npos
                           ? 1
                           : std::atoi(std::string(item.substr(colon + 1)).c_str());
    if (weight <= 0) return false;
    Op op;
    if (name == "find")
      op = Op::kFind;
    else if (name == "insert")
      op = Op::kInsert;
    else if (name == "update")
      op = Op::kUpdate;
    else if (name == "delete")
      op = Op::kDelete;
    else
      return false;
    s.mix.push_back({op, name, weight});
  }
  return !s.mix.empty();
}

// The rotation: weights reduced by their gcd, so find:90,delete:10 is 9 + 1.
std::vector<Op> rotation(const std::vector<MixEntry>& mix) {
  int g = 0;
  for (const auto& m : mix) g = std::gcd(g, m.weight);
  std::vector<Op> out;
  for (const auto& m : mix)
    for (int i = 0; i < m.weight / g; ++i) out.push_back(m.op);
  return out;
}

double percentile_us(const std::vector<std::uint32_t>& sorted, double q) {
  if (sorted.empty()) return std::nan("");
  // Nearest rank: the smallest value with at least q of the samples at or below it.
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1] / 1000.0;
}

int usage() {
  std::fprintf(stderr,
               "usage: loadgen --target HOST:PORT --connections N --duration SECONDS\n"
               "               --message-bytes N [--mix find:90,delete:10] [--threads N] "
               "[--json]\n"
               "       loadgen --target HOST:PORT --connections N --duration SECONDS --idle\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--json") {
      s.json = true;
      continue;
    }
    if (arg == "--idle") {
      s.idle = true;
      continue;
    }
    if (i + 1 >= argc) return usage();
    const std::string value = argv[++i];
    if (arg == "--target") {
      const auto colon = value.rfind(':');
      if (colon == std::string::npos) return usage();
      s.host = value.substr(0, colon);
      s.port = value.substr(colon + 1);
    } else if (arg == "--connections") {
      s.connections = std::max(1, std::atoi(value.c_str()));
    } else if (arg == "--duration") {
      s.duration_s = std::atof(value.c_str());
    } else if (arg == "--message-bytes") {
      s.message_bytes = std::strtoul(value.c_str(), nullptr, 10);
    } else if (arg == "--mix") {
      if (!parse_mix(value, s)) return usage();
    } else if (arg == "--threads") {
      s.threads = std::max(1, std::atoi(value.c_str()));
    } else {
      return usage();
    }
  }
  if (s.host.empty() || s.duration_s <= 0) return usage();
  s.threads = std::min(s.threads, s.connections);

  // Connections are dealt round-robin to threads; each thread owns one
  // io_context and its connections, so the data path shares nothing.
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  for (int t = 0; t < s.threads; ++t) contexts.push_back(std::make_unique<asio::io_context>(1));
  std::vector<std::unique_ptr<Connection>> connections;
  const auto slots = rotation(s.mix);
  for (int i = 0; i < s.connections; ++i) {
    auto c = std::make_unique<Connection>(*contexts[static_cast<std::size_t>(i % s.threads)]);
    for (std::size_t k = 0; !s.idle && k < slots.size(); ++k)
      c->requests.push_back(
          build_command(slots[k], i * 1000003LL + static_cast<std::int64_t>(k), s.message_bytes));
    connections.push_back(std::move(c));
  }
  const std::size_t actual_bytes = s.idle ? 0 : connections.front()->requests.front().size();

  auto run_all = [&] {
    std::vector<std::thread> threads;
    for (int t = 1; t < s.threads; ++t) threads.emplace_back([&, t] { contexts[t]->run(); });
    contexts[0]->run();
    for (auto& thread : threads) thread.join();
    for (auto& io : contexts) io->restart();
  };

  // Phase 1: connect and hello everywhere, untimed.
  {
    asio::io_context resolver_io;
    tcp::resolver resolver(resolver_io);
    const auto ends = resolver.resolve(s.host, s.port);
    for (int i = 0; i < s.connections; ++i)
      asio::co_spawn(*contexts[static_cast<std::size_t>(i % s.threads)],
                     connect_and_hello(*connections[static_cast<std::size_t>(i)], ends),
                     asio::detached);
    run_all();
  }
  int ready = 0;
  std::string first_failure;
  for (const auto& c : connections) {
    if (c->stats.hello_ok)
      ++ready;
    else if (first_failure.empty())
      first_failure = c->stats.failure;
  }
  if (ready == 0) {
    std::fprintf(stderr, "loadgen: no connection completed hello: %s\n", first_failure.c_str());
    return 1;
  }

  if (s.idle) {
    std::printf("{\"idle_connections\":%d,\"failed_connections\":%d}\n", ready,
                s.connections - ready);
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::duration<double>(s.duration_s));
    return 0;
  }

  // Phase 2: the timed closed loop.
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(s.duration_s));
  for (int i = 0; i < s.connections; ++i) {
    auto& c = *connections[static_cast<std::size_t>(i)];
    if (c.stats.hello_ok) {
      c.stats.latency_ns.reserve(1 << 16);
      asio::co_spawn(*contexts[static_cast<std::size_t>(i % s.threads)], run_loop(c, deadline),
                     asio::detached);
    }
  }
  run_all();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<std::uint32_t> all;
  std::uint64_t errors = 0;
  int failed = 0;
  for (auto& c : connections) {
    all.insert(all.end(), c->stats.latency_ns.begin(), c->stats.latency_ns.end());
    errors += c->stats.errors;
    if (c->stats.io_failed || !c->stats.hello_ok) {
      ++failed;
      if (first_failure.empty()) first_failure = c->stats.failure;
    }
  }
  std::sort(all.begin(), all.end());
  double sum = 0;
  for (auto v : all) sum += v;
  const double mean_us =
      all.empty() ? std::nan("") : sum / static_cast<double>(all.size()) / 1000.0;
  const double throughput = static_cast<double>(all.size()) / elapsed;
  const double p50 = percentile_us(all, 0.50), p99 = percentile_us(all, 0.99),
               p999 = percentile_us(all, 0.999);
  const double max_us = all.empty() ? std::nan("") : all.back() / 1000.0;

  auto num = [](double v) {  // JSON has no NaN: null instead
    char buf[64];
    if (!std::isfinite(v)) return std::string("null");
    std::snprintf(buf, sizeof buf, "%.3f", v);
    return std::string(buf);
  };
  if (s.json) {
    std::printf(
        "{\"target\":\"%s:%s\",\"connections\":%d,\"threads\":%d,\"mix\":\"%s\","
        "\"message_bytes\":%zu,\"duration_s\":%s,\"messages\":%zu,\"errors\":%llu,"
        "\"failed_connections\":%d,\"throughput_msgs_per_s\":%s,\"latency_us\":{\"p50\":%s,"
        "\"p99\":%s,\"p999\":%s,\"mean\":%s,\"max\":%s}}\n",
        s.host.c_str(), s.port.c_str(), s.connections, s.threads, s.mix_text.c_str(), actual_bytes,
        num(elapsed).c_str(), all.size(), static_cast<unsigned long long>(errors), failed,
        num(throughput).c_str(), num(p50).c_str(), num(p99).c_str(), num(p999).c_str(),
        num(mean_us).c_str(), num(max_us).c_str());
  } else {
    std::printf("%s:%s  %d conn  %zu B  %s\n", s.host.c_str(), s.port.c_str(), s.connections,
                actual_bytes, s.mix_text.c_str());
    std::printf("  %zu messages in %.2f s = %.0f msg/s, %llu errors, %d failed connections\n",
                all.size(), elapsed, throughput, static_cast<unsigned long long>(errors), failed);
    std::printf("  latency µs: p50 %.1f  p99 %.1f  p99.9 %.1f  mean %.1f  max %.1f\n", p50, p99,
                p999, mean_us, max_us);
  }
  if (!first_failure.empty()) std::fprintf(stderr, "loadgen: %s\n", first_failure.c_str());
  return 0;
}
