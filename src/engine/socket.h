// Local (AF_UNIX, SOCK_STREAM) sockets for the owner's socket: listening,
// connecting, the peer's uid, and a line-oriented connection with timeouts
// and cancellation (tests speak raw HTTP with it). The owner serves its
// socket with engine/http_server.h.
// Every fd is owned by a UniqueFd and created with FD_CLOEXEC; writes use
// MSG_NOSIGNAL, so a peer that went away is an error value, never SIGPIPE.
// Thread-safety: a LineConnection is used by one reader at a time; concurrent
// writers must serialise themselves.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "core/fs.h"
#include "core/status.h"

namespace sluice {

// The longest path that fits sockaddr_un::sun_path with its terminating NUL.
size_t MaxUnixSocketPath();

// Removes a stale socket file at path (if any), binds, restricts it to the
// owner (0600) and listens. The caller must hold whatever lock makes any
// existing file at path stale.
Result<UniqueFd> ListenUnix(const std::string& path, int backlog = 64);

// Accepts one connection (non-blocking fd) or returns NotFound when none is
// pending. The listening fd must be readable (poll) for a connection to wait.
Result<UniqueFd> AcceptUnix(int listen_fd);

// The uid of the process at the other end of a connected socket.
Result<uid_t> PeerUid(int fd);

// Connects to a listening socket. NotFound when no one listens there (no file,
// connection refused); IOError otherwise. The returned fd is non-blocking.
Result<UniqueFd> ConnectUnix(const std::string& path);

// Newline-delimited messages over a connected, non-blocking socket.
class LineConnection {
 public:
  explicit LineConnection(UniqueFd fd) : fd_(std::move(fd)) {}

  // Reads the next line without its '\n'. Errors: IOError "closed" on EOF
  // (with or without a partial line), Cancelled when cancel_fd (if >= 0)
  // becomes readable, Timeout when timeout_ms (if >= 0) passes with no data,
  // DataError when the line exceeds max_bytes.
  Result<std::string> ReadLine(size_t max_bytes, int cancel_fd = -1, int timeout_ms = -1);

  // Writes all of data. Timeout when the peer accepts no bytes for
  // stall_timeout_ms (if >= 0); IOError when the peer has gone.
  Status WriteAll(std::string_view data, int stall_timeout_ms = -1);

  // Stops further sends (the peer reads EOF after what was written).
  void ShutdownWrite();
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  std::string buffer_;
  size_t scanned_ = 0;  // bytes of buffer_ already searched for '\n'
};

}  // namespace sluice
