// A file that stops taking writes until the test says so: a FIFO whose
// reader reads nothing until drain(). Opening it for writing succeeds at
// once (the reader is already open), and once the pipe's buffer is full a
// writer blocks in write(), as on a stalled disk.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>

namespace mongoguard::proxy::testing {

class StalledPipe {
 public:
  explicit StalledPipe(const std::string& name)
      : path_((std::filesystem::temp_directory_path() /
               (name + "-" + std::to_string(::getpid()) + ".fifo"))
                  .string()) {
    std::filesystem::remove(path_);
    ::mkfifo(path_.c_str(), 0600);
    fd_ = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK);
  }
  ~StalledPipe() {
    if (reader_.joinable()) reader_.join();
    if (fd_ >= 0) ::close(fd_);
    std::filesystem::remove(path_);
  }

  const std::string& path() const { return path_; }
  bool ok() const { return fd_ >= 0; }

  // Reads everything from now on, on a thread of its own, until every
  // writer has closed the pipe; received() is valid after join().
  void drain() {
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
    reader_ = std::thread([this] {
      char buffer[65536];
      for (ssize_t n; (n = ::read(fd_, buffer, sizeof buffer)) > 0;) {
        received_.append(buffer, static_cast<std::size_t>(n));
      }
    });
  }
  void join() { reader_.join(); }
  const std::string& received() const { return received_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::thread reader_;
  std::string received_;
};

}  // namespace mongoguard::proxy::testing
