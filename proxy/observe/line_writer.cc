#include "proxy/observe/line_writer.h"

#include <pthread.h>
#include <spdlog/spdlog.h>
#include <stdio_ext.h>

#include <cerrno>
#include <cstring>

namespace mongoguard::proxy {

LineWriter::LineWriter(Limits limits, std::string what, const char* thread_name)
    : limits_(limits), what_(std::move(what)) {
  thread_ = std::thread([this] { run(); });
  pthread_setname_np(thread_.native_handle(), thread_name);
}

LineWriter::~LineWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  room_.notify_all();
  thread_.join();
  if (file_) std::fclose(file_);
}

bool LineWriter::open(const std::string& path, std::string& error) {
  flush();
  std::lock_guard lock(file_mutex_);
  if (path == path_ && (file_ || path.empty())) return true;
  std::FILE* next = nullptr;
  if (!path.empty()) {
    next = std::fopen(path.c_str(), "a");
    if (!next) {
      error = "cannot open " + what_ + " " + path + ": " + std::strerror(errno);
      return false;
    }
  }
  if (file_) std::fclose(file_);
  file_ = next;
  path_ = path;
  write_failed_ = false;
  file_open_.store(file_ != nullptr, std::memory_order_relaxed);
  return true;
}

bool LineWriter::has_room(std::size_t bytes) const {
  return queue_.empty() || queue_.size() + bytes <= limits_.max_queued_bytes;
}

bool LineWriter::append(std::string_view line) {
  if (!file_open_.load(std::memory_order_relaxed)) return true;
  const std::size_t bytes = line.size() + 1;
  std::unique_lock lock(mutex_);
  if (!has_room(bytes)) {
    if (!dropping_) {
      ++room_waiters_;
      if (gathering_) wake_.notify_one();  // the queue is full: gathered enough
      room_.wait_for(lock, limits_.wait_for_room, [&] { return has_room(bytes) || stopping_; });
      --room_waiters_;
    }
    if (!has_room(bytes)) {
      dropping_ = true;
      if (lost_) lost_->fetch_add(1, std::memory_order_relaxed);
      return false;
    }
  }
  const std::size_t before = queue_.size();
  queue_.append(line);
  queue_ += '\n';
  ++queued_lines_;
  // A non-empty queue keeps the writer from waiting, and a gathering writer
  // looks at the queue by itself: only the first line after it took the
  // queue needs to wake it, or the one that makes a gathered batch large.
  const bool wake =
      gathering_ ? before < kGatherBytes && queue_.size() >= kGatherBytes : before == 0;
  lock.unlock();
  if (wake) wake_.notify_one();
  return true;
}

void LineWriter::flush() {
  std::unique_lock lock(mutex_);
  const std::uint64_t target = queued_lines_;
  if (written_lines_ >= target) return;
  ++flush_waiters_;
  wake_.notify_one();  // out of gather() at once
  written_.wait(lock, [&] { return written_lines_ >= target; });
  --flush_waiters_;
}

void LineWriter::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return !queue_.empty() || stopping_; });
    if (queue_.empty()) return;  // stopping, and everything is written
    std::string batch;
    batch.swap(queue_);
    queue_.swap(spare_);
    const std::uint64_t lines = queued_lines_;
    const std::uint64_t in_batch = lines - written_lines_;
    dropping_ = false;
    lock.unlock();
    room_.notify_all();
    write_batch(batch, in_batch);
    batch.clear();
    lock.lock();
    spare_.swap(batch);
    written_lines_ = lines;
    written_.notify_all();
    gather(lock);
  }
}

void LineWriter::gather(std::unique_lock<std::mutex>& lock) {
  if (limits_.gather.count() <= 0) return;
  gathering_ = true;
  wake_.wait_for(lock, limits_.gather, [this] {
    return stopping_ || flush_waiters_ > 0 || room_waiters_ > 0 || queue_.size() >= kGatherBytes;
  });
  gathering_ = false;
}

void LineWriter::write_batch(const std::string& batch, std::uint64_t lines) {
  std::lock_guard lock(file_mutex_);
  if (!file_) return;  // turned off since these lines were queued
  const bool ok =
      std::fwrite(batch.data(), 1, batch.size(), file_) == batch.size() && std::fflush(file_) == 0;
  if (!ok) {
    const std::string why = std::strerror(errno);
    if (!write_failed_) {
      spdlog::error("writing to the {} {} failed: {}; lines are lost until a write succeeds", what_,
                    path_, why);
    }
    write_error_ = "writing to " + path_ + " failed: " + why;
    // What the stream still buffers is counted lost: drop it, so that it
    // cannot turn up later in the middle of another batch.
    __fpurge(file_);
    std::clearerr(file_);
    if (lost_) lost_->fetch_add(lines, std::memory_order_relaxed);
  }
  write_failed_ = !ok;
}

std::string LineWriter::problem() {
  {
    std::lock_guard lock(file_mutex_);
    if (write_failed_) return write_error_;
  }
  std::lock_guard lock(mutex_);
  if (dropping_) return "its queue is full (the file is not keeping up)";
  return "";
}

}  // namespace mongoguard::proxy
