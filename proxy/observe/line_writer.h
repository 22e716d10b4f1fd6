// Lines appended to a file by a thread of its own, so that the threads that
// produce them (the data path's workers) never wait on the disk: append()
// copies the line into a bounded in-memory queue and returns; the writer
// thread writes what has queued as one batch and flushes it to the kernel.
//
// When the queue is full (the file is not keeping up: a stalled or full
// disk), append() waits up to Limits::wait_for_room for room, then drops the
// line and returns false; after one such wait has run out, further lines are
// dropped at once until the writer has taken the queue, so a stalled disk
// costs a worker one short wait, not one per line. Nothing is dropped
// silently: the caller counts and logs what append() refuses.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace mongoguard::proxy {

class LineWriter {
 public:
  struct Limits {
    // Bytes queued and not yet taken by the writer. One line is always
    // accepted into an empty queue, however long it is.
    std::size_t max_queued_bytes = 16u << 20;
    std::chrono::milliseconds wait_for_room{5};
    // After each batch the writer waits this long for more lines before it
    // takes the next, and appenders do not wake it meanwhile: a stream of
    // lines costs the producing threads one wake-up of the writer (a
    // futex call and a context switch) per `gather`, not one per line. A
    // line after a quiet spell is written at once; flush() and a queue past
    // kGatherBytes cut the wait short. Zero turns gathering off.
    std::chrono::microseconds gather{2000};
  };
  static constexpr std::size_t kGatherBytes = 64 * 1024;

  // Starts the writer thread, named `thread_name` (at most 15 characters)
  // for top and gdb. `what` names the file in errors ("audit log").
  LineWriter(Limits limits, std::string what, const char* thread_name);
  // Writes everything queued, then stops the thread and closes the file.
  ~LineWriter();
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;

  // Opens (appends to) `path`; an empty path turns the file off. Lines
  // queued before the call go to the previous file. Returns false with
  // `error` when the file cannot be opened; the previous file stays in use.
  // Opening the file already open does nothing.
  bool open(const std::string& path, std::string& error);

  // Thread-safe. Queues `line` and a newline; lines are written whole, in
  // the order their append() calls took the queue. True when queued (or
  // when no file is open: nothing to write); false when dropped.
  bool append(std::string_view line);

  // Returns once every line queued before the call is written to the file.
  void flush();

  // Lines that did not reach the file (dropped from a full queue, or in a
  // batch the file refused) are added here too, when set.
  void set_lost_counter(std::atomic<std::uint64_t>* lost) { lost_ = lost; }
  // Why lines are being lost now (the last batch failed to write, or the
  // queue is full and dropping), or "" when the file is taking them.
  std::string problem();

 private:
  bool has_room(std::size_t bytes) const;
  void run();
  void gather(std::unique_lock<std::mutex>& lock);
  void write_batch(const std::string& batch, std::uint64_t lines);

  const Limits limits_;
  const std::string what_;

  std::mutex mutex_;                 // the queue and its counters
  std::condition_variable wake_;     // the writer: lines queued, or stopping
  std::condition_variable room_;     // appenders: the writer took the queue
  std::condition_variable written_;  // flush(): a batch reached the file
  std::string queue_;
  std::string spare_;  // the previous batch's buffer, reused
  std::uint64_t queued_lines_ = 0;
  std::uint64_t written_lines_ = 0;
  bool dropping_ = false;  // a wait for room ran out since the writer last took the queue
  bool stopping_ = false;
  bool gathering_ = false;           // the writer is in gather(): appenders need not wake it
  std::uint64_t flush_waiters_ = 0;  // flush() calls waiting: no gathering meanwhile
  std::uint64_t room_waiters_ = 0;   // append() calls waiting for room: likewise

  std::mutex file_mutex_;  // file_ and path_: the writer's batch against open()
  std::FILE* file_ = nullptr;
  std::atomic<bool> file_open_{false};  // read by append() without the lock
  std::string path_;
  bool write_failed_ = false;  // the last batch failed (logged once until one succeeds)
  std::string write_error_;    // why it failed
  std::atomic<std::uint64_t>* lost_ = nullptr;

  std::thread thread_;
};

}  // namespace mongoguard::proxy
