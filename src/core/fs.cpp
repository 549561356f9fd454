#include "core/fs.h"

#include "core/test_hooks.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "core/hash.h"
#include "core/utf8.h"

namespace sluice {
namespace {

Status Errno(const std::string& what, const std::string& path) {
  return Status::IOError(path + ": " + what + ": " + std::strerror(errno));
}

std::string TempName(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
}

}  // namespace

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

Result<UniqueFd> UniqueFd::Open(const std::string& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return Errno("cannot open", path);
  return UniqueFd(fd);
}

Result<FileStat> StatFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Errno("cannot stat", path);
  FileStat out;
  out.size = static_cast<uint64_t>(st.st_size);
  out.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  out.inode = st.st_ino;
  return out;
}

bool FileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string ReadHead(const std::string& path, size_t n) {
  std::string buf(n, '\0');
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return "";
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd.get(), buf.data() + got, n - got);
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  buf.resize(got);
  return buf;
}

Result<std::string> ReadFile(const std::string& path) {
  ASSIGN_OR_RETURN(UniqueFd fd, UniqueFd::Open(path, O_RDONLY));
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("read failed", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status WriteAll(int fd, const void* data, size_t size, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = SysWrite(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("write failed", path);
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status FsyncDir(const std::string& dir) {
  ASSIGN_OR_RETURN(UniqueFd fd, UniqueFd::Open(dir.empty() ? "." : dir, O_RDONLY | O_DIRECTORY));
  if (SysFsync(fd.get()) != 0) return Errno("fsync failed", dir);
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& path, std::string_view content) {
  std::string tmp = TempName(path);
  {
    ASSIGN_OR_RETURN(UniqueFd fd, UniqueFd::Open(tmp, O_WRONLY | O_CREAT | O_TRUNC));
    Status st = WriteAll(fd.get(), content.data(), content.size(), tmp);
    if (st.ok() && SysFsync(fd.get()) != 0) st = Errno("fsync failed", tmp);
    if (!st.ok()) {
      ::unlink(tmp.c_str());
      return st;
    }
  }
  if (SysRename(tmp.c_str(), path.c_str()) != 0) {
    Status st = Errno("rename failed", path);
    ::unlink(tmp.c_str());
    return st;
  }
  return FsyncDir(Dirname(path));
}

Status AppendDurable(const std::string& path, std::string_view record) {
  bool existed = FileExists(path);
  ASSIGN_OR_RETURN(UniqueFd fd, UniqueFd::Open(path, O_WRONLY | O_CREAT | O_APPEND));
  RETURN_IF_ERROR(WriteAll(fd.get(), record.data(), record.size(), path));
  if (SysFdatasync(fd.get()) != 0) return Errno("fsync failed", path);
  if (!existed) return FsyncDir(Dirname(path));
  return Status::Ok();
}

Status MakeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Status::IOError(path + ": cannot create directory: " + ec.message());
  return Status::Ok();
}

Status MakePrivateDir(const std::string& path) {
  RETURN_IF_ERROR(MakeDirs(Dirname(path)));
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return Errno("cannot create", path);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Errno("cannot stat", path);
  if (!S_ISDIR(st.st_mode)) {
    return Status::IOError(path + ": expected a private folder, found something else (a symlink?)");
  }
  if (st.st_uid != ::geteuid()) {
    return Status::IOError(path + ": belongs to uid " + std::to_string(st.st_uid) +
                           ", not to this user; refusing to use it");
  }
  if ((st.st_mode & 077) != 0 && ::chmod(path.c_str(), 0700) != 0) {
    return Errno("cannot make private", path);
  }
  return Status::Ok();
}

namespace {

// SHA-256 on a thread of its own, fed whole buffers from a small ring: the
// copy, its read-back and the UTF-8 check run on the caller's thread while
// the previous buffers are hashed, so the two cores share a store's work
// (the hash alone is about half of it). Buffers are handed over in order.
class PipelinedSha256 {
 public:
  static constexpr size_t kBuffers = 4;
  static constexpr size_t kBufferSize = size_t{4} << 20;

  PipelinedSha256() {
    for (auto& b : buffers_) {
      b.resize(kBufferSize);
      free_.push_back(b.data());
    }
    thread_ = std::thread([this] { Run(); });
  }
  ~PipelinedSha256() {
    {
      std::lock_guard lock(mu_);
      closing_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  PipelinedSha256(const PipelinedSha256&) = delete;
  PipelinedSha256& operator=(const PipelinedSha256&) = delete;

  // A free buffer of kBufferSize bytes (waits for one).
  char* Acquire() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !free_.empty(); });
    char* b = free_.back();
    free_.pop_back();
    return b;
  }
  // Hands `n` bytes of an acquired buffer to the hash, in stream order.
  void Submit(char* buffer, size_t n) {
    {
      std::lock_guard lock(mu_);
      if (stopped_) {
        free_.push_back(buffer);  // the hash failed: Finish reports it
      } else {
        full_.push_back({buffer, n});
      }
    }
    cv_.notify_all();
  }
  // Gives back an acquired buffer unused.
  void Release(char* buffer) {
    {
      std::lock_guard lock(mu_);
      free_.push_back(buffer);
    }
    cv_.notify_all();
  }
  // The digest of everything submitted.
  Result<std::string> Finish() {
    {
      std::lock_guard lock(mu_);
      closing_ = true;
    }
    cv_.notify_all();
    thread_.join();
    if (!error_.empty()) return Status::Internal("hashing a copy: " + error_);
    return hash_.HexDigest();
  }

 private:
  void Run() {
    try {  // a thread boundary
      while (true) {
        std::pair<char*, size_t> next;
        {
          std::unique_lock lock(mu_);
          cv_.wait(lock, [&] { return !full_.empty() || closing_; });
          if (full_.empty()) return;
          next = full_.front();
          full_.pop_front();
        }
        hash_.Update(next.first, next.second);
        Release(next.first);
      }
    } catch (const std::exception& e) {
      std::lock_guard lock(mu_);
      error_ = e.what();
    } catch (...) {
      std::lock_guard lock(mu_);
      error_ = "an unknown exception";
    }
    // After a failure, buffers are given back, so Acquire never waits forever.
    std::lock_guard lock(mu_);
    for (auto& [b, n] : full_) free_.push_back(b);
    full_.clear();
    stopped_ = true;
    cv_.notify_all();
  }

  Sha256 hash_;
  std::array<std::vector<char>, kBuffers> buffers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<char*> free_;
  std::deque<std::pair<char*, size_t>> full_;
  bool closing_ = false;
  bool stopped_ = false;
  std::string error_;
  std::thread thread_;
};

}  // namespace

Result<CopyResult> CopyAndHash(const std::string& src, const std::string& tmp_path, bool sync) {
  ASSIGN_OR_RETURN(UniqueFd in, UniqueFd::Open(src, O_RDONLY));
  ::posix_fadvise(in.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  // Raw data may be private: no access for others, whatever the umask allows.
  ASSIGN_OR_RETURN(UniqueFd out, UniqueFd::Open(tmp_path, O_RDWR | O_CREAT | O_TRUNC, 0640));
  auto fail = [&](Status st) {
    ::unlink(tmp_path.c_str());
    return st;
  };
  PipelinedSha256 hash;
  Utf8Scanner utf8;
  CopyResult result;
  // The kernel copies a chunk (copy_file_range: no trip through user space),
  // its writeback starts at once (sync_file_range), and the chunk is hashed
  // as read back from the copy: the hash is of exactly the bytes stored, even
  // if the source changes meanwhile. Where the kernel cannot copy between
  // these files, the bytes go through a buffer instead.
  constexpr size_t kChunk = size_t{8} << 20;
  bool kernel_copy = true;
  uint64_t offset = 0;
  while (true) {
    size_t copied = 0;
    if (kernel_copy) {
      loff_t in_off = static_cast<loff_t>(offset), out_off = static_cast<loff_t>(offset);
      while (copied < kChunk) {
        ssize_t n = InjectIoFailure("write") ? -1
                                             : ::copy_file_range(in.get(), &in_off, out.get(),
                                                                 &out_off, kChunk - copied, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && copied == 0 && offset == 0 &&
            (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
          kernel_copy = false;
          break;
        }
        if (n < 0) return fail(Errno("copy failed", src));
        if (n == 0) break;
        copied += static_cast<size_t>(n);
      }
    }
    if (!kernel_copy) {
      char* buf = hash.Acquire();
      ssize_t n = ::pread(in.get(), buf, PipelinedSha256::kBufferSize, static_cast<off_t>(offset));
      if (n <= 0) hash.Release(buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail(Errno("read failed", src));
      if (n == 0) break;
      utf8.Feed(buf, static_cast<size_t>(n));
      Status st = WriteAll(out.get(), buf, static_cast<size_t>(n), tmp_path);
      hash.Submit(buf, static_cast<size_t>(n));
      if (!st.ok()) return fail(st);
      offset += static_cast<uint64_t>(n);
      result.bytes = offset;
      continue;
    }
    if (copied == 0) break;
    ::sync_file_range(out.get(), static_cast<off_t>(offset), static_cast<off_t>(copied),
                      SYNC_FILE_RANGE_WRITE);
    for (size_t done = 0; done < copied;) {
      char* buf = hash.Acquire();
      ssize_t n = ::pread(out.get(), buf, std::min(PipelinedSha256::kBufferSize, copied - done),
                          static_cast<off_t>(offset + done));
      if (n <= 0) hash.Release(buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0)
        return fail(n < 0 ? Errno("read back failed", tmp_path)
                          : Status::IOError(tmp_path + ": shorter than copied"));
      utf8.Feed(buf, static_cast<size_t>(n));
      hash.Submit(buf, static_cast<size_t>(n));
      done += static_cast<size_t>(n);
    }
    offset += copied;
    result.bytes = offset;
  }
  if (sync && SysFsync(out.get()) != 0) return fail(Errno("fsync failed", tmp_path));
  Result<std::string> digest = hash.Finish();
  if (!digest.ok()) return fail(digest.status());
  result.sha256 = std::move(*digest);
  result.utf8_invalid_at = utf8.Finish();
  return result;
}

Result<FileLock> FileLock::TryAcquire(const std::string& path) {
  ASSIGN_OR_RETURN(UniqueFd fd, UniqueFd::Open(path, O_RDWR | O_CREAT));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return Status::Busy(path + ": held by another process");
    return Errno("cannot lock", path);
  }
  FileLock lock;
  lock.fd_ = std::move(fd);
  return lock;
}

std::string Dirname(const std::string& path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

std::string Basename(const std::string& path) {
  auto pos = path.find_last_of('/');
  return pos == std::string::npos ? path : path.substr(pos + 1);
}

std::string JoinPath(const std::string& a, const std::string& b) {
  if (a.empty() || (!b.empty() && b[0] == '/')) return b;
  if (a.back() == '/') return a + b;
  return a + "/" + b;
}

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  auto p = std::filesystem::absolute(path, ec);
  if (ec) return path;
  return p.lexically_normal().string();
}

ssize_t SysWrite(int fd, const void* buf, size_t n) {
  if (InjectIoFailure("write")) return -1;
  return ::write(fd, buf, n);
}

int SysFsync(int fd) { return InjectIoFailure("fsync") ? -1 : ::fsync(fd); }

int SysFdatasync(int fd) { return InjectIoFailure("fsync") ? -1 : ::fdatasync(fd); }

int SysRename(const char* from, const char* to) {
  return InjectIoFailure("rename") ? -1 : ::rename(from, to);
}

}  // namespace sluice
