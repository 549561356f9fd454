#include <unistd.h>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/fs.h"
#include "lake/object_store.h"

namespace sluice {
namespace {

class LocalObjectStore final : public ObjectStore {
 public:
  explicit LocalObjectStore(std::string root) : root_(std::move(root)) {}

  std::string StagingDir() const override { return JoinPath(root_, ".staging"); }

  Status PutFile(const std::string& key, const std::string& tmp_path) override {
    RETURN_IF_ERROR(PutFileUnsynced(key, tmp_path));
    return SyncFolder(key);
  }

  Status PutFileUnsynced(const std::string& key, const std::string& tmp_path) override {
    std::string dst = JoinPath(root_, key);
    if (FileExists(dst)) {
      ::unlink(tmp_path.c_str());
      return Status::Ok();
    }
    RETURN_IF_ERROR(MakeDirs(Dirname(dst)));
    if (SysRename(tmp_path.c_str(), dst.c_str()) != 0) {
      Status st = Status::IOError(dst + ": cannot move raw object into place: " + strerror(errno));
      ::unlink(tmp_path.c_str());
      return st;
    }
    // Objects are read-only once stored (raw is never edited); who may read
    // them is what the file was created with (0640 less the umask).
    struct stat st {};
    if (::stat(dst.c_str(), &st) == 0) ::chmod(dst.c_str(), st.st_mode & 0555 & ~0111);
    return Status::Ok();
  }

  Status SyncFolder(const std::string& key) override {
    return FsyncDir(Dirname(JoinPath(root_, key)));
  }

  bool Exists(const std::string& key) const override { return FileExists(JoinPath(root_, key)); }

  Status Append(const std::string& key, const std::string& record) override {
    std::string path = JoinPath(root_, key);
    RETURN_IF_ERROR(MakeDirs(Dirname(path)));
    return AppendDurable(path, record);
  }

  Result<std::string> Read(const std::string& key) const override {
    return ReadFile(JoinPath(root_, key));
  }

  Result<std::vector<std::string>> List(const std::string& prefix) const override {
    std::vector<std::string> out;
    std::string base = JoinPath(root_, prefix);
    std::error_code ec;
    if (!std::filesystem::exists(base, ec)) return out;
    for (auto it = std::filesystem::recursive_directory_iterator(base, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_regular_file()) {
        out.push_back(std::filesystem::relative(it->path(), root_).string());
      }
    }
    if (ec) return Status::IOError(base + ": cannot list: " + ec.message());
    std::sort(out.begin(), out.end());
    return out;
  }

  Result<std::string> LocalPath(const std::string& key) const override {
    return JoinPath(root_, key);
  }

 private:
  std::string root_;
};

}  // namespace

Result<std::unique_ptr<ObjectStore>> OpenLocalObjectStore(const std::string& root) {
  RETURN_IF_ERROR(MakeDirs(root));
  // Only the environment's owner opens the store, so anything in staging is
  // a partial body left by a killed process: remove it.
  std::error_code ec;
  std::filesystem::remove_all(JoinPath(root, ".staging"), ec);
  RETURN_IF_ERROR(MakeDirs(JoinPath(root, ".staging")));
  return std::unique_ptr<ObjectStore>(std::make_unique<LocalObjectStore>(root));
}

}  // namespace sluice
