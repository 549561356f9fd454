// File-system helpers with crash-safe semantics: a file written through
// WriteFileAtomic or CopyAndHash is either complete under its final name or
// absent (temp file, fsync, rename, fsync of the directory).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "core/status.h"

namespace sluice {

// A move-only owner of a POSIX file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd();
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  static Result<UniqueFd> Open(const std::string& path, int flags, mode_t mode = 0644);
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

struct FileStat {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint64_t inode = 0;
};

Result<FileStat> StatFile(const std::string& path);
bool FileExists(const std::string& path);
Result<std::string> ReadFile(const std::string& path);
// Up to the first n bytes of a file ("" when it cannot be read): for sniffing.
std::string ReadHead(const std::string& path, size_t n);
Status WriteAll(int fd, const void* data, size_t size, const std::string& path_for_errors);
// Writes content to path atomically and durably.
Status WriteFileAtomic(const std::string& path, std::string_view content);
// Appends one record and fsyncs (for logs whose lines must survive a crash).
Status AppendDurable(const std::string& path, std::string_view record);
Status MakeDirs(const std::string& path);
// A folder only this user can enter (0700), created if missing. Refuses a
// symlink, or a folder another user owns; tightens its mode when it is ours.
Status MakePrivateDir(const std::string& path);
Status FsyncDir(const std::string& dir);

struct CopyResult {
  std::string sha256;
  uint64_t bytes = 0;
  std::optional<uint64_t> utf8_invalid_at;  // first byte that is not UTF-8, if any
};
// Copies src to a temp file in dst_dir while hashing it, fsyncs, and returns
// the hash; the caller renames the temp file (see lake/). The temp file path
// is written to *tmp_path.
// With sync = false the copy is not fsynced: the caller makes it durable
// (SysFsync) before anything names it.
Result<CopyResult> CopyAndHash(const std::string& src, const std::string& tmp_path,
                               bool sync = true);

// An exclusive advisory lock on a file (flock), released on destruction.
class FileLock {
 public:
  FileLock() = default;
  // Returns Status::Busy when another process holds it.
  static Result<FileLock> TryAcquire(const std::string& path);
  int fd() const { return fd_.get(); }
  bool held() const { return fd_.valid(); }

 private:
  UniqueFd fd_;
};

// The calls that make files durable, in one place so that test builds can
// fail the n-th of each (SLUICE_FAIL_IO, core/test_hooks.h). Same contract as
// the POSIX calls.
ssize_t SysWrite(int fd, const void* buf, size_t n);
int SysFsync(int fd);
int SysFdatasync(int fd);
int SysRename(const char* from, const char* to);

std::string Dirname(const std::string& path);
std::string Basename(const std::string& path);
std::string JoinPath(const std::string& a, const std::string& b);
std::string AbsolutePath(const std::string& path);

}  // namespace sluice
