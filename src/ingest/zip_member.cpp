#include "ingest/zip_member.h"

#include <fcntl.h>
#include <unistd.h>
#include <zip.h>

#include <atomic>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>

#include "core/fs.h"
#include "core/strings.h"

namespace sluice {
namespace {

struct ZipCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct ZipFileCloser {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};
using ZipHandle = std::unique_ptr<zip_t, ZipCloser>;
using ZipFileHandle = std::unique_ptr<zip_file_t, ZipFileCloser>;

// libzip converts DOS times with mktime(), which re-initialises glibc's time
// zone state on every call when TZ is unset; glibc serialises that with a lock
// of its own, invisible to ThreadSanitizer. Reading zips under one process-wide
// mutex keeps the order explicit (extraction is rare and I/O-bound).
std::mutex& ZipMutex() {
  static std::mutex mu;
  return mu;
}

Result<ZipHandle> OpenZip(const std::string& path) {
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &err);
  if (!z) {
    zip_error_t error;
    zip_error_init_with_code(&error, err);
    std::string why = zip_error_strerror(&error);
    zip_error_fini(&error);
    return Status::DataError(path + ": not a readable zip archive (" + why + ")");
  }
  return ZipHandle(z);
}

std::string BaseName(const std::string& name) {
  size_t slash = name.rfind('/');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}

Result<std::vector<std::string>> ListMembersLocked(const std::string& zip_path) {
  ASSIGN_OR_RETURN(ZipHandle z, OpenZip(zip_path));
  std::vector<std::string> names;
  zip_int64_t n = zip_get_num_entries(z.get(), 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    const char* name = zip_get_name(z.get(), static_cast<zip_uint64_t>(i), 0);
    if (name && *name && name[std::strlen(name) - 1] != '/') names.push_back(name);
  }
  return names;
}

}  // namespace

Result<std::vector<std::string>> ListZipMembers(const std::string& zip_path) {
  std::lock_guard lock(ZipMutex());
  return ListMembersLocked(zip_path);
}

Result<std::string> ExtractZipMember(const std::string& zip_path, const std::string& zip_sha256,
                                     const std::string& member, const std::string& cache_dir) {
  if (member.empty() || member.find("..") != std::string::npos || member[0] == '/') {
    return Status::Invalid("zip member '" + member + "' is not a plain file name");
  }
  std::string dir = JoinPath(cache_dir, zip_sha256);
  std::string out = JoinPath(dir, member);
  if (FileExists(out)) return out;
  std::lock_guard lock(ZipMutex());
  if (FileExists(out)) return out;  // another thread extracted it meanwhile
  ASSIGN_OR_RETURN(ZipHandle z, OpenZip(zip_path));
  zip_int64_t index = zip_name_locate(z.get(), member.c_str(), 0);
  if (index < 0) {
    // A feed zipped with a folder: accept a unique entry with that base name.
    ASSIGN_OR_RETURN(std::vector<std::string> names, ListMembersLocked(zip_path));
    std::vector<std::string> matches;
    for (const std::string& name : names) {
      if (BaseName(name) == member) matches.push_back(name);
    }
    if (matches.size() == 1) index = zip_name_locate(z.get(), matches[0].c_str(), 0);
    if (index < 0) {
      if (names.size() > 30) {
        names.resize(30);
        names.push_back("...");
      }
      return Status::DataError("the zip has no member '" + member + "'" +
                               DidYouMeanHint(member, names) + "; it holds: " + Join(names, ", "));
    }
  }
  ZipFileHandle file(zip_fopen_index(z.get(), static_cast<zip_uint64_t>(index), 0));
  if (!file) {
    return Status::DataError("cannot read zip member '" + member + "': " + zip_strerror(z.get()));
  }
  RETURN_IF_ERROR(MakeDirs(Dirname(out)));
  static std::atomic<uint64_t> counter{0};
  std::string tmp =
      out + "." + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)) + ".part";
  {
    ASSIGN_OR_RETURN(UniqueFd fd, UniqueFd::Open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644));
    std::vector<char> buf(1 << 20);
    while (true) {
      zip_int64_t n = zip_fread(file.get(), buf.data(), buf.size());
      if (n < 0) {
        ::unlink(tmp.c_str());
        return Status::DataError("zip member '" + member +
                                 "' is damaged: " + zip_file_strerror(file.get()));
      }
      if (n == 0) break;
      Status st = WriteAll(fd.get(), buf.data(), static_cast<size_t>(n), tmp);
      if (!st.ok()) {
        ::unlink(tmp.c_str());
        return st;
      }
    }
  }
  if (SysRename(tmp.c_str(), out.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Status::IOError(out + ": cannot move the extracted member into place");
  }
  return out;
}

}  // namespace sluice
