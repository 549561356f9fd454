// Tests of the raw archive and the local object store (DESIGN §5 "The
// lake"), against a real lake folder and a real SQLite metadata file in a
// per-test temporary directory. Fault injection goes through
// FaultyObjectStore, which wraps the real local store and fails the Nth
// PutFile or Append.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/redact.h"
#include "core/strings.h"
#include "lake/object_store.h"
#include "lake/raw_archive.h"
#include "metadata/metadata_store.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// 2026-01-01T05:07:00Z: every fetch below is logged under dt=2026-01-01/hour=05.
constexpr Micros kT0 = 1767225600000000 + (5 * 3600 + 7 * 60) * 1000000LL;
constexpr const char* kLogKey = "raw/gtfs/log/dt=2026-01-01/hour=05/fetches.ndjson";

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("sluice-lake-" + std::to_string(::getpid()) + "-" + info->test_suite_name() + "-" +
             info->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    // Objects are stored read-only; the folders are not, so remove_all works.
    std::filesystem::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

void WriteText(const std::string& path, const std::string& content) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  ASSERT_TRUE(out.good()) << path;
}

void SetMtime(const std::string& path, int64_t seconds) {
  struct timespec times[2] = {{seconds, 0}, {seconds, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

// Every regular file under dir, relative to it, sorted.
std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(std::filesystem::relative(e.path(), dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<nlohmann::json> ReadNdjson(const std::string& path) {
  std::vector<nlohmann::json> out;
  auto body = ReadFile(path);
  EXPECT_TRUE(body.ok()) << body.status().ToString();
  if (!body.ok()) return out;
  std::istringstream in(*body);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
    out.push_back(j);
  }
  return out;
}

// A lake folder, a SQLite metadata file and a RawArchive over them.
class LakeFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    lake_root_ = dir_.File("lake");
    auto store = OpenLocalObjectStore(lake_root_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    OpenMetadata();
    archive_ = std::make_unique<RawArchive>(store_.get(), metadata_.get(), &clock_);
  }
  void TearDown() override { ClearSecretsForTest(); }

  void OpenMetadata(const std::string& name = "meta.sqlite") {
    auto meta = OpenSqliteMetadata(dir_.File(name), &clock_);
    ASSERT_TRUE(meta.ok()) << meta.status().ToString();
    metadata_ = std::move(meta).value();
  }

  StoredObject MustStore(const std::string& path, const std::string& source = "gtfs") {
    auto obj = archive_->StoreLocalFile(source, "", path, "csv");
    EXPECT_TRUE(obj.ok()) << obj.status().ToString();
    return obj.ok() ? *obj : StoredObject{};
  }

  std::vector<FetchRecord> Fetches(const std::string& source = "gtfs") {
    auto fetches = metadata_->ListFetches(source, 0);
    EXPECT_TRUE(fetches.ok()) << fetches.status().ToString();
    return fetches.ok() ? *fetches : std::vector<FetchRecord>{};
  }

  std::vector<std::string> Objects(const std::string& source = "gtfs") {
    return FilesUnder(JoinPath(lake_root_, "raw/" + source + "/objects"));
  }

  TempDir dir_;
  FakeClock clock_{kT0};
  std::string lake_root_;
  std::unique_ptr<ObjectStore> store_;
  std::unique_ptr<MetadataStore> metadata_;
  std::unique_ptr<RawArchive> archive_;
};

using LakeArchive = LakeFixture;

TEST_F(LakeArchive, ObjectIsNamedBySha256AndHoldsTheBytes) {
  const std::string content = "stop_id,stop_name\r\n1,Central\r\n2,\"North, Gate\"\r\n";
  std::string path = dir_.File("in/stops.csv");
  WriteText(path, content);

  StoredObject obj = MustStore(path);
  EXPECT_EQ(obj.sha256, Sha256Hex(content));
  EXPECT_EQ(obj.key, "raw/gtfs/objects/" + Sha256Hex(content) + ".csv");
  EXPECT_EQ(obj.key, RawArchive::ObjectKey("gtfs", obj.sha256, "csv"));
  EXPECT_EQ(obj.local_path, JoinPath(lake_root_, obj.key));
  EXPECT_EQ(obj.bytes, content.size());
  EXPECT_FALSE(obj.reused);

  auto stored = ReadFile(obj.local_path);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_EQ(*stored, content);
  auto via_store = store_->Read(obj.key);
  ASSERT_TRUE(via_store.ok());
  EXPECT_EQ(*via_store, content);
  EXPECT_TRUE(store_->Exists(obj.key));

  // Raw is never edited: the object is read-only.
  struct stat st {};
  ASSERT_EQ(::stat(obj.local_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0222, 0u);

  // Plan's peek gives the same hash without storing anything new.
  auto peek = archive_->PeekLocalFile(path);
  ASSERT_TRUE(peek.ok());
  EXPECT_EQ(*peek, obj.sha256);
  EXPECT_THAT(FilesUnder(store_->StagingDir()), IsEmpty());
}

// Raw data may be private: objects are never readable by others, and follow
// a stricter umask when there is one.
TEST_F(LakeArchive, ObjectsFollowTheUmaskAndAreNotWorldReadable) {
  mode_t before = ::umask(022);
  std::string a = dir_.File("in/a.csv");
  WriteText(a, "x\n1\n");
  StoredObject obj = MustStore(a);
  struct stat st {};
  ASSERT_EQ(::stat(obj.local_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0440u);
  ::umask(077);
  std::string b = dir_.File("in/b.csv");
  WriteText(b, "x\n2\n");
  obj = MustStore(b);
  ASSERT_EQ(::stat(obj.local_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0400u);
  ::umask(before);
}

TEST_F(LakeArchive, StoringTheSameFileTwiceCopiesOnceAndLogsTwice) {
  const std::string content = "id\n1\n2\n3\n";
  std::string path = dir_.File("in/a.csv");
  WriteText(path, content);

  StoredObject first = MustStore(path);
  clock_.Advance(60 * 1000000LL);
  StoredObject second = MustStore(path);
  EXPECT_FALSE(first.reused);
  EXPECT_TRUE(second.reused);
  EXPECT_EQ(first.key, second.key);
  EXPECT_EQ(first.sha256, second.sha256);

  // A second file with the same bytes under another path is the same object.
  std::string twin = dir_.File("in/twin.csv");
  WriteText(twin, content);
  StoredObject third = MustStore(twin);
  EXPECT_TRUE(third.reused);
  EXPECT_EQ(third.key, first.key);

  EXPECT_THAT(Objects(), SizeIs(1));
  EXPECT_THAT(FilesUnder(store_->StagingDir()), IsEmpty());

  // Three attempts in the dated NDJSON log, in order.
  std::vector<nlohmann::json> lines = ReadNdjson(JoinPath(lake_root_, kLogKey));
  ASSERT_THAT(lines, SizeIs(3));
  EXPECT_EQ(lines[0]["url"], "file://" + path);
  EXPECT_EQ(lines[2]["url"], "file://" + twin);
  for (const auto& line : lines) {
    EXPECT_EQ(line["source"], "gtfs");
    EXPECT_EQ(line["sha256"], first.sha256);
    EXPECT_EQ(line["object"], first.key);
    EXPECT_EQ(line["bytes"], content.size());
    EXPECT_EQ(line["error"], "");
    EXPECT_THAT(line["time"].get<std::string>(), ::testing::StartsWith("2026-01-01T05:"));
  }
  EXPECT_EQ(lines[0]["headers"]["reused"], false);
  EXPECT_EQ(lines[1]["headers"]["reused"], true);
  EXPECT_EQ(lines[2]["headers"]["reused"], true);

  // And the same three in metadata.
  std::vector<FetchRecord> fetches = Fetches();
  ASSERT_THAT(fetches, SizeIs(3));
  for (const FetchRecord& f : fetches) {
    EXPECT_EQ(f.sha256, first.sha256);
    EXPECT_EQ(f.object_path, first.key);
    EXPECT_EQ(f.bytes, static_cast<int64_t>(content.size()));
    EXPECT_EQ(f.error, "");
    EXPECT_TRUE(store_->Exists(f.object_path));
  }
  // Other sources have their own log and objects.
  EXPECT_THAT(Fetches("other"), IsEmpty());
}

TEST_F(LakeArchive, LogIsPartitionedByTheHourOfTheAttempt) {
  std::string path = dir_.File("in/a.csv");
  WriteText(path, "x\n1\n");
  MustStore(path);
  clock_.Advance(24LL * 3600 * 1000000);  // 2026-01-02T05:07
  MustStore(path);
  EXPECT_THAT(FilesUnder(JoinPath(lake_root_, "raw/gtfs/log")),
              ::testing::ElementsAre("dt=2026-01-01/hour=05/fetches.ndjson",
                                     "dt=2026-01-02/hour=05/fetches.ndjson"));
}

TEST_F(LakeArchive, StatCacheAvoidsRehashingAnUnchangedFile) {
  std::string path = dir_.File("in/data.csv");
  const std::string v1 = "id,v\n1,aaaa\n";
  WriteText(path, v1);
  SetMtime(path, 1700000000);
  StoredObject first = MustStore(path);
  ASSERT_EQ(first.sha256, Sha256Hex(v1));

  auto cached = metadata_->GetFileStat(path);
  ASSERT_TRUE(cached.ok());
  ASSERT_TRUE(cached->has_value());
  EXPECT_EQ((*cached)->sha256, Sha256Hex(v1));
  EXPECT_EQ((*cached)->size, v1.size());

  // Same size, same inode, mtime put back: the cache is trusted, so the new
  // bytes are not read. This proves no re-hash happened.
  const std::string v1_same_stat = "id,v\n1,bbbb\n";
  ASSERT_EQ(v1_same_stat.size(), v1.size());
  WriteText(path, v1_same_stat);
  SetMtime(path, 1700000000);
  StoredObject cached_hit = MustStore(path);
  EXPECT_EQ(cached_hit.sha256, Sha256Hex(v1));
  EXPECT_TRUE(cached_hit.reused);
  auto peek = archive_->PeekLocalFile(path);
  ASSERT_TRUE(peek.ok());
  EXPECT_EQ(*peek, Sha256Hex(v1));

  // A new mtime: re-hashed, and the new bytes become a new object.
  SetMtime(path, 1700000100);
  StoredObject rehashed = MustStore(path);
  EXPECT_EQ(rehashed.sha256, Sha256Hex(v1_same_stat));
  EXPECT_FALSE(rehashed.reused);
  peek = archive_->PeekLocalFile(path);
  ASSERT_TRUE(peek.ok());
  EXPECT_EQ(*peek, Sha256Hex(v1_same_stat));

  // A content change (new size): a new object; the old ones stay.
  const std::string v2 = "id,v\n1,aaaa\n2,cccc\n";
  WriteText(path, v2);
  StoredObject changed = MustStore(path);
  EXPECT_EQ(changed.sha256, Sha256Hex(v2));
  EXPECT_FALSE(changed.reused);

  std::vector<std::string> objects = Objects();
  EXPECT_THAT(objects, SizeIs(3));
  for (const StoredObject* o : {&first, &rehashed, &changed}) {
    auto body = store_->Read(o->key);
    ASSERT_TRUE(body.ok()) << o->key;
    EXPECT_EQ(Sha256Hex(*body), o->sha256) << o->key;
  }
  EXPECT_THAT(Fetches(), SizeIs(4));
}

TEST_F(LakeArchive, StatCacheIsNotTrustedWhenTheObjectIsGone) {
  std::string path = dir_.File("in/data.csv");
  WriteText(path, "id\n7\n");
  StoredObject first = MustStore(path);
  // A lake restored without this object: the cached hash must not be taken
  // as proof that the body is stored.
  std::filesystem::remove(first.local_path);
  StoredObject again = MustStore(path);
  EXPECT_EQ(again.sha256, first.sha256);
  EXPECT_FALSE(again.reused);
  auto body = ReadFile(again.local_path);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(*body, "id\n7\n");
}

TEST_F(LakeArchive, MissingFileLogsTheAttemptAndStoresNothing) {
  std::string path = dir_.File("in/absent.csv");
  auto obj = archive_->StoreLocalFile("gtfs", "2026-01-01", path, "csv");
  ASSERT_FALSE(obj.ok());
  EXPECT_THAT(obj.status().message(), HasSubstr("absent.csv"));

  std::vector<FetchRecord> fetches = Fetches();
  ASSERT_THAT(fetches, SizeIs(1));
  EXPECT_EQ(fetches[0].url, "file://" + path);
  EXPECT_EQ(fetches[0].partition, "2026-01-01");
  EXPECT_THAT(fetches[0].error, HasSubstr("absent.csv"));
  EXPECT_EQ(fetches[0].sha256, "");
  EXPECT_EQ(fetches[0].object_path, "");
  EXPECT_EQ(fetches[0].bytes, 0);

  std::vector<nlohmann::json> lines = ReadNdjson(JoinPath(lake_root_, kLogKey));
  ASSERT_THAT(lines, SizeIs(1));
  EXPECT_THAT(lines[0]["error"].get<std::string>(), HasSubstr("absent.csv"));
  EXPECT_EQ(lines[0]["object"], "");

  EXPECT_THAT(Objects(), IsEmpty());
  EXPECT_THAT(FilesUnder(store_->StagingDir()), IsEmpty());
  auto cached = metadata_->GetFileStat(path);
  ASSERT_TRUE(cached.ok());
  EXPECT_FALSE(cached->has_value());
}

TEST_F(LakeArchive, PathWithASecretNeverReachesMetadataOrTheLake) {
  const std::string secret = "tok-9f8e7d6c5b4a";
  RegisterSecret(secret);
  std::string path = dir_.File("in/feed-" + secret + "/stops.csv");
  WriteText(path, "id\n1\n");
  std::string missing = dir_.File("in/gone-" + secret + ".csv");

  StoredObject first = MustStore(path);
  StoredObject second = MustStore(path);
  // The stat cache still works for such a path (keyed by the path's hash).
  EXPECT_TRUE(second.reused);
  EXPECT_FALSE(archive_->StoreLocalFile("gtfs", "", missing, "csv").ok());

  std::vector<FetchRecord> fetches = Fetches();
  ASSERT_THAT(fetches, SizeIs(3));
  for (const FetchRecord& f : fetches) {
    EXPECT_THAT(f.url, Not(HasSubstr(secret)));
    EXPECT_THAT(f.url, HasSubstr(std::string(kRedacted)));
    EXPECT_THAT(f.error, Not(HasSubstr(secret)));
  }
  EXPECT_THAT(fetches[0].error, HasSubstr(std::string(kRedacted)));  // newest first: the miss
  auto by_path = metadata_->GetFileStat(path);
  ASSERT_TRUE(by_path.ok());
  EXPECT_FALSE(by_path->has_value());

  // No file name and no byte anywhere in the lake holds the secret.
  for (const std::string& rel : FilesUnder(lake_root_)) {
    EXPECT_THAT(rel, Not(HasSubstr(secret)));
    auto body = ReadFile(JoinPath(lake_root_, rel));
    ASSERT_TRUE(body.ok()) << rel;
    EXPECT_THAT(*body, Not(HasSubstr(secret))) << rel;
  }
  // Nor anywhere in the metadata database (file, WAL and all), once closed.
  metadata_.reset();
  archive_.reset();
  bool saw_metadata = false;
  for (const auto& e : std::filesystem::directory_iterator(dir_.File(""))) {
    std::string name = e.path().filename().string();
    if (!StartsWith(name, "meta.sqlite") || !e.is_regular_file()) continue;
    saw_metadata = true;
    auto body = ReadFile(e.path().string());
    ASSERT_TRUE(body.ok()) << name;
    EXPECT_EQ(body->find(secret), std::string::npos) << name;
    EXPECT_EQ(body->find(UrlEncode(secret)), std::string::npos) << name;
  }
  EXPECT_TRUE(saw_metadata);
}

// ---- fault injection ------------------------------------------------------

// The real store, failing the Nth PutFile or Append (1-based; 0 = never)
// without doing any of it, as a full disk or a lost mount would.
class FaultyObjectStore final : public ObjectStore {
 public:
  FaultyObjectStore(std::unique_ptr<ObjectStore> inner, int fail_put_at, int fail_append_at)
      : inner_(std::move(inner)), fail_put_at_(fail_put_at), fail_append_at_(fail_append_at) {}

  std::string StagingDir() const override { return inner_->StagingDir(); }
  Status PutFile(const std::string& key, const std::string& tmp_path) override {
    if (++puts_ == fail_put_at_) return Status::IOError(key + ": injected PutFile failure");
    return inner_->PutFile(key, tmp_path);
  }
  Status PutFileUnsynced(const std::string& key, const std::string& tmp_path) override {
    if (++puts_ == fail_put_at_) return Status::IOError(key + ": injected PutFile failure");
    return inner_->PutFileUnsynced(key, tmp_path);
  }
  Status SyncFolder(const std::string& key) override { return inner_->SyncFolder(key); }
  bool Exists(const std::string& key) const override { return inner_->Exists(key); }
  Status Append(const std::string& key, const std::string& record) override {
    if (++appends_ == fail_append_at_) return Status::IOError(key + ": injected Append failure");
    return inner_->Append(key, record);
  }
  Result<std::string> Read(const std::string& key) const override { return inner_->Read(key); }
  Result<std::vector<std::string>> List(const std::string& prefix) const override {
    return inner_->List(prefix);
  }
  Result<std::string> LocalPath(const std::string& key) const override {
    return inner_->LocalPath(key);
  }

 private:
  std::unique_ptr<ObjectStore> inner_;
  int fail_put_at_;
  int fail_append_at_;
  int puts_ = 0;
  int appends_ = 0;
};

// The lake's invariants after any failure: every object is complete (its
// bytes hash to its name), every logged object exists, and outside
// .staging/ there is nothing but objects and logs.
void ExpectLakeConsistent(const std::string& lake_root, MetadataStore& metadata) {
  for (const std::string& rel : FilesUnder(lake_root)) {
    if (StartsWith(rel, ".staging/")) continue;
    if (rel.find("/log/") != std::string::npos) {
      EXPECT_TRUE(EndsWith(rel, "/fetches.ndjson")) << rel;
      for (const auto& line : ReadNdjson(JoinPath(lake_root, rel))) {
        std::string object = line["object"].get<std::string>();
        if (!object.empty()) {
          EXPECT_TRUE(FileExists(JoinPath(lake_root, object))) << "logged but absent: " << object;
        }
      }
      continue;
    }
    ASSERT_NE(rel.find("/objects/"), std::string::npos) << "stray file in the lake: " << rel;
    auto body = ReadFile(JoinPath(lake_root, rel));
    ASSERT_TRUE(body.ok()) << rel;
    std::string name = Basename(rel);
    EXPECT_EQ(Sha256Hex(*body), name.substr(0, name.find('.'))) << "partial object: " << rel;
  }
  auto fetches = metadata.ListFetches("", 0);
  ASSERT_TRUE(fetches.ok());
  for (const FetchRecord& f : *fetches) {
    if (!f.object_path.empty()) {
      EXPECT_TRUE(FileExists(JoinPath(lake_root, f.object_path))) << f.object_path;
    }
  }
}

class LakeFault : public LakeFixture {
 protected:
  // Replaces the archive's store with one that fails the given calls.
  // Each round gets a fresh lake and a fresh metadata file.
  void InjectFaults(int fail_put_at, int fail_append_at) {
    std::filesystem::remove_all(lake_root_);
    OpenMetadata("meta-" + std::to_string(++round_) + ".sqlite");
    auto inner = OpenLocalObjectStore(lake_root_);
    ASSERT_TRUE(inner.ok());
    store_ =
        std::make_unique<FaultyObjectStore>(std::move(inner).value(), fail_put_at, fail_append_at);
    archive_ = std::make_unique<RawArchive>(store_.get(), metadata_.get(), &clock_);
  }

  std::vector<std::string> WriteInputs(int n) {
    std::vector<std::string> paths;
    for (int i = 0; i < n; ++i) {
      paths.push_back(dir_.File("in/file" + std::to_string(i) + ".csv"));
      WriteText(paths.back(), "id\n" + std::to_string(i) + "\n");
    }
    return paths;
  }

  int round_ = 0;
};

TEST_F(LakeFault, FailedPutFileStoresNothingAndReopeningClearsStaging) {
  for (int fail_at = 1; fail_at <= 3; ++fail_at) {
    SCOPED_TRACE("PutFile fails on call " + std::to_string(fail_at));
    InjectFaults(fail_at, 0);
    std::vector<std::string> paths = WriteInputs(3);
    for (int i = 0; i < 3; ++i) {
      // Fresh content each round so the stat cache does not short-cut the store.
      WriteText(paths[i], "id\n" + std::to_string(i) + "\nround" + std::to_string(fail_at) + "\n");
      auto obj = archive_->StoreLocalFile("gtfs", "", paths[i], "csv");
      if (i + 1 == fail_at) {
        ASSERT_FALSE(obj.ok());
        EXPECT_THAT(obj.status().message(), HasSubstr("injected PutFile failure"));
        std::string key = RawArchive::ObjectKey("gtfs", Sha256Hex(*ReadFile(paths[i])), "csv");
        EXPECT_FALSE(store_->Exists(key));
      } else {
        ASSERT_TRUE(obj.ok()) << obj.status().ToString();
      }
    }
    EXPECT_THAT(Objects(), SizeIs(2));
    ExpectLakeConsistent(lake_root_, *metadata_);
    // The failed attempt is in the fetch log, with its error and no object.
    std::vector<nlohmann::json> lines = ReadNdjson(JoinPath(lake_root_, kLogKey));
    ASSERT_THAT(lines, SizeIs(3));
    EXPECT_THAT(lines[fail_at - 1]["error"].get<std::string>(), HasSubstr("injected"));
    EXPECT_EQ(lines[fail_at - 1]["object"], "");

    // Reopening the store (what the owner does at start-up) clears staging.
    auto reopened = OpenLocalObjectStore(lake_root_);
    ASSERT_TRUE(reopened.ok());
    EXPECT_THAT(FilesUnder(JoinPath(lake_root_, ".staging")), IsEmpty());
    EXPECT_TRUE(std::filesystem::is_directory(JoinPath(lake_root_, ".staging")));

    // And the next attempt stores the file in full.
    store_ = std::move(reopened).value();
    archive_ = std::make_unique<RawArchive>(store_.get(), metadata_.get(), &clock_);
    StoredObject retried = MustStore(paths[fail_at - 1]);
    EXPECT_FALSE(retried.reused);
    auto body = ReadFile(retried.local_path);
    ASSERT_TRUE(body.ok());
    EXPECT_EQ(Sha256Hex(*body), retried.sha256);
    EXPECT_THAT(Objects(), SizeIs(3));
    ExpectLakeConsistent(lake_root_, *metadata_);
  }
}

TEST_F(LakeFault, FailedAppendFailsTheStoreAndLeavesOnlyCompleteObjects) {
  for (int fail_at = 1; fail_at <= 3; ++fail_at) {
    SCOPED_TRACE("Append fails on call " + std::to_string(fail_at));
    InjectFaults(0, fail_at);
    std::vector<std::string> paths = WriteInputs(3);
    size_t fetches_before = Fetches().size();
    for (int i = 0; i < 3; ++i) {
      WriteText(paths[i], "id\n" + std::to_string(i) + "\nround" + std::to_string(fail_at) + "\n");
      auto obj = archive_->StoreLocalFile("gtfs", "", paths[i], "csv");
      if (i + 1 == fail_at) {
        ASSERT_FALSE(obj.ok());
        EXPECT_THAT(obj.status().message(), HasSubstr("injected Append failure"));
      } else {
        ASSERT_TRUE(obj.ok()) << obj.status().ToString();
      }
    }
    // Raw first: the body was stored before its log record failed, so it is
    // complete (never partial); the attempt reached neither log.
    ExpectLakeConsistent(lake_root_, *metadata_);
    EXPECT_THAT(ReadNdjson(JoinPath(lake_root_, kLogKey)), SizeIs(2));
    EXPECT_EQ(Fetches().size(), fetches_before + 2);

    auto reopened = OpenLocalObjectStore(lake_root_);
    ASSERT_TRUE(reopened.ok());
    EXPECT_THAT(FilesUnder(JoinPath(lake_root_, ".staging")), IsEmpty());
    store_ = std::move(reopened).value();
    archive_ = std::make_unique<RawArchive>(store_.get(), metadata_.get(), &clock_);
    // Retrying logs the attempt; the stored body is reused, not copied again.
    StoredObject retried = MustStore(paths[fail_at - 1]);
    EXPECT_TRUE(retried.reused);
    EXPECT_THAT(ReadNdjson(JoinPath(lake_root_, kLogKey)), SizeIs(3));
    EXPECT_THAT(Objects(), SizeIs(3));
    ExpectLakeConsistent(lake_root_, *metadata_);
  }
}

// ---- group commit -----------------------------------------------------------

class LakeBatch : public LakeFault {
 protected:
  // A body written into staging as the HTTP client does, stored with a batch.
  FetchRecord StorePage(FetchLogBatch& batch, int i) {
    std::string content = "{\"page\": " + std::to_string(i) + "}";
    std::string tmp = archive_->NewStagingPath();
    WriteText(tmp, content);
    auto obj = archive_->StoreTemp("api", tmp, Sha256Hex(content), content.size(), "json", &batch);
    EXPECT_TRUE(obj.ok()) << obj.status().ToString();
    FetchRecord rec;
    rec.source = "api";
    rec.url = "http://127.0.0.1/items?page=" + std::to_string(i);
    rec.started_at = clock_.Now();
    rec.status = 200;
    if (obj.ok()) {
      rec.sha256 = obj->sha256;
      rec.object_path = obj->key;
      rec.bytes = static_cast<int64_t>(obj->bytes);
    }
    return rec;
  }
  std::string ApiLog() const {
    return JoinPath(lake_root_, "raw/api/log/dt=2026-01-01/hour=05/fetches.ndjson");
  }
};

TEST_F(LakeBatch, RecordsAreHeldUntilTheCommitAndWrittenInOrder) {
  FetchLogBatch batch(archive_.get());
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(batch.Add(StorePage(batch, i)).ok());
  // Objects are complete at once; their records wait for the commit.
  EXPECT_THAT(Objects("api"), SizeIs(3));
  EXPECT_THAT(Fetches("api"), IsEmpty());
  EXPECT_FALSE(std::filesystem::exists(ApiLog()));
  ASSERT_TRUE(batch.Commit().ok());
  std::vector<nlohmann::json> lines = ReadNdjson(ApiLog());
  ASSERT_THAT(lines, SizeIs(3));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(lines[i]["url"], "http://127.0.0.1/items?page=" + std::to_string(i + 1));
  }
  EXPECT_THAT(Fetches("api"), SizeIs(3));
  ExpectLakeConsistent(lake_root_, *metadata_);
  // A second commit with nothing held writes nothing.
  ASSERT_TRUE(batch.Commit().ok());
  EXPECT_THAT(ReadNdjson(ApiLog()), SizeIs(3));
}

TEST_F(LakeBatch, CommitsEveryMaxPendingRecordsAndOnDestruction) {
  {
    FetchLogBatch batch(archive_.get());
    for (size_t i = 1; i <= FetchLogBatch::kMaxPending; ++i) {
      ASSERT_TRUE(batch.Add(StorePage(batch, static_cast<int>(i))).ok());
    }
    EXPECT_THAT(Fetches("api"), SizeIs(FetchLogBatch::kMaxPending));
    ASSERT_TRUE(batch.Add(StorePage(batch, 1000)).ok());
    EXPECT_THAT(Fetches("api"), SizeIs(FetchLogBatch::kMaxPending));
  }
  // Leaving the scope (an error return) commits the rest.
  EXPECT_THAT(Fetches("api"), SizeIs(FetchLogBatch::kMaxPending + 1));
  EXPECT_THAT(ReadNdjson(ApiLog()), SizeIs(FetchLogBatch::kMaxPending + 1));
  ExpectLakeConsistent(lake_root_, *metadata_);
}

TEST_F(LakeBatch, AFailedCommitLeavesCompleteObjectsAndNoRecordOfThem) {
  InjectFaults(0, 1);  // the first log append fails
  FetchLogBatch batch(archive_.get());
  for (int i = 1; i <= 2; ++i) ASSERT_TRUE(batch.Add(StorePage(batch, i)).ok());
  Status st = batch.Commit();
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("injected Append failure"));
  EXPECT_THAT(Fetches("api"), IsEmpty());
  EXPECT_THAT(Objects("api"), SizeIs(2));
  ExpectLakeConsistent(lake_root_, *metadata_);
}

TEST(LakeLocalStore, ReopenRemovesLeftoverStagingFilesOnly) {
  TempDir dir;
  std::string root = dir.File("lake");
  auto store = OpenLocalObjectStore(root);
  ASSERT_TRUE(store.ok());
  WriteText(JoinPath((*store)->StagingDir(), "123-0.part"), "half a bo");
  std::string tmp = JoinPath((*store)->StagingDir(), "123-1.part");
  WriteText(tmp, "complete body");
  ASSERT_TRUE((*store)->PutFile("raw/s/objects/abc.txt", tmp).ok());
  ASSERT_TRUE((*store)->Append("raw/s/log/x.ndjson", "{}\n").ok());
  ASSERT_TRUE((*store)->Append("raw/s/log/x.ndjson", "{}\n").ok());
  EXPECT_FALSE(FileExists(tmp));

  auto reopened = OpenLocalObjectStore(root);
  ASSERT_TRUE(reopened.ok());
  EXPECT_THAT(FilesUnder(JoinPath(root, ".staging")), IsEmpty());
  auto listed = (*reopened)->List("raw/s");
  ASSERT_TRUE(listed.ok());
  EXPECT_THAT(*listed, ::testing::ElementsAre("raw/s/log/x.ndjson", "raw/s/objects/abc.txt"));
  auto body = (*reopened)->Read("raw/s/objects/abc.txt");
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(*body, "complete body");
  auto log = (*reopened)->Read("raw/s/log/x.ndjson");
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(*log, "{}\n{}\n");

  // Putting an existing key keeps the first body and discards the temp file.
  std::string dup = JoinPath((*reopened)->StagingDir(), "123-2.part");
  WriteText(dup, "complete body");
  ASSERT_TRUE((*reopened)->PutFile("raw/s/objects/abc.txt", dup).ok());
  EXPECT_FALSE(FileExists(dup));
  auto missing = (*reopened)->List("raw/none");
  ASSERT_TRUE(missing.ok());
  EXPECT_THAT(*missing, IsEmpty());
}

}  // namespace
}  // namespace sluice
