// The HTTP transport (engine/http_server.h) against a real client
// (cpp-httplib) on 127.0.0.1: answers, keep-alive, limits, a handler that
// throws, a graceful stop that answers the request in flight, and the
// owner's local socket (this user only).
#include "engine/http_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include "engine/socket.h"

namespace sluice {
namespace {

std::unique_ptr<HttpServer> StartOrDie(HttpHandler handler, HttpServerOptions options = {}) {
  options.port = 0;
  auto server = HttpServer::Start(options, std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status().message();
  return std::move(server).value();
}

TEST(HttpServerTest, AnswersAndKeepsConnectionsAlive) {
  std::atomic<int> calls{0};
  auto server = StartOrDie([&](const ServerRequest& r) {
    ++calls;
    ServerResponse out;
    out.body = r.method + " " + r.path + " q=" + (r.query.count("q") ? r.query.at("q") : "-") +
               " h=" + r.Header("x-thing") + " b=" + r.body;
    out.headers.emplace_back("X-Answer", "yes");
    return out;
  });
  httplib::Client client("127.0.0.1", server->port());
  client.set_keep_alive(true);
  auto a = client.Get("/a%20b?q=x%20y%26z", {{"X-Thing", "T"}});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->body, "GET /a b q=x y&z h=T b=");
  EXPECT_EQ(a->get_header_value("X-Answer"), "yes");
  EXPECT_EQ(a->get_header_value("Content-Type"), "application/json");
  auto b = client.Post("/p", "hello", "text/plain");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->body, "POST /p q=- h= b=hello");
  // HEAD is GET without the body, and the connection stays usable.
  auto head = client.Head("/p");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->body, "");
  EXPECT_EQ(head->get_header_value("Content-Length"),
            std::to_string(std::string("GET /p q=- h= b=").size()));
  auto c = client.Get("/c");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->body, "GET /c q=- h= b=");
  EXPECT_EQ(calls.load(), 4);
}

// A plain TCP client: what the server writes, byte for byte.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawClient() { ::close(fd_); }
  bool connected() const { return connected_; }
  void Send(const std::string& text) {
    ASSERT_EQ(::send(fd_, text.data(), text.size(), 0), static_cast<ssize_t>(text.size()));
  }
  // Reads until `until` has arrived (or the peer closes, or 5 s pass).
  std::string ReadUntil(const std::string& until) {
    while (got_.find(until) == std::string::npos) {
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      got_.append(buf, static_cast<size_t>(n));
    }
    return got_;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string got_;
};

TEST(HttpServerTest, ExpectContinueIsAnsweredBeforeTheBody) {
  HttpServerOptions options;
  options.max_body_bytes = 1000;
  auto server = StartOrDie(
      [](const ServerRequest& r) {
        ServerResponse out;
        out.body = "got " + r.body;
        return out;
      },
      options);
  {
    RawClient c(server->port());
    ASSERT_TRUE(c.connected());
    c.Send("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    std::string interim = c.ReadUntil("\r\n\r\n");
    EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    c.Send("hello");
    std::string answer = c.ReadUntil("got hello");
    EXPECT_NE(answer.find("HTTP/1.1 200 OK"), std::string::npos) << answer;
  }
  {
    // Too big: refused at once, the body never asked for.
    RawClient c(server->port());
    ASSERT_TRUE(c.connected());
    c.Send("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n");
    std::string answer = c.ReadUntil("}");
    EXPECT_EQ(answer.rfind("HTTP/1.1 413 ", 0), 0u) << answer;
    EXPECT_EQ(answer.find("100 Continue"), std::string::npos) << answer;
  }
  {
    RawClient c(server->port());
    ASSERT_TRUE(c.connected());
    c.Send("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: teapot\r\n\r\n");
    std::string answer = c.ReadUntil("}");
    EXPECT_EQ(answer.rfind("HTTP/1.1 417 ", 0), 0u) << answer;
  }
}

TEST(HttpServerTest, MalformedAndOversizedRequestsAreRefused) {
  HttpServerOptions options;
  options.max_body_bytes = 1000;
  auto server = StartOrDie([](const ServerRequest&) { return ServerResponse{}; }, options);
  httplib::Client client("127.0.0.1", server->port());
  auto big = client.Post("/p", std::string(5000, 'x'), "text/plain");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(big->get_header_value("Content-Type"), "application/problem+json");
  auto bad = client.Get("/x?a=%zz");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("malformed percent escape"), std::string::npos);
}

TEST(HttpServerTest, AHandlerThatThrowsIsA500AndTheServerGoesOn) {
  auto server = StartOrDie([](const ServerRequest& r) -> ServerResponse {
    if (r.path == "/boom") throw std::runtime_error("kaboom");
    return ServerResponse{};
  });
  httplib::Client client("127.0.0.1", server->port());
  auto boom = client.Get("/boom");
  ASSERT_TRUE(boom);
  EXPECT_EQ(boom->status, 500);
  EXPECT_NE(boom->body.find("kaboom"), std::string::npos);
  auto ok = client.Get("/fine");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST(HttpServerTest, StopAnswersTheRequestInFlightThenRefuses) {
  std::promise<void> entered;
  auto server = StartOrDie([&](const ServerRequest&) {
    entered.set_value();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ServerResponse out;
    out.body = "late but whole";
    return out;
  });
  int port = server->port();
  auto in_flight = std::async(std::launch::async, [port] {
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(5, 0);
    auto r = client.Get("/slow");
    return r ? r->body : std::string("no answer");
  });
  entered.get_future().wait();
  server->Stop(5000);
  EXPECT_EQ(in_flight.get(), "late but whole");
  httplib::Client after("127.0.0.1", port);
  after.set_connection_timeout(1, 0);
  EXPECT_FALSE(after.Get("/x"));
}

TEST(HttpServerTest, ABusyPortIsAnErrorThatSaysWhatToDo) {
  auto first = StartOrDie([](const ServerRequest&) { return ServerResponse{}; });
  HttpServerOptions options;
  options.port = first->port();
  auto second = HttpServer::Start(options, [](const ServerRequest&) { return ServerResponse{}; });
  ASSERT_FALSE(second.ok());
  EXPECT_NE(
      second.status().message().find("cannot listen on 127.0.0.1:" + std::to_string(first->port())),
      std::string::npos)
      << second.status().message();
}

TEST(HttpServerTest, PercentDecode) {
  EXPECT_EQ(*PercentDecode("a%2Fb+c", false), "a/b+c");
  EXPECT_EQ(*PercentDecode("a%2fb+c", true), "a/b c");
  EXPECT_FALSE(PercentDecode("%", false).ok());
  EXPECT_FALSE(PercentDecode("%4", false).ok());
  EXPECT_FALSE(PercentDecode("%g0", false).ok());
  EXPECT_EQ(*PercentDecode("%41", false), "A");
}

// The owner's local socket on the same server: requests are marked local,
// and a connection from another user is closed before it is read.
TEST(HttpServerTest, ServesTheOwnersSocketToThisUserOnly) {
  char tmpl[] = "/tmp/sluice-http-local.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string path = dir + "/owner.sock";
  Result<UniqueFd> listener = ListenUnix(path);
  ASSERT_TRUE(listener.ok()) << listener.status().ToString();
  HttpServerOptions options;
  options.tcp = false;
  options.local_fd = listener->release();
  std::atomic<int> calls{0};
  auto server = HttpServer::Start(options, [&](const ServerRequest& r) {
    ++calls;
    ServerResponse out;
    out.body = std::string("local=") + (r.local ? "yes" : "no") + " remote=" + r.remote + "\n";
    return out;
  });
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  EXPECT_EQ((*server)->port(), 0);  // no TCP port
  auto exchange = [&]() -> std::string {
    Result<UniqueFd> fd = ConnectUnix(path);
    if (!fd.ok()) return "connect: " + fd.status().message();
    LineConnection connection(std::move(fd).value());
    if (!connection.WriteAll("GET /x HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()) return "write";
    std::string last;
    while (true) {
      Result<std::string> line = connection.ReadLine(1 << 16, -1, 5000);
      if (!line.ok()) return last;
      last = *line;
    }
  };
  EXPECT_EQ(exchange(), "local=yes remote=local");
  EXPECT_EQ(calls.load(), 1);

  if (::geteuid() == 0) {
    // Another user who can reach the file (opened up on purpose): the
    // server's peer check is what turns it away.
    ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
    ASSERT_EQ(::chmod(path.c_str(), 0666), 0);
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
      // Closed unanswered: nothing read, or closed before the request was written.
      std::string answer = exchange();
      if (answer.empty() || answer == "write") ::_exit(0);
      ::_exit(answer.rfind("connect:", 0) == 0 ? 2 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "1: answered another user; 2: could not connect";
    EXPECT_EQ(calls.load(), 1);
  }
  (*server)->Stop(1000);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sluice
