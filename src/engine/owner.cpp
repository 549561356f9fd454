#include "engine/owner.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <list>
#include <mutex>
#include <optional>
#include <set>
#include <string>
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
constexpr size_t kMaxLineBytes = size_t{1} << 30;  // one answer line (query results can be large)
constexpr int kHandlerThreads = 32;                // requests the owner's socket serves at once
constexpr int kStopGraceMs = 60000;                // for requests in flight at Release
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

// The answer of one engine request as it streams: events as the handler
// sends them (from any thread), then the final response. Shared with the
// handler's EventSink, which may outlive the request if a handler leaks it
// to a thread: once the response is sent, further events are dropped.
class EngineChannel {
 public:
  explicit EngineChannel(ChunkedWriter* writer) : writer_(writer) {}

  // Events from many threads are coalesced: while one thread writes, the
  // others add their lines to the next chunk and go on (a no-op run of
  // 10,000 assets sends 20,000 events). The final message returns only
  // once everything before it is written.
  void Send(const json& message, bool final) {
    // The boundary every event and response crosses: redacted here, before JSON escapes it.
    std::string line =
        JsonContainsSecret(message) ? DumpLine(RedactJson(message)) : DumpLine(message);
    std::unique_lock<std::mutex> lock(mu_);
    if (finished_) return;
    if (final) finished_ = true;
    if (broken_) return;
    if (writer_ == nullptr) {  // a client that takes no chunks: the answer whole, at the end
      whole_ += line;
      return;
    }
    pending_ += line;
    if (writing_) {
      if (!final) return;  // the writing thread takes it
      idle_.wait(lock, [this] { return !writing_; });
      if (pending_.empty() || broken_) return;
    }
    writing_ = true;
    while (!pending_.empty() && !broken_) {
      std::string chunk;
      chunk.swap(pending_);
      lock.unlock();
      // writer_ stays valid: Finish() (which drops it) follows the final
      // Send, which waits for this loop.
      bool ok = (writer_->started() || writer_->Start(200, kNdjson, {})) && writer_->Write(chunk);
      lock.lock();
      if (!ok) {
        broken_ = true;  // the client went away; the handler still runs to completion
        LOG_DEBUG("owner", "client connection lost");
      }
    }
    pending_.clear();
    writing_ = false;
    idle_.notify_all();
  }

  // After the final Send: what the HTTP server answers.
  ServerResponse Finish() {
    std::unique_lock<std::mutex> lock(mu_);
    idle_.wait(lock, [this] { return !writing_; });
    ServerResponse response;
    response.content_type = kNdjson;
    response.body = std::move(whole_);
    response.stream_failed = broken_;
    writer_ = nullptr;  // the request's; gone when the handler returns
    return response;
  }

 private:
  static constexpr const char* kNdjson = "application/x-ndjson";
  std::mutex mu_;
  std::condition_variable idle_;
  ChunkedWriter* writer_;  // GUARDED_BY(mu_) but used by the writing thread
  std::string whole_;      // GUARDED_BY(mu_)
  std::string pending_;    // GUARDED_BY(mu_): lines not yet written
  bool writing_ = false;   // GUARDED_BY(mu_): a thread is writing
  bool finished_ = false;  // GUARDED_BY(mu_)
  bool broken_ = false;    // GUARDED_BY(mu_)
};

}  // namespace

std::string OwnerSocketPath(const std::string& state_dir) {
  std::string abs = NormalDir(state_dir);
  std::string local = JoinPath(abs, "sock/owner.sock");
  if (local.size() <= MaxUnixSocketPath()) return local;
  return "/tmp/sluice-" + std::to_string(::geteuid()) + "/" + Sha256Hex(abs).substr(0, 16) +
         ".sock";
}

ServerResponse ServeEngineRequest(const RequestHandler& handler, const ServerRequest& request) {
  if (request.path != kEnginePath) {
    return ProblemResponse(404, "Not found", request.path + " is not served on this socket");
  }
  if (request.method != "POST") {
    ServerResponse refused =
        ProblemResponse(405, "Method not allowed", std::string(kEnginePath) + " takes POST");
    refused.headers.emplace_back("Allow", "POST");
    return refused;
  }
  auto channel = std::make_shared<EngineChannel>(request.writer);
  json parsed = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  json response;
  if (parsed.is_discarded()) {
    response = ErrorResponse("malformed request: not JSON");
  } else if (!parsed.is_object()) {
    response = ErrorResponse("malformed request: expected a JSON object");
  } else {
    // Only the event types the client asked for ("events"; absent: all):
    // a client that shows none is not sent a plan's 20,000.
    std::optional<std::set<std::string, std::less<>>> wanted;
    if (auto it = parsed.find("events"); it != parsed.end() && it->is_array()) {
      wanted.emplace();
      for (const json& type : *it) {
        if (type.is_string()) wanted->insert(type.get<std::string>());
      }
    }
    EventSink sink = [channel, wanted = std::move(wanted)](const json& event) {
      if (wanted) {
        auto type = event.find("type");
        if (type == event.end() || !type->is_string() ||
            !wanted->contains(type->get_ref<const std::string&>())) {
          return;
        }
      }
      channel->Send({{"type", "event"}, {"event", event}}, /*final=*/false);
    };
    response = CallHandler(handler, parsed, sink);
  }
  channel->Send({{"type", "response"}, {"response", std::move(response)}}, /*final=*/true);
  return channel->Finish();
}

HttpHandler EngineEndpoint(RequestHandler handler) {
  return [handler = std::move(handler)](const ServerRequest& request) {
    return ServeEngineRequest(handler, request);
  };
}

struct OwnerLease::State {
  ~State() { Stop(); }

  void Stop(const std::function<void()>& before_unlock = nullptr);

  OwnerInfo info;
  std::string owner_path;
  FileLock lock;
  bool socket_bound = false;
  std::unique_ptr<HttpServer> server;
  bool stopped = false;
};

void OwnerLease::State::Stop(const std::function<void()>& before_unlock) {
  if (stopped) return;
  stopped = true;
  // New clients now find no socket and retry until the lock is free.
  if (socket_bound) ::unlink(info.socket_path.c_str());
  // No new connections; those that sent no request yet are closed (their
  // clients retry with the next owner); requests in flight are answered.
  if (server) server->Stop(kStopGraceMs);
  server.reset();
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
  return TryAcquire(state_dir, command, EngineEndpoint(std::move(handler)));
}

Result<OwnerLease> OwnerLease::TryAcquire(const std::string& state_dir, const std::string& command,
                                          HttpHandler handler) {
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
  // The socket's folder is private (0700, ours, not a symlink): nobody else
  // can reach it, or put a socket of theirs where ours is expected.
  RETURN_IF_ERROR(MakePrivateDir(Dirname(state->info.socket_path)));
  // Listen before publishing the owner file, so whoever reads it can connect.
  ASSIGN_OR_RETURN(UniqueFd listen_fd, ListenUnix(state->info.socket_path));
  state->socket_bound = true;
  HttpServerOptions options;
  options.tcp = false;
  options.local_fd = listen_fd.release();  // the server's from now on
  options.io_threads = 1;
  // Each request holds a handler thread while it runs: a `sluice run`
  // following its run through the owner holds one for the run's length.
  options.handler_threads = kHandlerThreads;
  options.max_body_bytes = kMaxRequestBytes;
  ASSIGN_OR_RETURN(state->server, HttpServer::Start(options, std::move(handler)));
  RETURN_IF_ERROR(WriteOwnerFile(state->lock.fd(), state->info, state->owner_path));
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
  namespace beast = boost::beast;
  namespace http = beast::http;
  namespace net = boost::asio;
  using local = net::local::stream_protocol;
  ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnix(socket_path));
  // The owner must be this user: a request may carry data, and its answer is trusted.
  Result<uid_t> server = PeerUid(fd.get());
  if (!server.ok()) return server.status();
  if (*server != ::geteuid()) {
    return Status::Refused(socket_path + " is served by uid " + std::to_string(*server) +
                           ", not by this user; not sending it a request");
  }
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return Status::IOError(socket_path + ": " + std::strerror(errno));
  }
  net::io_context ioc;
  local::socket socket(ioc);
  beast::error_code ec;
  socket.assign(local(), fd.get(), ec);
  if (ec) return Status::IOError(socket_path + ": " + ec.message());
  fd.release();  // the socket's now

  http::request<http::string_body> req{http::verb::post, kEnginePath, 11};
  req.set(http::field::host, "localhost");
  req.set(http::field::content_type, "application/json");
  req.set(http::field::user_agent, "sluice/" SLUICE_VERSION);
  req.keep_alive(false);
  req.body() = DumpLine(request);
  req.prepare_payload();
  http::write(socket, req, ec);
  if (ec) {
    return Status::IOError(socket_path + ": owner closed the connection: " + ec.message());
  }
  auto closed = [&](const std::string& why) {
    return Status::IOError(socket_path + ": owner closed the connection before responding (" + why +
                           ")");
  };
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);  // the answer streams; each line is bounded below
  http::read_header(socket, buffer, parser, ec);
  if (ec) return closed(ec.message());
  const unsigned status = parser.get().result_int();
  if (status == 503) return closed("it is stopping");
  if (status != 200) {
    std::string body;
    char piece[4096];
    while (!parser.is_done() && body.size() < 4096) {
      parser.get().body().data = piece;
      parser.get().body().size = sizeof piece;
      http::read(socket, buffer, parser, ec);
      if (ec && ec != http::error::need_buffer) break;
      body.append(piece, sizeof piece - parser.get().body().size);
    }
    return Status::DataError(socket_path + ": owner answered HTTP " + std::to_string(status) +
                             ": " + body.substr(0, 512));
  }
  std::string pending;
  std::vector<char> chunk(size_t{64} << 10);
  size_t scanned = 0;            // bytes of pending already searched for '\n'
  beast::error_code read_error;  // the connection's end, once the lines before it are read
  while (true) {
    size_t eol;
    while ((eol = pending.find('\n', scanned)) != std::string::npos) {
      json message = json::parse(pending.data(), pending.data() + eol, nullptr,
                                 /*allow_exceptions=*/false);
      pending.erase(0, eol + 1);
      scanned = 0;
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
    scanned = pending.size();
    if (pending.size() > kMaxLineBytes) {
      return Status::DataError(socket_path + ": owner sent a line over " +
                               std::to_string(kMaxLineBytes) + " bytes");
    }
    if (read_error) return closed(read_error.message());
    if (parser.is_done()) return closed("the answer ended without a response");
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    // read_some: an event is passed on as soon as it arrives (read() would
    // wait for the buffer to fill).
    http::read_some(socket, buffer, parser, read_error);
    if (read_error == http::error::need_buffer) read_error = {};
    // What came before an error is read first: the events the owner sent before it died.
    pending.append(chunk.data(), chunk.size() - parser.get().body().size);
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
