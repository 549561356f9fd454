// Tests of the owner transport: the lease (flock + socket + serving threads),
// the wire protocol, Dispatch, and ownership across real processes (fork,
// kill -9).
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/fs.h"
#include "engine/owner.h"
#include "engine/socket.h"

namespace sluice {
namespace {

using nlohmann::json;

class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/sluice-owner-test-XXXXXX";
    char* made = ::mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string State() const { return path_ + "/.sluice/dev"; }

 private:
  std::string path_;
};

json Echo(const json& request, const EventSink& events) {
  events({{"step", 1}});
  events({{"step", 2}});
  return {{"ok", true}, {"echo", request}, {"pid", ::getpid()}};
}

RequestHandler Tagged(const std::string& tag, std::atomic<int>* calls = nullptr) {
  return [tag, calls](const json& request, const EventSink& events) -> json {
    if (calls) ++*calls;
    events({{"from", tag}});
    return {{"ok", true}, {"where", tag}, {"echo", request}, {"pid", ::getpid()}};
  };
}

// Sends one raw line and returns the first line of the answer.
// Sends `request` as it is and reads the whole answer (the server closes).
std::vector<std::string> RawLines(const std::string& socket_path, const std::string& request) {
  Result<UniqueFd> fd = ConnectUnix(socket_path);
  EXPECT_TRUE(fd.ok()) << fd.status().ToString();
  if (!fd.ok()) return {};
  LineConnection connection(std::move(fd).value());
  EXPECT_TRUE(connection.WriteAll(request).ok());
  std::vector<std::string> lines;
  while (true) {
    Result<std::string> line = connection.ReadLine(1 << 20, -1, 5000);
    if (!line.ok()) break;
    lines.push_back(*line);
  }
  return lines;
}

// POSTs body to the engine API as HTTP/1.0 (answered whole, not chunked)
// and returns the answer's last line: the final message.
std::string RawExchange(const std::string& socket_path, const std::string& body) {
  std::vector<std::string> lines =
      RawLines(socket_path, "POST /api/v1/engine HTTP/1.0\r\nHost: localhost\r\nContent-Length: " +
                                std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_FALSE(lines.empty());
  if (lines.empty()) return "";
  EXPECT_EQ(lines[0].rfind("HTTP/1.0 200", 0), 0u) << lines[0];
  return lines.back();
}

TEST(OwnerLease, AcquireRecordsOwnerAndSecondAcquireIsBusy) {
  TempDir dir;
  Result<OwnerLease> lease = OwnerLease::TryAcquire(dir.State(), "run", Echo);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  EXPECT_EQ(lease->info().pid, ::getpid());
  EXPECT_EQ(lease->info().command, "run");
  EXPECT_EQ(lease->info().socket_path, dir.State() + "/sock/owner.sock");
  EXPECT_TRUE(FileExists(lease->info().socket_path));

  Result<OwnerInfo> info = ReadOwnerInfo(dir.State());
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->pid, ::getpid());
  EXPECT_EQ(info->command, "run");
  EXPECT_EQ(info->socket_path, lease->info().socket_path);
  EXPECT_EQ(info->started_at, lease->info().started_at);
  EXPECT_FALSE(info->started_at.empty());

  // flock is per open file description: a second open in this process is refused.
  Result<OwnerLease> second = OwnerLease::TryAcquire(dir.State(), "query", Echo);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kBusy);
  EXPECT_NE(second.status().message().find("pid " + std::to_string(::getpid()) + " (run)"),
            std::string::npos)
      << second.status().message();

  lease->Release();
  lease->Release();  // idempotent
  EXPECT_FALSE(FileExists(dir.State() + "/sock/owner.sock"));
  EXPECT_EQ(ReadOwnerInfo(dir.State()).status().code(), StatusCode::kNotFound);
  Result<OwnerLease> third = OwnerLease::TryAcquire(dir.State(), "query", Echo);
  EXPECT_TRUE(third.ok()) << third.status().ToString();
}

// The owner closes what the lease protects (its warehouse) while it still
// holds the lease: nobody can become the owner in between.
TEST(OwnerLease, ReleaseRunsItsHookBeforeUnlocking) {
  TempDir dir;
  Result<OwnerLease> lease = OwnerLease::TryAcquire(dir.State(), "run", Echo);
  ASSERT_TRUE(lease.ok());
  bool ran = false;
  lease->Release([&] {
    ran = true;
    EXPECT_FALSE(FileExists(dir.State() + "/sock/owner.sock"));  // no new clients
    Result<OwnerLease> other = OwnerLease::TryAcquire(dir.State(), "query", Echo);
    EXPECT_EQ(other.status().code(), StatusCode::kBusy);  // still the owner
  });
  EXPECT_TRUE(ran);
  EXPECT_TRUE(OwnerLease::TryAcquire(dir.State(), "query", Echo).ok());
}

TEST(OwnerLease, NoOwnerFileIsNotFound) {
  TempDir dir;
  EXPECT_EQ(ReadOwnerInfo(dir.State()).status().code(), StatusCode::kNotFound);
}

TEST(OwnerLease, DestructionAndMoveRelease) {
  TempDir dir;
  {
    Result<OwnerLease> lease = OwnerLease::TryAcquire(dir.State(), "run", Echo);
    ASSERT_TRUE(lease.ok());
    OwnerLease moved = std::move(lease).value();
    Result<json> response = SendToOwner(moved.info().socket_path, {{"q", 1}}, nullptr);
    ASSERT_TRUE(response.ok()) << response.status().ToString();
    EXPECT_EQ((*response)["echo"]["q"], 1);
  }
  EXPECT_FALSE(FileExists(dir.State() + "/sock/owner.sock"));
  EXPECT_TRUE(OwnerLease::TryAcquire(dir.State(), "run", Echo).ok());
}

TEST(OwnerLease, LongStateDirUsesTmpSocket) {
  TempDir dir;
  std::string deep = dir.path() + "/" + std::string(60, 'a') + "/" + std::string(60, 'b');
  std::string path = OwnerSocketPath(deep);
  std::string private_dir = "/tmp/sluice-" + std::to_string(::geteuid()) + "/";
  EXPECT_EQ(path.rfind(private_dir, 0), 0u) << path;
  EXPECT_EQ(path.size(), private_dir.size() + 16 + std::string(".sock").size());
  EXPECT_EQ(OwnerSocketPath(deep + "/"), path);  // same folder, same socket
  EXPECT_EQ(OwnerSocketPath(dir.State()), dir.State() + "/sock/owner.sock");

  Result<OwnerLease> lease = OwnerLease::TryAcquire(deep, "serve", Echo);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  EXPECT_EQ(lease->info().socket_path, path);
  // The folder is private: ours, 0700.
  struct stat st {};
  ASSERT_EQ(::lstat(private_dir.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(st.st_uid, ::geteuid());
  Result<json> response = SendToOwner(path, {{"x", "y"}}, nullptr);
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ((*response)["echo"]["x"], "y");
  lease->Release();
  EXPECT_FALSE(FileExists(path));
}

// Someone else's folder, or a symlink, where the private socket folder goes:
// the owner refuses to listen there.
TEST(OwnerLease, SocketFolderMustBePrivate) {
  TempDir dir;
  ASSERT_TRUE(MakeDirs(dir.State()).ok());
  std::string elsewhere = dir.path() + "/elsewhere";
  ASSERT_TRUE(MakeDirs(elsewhere).ok());
  ASSERT_EQ(::symlink(elsewhere.c_str(), (dir.State() + "/sock").c_str()), 0);
  Result<OwnerLease> lease = OwnerLease::TryAcquire(dir.State(), "run", Echo);
  ASSERT_FALSE(lease.ok());
  EXPECT_NE(lease.status().message().find("expected a private folder"), std::string::npos)
      << lease.status().ToString();
  // A folder of ours that others may enter is tightened to 0700.
  ASSERT_EQ(::unlink((dir.State() + "/sock").c_str()), 0);
  ASSERT_EQ(::mkdir((dir.State() + "/sock").c_str(), 0755), 0);
  ASSERT_TRUE(OwnerLease::TryAcquire(dir.State(), "run", Echo).ok());
  struct stat st {};
  ASSERT_EQ(::stat((dir.State() + "/sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST(OwnerLease, StaleSocketIsReplaced) {
  TempDir dir;
  ASSERT_TRUE(MakeDirs(dir.State()).ok());
  ASSERT_TRUE(MakePrivateDir(dir.State() + "/sock").ok());
  std::string path = OwnerSocketPath(dir.State());
  {
    Result<UniqueFd> dead = ListenUnix(path);  // closed at once: the file stays behind
    ASSERT_TRUE(dead.ok()) << dead.status().ToString();
  }
  ASSERT_TRUE(FileExists(path));
  EXPECT_EQ(SendToOwner(path, {{"a", 1}}, nullptr).status().code(), StatusCode::kNotFound);

  Result<OwnerLease> lease = OwnerLease::TryAcquire(dir.State(), "run", Echo);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  Result<json> response = SendToOwner(path, {{"a", 1}}, nullptr);
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ((*response)["echo"]["a"], 1);
}

TEST(OwnerLease, ReleaseWaitsForInFlightRequest) {
  TempDir dir;
  std::atomic<bool> started{false};
  std::atomic<bool> finished{false};
  Result<OwnerLease> lease =
      OwnerLease::TryAcquire(dir.State(), "run", [&](const json&, const EventSink&) -> json {
        started = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        finished = true;
        return {{"ok", true}};
      });
  ASSERT_TRUE(lease.ok());
  Result<json> response = Status::Internal("not run");
  std::thread client([&] {
    response = SendToOwner(lease->info().socket_path, {{"slow", true}}, nullptr);
  });
  while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  lease->Release();
  EXPECT_TRUE(finished);
  client.join();
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ((*response)["ok"], true);
}

TEST(OwnerTransport, RoundTripWithEvents) {
  TempDir dir;
  Result<OwnerLease> lease = OwnerLease::TryAcquire(dir.State(), "serve", Echo);
  ASSERT_TRUE(lease.ok());
  std::vector<json> events;
  json request = {{"op", "query"}, {"sql", "select 'é', 1"}};
  Result<json> response = SendToOwner(lease->info().socket_path, request,
                                      [&](const json& event) { events.push_back(event); });
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ((*response)["ok"], true);
  EXPECT_EQ((*response)["echo"], request);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["step"], 1);
  EXPECT_EQ(events[1]["step"], 2);
}

TEST(OwnerTransport, ConcurrentClients) {
  TempDir dir;
  std::atomic<int> in_flight{0};
  std::atomic<int> max_in_flight{0};
  Result<OwnerLease> lease = OwnerLease::TryAcquire(
      dir.State(), "serve", [&](const json& request, const EventSink& events) -> json {
        int now = ++in_flight;
        int seen = max_in_flight.load();
        while (now > seen && !max_in_flight.compare_exchange_weak(seen, now)) {
        }
        // Events from helper threads of one request are serialised by the sink.
        std::thread helper([&] {
          for (int i = 0; i < 5; ++i) events({{"helper", i}});
        });
        for (int i = 0; i < 5; ++i) events({{"main", i}});
        helper.join();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        --in_flight;
        return {{"ok", true}, {"id", request["id"]}};
      });
  ASSERT_TRUE(lease.ok());
  constexpr int kThreads = 8;
  constexpr int kPerThread = 10;
  std::atomic<int> good{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        int id = t * 1000 + i;
        int event_count = 0;
        Result<json> response = SendToOwner(lease->info().socket_path, {{"id", id}},
                                            [&](const json&) { ++event_count; });
        if (response.ok() && (*response)["id"] == id && event_count == 10) ++good;
      }
    });
  }
  for (auto& client : clients) client.join();
  EXPECT_EQ(good, kThreads * kPerThread);
  EXPECT_GT(max_in_flight, 1) << "requests were not served concurrently";
}

TEST(OwnerTransport, LargeResponseAndEvent) {
  TempDir dir;
  const std::string big(5 << 20, 'x');
  const std::string medium(1 << 20, 'y');
  Result<OwnerLease> lease = OwnerLease::TryAcquire(
      dir.State(), "serve", [&](const json& request, const EventSink& events) -> json {
        events({{"chunk", medium}});
        return {{"ok", true},
                {"data", big},
                {"request_size", request["blob"].get<std::string>().size()}};
      });
  ASSERT_TRUE(lease.ok());
  std::string event_data;
  Result<json> response =
      SendToOwner(lease->info().socket_path, {{"blob", std::string(2 << 20, 'z')}},
                  [&](const json& event) { event_data = event["chunk"].get<std::string>(); });
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ((*response)["data"].get<std::string>(), big);
  EXPECT_EQ((*response)["request_size"], 2 << 20);
  EXPECT_EQ(event_data, medium);
}

TEST(OwnerTransport, MalformedRequestsGetErrorResponses) {
  TempDir dir;
  std::atomic<int> calls{0};
  Result<OwnerLease> lease = OwnerLease::TryAcquire(dir.State(), "serve", Tagged("owner", &calls));
  ASSERT_TRUE(lease.ok());
  const std::string& path = lease->info().socket_path;

  json answer = json::parse(RawExchange(path, "this is {not json\n"), nullptr, false);
  ASSERT_TRUE(answer.is_object());
  EXPECT_EQ(answer["type"], "response");
  EXPECT_EQ(answer["response"]["ok"], false);
  EXPECT_NE(answer["response"]["error"].get<std::string>().find("malformed"), std::string::npos);

  answer = json::parse(RawExchange(path, "[1, 2, 3]\n"), nullptr, false);
  ASSERT_TRUE(answer.is_object());
  EXPECT_EQ(answer["response"]["ok"], false);

  answer = json::parse(RawExchange(path, std::string("\xff\xfe\n", 3)), nullptr, false);
  ASSERT_TRUE(answer.is_object());
  EXPECT_EQ(answer["response"]["ok"], false);

  // Not the engine API, or not HTTP: answered by the server, never the handler.
  std::vector<std::string> lines =
      RawLines(path, "GET /api/v1/engine HTTP/1.0\r\nHost: localhost\r\n\r\n");
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0].rfind("HTTP/1.0 405", 0), 0u) << lines[0];
  lines = RawLines(path, "POST /api/v1/other HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}");
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0].rfind("HTTP/1.0 404", 0), 0u) << lines[0];
  lines = RawLines(path, "{\"cmd\": \"run\"}\n\n");
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines[0].find(" 400 "), std::string::npos) << lines[0];

  EXPECT_EQ(calls, 0);
  Result<json> response = SendToOwner(path, {{"fine", true}}, nullptr);
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ((*response)["where"], "owner");
  EXPECT_EQ(calls, 1);
}

TEST(OwnerTransport, HandlerExceptionBecomesErrorResponse) {
  TempDir dir;
  Result<OwnerLease> lease = OwnerLease::TryAcquire(
      dir.State(), "serve", [](const json& request, const EventSink&) -> json {
        if (request.contains("boom")) throw std::runtime_error("kaboom");
        return request.at("missing");  // throws json::out_of_range
      });
  ASSERT_TRUE(lease.ok());
  Result<json> response = SendToOwner(lease->info().socket_path, {{"boom", 1}}, nullptr);
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ((*response)["ok"], false);
  EXPECT_NE((*response)["error"].get<std::string>().find("kaboom"), std::string::npos);
  response = SendToOwner(lease->info().socket_path, {{"other", 1}}, nullptr);
  ASSERT_TRUE(response.ok());
  EXPECT_EQ((*response)["ok"], false);
}

TEST(OwnerTransport, ClientLeavingEarlyDoesNotHurtOwner) {
  TempDir dir;
  std::atomic<bool> done{false};
  Result<OwnerLease> lease = OwnerLease::TryAcquire(
      dir.State(), "serve", [&](const json& request, const EventSink& events) -> json {
        if (request.contains("slow")) {
          // Writes to a closed peer: EPIPE must be an error value, not SIGPIPE.
          for (int i = 0; i < 50; ++i) {
            events({{"i", i}, {"pad", std::string(4096, 'p')}});
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          }
          done = true;
        }
        return {{"ok", true}};
      });
  ASSERT_TRUE(lease.ok());
  {
    Result<UniqueFd> fd = ConnectUnix(lease->info().socket_path);
    ASSERT_TRUE(fd.ok());
    LineConnection connection(std::move(fd).value());
    ASSERT_TRUE(connection
                    .WriteAll("POST /api/v1/engine HTTP/1.1\r\nHost: localhost\r\n"
                              "Content-Length: 15\r\n\r\n{\"slow\": true}\n")
                    .ok());
  }  // closed before any answer
  for (int i = 0; i < 5000 && !done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_TRUE(done);
  Result<json> response = SendToOwner(lease->info().socket_path, {{"quick", 1}}, nullptr);
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ((*response)["ok"], true);
}

TEST(OwnerTransport, NobodyListeningIsNotFound) {
  TempDir dir;
  Result<json> response = SendToOwner(dir.path() + "/none.sock", {{"a", 1}}, nullptr);
  EXPECT_EQ(response.status().code(), StatusCode::kNotFound) << response.status().ToString();
}

TEST(OwnerTransport, OwnerClosingBeforeResponseIsIOError) {
  TempDir dir;
  std::string path = dir.path() + "/fake.sock";
  Result<UniqueFd> listener = ListenUnix(path);
  ASSERT_TRUE(listener.ok()) << listener.status().ToString();
  std::thread fake_owner([&] {
    // An owner that dies mid-request: one event, then the connection drops.
    for (int i = 0; i < 5000; ++i) {
      Result<UniqueFd> fd = AcceptUnix(listener->get());
      if (!fd.ok()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      LineConnection connection(std::move(fd).value());
      while (true) {  // the request's head, up to its empty line; then its one-line body
        Result<std::string> line = connection.ReadLine(1 << 20, -1, 5000);
        ASSERT_TRUE(line.ok()) << line.status().ToString();
        if (*line == "\r") break;
      }
      EXPECT_TRUE(connection.ReadLine(1 << 20, -1, 5000).ok());
      const std::string event = "{\"type\":\"event\",\"event\":{\"n\":1}}\n";
      EXPECT_TRUE(connection
                      .WriteAll("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                fmt::format("{:x}", event.size()) + "\r\n" + event + "\r\n")
                      .ok());
      return;
    }
  });
  int events = 0;
  Result<json> response = SendToOwner(path, {{"a", 1}}, [&](const json&) { ++events; });
  fake_owner.join();
  EXPECT_EQ(response.status().code(), StatusCode::kIOError) << response.status().ToString();
  EXPECT_EQ(events, 1);
}

TEST(OwnerDispatch, FreeEnvironmentRunsLocally) {
  TempDir dir;
  std::atomic<int> local_calls{0};
  std::vector<json> events;
  Result<json> response =
      Dispatch(dir.State(), "query", {{"q", 1}}, Tagged("local", &local_calls), Tagged("others"),
               [&](const json& event) { events.push_back(event); });
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ((*response)["where"], "local");
  EXPECT_EQ(local_calls, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["from"], "local");
  // Ownership was released afterwards.
  EXPECT_EQ(ReadOwnerInfo(dir.State()).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(OwnerLease::TryAcquire(dir.State(), "run", Echo).ok());
}

TEST(OwnerDispatch, LocalExceptionBecomesErrorResponse) {
  TempDir dir;
  Result<json> response = Dispatch(
      dir.State(), "query", {{"q", 1}},
      [](const json&, const EventSink&) -> json { throw std::runtime_error("local failure"); },
      Tagged("others"), nullptr);
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ((*response)["ok"], false);
  EXPECT_NE((*response)["error"].get<std::string>().find("local failure"), std::string::npos);
}

TEST(OwnerDispatch, OwnedEnvironmentForwards) {
  TempDir dir;
  std::atomic<int> local_calls{0};
  Result<OwnerLease> lease = OwnerLease::TryAcquire(dir.State(), "serve", Tagged("owner"));
  ASSERT_TRUE(lease.ok());
  std::vector<json> events;
  Result<json> response =
      Dispatch(dir.State(), "query", {{"q", 2}}, Tagged("local", &local_calls), Tagged("others"),
               [&](const json& event) { events.push_back(event); });
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ((*response)["where"], "owner");
  EXPECT_EQ((*response)["echo"]["q"], 2);
  EXPECT_EQ(local_calls, 0);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["from"], "owner");
}

TEST(OwnerDispatch, AfterReleaseBecomesOwnerAndServesOthers) {
  TempDir dir;
  Result<OwnerLease> lease = OwnerLease::TryAcquire(dir.State(), "serve", Tagged("owner"));
  ASSERT_TRUE(lease.ok());
  Result<json> first =
      Dispatch(dir.State(), "query", json::object(), Tagged("local"), Tagged("others"), nullptr);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ((*first)["where"], "owner");
  lease->Release();

  // Now this Dispatch owns the environment; while its local handler runs, a
  // second Dispatch is served by our serve_others handler through the socket.
  Result<json> nested = Status::Internal("not run");
  RequestHandler local = [&](const json&, const EventSink&) -> json {
    std::thread other([&] {
      nested = Dispatch(dir.State(), "query", {{"n", 1}}, Tagged("nested-local"),
                        Tagged("nested-others"), nullptr);
    });
    other.join();
    return {{"ok", true}, {"where", "local"}};
  };
  Result<json> second =
      Dispatch(dir.State(), "run", json::object(), local, Tagged("others"), nullptr);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ((*second)["where"], "local");
  ASSERT_TRUE(nested.ok()) << nested.status().ToString();
  EXPECT_EQ((*nested)["where"], "others");
  EXPECT_EQ((*nested)["echo"]["n"], 1);
}

// Holds the lock like an owner that never listens (hung, or still starting).
Result<FileLock> FakeSilentOwner(const TempDir& dir, int64_t pid) {
  RETURN_IF_ERROR(MakeDirs(dir.State()));
  ASSIGN_OR_RETURN(FileLock lock, FileLock::TryAcquire(dir.State() + "/owner"));
  json info = {{"pid", pid},
               {"command", "run"},
               {"socket_path", dir.State() + "/sock/owner.sock"},
               {"started_at", "2026-01-01T00:00:00.000Z"}};
  std::string text = info.dump();
  RETURN_IF_ERROR(WriteAll(lock.fd(), text.data(), text.size(), "owner"));
  return lock;
}

TEST(OwnerDispatch, SilentOwnerTimesOut) {
  TempDir dir;
  Result<FileLock> lock = FakeSilentOwner(dir, 4242);
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  int64_t start = MonotonicMillis();
  Result<json> response = Dispatch(dir.State(), "query", json::object(), Tagged("local"),
                                   Tagged("others"), nullptr, nullptr, 300);
  int64_t elapsed = MonotonicMillis() - start;
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), StatusCode::kBusy);
  EXPECT_NE(response.status().message().find("is owned by pid 4242 (run) but it does not answer"),
            std::string::npos)
      << response.status().message();
  EXPECT_GE(elapsed, 300);
  EXPECT_LT(elapsed, 3000);
}

TEST(OwnerDispatch, RetriesUntilOwnerGoesAway) {
  TempDir dir;
  Result<FileLock> lock = FakeSilentOwner(dir, 4242);
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  std::thread owner_exits([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    lock = Status::Cancelled("released");  // drops the FileLock
  });
  Result<json> response = Dispatch(dir.State(), "query", json::object(), Tagged("local"),
                                   Tagged("others"), nullptr, nullptr, 5000);
  owner_exits.join();
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ((*response)["where"], "local");
}

// A child process that owns the environment until told to stop (a byte or EOF
// on `control`), reporting 'R' (ready) or 'F' (failed) on `ready`.
pid_t ForkOwner(const std::string& state_dir, UniqueFd* ready_read, UniqueFd* control_write) {
  int ready[2];
  int control[2];
  if (::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(control, O_CLOEXEC) != 0) return -1;
  UniqueFd ready_r(ready[0]), ready_w(ready[1]), control_r(control[0]), control_w(control[1]);
  pid_t pid = ::fork();
  if (pid == 0) {
    ready_r = UniqueFd();
    control_w = UniqueFd();
    Result<OwnerLease> lease = OwnerLease::TryAcquire(
        state_dir, "child-serve", [](const json& request, const EventSink& events) -> json {
          events({{"child", true}});
          return {{"ok", true}, {"pid", ::getpid()}, {"echo", request}};
        });
    char status = lease.ok() ? 'R' : 'F';
    if (::write(ready_w.get(), &status, 1) != 1 || !lease.ok()) ::_exit(2);
    char byte;
    while (::read(control_r.get(), &byte, 1) < 0 && errno == EINTR) {
    }
    lease->Release();
    ::_exit(0);
  }
  *ready_read = std::move(ready_r);
  *control_write = std::move(control_w);
  return pid;
}

bool WaitReady(const UniqueFd& ready) {
  char status = 0;
  return ::read(ready.get(), &status, 1) == 1 && status == 'R';
}

TEST(OwnerCrossProcess, ForwardsToChildThenRecoversFromKill9) {
  TempDir dir;
  UniqueFd ready, control;
  pid_t child = ForkOwner(dir.State(), &ready, &control);
  ASSERT_GT(child, 0);
  ASSERT_TRUE(WaitReady(ready));

  Result<OwnerLease> mine = OwnerLease::TryAcquire(dir.State(), "run", Echo);
  ASSERT_FALSE(mine.ok());
  EXPECT_EQ(mine.status().code(), StatusCode::kBusy);
  EXPECT_NE(mine.status().message().find("pid " + std::to_string(child)), std::string::npos);

  std::vector<json> events;
  Result<json> response =
      Dispatch(dir.State(), "query", {{"q", "x"}}, Tagged("local"), Tagged("others"),
               [&](const json& event) { events.push_back(event); });
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ((*response)["pid"], child);
  EXPECT_EQ((*response)["echo"]["q"], "x");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["child"], true);

  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  EXPECT_TRUE(WIFSIGNALED(wstatus));

  // The dead owner left its socket file and record; the kernel dropped its lock.
  std::string socket_path = OwnerSocketPath(dir.State());
  EXPECT_TRUE(FileExists(socket_path));
  Result<OwnerInfo> stale = ReadOwnerInfo(dir.State());
  ASSERT_TRUE(stale.ok());
  EXPECT_EQ(stale->pid, child);
  EXPECT_EQ(SendToOwner(socket_path, json::object(), nullptr).status().code(),
            StatusCode::kNotFound);

  mine = OwnerLease::TryAcquire(dir.State(), "run", Echo);
  ASSERT_TRUE(mine.ok()) << mine.status().ToString();
  EXPECT_EQ(ReadOwnerInfo(dir.State())->pid, ::getpid());
  response = SendToOwner(socket_path, {{"after", 1}}, nullptr);
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ((*response)["pid"], ::getpid());
}

TEST(OwnerCrossProcess, ChildReleaseHandsOwnershipOver) {
  TempDir dir;
  UniqueFd ready, control;
  pid_t child = ForkOwner(dir.State(), &ready, &control);
  ASSERT_GT(child, 0);
  ASSERT_TRUE(WaitReady(ready));
  Result<json> forwarded =
      Dispatch(dir.State(), "query", json::object(), Tagged("local"), Tagged("others"), nullptr);
  ASSERT_TRUE(forwarded.ok()) << forwarded.status().ToString();
  EXPECT_EQ((*forwarded)["pid"], child);

  control = UniqueFd();  // EOF tells the child to release and exit
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
  EXPECT_FALSE(FileExists(OwnerSocketPath(dir.State())));
  EXPECT_EQ(ReadOwnerInfo(dir.State()).status().code(), StatusCode::kNotFound);

  Result<json> local =
      Dispatch(dir.State(), "query", json::object(), Tagged("local"), Tagged("others"), nullptr);
  ASSERT_TRUE(local.ok()) << local.status().ToString();
  EXPECT_EQ((*local)["where"], "local");
}

}  // namespace
}  // namespace sluice
