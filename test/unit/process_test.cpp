// RunProcess (ingest/process.h) on real programs: output line by line, exit
// codes and signals, the environment and folder given, a program that is
// not there, and a timeout that stops a script's children too.
#include "ingest/process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/redact.h"

namespace sluice {
namespace {

ProcessSpec Shell(const std::string& script) {
  ProcessSpec spec;
  spec.argv = {"sh", "-c", script};
  spec.env = {{"PATH", "/usr/bin:/bin"}};
  return spec;
}

TEST(ProcessTest, OutputLinesExitCodeEnvironmentAndFolder) {
  ProcessSpec spec =
      Shell("echo one; echo two >&2; printf 'no newline'; echo \"$GREETING\" >&2; pwd; exit 3");
  spec.env["GREETING"] = "hello there";
  spec.cwd = "/tmp";
  std::vector<std::string> lines;
  spec.on_line = [&](std::string_view l) { lines.emplace_back(l); };
  auto r = RunProcess(spec);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->signal, 0);
  EXPECT_EQ(lines, (std::vector<std::string>{"one", "two", "no newlinehello there", "/tmp"}));
  EXPECT_EQ(r->tail, lines);
  EXPECT_EQ(r->Describe(), "exited with code 3");
}

TEST(ProcessTest, NothingInheritedButWhatIsGiven) {
  ::setenv("SLUICE_PROCESS_TEST_LEAK", "x", 1);
  ProcessSpec spec = Shell("echo \"[${SLUICE_PROCESS_TEST_LEAK:-}]\"");
  std::string out;
  spec.on_line = [&](std::string_view l) { out += l; };
  auto r = RunProcess(spec);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(out, "[]");
}

TEST(ProcessTest, AMissingProgramIsNamed) {
  ProcessSpec spec;
  spec.argv = {"no-such-program-xyz"};
  spec.env = {{"PATH", "/usr/bin:/bin"}};
  auto r = RunProcess(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("cannot run 'no-such-program-xyz': not found on PATH"),
            std::string::npos)
      << r.status().message();
  spec.argv = {"./nope.sh"};
  spec.cwd = "/tmp";
  r = RunProcess(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no such file"), std::string::npos);
}

TEST(ProcessTest, ASignalIsReported) {
  auto r = RunProcess(Shell("kill -9 $$"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->signal, 9);
  EXPECT_EQ(r->exit_code, -1);
}

TEST(ProcessTest, TimeoutStopsTheWholeProcessGroup) {
  std::string marker = "/tmp/sluice_process_test_" + std::to_string(::getpid());
  std::filesystem::remove(marker);
  // The child sleeps, then would write the marker: it must die with its parent.
  ProcessSpec spec = Shell("(sleep 2; touch " + marker + ") & echo started; sleep 30");
  spec.timeout_ms = 300;
  spec.kill_grace_ms = 200;
  auto r = RunProcess(spec);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->signal, SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_FALSE(std::filesystem::exists(marker)) << "a child outlived the timeout";
}

TEST(ProcessTest, TermIgnoredMeansKill) {
  ProcessSpec spec = Shell("trap '' TERM; echo ready; while :; do sleep 0.05; done");
  spec.timeout_ms = 200;
  spec.kill_grace_ms = 200;
  auto r = RunProcess(spec);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->signal, SIGKILL);
}

TEST(ProcessTest, LeftoverChildrenHoldingTheOutputAreStopped) {
  // The program exits at once; a background child keeps stdout open.
  auto r = RunProcess(Shell("sleep 30 & echo bye"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->tail, (std::vector<std::string>{"bye"}));
}

TEST(ProcessTest, ChildrenLeftBehindAreStoppedToo) {
  std::string marker = "/tmp/sluice_process_left_" + std::to_string(::getpid());
  std::filesystem::remove(marker);
  // The child's output goes elsewhere, so nothing holds the pipe: the exit alone must stop it.
  auto r = RunProcess(Shell("(sleep 1; touch " + marker + ") >/dev/null 2>&1 & exit 0"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_FALSE(std::filesystem::exists(marker)) << "a child outlived its program";
}

// Whether pid is gone (or a zombie nobody reaped: it runs no more).
bool Gone(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) return true;
  size_t close = line.rfind(')');
  return close != std::string::npos && line.size() > close + 2 && line[close + 2] == 'Z';
}

pid_t PidIn(const std::string& file) {
  std::ifstream in(file);
  long pid = 0;
  in >> pid;
  return static_cast<pid_t>(pid);
}

// A child that left the program's process group and session (setsid) is
// stopped with it: on a timeout, and when the program exits.
TEST(ProcessTest, ChildrenThatLeftTheGroupAreStoppedToo) {
  for (bool timeout : {true, false}) {
    std::string pidfile = "/tmp/sluice_process_setsid_" + std::to_string(::getpid());
    std::filesystem::remove(pidfile);
    ProcessSpec spec = Shell("setsid sleep 300 >/dev/null 2>&1 & echo $! >" + pidfile +
                             (timeout ? "; sleep 30" : "; sleep 0.5; exit 0"));
    spec.timeout_ms = 1000;
    spec.kill_grace_ms = 200;
    auto r = RunProcess(spec);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->timed_out, timeout);
    pid_t escaped = PidIn(pidfile);
    ASSERT_GT(escaped, 0);
    for (int i = 0; i < 50 && !Gone(escaped); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(Gone(escaped)) << "pid " << escaped << " outlived its program (timeout " << timeout
                               << ")";
    if (!Gone(escaped)) ::kill(escaped, SIGKILL);
    std::filesystem::remove(pidfile);
  }
}

// A line over 64 KiB is cut there — before a secret the cut would split,
// since each piece is redacted on its own — and the rest of it left out.
TEST(ProcessTest, ALongLineIsCutBeforeASecretAndItsRestLeftOut) {
  ClearSecretsForTest();
  const std::string secret = "Sekr1t-across-the-cut";
  RegisterSecret(secret);
  ProcessSpec spec = Shell(
      "head -c 65530 /dev/zero | tr '\\0' a; printf '%s' \"$S\"; "
      "head -c 100000 /dev/zero | tr '\\0' b; echo; echo next");
  spec.env["S"] = secret;
  std::vector<std::string> lines;
  spec.on_line = [&](std::string_view l) { lines.emplace_back(l); };
  auto r = RunProcess(spec);
  ClearSecretsForTest();
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], std::string(65530, 'a') + " [line cut at 64 KiB]");
  EXPECT_EQ(lines[1], "next");
}

TEST(ProcessTest, ACancelledRunStartsNothing) {
  std::atomic<bool> cancel{true};
  ProcessSpec spec = Shell("echo should not run");
  spec.cancel = &cancel;
  std::vector<std::string> lines;
  spec.on_line = [&](std::string_view l) { lines.emplace_back(l); };
  auto r = RunProcess(spec);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->cancelled);
  EXPECT_TRUE(lines.empty());
}

}  // namespace
}  // namespace sluice
