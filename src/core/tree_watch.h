// Notices changes to a project's files without looking at each one
// (inotify): `serve` keeps the project it loaded while nothing under it
// changed, instead of reading 10,000 files again for every run and plan.
//
// Watched: the root folder itself, for the entries named in `root_names`
// (sluice.yaml, fields.yaml, the folders below), and every folder under
// root/<dir> for each of `dirs`, recursively — folders created later
// included. Every event under them counts, so does a lost event (the
// kernel's queue overflowed) and a watch the kernel dropped.
//
// A change whose system call returned before Changes() is called is
// counted by it: the kernel queues the event inside the call. inotify does
// not see changes made on another machine to a network file system; a
// caller that must see them still compares the files now and then.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace sluice {

class TreeWatcher {
 public:
  // Null when inotify cannot be used here (no instance or watch left): the
  // caller then cannot keep what it read from the files.
  static std::unique_ptr<TreeWatcher> Start(const std::string& root,
                                            const std::set<std::string>& root_names,
                                            const std::vector<std::string>& dirs);
  ~TreeWatcher();
  TreeWatcher(const TreeWatcher&) = delete;
  TreeWatcher& operator=(const TreeWatcher&) = delete;

  // A count that grows with every change seen so far (reads the events
  // queued, never blocks). Equal counts: nothing changed in between. Once
  // a new folder could not be watched, or the root folder itself was moved
  // or removed, every call counts a change.
  uint64_t Changes();

 private:
  TreeWatcher(int fd, std::string root, std::set<std::string> root_names,
              std::vector<std::string> dirs);
  // Watches dir and every folder below it; false when a watch could not be added.
  bool AddTreeLocked(const std::string& dir);
  void DrainLocked();

  const int fd_;
  const std::string root_;
  const std::set<std::string> root_names_;
  const std::vector<std::string> dirs_;
  std::mutex mu_;
  int root_wd_ = -1;                    // GUARDED_BY(mu_)
  std::map<int, std::string> folders_;  // GUARDED_BY(mu_): watch -> folder
  uint64_t changes_ = 0;                // GUARDED_BY(mu_)
  bool complete_ = true;  // GUARDED_BY(mu_): false once a new folder could not be watched
};

}  // namespace sluice
