#include "core/tree_watch.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "core/log.h"

namespace sluice {

namespace {

constexpr uint32_t kEvents = IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM |
                             IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

}  // namespace

std::unique_ptr<TreeWatcher> TreeWatcher::Start(const std::string& root,
                                                const std::set<std::string>& root_names,
                                                const std::vector<std::string>& dirs) {
  int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    LOG_INFO("watch", "inotify unavailable ({}): the project is read again for each run",
             std::strerror(errno));
    return nullptr;
  }
  std::unique_ptr<TreeWatcher> w(new TreeWatcher(fd, root, root_names, dirs));
  std::lock_guard lock(w->mu_);
  w->root_wd_ = ::inotify_add_watch(fd, root.c_str(), kEvents);
  if (w->root_wd_ < 0) {
    LOG_INFO("watch", "cannot watch {} ({}): the project is read again for each run", root,
             std::strerror(errno));
    return nullptr;
  }
  for (const std::string& dir : dirs) {
    if (!w->AddTreeLocked(root + "/" + dir)) return nullptr;
  }
  return w;
}

TreeWatcher::TreeWatcher(int fd, std::string root, std::set<std::string> root_names,
                         std::vector<std::string> dirs)
    : fd_(fd), root_(std::move(root)), root_names_(std::move(root_names)), dirs_(std::move(dirs)) {}

TreeWatcher::~TreeWatcher() { ::close(fd_); }

bool TreeWatcher::AddTreeLocked(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return true;  // not there (yet): the root's watch sees it come
  std::vector<std::string> folders = {dir};
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_directory(type_ec) && !it->is_symlink(type_ec)) folders.push_back(it->path());
  }
  for (const std::string& folder : folders) {
    int wd = ::inotify_add_watch(fd_, folder.c_str(), kEvents);
    if (wd < 0) {
      if (errno == ENOENT || errno == ENOTDIR) continue;  // gone meanwhile: its event counts
      LOG_WARN("watch",
               "cannot watch {} ({}; fs.inotify.max_user_watches?): the project "
               "is read again for each run",
               folder, std::strerror(errno));
      return false;
    }
    folders_[wd] = folder;
  }
  return true;
}

void TreeWatcher::DrainLocked() {
  alignas(inotify_event) char buffer[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd_, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // EAGAIN: nothing more queued
    for (char* p = buffer; p < buffer + n;) {
      const auto* e = reinterpret_cast<const inotify_event*>(p);
      p += sizeof(inotify_event) + e->len;
      const std::string name = e->len > 0 ? std::string(e->name) : std::string();
      if (e->mask & IN_Q_OVERFLOW) {
        ++changes_;  // events were lost: anything may have changed
        continue;
      }
      if (e->wd == root_wd_) {
        if (e->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
          // The folder at root's path is another one now (or none): what
          // happens there is not seen, so nothing can be said unchanged.
          complete_ = false;
          ++changes_;
          continue;
        }
        if (!root_names_.count(name)) continue;  // .sluice/, publish/, editors' files
        ++changes_;
        // A watched folder created or moved in: watch it (and what it holds).
        if ((e->mask & (IN_CREATE | IN_MOVED_TO)) && (e->mask & IN_ISDIR)) {
          for (const std::string& dir : dirs_) {
            if (dir == name && !AddTreeLocked(root_ + "/" + name)) complete_ = false;
          }
        }
        continue;
      }
      auto folder = folders_.find(e->wd);
      ++changes_;
      if (folder == folders_.end()) continue;
      if (e->mask & IN_IGNORED) {
        folders_.erase(folder);
        continue;
      }
      if ((e->mask & (IN_CREATE | IN_MOVED_TO)) && (e->mask & IN_ISDIR) &&
          !AddTreeLocked(folder->second + "/" + name)) {
        complete_ = false;
      }
    }
  }
}

uint64_t TreeWatcher::Changes() {
  std::lock_guard lock(mu_);
  DrainLocked();
  // A folder it could not watch: it cannot say that nothing changed.
  if (!complete_) ++changes_;
  return changes_;
}

}  // namespace sluice
