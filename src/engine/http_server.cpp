#include "engine/http_server.h"

#include <sched.h>
#include <unistd.h>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>

#include <nlohmann/json.hpp>
#include "core/clock.h"
#include "core/log.h"
#include "core/strings.h"

#include "core/redact.h"
#include "engine/socket.h"

namespace sluice {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using local = net::local::stream_protocol;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A path as one log line: bytes that are not printable ASCII as %XX.
std::string EscapeForLog(const std::string& text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (c < 0x20 || c >= 0x7f || c == '%') {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

bool IsHttpParseError(const beast::error_code& ec) {
  return &ec.category() == &http::make_error_code(http::error::bad_target).category();
}

}  // namespace

Result<std::string> PercentDecode(const std::string& text, bool form) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      int hi = i + 2 < text.size() ? HexValue(text[i + 1]) : -1;
      int lo = i + 2 < text.size() ? HexValue(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return Status::Invalid("malformed percent escape at '" + text.substr(i, 3) + "'");
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && form) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

ServerResponse ProblemResponse(int status, const std::string& title, const std::string& detail) {
  ServerResponse response;
  response.status = status;
  response.content_type = "application/problem+json";
  nlohmann::json body = {{"type", "about:blank"}, {"title", title}, {"status", status}};
  if (!detail.empty()) body["detail"] = Redact(detail);
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

// What Stop() needs of a connection, whichever socket it came in on.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void CloseIfIdle() = 0;
};

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  // Before the io_context: sessions its destructor frees still count down.
  std::atomic<bool> stopping{false};
  std::atomic<int> connections{0};
  std::atomic<int> in_flight{0};
  std::mutex sessions_mu;
  std::list<std::weak_ptr<SessionBase>> sessions;  // GUARDED_BY(sessions_mu)
  net::io_context ioc;
  // The acceptor and its timer are touched on one strand (Stop closes them there).
  net::strand<net::io_context::executor_type> accept_strand = net::make_strand(ioc);
  tcp::acceptor acceptor{accept_strand};
  local::acceptor local_acceptor{accept_strand};  // the owner's socket, when given
  net::steady_timer accept_pause{accept_strand};
  // Keeps the I/O threads running while a handler works and no socket waits
  // (during Stop, the acceptor is closed): its answer still has to be written.
  std::optional<net::executor_work_guard<net::io_context::executor_type>> keep_running;
  std::unique_ptr<net::thread_pool> workers;
  std::vector<std::thread> io_threads;
  int port = 0;
  bool stopped = false;

  void Accept();
  void AcceptLocal();
  // Serves a connection (or refuses it past max_connections).
  template <typename Socket>
  void Adopt(Socket socket, bool is_local);
  // The handler behind the boundary every request crosses: it never throws,
  // and each request gets one log line.
  ServerResponse Call(const ServerRequest& request);
  // One log line per request.
  void LogRequest(const ServerRequest& request, const ServerResponse& response, bool streamed,
                  int64_t ms);
};

// One connection: read a request, hand it to a handler thread, write the
// answer, and again while the client keeps the connection alive. All of a
// session's state is touched only on its strand. Protocol: TCP, or the
// owner's local socket (whose peer was checked to be this user).
template <typename Protocol>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Protocol>> {
 public:
  using Stream = beast::basic_stream<Protocol>;
  Session(typename Protocol::socket&& socket, HttpServer::Impl* server, bool is_local)
      : stream_(std::move(socket)), server_(server), local_(is_local) {
    ++server_->connections;
    if constexpr (std::is_same_v<Protocol, tcp>) {
      beast::error_code ec;
      tcp::endpoint peer = stream_.socket().remote_endpoint(ec);
      if (!ec) remote_ = peer.address().to_string() + ":" + std::to_string(peer.port());
    } else {
      remote_ = "local";
    }
  }
  ~Session() override { --server_->connections; }
  using std::enable_shared_from_this<Session<Protocol>>::shared_from_this;

  void Start() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session<Protocol>::Read, shared_from_this()));
  }
  // At Stop(): a connection waiting for its next request is closed now; one
  // whose request is being handled closes after its answer.
  void CloseIfIdle() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (!self->busy_) self->Close();
    });
  }

 private:
  void Read() {
    if (server_->stopping) return Close();
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_->options.max_header_bytes));
    parser_->body_limit(server_->options.max_body_bytes);
    stream_.expires_after(std::chrono::milliseconds(server_->options.read_timeout_ms));
    // The header first: a client that sent `Expect: 100-continue` waits for
    // a word before it sends the body (curl does, for bodies over 1 MiB).
    http::async_read_header(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&Session<Protocol>::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, std::size_t bytes) {
    if (ec) return OnRead(ec, bytes);
    const auto& head = parser_->get();
    auto expect = head.find(http::field::expect);
    if (expect == head.end() || parser_->is_done()) return ReadBody();
    if (!beast::iequals(expect->value(), "100-continue") || head.version() < 11) {
      return Write(ProblemResponse(417, "Expectation failed",
                                   "the only expectation this server meets is 100-continue"),
                   true);
    }
    // A body it would refuse is refused before the client sends it.
    if (auto length = parser_->content_length();
        length && *length > server_->options.max_body_bytes) {
      return Write(ProblemResponse(413, "Request body too large",
                                   "the body exceeds " +
                                       std::to_string(server_->options.max_body_bytes) + " bytes"),
                   true);
    }
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                     [self = shared_from_this()](beast::error_code wec, std::size_t) {
                       if (wec) return self->Close();
                       self->ReadBody();
                     });
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session<Protocol>::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t /*bytes*/) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted) {
      return Close();
    }
    if (ec == http::error::body_limit) {
      return Write(ProblemResponse(413, "Request body too large",
                                   "the body exceeds " +
                                       std::to_string(server_->options.max_body_bytes) + " bytes"),
                   true);
    }
    if (ec == http::error::header_limit) {
      return Write(
          ProblemResponse(
              431, "Request headers too large",
              "the headers exceed " + std::to_string(server_->options.max_header_bytes) + " bytes"),
          true);
    }
    if (ec) {
      if (IsHttpParseError(ec)) {
        return Write(ProblemResponse(400, "Malformed HTTP request", ec.message()), true);
      }
      return Close();
    }
    http::request<http::string_body> raw = parser_->release();
    keep_alive_ = raw.keep_alive();
    version_ = raw.version();
    head_ = raw.method() == http::verb::head;
    if (server_->stopping) {
      ServerResponse busy = ProblemResponse(503, "Stopping", "the server is stopping; try again");
      busy.headers.emplace_back("Retry-After", "1");
      return Write(std::move(busy), true);
    }
    ServerRequest request;
    // HEAD is answered as GET without the body.
    request.method = head_ ? "GET" : std::string(raw.method_string());
    request.remote = remote_;
    request.local = local_;
    for (const auto& field : raw) {
      request.headers[ToLower(std::string(field.name_string()))] = std::string(field.value());
    }
    request.body = std::move(raw.body());
    std::string target(raw.target());
    size_t q = target.find('?');
    Result<std::string> path = PercentDecode(target.substr(0, q), false);
    if (!path.ok()) {
      return Write(ProblemResponse(400, "Malformed request target", path.status().message()), true);
    }
    if (std::any_of(path->begin(), path->end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
      return Write(
          ProblemResponse(400, "Malformed request target", "control characters in the path"), true);
    }
    request.path = *path;
    if (q != std::string::npos) {
      for (const std::string& pair : Split(target.substr(q + 1), '&')) {
        if (pair.empty()) continue;
        size_t eq = pair.find('=');
        Result<std::string> key = PercentDecode(pair.substr(0, eq), true);
        Result<std::string> value =
            PercentDecode(eq == std::string::npos ? "" : pair.substr(eq + 1), true);
        if (!key.ok() || !value.ok()) {
          return Write(ProblemResponse(400, "Malformed query string",
                                       (!key.ok() ? key : value).status().message()),
                       true);
        }
        request.query[*key] = *value;
      }
    }
    if (server_->options.answer_at_once) {
      int64_t t0 = MonotonicMillis();
      std::optional<ServerResponse> now;
      try {  // a thread boundary (the I/O thread's): a throw sends it on to the handler
        now = server_->options.answer_at_once(request);
      } catch (const std::exception& e) {
        LOG_WARN("http", "{} {}: answering at once failed: {}", request.method,
                 EscapeForLog(request.path), e.what());
        now.reset();
      }
      if (now) {
        server_->LogRequest(request, *now, false, MonotonicMillis() - t0);
        return Write(std::move(*now), false);
      }
    }
    busy_ = true;
    stream_.expires_never();
    ++server_->in_flight;
    const bool chunks = version_ >= 11 && !head_;
    net::post(*server_->workers, [self = shared_from_this(), request = std::move(request),
                                  chunks]() mutable {
      Writer writer(self);
      if (chunks) request.writer = &writer;
      ServerResponse response = self->server_->Call(request);
      --self->server_->in_flight;
      if (writer.started()) {
        bool cut = response.stream_failed || writer.broken();
        net::post(self->stream_.get_executor(), [self, cut] { self->Finish(cut); });
        return;
      }
      net::post(self->stream_.get_executor(), [self, response = std::move(response)]() mutable {
        self->Write(std::move(response), false);
      });
    });
  }

  // A handler's chunked answer. Start() sends the head and waits for it;
  // each Write() queues its chunk on the session and returns at once, while
  // the session writes the queue out in order on its strand — so a handler
  // that sends many small pieces (a run's events) never waits a round trip
  // for each. It waits only while more than kMaxQueuedBytes are queued (a
  // client that reads slowly holds the producer back, at most the write
  // timeout per chunk before the connection is dropped).
  class Writer final : public ChunkedWriter {
   public:
    explicit Writer(std::shared_ptr<Session<Protocol>> session) : session_(std::move(session)) {}
    bool Start(int status, const std::string& content_type,
               const std::vector<std::pair<std::string, std::string>>& headers) override {
      if (started_) return false;
      started_ = true;
      auto head = std::make_shared<http::response<http::empty_body>>(
          static_cast<http::status>(status), session_->version_);
      head->set(http::field::server, "sluice/" SLUICE_VERSION);
      if (!content_type.empty()) head->set(http::field::content_type, content_type);
      for (const auto& [name, value] : headers) head->set(name, value);
      head->chunked(true);
      head->keep_alive(session_->keep_alive_ && !session_->server_->stopping);
      auto serializer = std::make_shared<http::response_serializer<http::empty_body>>(*head);
      auto promise = std::make_shared<std::promise<beast::error_code>>();
      std::future<beast::error_code> result = promise->get_future();
      net::post(session_->stream_.get_executor(), [self = session_, head, serializer, promise] {
        self->stream_.expires_after(
            std::chrono::milliseconds(self->server_->options.write_timeout_ms));
        http::async_write_header(self->stream_, *serializer,
                                 [head, serializer, promise](beast::error_code ec, std::size_t) {
                                   promise->set_value(ec);
                                 });
      });
      // The I/O threads may stop (Stop() past its grace): do not wait forever.
      const int64_t wait_ms = session_->server_->options.write_timeout_ms + 1000;
      if (result.wait_for(std::chrono::milliseconds(wait_ms)) != std::future_status::ready ||
          result.get()) {
        session_->Broken();
      }
      return !broken();
    }
    bool Write(std::string_view chunk) override {
      if (!started_ || broken()) return false;
      if (chunk.empty()) return true;  // an empty chunk would end the answer
      return session_->Queue(std::string(chunk));
    }
    bool started() const override { return started_; }
    bool broken() const { return session_->chunks_broken_.load(); }

   private:
    std::shared_ptr<Session<Protocol>> session_;
    bool started_ = false;
  };

  static constexpr size_t kMaxQueuedBytes = size_t{1} << 20;

  // A chunk for the strand to write; waits while the queue is full.
  bool Queue(std::string chunk) {
    {
      std::unique_lock lock(chunks_mu_);
      const auto deadline = std::chrono::steady_clock::now() +
                            std::chrono::milliseconds(server_->options.write_timeout_ms + 1000);
      if (!chunks_room_.wait_until(lock, deadline, [this] {
            return queued_bytes_ <= kMaxQueuedBytes || chunks_broken_.load();
          })) {
        lock.unlock();
        Broken();  // the client stopped reading (or the I/O threads stopped)
        return false;
      }
      if (chunks_broken_) return false;
      queued_bytes_ += chunk.size();
    }
    net::post(stream_.get_executor(),
              [self = shared_from_this(), bytes = std::make_shared<std::string>(std::move(chunk))] {
                self->chunks_.push_back(bytes);
                if (!self->chunk_writing_) self->WriteNextChunk();
              });
    return !chunks_broken_.load();
  }

  // On the strand: the next queued chunk, or the end of the answer once the
  // queue is empty and the handler has returned.
  void WriteNextChunk() {
    if (chunks_.empty() || chunks_broken_) {
      chunk_writing_ = false;
      if (chunks_broken_) chunks_.clear();
      if (finish_) Finish(*finish_);
      return;
    }
    chunk_writing_ = true;
    std::shared_ptr<std::string> bytes = chunks_.front();
    chunks_.pop_front();
    stream_.expires_after(std::chrono::milliseconds(server_->options.write_timeout_ms));
    net::async_write(stream_, http::make_chunk(net::const_buffer(bytes->data(), bytes->size())),
                     [self = shared_from_this(), bytes](beast::error_code ec, std::size_t) {
                       {
                         std::lock_guard lock(self->chunks_mu_);
                         self->queued_bytes_ -= bytes->size();
                       }
                       if (ec) self->Broken();
                       self->chunks_room_.notify_all();
                       self->WriteNextChunk();
                     });
  }

  // The chunked answer cannot go on: producers stop, the connection goes.
  void Broken() {
    if (chunks_broken_.exchange(true)) return;
    chunks_room_.notify_all();
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->Close(); });
  }

  // After a chunked answer, once its queue is written: the last chunk, then
  // the next request; a cut answer closes the connection instead.
  void Finish(bool cut) {
    if (chunk_writing_ || !chunks_.empty()) {
      finish_ = cut;  // when the queue is written
      return;
    }
    finish_.reset();
    {
      std::lock_guard lock(chunks_mu_);
      queued_bytes_ = 0;  // what a broken answer left unwritten
    }
    chunks_broken_ = false;
    if (cut) {
      busy_ = false;
      return Close();
    }
    stream_.expires_after(std::chrono::milliseconds(server_->options.write_timeout_ms));
    bool close = !keep_alive_ || server_->stopping;
    net::async_write(stream_, http::make_chunk_last(),
                     [self = shared_from_this(), close](beast::error_code ec, std::size_t bytes) {
                       self->OnWrite(close, ec, bytes);
                     });
  }

  void Write(ServerResponse response, bool close) {
    busy_ = true;
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(response.status), version_ ? version_ : 11);
    res->set(http::field::server, "sluice/" SLUICE_VERSION);
    if (!response.content_type.empty()) res->set(http::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) res->set(name, value);
    res->body() = std::move(response.body);
    close = close || !keep_alive_ || server_->stopping;
    res->keep_alive(!close);
    res->prepare_payload();
    if (head_) res->body().clear();  // Content-Length stays that of the GET
    response_ = res;
    stream_.expires_after(std::chrono::milliseconds(server_->options.write_timeout_ms));
    http::async_write(
        stream_, *response_,
        beast::bind_front_handler(&Session<Protocol>::OnWrite, shared_from_this(), close));
  }

  void OnWrite(bool close, beast::error_code ec, std::size_t /*bytes*/) {
    busy_ = false;
    response_.reset();
    if (ec || close) return Close();
    Read();
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(net::socket_base::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  HttpServer::Impl* server_;
  bool local_ = false;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<http::response<http::string_body>> response_;
  std::string remote_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool head_ = false;
  bool busy_ = false;
  // A chunked answer: the chunks queued by the handler's thread, written on
  // the strand in order.
  std::deque<std::shared_ptr<std::string>> chunks_;  // on the strand
  bool chunk_writing_ = false;                       // on the strand
  std::optional<bool> finish_;                       // on the strand: the handler returned (cut?)
  std::mutex chunks_mu_;
  std::condition_variable chunks_room_;
  size_t queued_bytes_ = 0;  // GUARDED_BY(chunks_mu_)
  std::atomic<bool> chunks_broken_{false};
};

ServerResponse HttpServer::Impl::Call(const ServerRequest& request) {
  int64_t t0 = MonotonicMillis();
  ServerResponse response;
  try {
    response = handler(request);
  } catch (const std::exception& e) {
    LOG_ERROR("http", "{} {}: {}", request.method, request.path, e.what());
    response = ProblemResponse(500, "Internal error", e.what());
  } catch (...) {
    response = ProblemResponse(500, "Internal error", "unknown exception");
  }
  const bool streamed = request.writer != nullptr && request.writer->started();
  LogRequest(request, response, streamed, MonotonicMillis() - t0);
  return response;
}

void HttpServer::Impl::LogRequest(const ServerRequest& request, const ServerResponse& response,
                                  bool streamed, int64_t ms) {
  if (!LogEnabled(LogLevel::kInfo)) return;
  LOG_INFO("http", "{} {} {} {}{}ms {}", request.method, EscapeForLog(request.path),
           response.status,
           streamed ? std::string(response.stream_failed ? "chunked (cut) " : "chunked ")
                    : std::to_string(response.body.size()) + "B ",
           ms, request.remote);
}

void HttpServer::Impl::Accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (stopping || !acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors (EMFILE) and the like: pause rather than spin.
      LOG_WARN("http", "accept failed: {}", ec.message());
      accept_pause.expires_after(std::chrono::milliseconds(100));
      accept_pause.async_wait([this](beast::error_code) {
        if (!stopping) Accept();
      });
      return;
    }
    Adopt(std::move(socket), false);
    Accept();
  });
}

void HttpServer::Impl::AcceptLocal() {
  local_acceptor.async_accept(
      net::make_strand(ioc), [this](beast::error_code ec, local::socket socket) {
        if (stopping || !local_acceptor.is_open()) return;
        if (ec) {
          LOG_WARN("http", "accept on the owner's socket failed: {}", ec.message());
          accept_pause.expires_after(std::chrono::milliseconds(100));
          accept_pause.async_wait([this](beast::error_code) {
            if (!stopping) AcceptLocal();
          });
          return;
        }
        // Only this user: a request may carry data, and the socket's
        // callers act with this process's rights.
        Result<uid_t> peer = PeerUid(socket.native_handle());
        if (!peer.ok() || *peer != ::geteuid()) {
          beast::error_code ignored;
          socket.close(ignored);
          LOG_WARN("http", "refused a connection on the owner's socket from another user");
        } else {
          Adopt(std::move(socket), true);
        }
        AcceptLocal();
      });
}

template <typename Socket>
void HttpServer::Impl::Adopt(Socket socket, bool is_local) {
  using Protocol = typename Socket::protocol_type;
  if (connections.load() >= options.max_connections) {
    beast::error_code ignored;
    socket.close(ignored);
    LOG_WARN("http", "refused a connection: {} open (the limit)", options.max_connections);
    return;
  }
  auto session = std::make_shared<Session<Protocol>>(std::move(socket), this, is_local);
  {
    std::lock_guard lock(sessions_mu);
    sessions.remove_if([](const std::weak_ptr<SessionBase>& s) { return s.expired(); });
    sessions.push_back(session);
  }
  session->Start();
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(0); }

int HttpServer::port() const { return impl_->port; }

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                      HttpHandler handler) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->handler = std::move(handler);
  beast::error_code ec;
  if (options.local_fd >= 0) {
    // Taken over: from now on the acceptor closes it.
    impl->local_acceptor.assign(local(), options.local_fd, ec);
    if (ec) {
      ::close(options.local_fd);
      return Status::IOError("server: cannot serve the owner's socket: " + ec.message());
    }
  }
  if (options.tcp) {
    std::string where = options.host + ":" + std::to_string(options.port);
    net::ip::address address = net::ip::make_address(options.host, ec);
    if (ec) return Status::Invalid("server: listen " + where + ": not an IP address");
    tcp::endpoint endpoint(address, static_cast<unsigned short>(options.port));
    impl->acceptor.open(endpoint.protocol(), ec);
    if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) impl->acceptor.bind(endpoint, ec);
    if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::IOError("server: cannot listen on " + where + ": " + ec.message() +
                             (ec == net::error::address_in_use
                                  ? " (another process serves that port; give each environment "
                                    "its own server: listen under environments.<env>)"
                                  : ""));
    }
    impl->port = impl->acceptor.local_endpoint().port();
  }
  impl->keep_running.emplace(impl->ioc.get_executor());
  impl->workers = std::make_unique<net::thread_pool>(std::max(1, options.handler_threads));
  if (options.tcp) impl->Accept();
  if (impl->local_acceptor.is_open()) impl->AcceptLocal();
  Impl* raw = impl.get();
  // No more I/O threads than CPUs this process may run on (taskset, a
  // container's cpuset): two on one CPU only wake each other.
  int io_threads = std::max(1, options.io_threads);
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  if (::sched_getaffinity(0, sizeof cpus, &cpus) == 0) {
    io_threads = std::min(io_threads, std::max(1, CPU_COUNT(&cpus)));
  }
  for (int i = 0; i < io_threads; ++i) {
    impl->io_threads.emplace_back([raw] {
      // A thread boundary: a handler's exception is caught in Call; anything
      // else escaping Asio's loop is logged and the loop resumes.
      while (true) {
        try {
          raw->ioc.run();
          return;
        } catch (const std::exception& e) {
          LOG_ERROR("http", "I/O thread: {}", e.what());
        }
      }
    });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Stop(int grace_ms) {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  impl_->stopping = true;
  net::post(impl_->accept_strand, [impl = impl_.get()] {
    beast::error_code ec;
    impl->acceptor.close(ec);
    impl->local_acceptor.close(ec);
    impl->accept_pause.cancel();
  });
  std::vector<std::shared_ptr<SessionBase>> live;
  {
    std::lock_guard lock(impl_->sessions_mu);
    for (const auto& weak : impl_->sessions) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  for (const auto& s : live) s->CloseIfIdle();
  live.clear();
  // Requests in flight are answered (each then closes its connection).
  int64_t deadline = MonotonicMillis() + grace_ms;
  while ((impl_->connections.load() > 0 || impl_->in_flight.load() > 0) &&
         MonotonicMillis() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (impl_->in_flight.load() > 0) {
    LOG_WARN("http",
             "stopping: {} request(s) still being handled after {} ms; their answers are "
             "dropped",
             impl_->in_flight.load(), grace_ms);
  }
  impl_->keep_running.reset();
  impl_->ioc.stop();
  for (std::thread& t : impl_->io_threads) t.join();
  impl_->io_threads.clear();
  // A handler still running finishes; what it posts is dropped with the io_context.
  impl_->workers->join();
}

}  // namespace sluice
