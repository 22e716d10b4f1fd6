#include "proxy/reply_tracker.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace mongoguard::proxy {

namespace {

// The reply's OP_MSG flags say more replies follow (an exhaust stream).
bool more_replies_follow(wire::Bytes frame, std::vector<std::uint8_t>& scratch,
                         std::int32_t max_size) {
  wire::Bytes plain(frame);
  if (wire::read_header(frame).op_code == static_cast<std::int32_t>(wire::OpCode::kCompressed)) {
    if (wire::inflate(plain, scratch, max_size) != wire::DecodeError::kNone) return false;
    plain = scratch;
  }
  return wire::read_header(plain).op_code == static_cast<std::int32_t>(wire::OpCode::kMsg) &&
         plain.size() > wire::kHeaderSize && (plain[wire::kHeaderSize] & wire::kMoreToCome);
}

}  // namespace

bool reply_body(wire::Bytes frame, std::vector<std::uint8_t>& scratch, std::int32_t max_size,
                bson_t* doc) {
  wire::Bytes plain(frame);
  std::int32_t opcode = wire::read_header(frame).op_code;
  if (opcode == static_cast<std::int32_t>(wire::OpCode::kCompressed)) {
    if (wire::inflate(plain, scratch, max_size) != wire::DecodeError::kNone) return false;
    plain = scratch;
    opcode = wire::read_header(plain).op_code;
  }
  std::optional<wire::DocView> body;
  if (opcode == static_cast<std::int32_t>(wire::OpCode::kMsg)) {
    auto msg = wire::decode_op_msg(plain, /*verify_checksum=*/false);
    if (msg.ok()) body = msg.view.body;
  } else if (opcode == static_cast<std::int32_t>(wire::OpCode::kReply)) {
    auto reply = wire::decode_op_reply(plain);
    if (reply.ok() && reply.view.number_returned > 0) {
      auto docs = reply.view.docs();
      if (!docs.empty()) body = docs.front();
    }
  }
  return body && body->as_bson(doc);
}

ReplyTracker::ReplyTracker(std::uint64_t connection, std::int32_t max_message_size,
                           Metrics& metrics, AuditLog& audit, Event& idle)
    : connection_(connection),
      max_message_size_(max_message_size),
      metrics_(metrics),
      audit_(audit),
      idle_(idle) {}

bool ReplyTracker::in_flight(std::int32_t id) const {
  return std::any_of(inflight_.begin(), inflight_.end(),
                     [id](const InFlight& e) { return e.id == id; });
}

void ReplyTracker::track(const wire::Request& request, std::unique_ptr<PendingReply> pending) {
  InFlight entry;
  entry.id = request.header.request_id;
  entry.expect = entry.id;
  entry.expects_reply = !request.more_to_come;
  entry.exhaust = request.exhaust_allowed;
  entry.pending = std::move(pending);
  if (!entry.expects_reply) {
    // mongod never answers these; a server that does (FerretDB) answers in
    // order, so they leave the queue when a later request is answered. A run
    // of them with nothing else in flight is bounded.
    if (inflight_.size() >= kMaxUnanswered && !inflight_.front().expects_reply) {
      forget_oldest_unanswered();
    }
  } else {
    ++outstanding_;
  }
  inflight_.push_back(std::move(entry));
}

void ReplyTracker::forget_oldest_unanswered() {
  inflight_.pop_front();
  if (lost_track_) return;
  lost_track_ = true;
  spdlog::info(
      "conn {}: more than {} unanswered requests in a row; replies on this "
      "connection no longer lower reservations",
      connection_, kMaxUnanswered);
}

void ReplyTracker::track_own(std::int32_t id) {
  InFlight entry;
  entry.id = entry.expect = id;
  entry.own = true;
  inflight_.push_back(std::move(entry));
}

void ReplyTracker::answered(const InFlight& entry) {
  if (entry.expects_reply && !entry.own && !entry.streaming && outstanding_ > 0 &&
      --outstanding_ == 0) {
    idle_.notify();  // a wait for nothing in flight may go on
  }
}

void ReplyTracker::abandon(InFlight& entry) {
  answered(entry);
  if (entry.pending && entry.pending->audit) {
    entry.pending->audit->set_outcome("forwarded; no reply (reservation stands)");
    audit_.write(*entry.pending->audit);
  }
}

std::size_t ReplyTracker::position_of(std::int32_t response_to) const {
  std::size_t i = 0;
  if (inflight_.empty() || inflight_.front().expect != response_to) {
    while (i < inflight_.size() && inflight_[i].expect != response_to) ++i;
  }
  return i;
}

InFlight ReplyTracker::take_front() {
  InFlight entry = std::move(inflight_.front());
  inflight_.pop_front();
  return entry;
}

std::optional<InFlight> ReplyTracker::match_reply(wire::Bytes frame) {
  const auto header = wire::read_header(frame);
  const std::size_t i = position_of(header.response_to);
  if (i == inflight_.size()) {
    metrics_.unmatched_replies.fetch_add(1, std::memory_order_relaxed);
    spdlog::debug("conn {}: reply {} answers no request in flight; relayed, settles nothing",
                  connection_, header.response_to);
    return std::nullopt;
  }
  // Replies come in request order: what was sent before the answered one
  // will not be answered any more.
  for (std::size_t j = 0; j < i; ++j) {
    if (inflight_[j].expects_reply) {
      spdlog::warn(
          "conn {}: the server answered request {} before {}; the earlier one's "
          "reservations stand",
          connection_, inflight_[i].id, inflight_[j].id);
    }
    abandon(inflight_[j]);
  }
  if (i > 0) inflight_.erase(inflight_.begin(), inflight_.begin() + static_cast<std::ptrdiff_t>(i));
  InFlight& front = inflight_.front();
  if (!front.expects_reply) {
    // A reply to a request that expects none: relayed untouched, settles nothing.
    InFlight entry = take_front();
    entry.pending.reset();
    return entry;
  }
  if (front.exhaust && more_replies_follow(frame, scratch_, max_message_size_)) {
    // An exhaust stream: the next reply answers this one.
    front.expect = header.request_id;
    answered(front);
    front.streaming = true;
    InFlight part;
    part.id = front.id;
    part.own = front.own;
    return part;
  }
  InFlight entry = take_front();
  answered(entry);
  return entry;
}

}  // namespace mongoguard::proxy
