#include "ingest/process.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <vector>

#include "core/clock.h"
#include "core/fs.h"
#include "core/redact.h"
#include "core/strings.h"

namespace sluice {
namespace {

constexpr size_t kMaxLine = 64 * 1024;
constexpr size_t kTailLines = 20;
constexpr int64_t kStragglerMs = 1000;  // output still open after the program exited

bool IsExecutable(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// argv[0] as execve wants it: a path. Searched on the program's own PATH.
Result<std::string> FindProgram(const ProcessSpec& spec) {
  const std::string& name = spec.argv[0];
  if (name.find('/') != std::string::npos) {
    std::string path = name[0] == '/' || spec.cwd.empty() ? name : JoinPath(spec.cwd, name);
    if (!IsExecutable(path)) {
      return Status::NotFound(
          "cannot run '" + name + "': " +
          (::access(path.c_str(), F_OK) == 0 ? "not executable (chmod +x?)" : "no such file"));
    }
    return path;
  }
  auto it = spec.env.find("PATH");
  std::string search = it == spec.env.end() ? "/usr/local/bin:/usr/bin:/bin" : it->second;
  for (const std::string& dir : Split(search, ':')) {
    std::string path = JoinPath(dir.empty() ? "." : dir, name);
    if (IsExecutable(path)) return path;
  }
  return Status::NotFound("cannot run '" + name + "': not found on PATH (" + search + ")");
}

void KillGroup(pid_t pgid, int sig) { ::kill(-pgid, sig); }

// A process's parent and start time (clock ticks since boot), from
// /proc/<pid>/stat; nullopt when it is gone.
struct ProcStat {
  pid_t ppid = 0;
  uint64_t start = 0;
};
std::optional<ProcStat> ReadProcStat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  // "pid (comm) state ppid ... starttime(22nd) ...": comm may hold spaces
  // and parentheses, so the fields are counted from its closing one.
  size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::vector<std::string> fields;
  for (const std::string& f : Split(line.substr(close + 1), ' ')) {
    if (!f.empty()) fields.push_back(f);
  }
  if (fields.size() < 20) return std::nullopt;  // fields[0] is the state (3rd)
  ProcStat st;
  st.ppid = static_cast<pid_t>(std::strtol(fields[1].c_str(), nullptr, 10));
  st.start = std::strtoull(fields[19].c_str(), nullptr, 10);
  return st;
}

// Every process the program started, its process group or not: one that
// left it (setsid, a daemon's double fork) is still a descendant until its
// parent exits, and a look every kLookEveryMs finds it by its parent; once
// seen it is followed by PID and start time, so a PID used again later is
// never taken for it.
class Descendants {
 public:
  explicit Descendants(pid_t root) : root_(root) {}
  void Look() {
    std::map<pid_t, std::vector<std::pair<pid_t, uint64_t>>> children;
    std::map<pid_t, uint64_t> now;  // pid -> start time, of every process
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator("/proc", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
      pid_t pid = static_cast<pid_t>(std::strtol(name.c_str(), nullptr, 10));
      if (std::optional<ProcStat> st = ReadProcStat(pid)) {
        children[st->ppid].emplace_back(pid, st->start);
        now[pid] = st->start;
      }
    }
    std::vector<pid_t> parents = {root_};
    for (const auto& [pid, start] : seen_) {
      auto it = now.find(pid);
      if (it != now.end() && it->second == start) parents.push_back(pid);  // not a reused PID
    }
    while (!parents.empty()) {
      pid_t parent = parents.back();
      parents.pop_back();
      for (const auto& [pid, start] : children[parent]) {
        if (seen_.emplace(pid, start).second) parents.push_back(pid);
      }
    }
  }
  // Signals each one seen that is still the same process.
  void Signal(int sig) const {
    for (const auto& [pid, start] : seen_) {
      std::optional<ProcStat> st = ReadProcStat(pid);
      if (st && st->start == start) ::kill(pid, sig);
    }
  }

 private:
  pid_t root_;
  std::map<pid_t, uint64_t> seen_;  // pid -> start time
};
constexpr int64_t kLookEveryMs = 100;

}  // namespace

std::string ProcessResult::Describe() const {
  if (timed_out) return "timed out; its process group was stopped";
  if (cancelled) return "cancelled; its process group was stopped";
  if (signal != 0)
    return "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  return "exited with code " + std::to_string(exit_code);
}

Result<ProcessResult> RunProcess(const ProcessSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) return Status::Invalid("no program to run");
  if (spec.cancel != nullptr && spec.cancel->load()) {
    ProcessResult never;
    never.cancelled = true;
    return never;
  }
  ASSIGN_OR_RETURN(std::string program, FindProgram(spec));
  // Everything the child needs, built before fork.
  std::vector<std::string> env_text;
  for (const auto& [k, v] : spec.env) env_text.push_back(k + "=" + v);
  std::vector<char*> argv, envp;
  for (const std::string& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (std::string& e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);
  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();

  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0)
    return Status::IOError(std::string("pipe: ") + std::strerror(errno));
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return Status::IOError(std::string("pipe: ") + std::strerror(errno));
  }
  UniqueFd out_read(out[0]), out_write(out[1]), err_read(err[0]), err_write(err[1]);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0)
    return Status::IOError(std::string("cannot start a process: ") + std::strerror(errno));
  if (pid == 0) {
    // The child: async-signal-safe calls only, until exec.
    ::setpgid(0, 0);
    // An owner killed with -9 takes its program with it (not the program's
    // own children: those are stopped through the group when the owner lives).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // serve blocks signals in its threads
    ::signal(SIGPIPE, SIG_DFL);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out_write.get(), 1);
    ::dup2(out_write.get(), 2);
    // No descriptor of the owner (logs, sockets, the warehouse) reaches the
    // program, whoever opened it without close-on-exec.
    ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    int code = 0;
    if (cwd != nullptr && ::chdir(cwd) != 0) {
      code = errno;
    } else {
      ::execve(program.c_str(), argv.data(), envp.data());
      code = errno;
    }
    ssize_t ignored = ::write(err_write.get(), &code, sizeof(code));
    (void)ignored;
    ::_exit(127);
  }
  ::setpgid(pid, pid);     // also here: no race with a kill before the child ran
  out_write = UniqueFd();  // the child's copies stay open in the child only
  err_write = UniqueFd();
  int exec_errno = 0;
  ssize_t got = 0;
  do {
    got = ::read(err_read.get(), &exec_errno, sizeof(exec_errno));
  } while (got < 0 && errno == EINTR);
  if (got == sizeof(exec_errno)) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return Status::NotFound("cannot run '" + spec.argv[0] + "'" +
                            (cwd ? " in " + spec.cwd : std::string()) + ": " +
                            std::strerror(exec_errno));
  }

  ProcessResult result;
  std::deque<std::string> tail;
  std::string pending;
  auto emit = [&](std::string line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (spec.on_line) {
      try {  // the program must still be stopped and reaped
        spec.on_line(line);
      } catch (...) {
      }
    }
    tail.push_back(std::move(line));
    if (tail.size() > kTailLines) tail.pop_front();
  };
  Descendants descendants(pid);
  int64_t start = MonotonicMillis();
  int64_t looked_at = start;
  int64_t term_sent_at = -1;
  int64_t exited_at = -1;
  int status = 0;
  bool exited = false;
  bool output_open = true;
  bool cut_line = false;  // the line being read was cut: the rest of it is left out
  char buffer[16384];
  while (output_open || !exited) {
    int64_t now = MonotonicMillis();
    bool stop = (spec.timeout_ms > 0 && now - start >= spec.timeout_ms) ||
                (spec.cancel != nullptr && spec.cancel->load());
    if (!exited && now - looked_at >= kLookEveryMs) {
      descendants.Look();
      looked_at = now;
    }
    if (stop && term_sent_at < 0 && !exited) {
      result.timed_out = !(spec.cancel != nullptr && spec.cancel->load());
      result.cancelled = !result.timed_out;
      descendants.Look();
      KillGroup(pid, SIGTERM);
      descendants.Signal(SIGTERM);
      term_sent_at = now;
    }
    if (term_sent_at >= 0 && now - term_sent_at >= spec.kill_grace_ms) {
      KillGroup(pid, SIGKILL);
      descendants.Signal(SIGKILL);
    }
    if (!exited) {
      // Seen, not reaped: the zombie keeps the group id reserved, so the
      // group can still be killed without hitting a stranger that reused it.
      siginfo_t info = {};
      if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == pid) {
        exited = true;
        exited_at = now;
      }
    }
    // The program is gone but something it started still holds the output.
    if (exited && output_open && now - exited_at >= kStragglerMs) {
      KillGroup(pid, SIGKILL);
      break;
    }
    if (!output_open) {
      // Waiting only for the exit: a short sleep, and the timeout still applies.
      ::usleep(10000);
      continue;
    }
    pollfd pfd = {out_read.get(), POLLIN, 0};
    int n = ::poll(&pfd, 1, 50);
    if (n < 0 && errno != EINTR) {
      KillGroup(pid, SIGKILL);  // cannot watch it any more: stop it
      break;
    }
    if (n <= 0) continue;
    ssize_t r = ::read(out_read.get(), buffer, sizeof(buffer));
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      output_open = false;
      continue;
    }
    if (r == 0) {
      output_open = false;
      continue;
    }
    result.output_bytes += r;
    std::string_view chunk(buffer, static_cast<size_t>(r));
    if (cut_line) {
      // The rest of a line cut at kMaxLine is left out, up to its end.
      size_t nl = chunk.find('\n');
      if (nl == std::string_view::npos) continue;
      chunk.remove_prefix(nl + 1);
      cut_line = false;
    }
    pending.append(chunk);
    size_t from = 0;
    while (true) {
      size_t nl = pending.find('\n', from);
      if (nl == std::string::npos) break;
      emit(pending.substr(from, nl - from));
      from = nl + 1;
    }
    pending.erase(0, from);
    if (pending.size() > kMaxLine) {
      // Cut before a secret that the cut would split: each piece is
      // redacted on its own, and neither would hold all of it.
      pending.resize(SafeCut(std::string_view(pending).substr(0, kMaxLine)));
      emit(pending + " [line cut at 64 KiB]");
      pending.clear();
      cut_line = true;
    }
  }
  if (!pending.empty()) emit(std::move(pending));
  // Whatever the program started does not outlive it, in its group or not;
  // the leader is not reaped yet, so the group id is still its own.
  descendants.Look();
  KillGroup(pid, SIGKILL);
  descendants.Signal(SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  result.tail.assign(tail.begin(), tail.end());
  return result;
}

}  // namespace sluice
