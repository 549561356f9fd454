#include "engine/socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/clock.h"

namespace sluice {
namespace {

Status Errno(const std::string& what, const std::string& path) {
  return Status::IOError(path + ": " + what + ": " + std::strerror(errno));
}

Result<sockaddr_un> MakeAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() > MaxUnixSocketPath()) {
    return Status::Invalid(path + ": socket path is empty or longer than " +
                           std::to_string(MaxUnixSocketPath()) + " bytes");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

Result<UniqueFd> NewSocket(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("cannot create socket", path);
  return UniqueFd(fd);
}

Status SetNonBlocking(int fd, const std::string& path) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return Errno("cannot make socket non-blocking", path);
  }
  return Status::Ok();
}

// Waits for `events` on fd, or for cancel_fd to become readable. timeout_ms < 0
// waits forever. Returns Ok when fd is ready (or has an error/hang-up to report
// through the next read/write).
Status WaitFor(int fd, short events, int cancel_fd, int timeout_ms) {
  pollfd fds[2] = {{fd, events, 0}, {cancel_fd, POLLIN, 0}};
  nfds_t count = cancel_fd >= 0 ? 2 : 1;
  int64_t deadline = timeout_ms >= 0 ? MonotonicMillis() + timeout_ms : -1;
  while (true) {
    int wait_ms = -1;
    if (deadline >= 0)
      wait_ms = static_cast<int>(std::max<int64_t>(0, deadline - MonotonicMillis()));
    int n = ::poll(fds, count, wait_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IOError(std::string("poll failed: ") + std::strerror(errno));
    }
    if (count == 2 && fds[1].revents != 0) return Status::Cancelled("connection cancelled");
    if (fds[0].revents != 0) return Status::Ok();
    if (n == 0) return Status(StatusCode::kTimeout, "no progress on the connection");
  }
}

}  // namespace

size_t MaxUnixSocketPath() { return sizeof(sockaddr_un::sun_path) - 1; }

Result<UniqueFd> ListenUnix(const std::string& path, int backlog) {
  ASSIGN_OR_RETURN(sockaddr_un addr, MakeAddress(path));
  ASSIGN_OR_RETURN(UniqueFd fd, NewSocket(path));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Errno("cannot remove stale socket", path);
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    return Errno("cannot bind socket", path);
  }
  // Only our own user may talk to the engine (the owner also checks the peer uid).
  if (::chmod(path.c_str(), 0600) != 0) {
    Status st = Errno("cannot restrict socket permissions", path);
    ::unlink(path.c_str());
    return st;
  }
  if (::listen(fd.get(), backlog) != 0) {
    Status st = Errno("cannot listen on socket", path);
    ::unlink(path.c_str());
    return st;
  }
  Status st = SetNonBlocking(fd.get(), path);
  if (!st.ok()) {
    ::unlink(path.c_str());
    return st;
  }
  return fd;
}

Result<UniqueFd> AcceptUnix(int listen_fd) {
  while (true) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) return UniqueFd(fd);
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::NotFound("no pending connection");
    return Status::IOError(std::string("accept failed: ") + std::strerror(errno));
  }
}

Result<uid_t> PeerUid(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return Status::IOError(std::string("cannot read peer credentials: ") + std::strerror(errno));
  }
  return cred.uid;
}

Result<UniqueFd> ConnectUnix(const std::string& path) {
  ASSIGN_OR_RETURN(sockaddr_un addr, MakeAddress(path));
  ASSIGN_OR_RETURN(UniqueFd fd, NewSocket(path));
  while (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno == EINTR) continue;
    if (errno == ENOENT || errno == ECONNREFUSED || errno == ENOTDIR) {
      return Status::NotFound(path + ": nobody listens: " + std::strerror(errno));
    }
    // EAGAIN: the listener's backlog is full; it is alive but overloaded.
    return Errno("cannot connect", path);
  }
  RETURN_IF_ERROR(SetNonBlocking(fd.get(), path));
  return fd;
}

Result<std::string> LineConnection::ReadLine(size_t max_bytes, int cancel_fd, int timeout_ms) {
  char chunk[65536];
  while (true) {
    size_t newline = buffer_.find('\n', scanned_);
    if (newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      scanned_ = 0;
      return line;
    }
    scanned_ = buffer_.size();
    if (buffer_.size() > max_bytes) {
      return Status::DataError("message longer than " + std::to_string(max_bytes) + " bytes");
    }
    ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) return Status::IOError("connection closed by peer");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      RETURN_IF_ERROR(WaitFor(fd_.get(), POLLIN, cancel_fd, timeout_ms));
      continue;
    }
    return Status::IOError(std::string("read failed: ") + std::strerror(errno));
  }
}

Status LineConnection::WriteAll(std::string_view data, int stall_timeout_ms) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      RETURN_IF_ERROR(WaitFor(fd_.get(), POLLOUT, -1, stall_timeout_ms));
      continue;
    }
    return Status::IOError(std::string("write failed: ") + std::strerror(errno));
  }
  return Status::Ok();
}

void LineConnection::ShutdownWrite() { ::shutdown(fd_.get(), SHUT_WR); }

}  // namespace sluice
