#include "engine/owner.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <list>
#include <mutex>
#include <thread>
#include <utility>

#include "core/clock.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/redact.h"
#include "engine/socket.h"

namespace sluice {
namespace {

using nlohmann::json;

constexpr size_t kMaxRequestBytes = size_t{64} << 20;  // a request is a command, not data
constexpr size_t kMaxResponseBytes = size_t{1} << 30;  // query results can be large
constexpr int kRequestTimeoutMs = 30000;               // a client sends its line at once
constexpr int kWriteStallTimeoutMs = 60000;            // a client that stops reading
constexpr const char* kOwnerFile = "owner";

// Never throws: invalid UTF-8 in a handler's strings is replaced, not fatal.
std::string DumpLine(const json& message) {
  std::string line = message.dump(-1, ' ', false, json::error_handler_t::replace);
  line.push_back('\n');
  return line;
}

json ErrorResponse(const std::string& message) {
  return {{"ok", false}, {"error", Redact(message)}};
}

// Runs a handler with the exception boundary the protocol promises.
json CallHandler(const RequestHandler& handler, const json& request, const EventSink& events) {
  try {
    if (!handler) return ErrorResponse("no handler for this request");
    return handler(request, events);
  } catch (const std::exception& e) {
    return ErrorResponse(std::string("request failed: ") + e.what());
  } catch (...) {
    return ErrorResponse("request failed: unknown exception");
  }
}

// Absolute and normalised, without a trailing '/': one folder, one spelling.
std::string NormalDir(const std::string& path) {
  std::string abs = AbsolutePath(path);
  while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
  return abs;
}

std::string OwnerFilePath(const std::string& abs_state_dir) {
  return JoinPath(abs_state_dir, kOwnerFile);
}

std::string DescribeOwner(const std::string& state_dir, const Result<OwnerInfo>& info) {
  std::string text = "environment " + state_dir + " is owned by ";
  if (!info.ok()) return text + "another process";
  return text + "pid " + std::to_string(info->pid) + " (" + info->command + ")";
}

Status WriteOwnerFile(int fd, const OwnerInfo& info, const std::string& path) {
  json doc = {{"pid", info.pid},
              {"command", info.command},
              {"socket_path", info.socket_path},
              {"started_at", info.started_at}};
  std::string text = DumpLine(doc);
  // Truncate and rewrite in place: the lock lives on this file, so no rename.
  if (::ftruncate(fd, 0) != 0) {
    return Status::IOError(path + ": cannot truncate: " + std::strerror(errno));
  }
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::pwrite(fd, text.data() + done, text.size() - done, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IOError(path + ": cannot write: " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// The writing half of one served connection. Shared with the handler's
// EventSink, which may outlive the request if a handler leaks it to a thread;
// once the response is written, further events are dropped.
struct Channel {
  explicit Channel(LineConnection c) : connection(std::move(c)) {}

  void Send(const json& message, bool final) {
    std::lock_guard<std::mutex> guard(mu);
    if (finished) return;
    if (final) finished = true;
    if (broken) return;
    // The boundary every event and response crosses: redacted here, before JSON escapes it.
    Status st = connection.WriteAll(DumpLine(RedactJson(message)), kWriteStallTimeoutMs);
    if (!st.ok()) {
      broken = true;  // the client went away; the handler still runs to completion
      LOG_DEBUG("owner", "client connection lost: {}", st.message());
    }
  }

  std::mutex mu;
  LineConnection connection;  // reads happen before the handler starts, writes under mu
  bool finished = false;
  bool broken = false;
};

}  // namespace

std::string OwnerSocketPath(const std::string& state_dir) {
  std::string abs = NormalDir(state_dir);
  std::string local = JoinPath(abs, "sock/owner.sock");
  if (local.size() <= MaxUnixSocketPath()) return local;
  return "/tmp/sluice-" + std::to_string(::geteuid()) + "/" + Sha256Hex(abs).substr(0, 16) +
         ".sock";
}

struct OwnerLease::State {
  ~State() { Stop(); }

  void AcceptLoop();
  void Serve(UniqueFd fd);
  void Stop(const std::function<void()>& before_unlock = nullptr);

  struct Connection {
    std::thread thread;
    std::atomic<bool> done{false};
  };

  OwnerInfo info;
  std::string owner_path;
  FileLock lock;
  UniqueFd listen_fd;
  bool socket_bound = false;
  WakePipe stop;
  RequestHandler handler;
  std::thread accept_thread;
  // Owned by accept_thread while it runs, then by Stop().
  std::list<std::unique_ptr<Connection>> connections;
  bool stopped = false;
};

void OwnerLease::State::AcceptLoop() {
  const uid_t my_uid = ::geteuid();
  auto reap = [this] {
    for (auto it = connections.begin(); it != connections.end();) {
      if ((*it)->done.load()) {
        (*it)->thread.join();
        it = connections.erase(it);
      } else {
        ++it;
      }
    }
  };
  while (true) {
    pollfd fds[2] = {{listen_fd.get(), POLLIN, 0}, {stop.read_fd(), POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      LOG_ERROR("owner", "poll on {} failed: {}", info.socket_path, std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    reap();
    while (true) {
      Result<UniqueFd> accepted = AcceptUnix(listen_fd.get());
      if (!accepted.ok()) {
        if (accepted.status().code() != StatusCode::kNotFound) {
          LOG_WARN("owner", "{}: {}", info.socket_path, accepted.status().message());
        }
        break;
      }
      Result<uid_t> peer = PeerUid(accepted->get());
      if (!peer.ok() || *peer != my_uid) {
        LOG_WARN("owner", "{}: refused a connection from another user", info.socket_path);
        continue;
      }
      auto connection = std::make_unique<Connection>();
      Connection* raw = connection.get();
      try {
        connection->thread = std::thread([this, raw, fd = std::move(accepted).value()]() mutable {
          // A thread boundary: one request's failure never ends the owner.
          try {
            Serve(std::move(fd));
          } catch (const std::exception& e) {
            LOG_ERROR("owner", "a request failed outside its handler: {}", e.what());
          } catch (...) {
            LOG_ERROR("owner", "a request failed outside its handler");
          }
          raw->done.store(true);
        });
      } catch (const std::exception& e) {
        // Out of threads: the client sees a closed connection and retries.
        LOG_ERROR("owner", "cannot start a thread for a request: {}", e.what());
        continue;
      }
      connections.push_back(std::move(connection));
    }
  }
}

void OwnerLease::State::Serve(UniqueFd fd) {
  LineConnection connection(std::move(fd));
  Result<std::string> line =
      connection.ReadLine(kMaxRequestBytes, stop.read_fd(), kRequestTimeoutMs);
  if (!line.ok()) {
    if (line.status().code() == StatusCode::kDataError) {
      json message = {{"type", "response"},
                      {"response", ErrorResponse("malformed request: " + line.status().message())}};
      (void)connection.WriteAll(DumpLine(message), kWriteStallTimeoutMs);
    }
    // Closed, timed out, or we are stopping before the request arrived: the
    // request was not started, so closing lets the client retry elsewhere.
    return;
  }
  auto channel = std::make_shared<Channel>(std::move(connection));
  json request = json::parse(*line, nullptr, /*allow_exceptions=*/false);
  json response;
  if (request.is_discarded()) {
    response = ErrorResponse("malformed request: not a JSON line");
  } else if (!request.is_object()) {
    response = ErrorResponse("malformed request: expected a JSON object");
  } else {
    EventSink sink = [channel](const json& event) {
      channel->Send({{"type", "event"}, {"event", event}}, /*final=*/false);
    };
    response = CallHandler(handler, request, sink);
  }
  channel->Send({{"type", "response"}, {"response", std::move(response)}}, /*final=*/true);
}

void OwnerLease::State::Stop(const std::function<void()>& before_unlock) {
  if (stopped) return;
  stopped = true;
  stop.Notify();
  if (accept_thread.joinable()) accept_thread.join();
  // New clients now find no socket and retry until the lock is free.
  if (socket_bound) ::unlink(info.socket_path.c_str());
  listen_fd = UniqueFd();
  for (auto& connection : connections) connection->thread.join();
  connections.clear();
  if (before_unlock) {
    try {
      before_unlock();
    } catch (const std::exception& e) {
      LOG_ERROR("owner", "closing before release failed: {}", e.what());
    }
  }
  if (lock.held() && ::ftruncate(lock.fd(), 0) != 0) {
    LOG_WARN("owner", "{}: cannot clear: {}", owner_path, std::strerror(errno));
  }
  lock = FileLock();
  LOG_DEBUG("owner", "released {}", owner_path);
}

OwnerLease::OwnerLease(std::unique_ptr<State> state) : state_(std::move(state)) {}
OwnerLease::OwnerLease(OwnerLease&&) noexcept = default;
OwnerLease& OwnerLease::operator=(OwnerLease&&) noexcept = default;
OwnerLease::~OwnerLease() = default;

void OwnerLease::Release(const std::function<void()>& before_unlock) {
  if (state_) state_->Stop(before_unlock);
}

const OwnerInfo& OwnerLease::info() const { return state_->info; }

Result<OwnerLease> OwnerLease::TryAcquire(const std::string& state_dir, const std::string& command,
                                          RequestHandler handler) {
  const std::string abs = NormalDir(state_dir);
  RETURN_IF_ERROR(MakeDirs(abs));
  auto state = std::make_unique<State>();
  state->owner_path = OwnerFilePath(abs);
  Result<FileLock> lock = FileLock::TryAcquire(state->owner_path);
  if (!lock.ok()) {
    if (lock.status().code() == StatusCode::kBusy) {
      return Status::Busy(DescribeOwner(state_dir, ReadOwnerInfo(state_dir)));
    }
    return lock.status();
  }
  state->lock = std::move(lock).value();
  state->info.pid = ::getpid();
  state->info.command = command;
  state->info.socket_path = OwnerSocketPath(abs);
  state->info.started_at = FormatTimestamp(SystemClock().Now());
  state->handler = std::move(handler);
  ASSIGN_OR_RETURN(state->stop, WakePipe::Create());
  // The socket's folder is private (0700, ours, not a symlink): nobody else
  // can reach it, or put a socket of theirs where ours is expected.
  RETURN_IF_ERROR(MakePrivateDir(Dirname(state->info.socket_path)));
  // Listen before publishing the owner file, so whoever reads it can connect.
  ASSIGN_OR_RETURN(state->listen_fd, ListenUnix(state->info.socket_path));
  state->socket_bound = true;
  RETURN_IF_ERROR(WriteOwnerFile(state->lock.fd(), state->info, state->owner_path));
  try {
    State* raw = state.get();
    state->accept_thread = std::thread([raw] {
      try {
        raw->AcceptLoop();
      } catch (const std::exception& e) {
        LOG_ERROR("owner", "stopped accepting requests: {}", e.what());
      }
    });
  } catch (const std::exception& e) {
    return Status::Internal(std::string("cannot start the owner thread: ") + e.what());
  }
  LOG_INFO("owner", "pid {} owns {} ({}), listening on {}", state->info.pid, abs, command,
           state->info.socket_path);
  return OwnerLease(std::move(state));
}

Result<OwnerInfo> ReadOwnerInfo(const std::string& state_dir) {
  const std::string path = OwnerFilePath(NormalDir(state_dir));
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) {
    if (!FileExists(path)) return Status::NotFound(path + ": no owner");
    return text.status();
  }
  if (text->find_first_not_of(" \t\r\n") == std::string::npos) {
    return Status::NotFound(path + ": no owner");
  }
  json doc = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Status::DataError(path + ": not an owner record (incomplete or corrupt JSON)");
  }
  try {
    OwnerInfo info;
    info.pid = doc.at("pid").get<int64_t>();
    info.command = doc.value("command", "");
    info.socket_path = doc.at("socket_path").get<std::string>();
    info.started_at = doc.value("started_at", "");
    return info;
  } catch (const json::exception& e) {
    return Status::DataError(path + ": bad owner record: " + e.what());
  }
}

Result<json> SendToOwner(const std::string& socket_path, const json& request,
                         const EventSink& events) {
  ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnix(socket_path));
  // The owner must be this user: a request may carry data, and its answer is trusted.
  Result<uid_t> server = PeerUid(fd.get());
  if (!server.ok()) return server.status();
  if (*server != ::geteuid()) {
    return Status::Refused(socket_path + " is served by uid " + std::to_string(*server) +
                           ", not by this user; not sending it a request");
  }
  LineConnection connection(std::move(fd));
  Status sent = connection.WriteAll(DumpLine(request));
  if (!sent.ok()) {
    return Status::IOError(socket_path + ": owner closed the connection: " + sent.message());
  }
  while (true) {
    Result<std::string> line = connection.ReadLine(kMaxResponseBytes);
    if (!line.ok()) {
      if (line.status().code() == StatusCode::kIOError) {
        return Status::IOError(socket_path + ": owner closed the connection before responding (" +
                               line.status().message() + ")");
      }
      return line.status().WithContext(socket_path);
    }
    json message = json::parse(*line, nullptr, /*allow_exceptions=*/false);
    if (message.is_discarded() || !message.is_object()) {
      return Status::DataError(socket_path + ": owner sent a line that is not a JSON object");
    }
    auto type = message.find("type");
    if (type == message.end() || !type->is_string()) {
      return Status::DataError(socket_path + ": owner sent a message without a type");
    }
    if (*type == "event") {
      auto event = message.find("event");
      if (events && event != message.end()) events(*event);
    } else if (*type == "response") {
      auto response = message.find("response");
      if (response == message.end()) {
        return Status::DataError(socket_path + ": owner sent a response without a body");
      }
      return std::move(*response);
    } else {
      return Status::DataError(socket_path + ": owner sent an unknown message type");
    }
  }
}

Result<json> Dispatch(const std::string& state_dir, const std::string& command, const json& request,
                      const RequestHandler& local, const RequestHandler& serve_others,
                      const EventSink& events, const std::function<void()>& close, int timeout_ms) {
  const int64_t deadline = MonotonicMillis() + timeout_ms;
  const EventSink sink = events ? events : EventSink([](const json&) {});
  int backoff_ms = 10;
  Result<OwnerInfo> last_owner = Status::NotFound("no owner seen");
  Status last_error;
  while (true) {
    Result<OwnerLease> lease = OwnerLease::TryAcquire(state_dir, command, serve_others);
    if (lease.ok()) {
      json response = CallHandler(local, request, sink);
      lease->Release(close);
      return response;
    }
    if (lease.status().code() != StatusCode::kBusy) return lease.status();

    Result<OwnerInfo> owner = ReadOwnerInfo(state_dir);
    if (owner.ok()) {
      last_owner = owner;
      Result<json> response = SendToOwner(owner->socket_path, request, sink);
      if (response.ok()) return response;
      StatusCode code = response.status().code();
      if (code != StatusCode::kNotFound && code != StatusCode::kIOError) return response.status();
      last_error = response.status();
    } else {
      last_error = owner.status();  // the owner is starting (file not written yet)
    }

    const int64_t remaining = deadline - MonotonicMillis();
    if (remaining <= 0) break;
    LOG_DEBUG("owner", "{}: owner not answering ({}), retrying", state_dir, last_error.message());
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::min<int64_t>(backoff_ms, remaining)));
    backoff_ms = std::min(backoff_ms * 2, 200);
  }
  return Status::Busy(DescribeOwner(state_dir, last_owner) +
                      " but it does not answer; if that process is gone, run again (last error: " +
                      last_error.message() + ")");
}

}  // namespace sluice
