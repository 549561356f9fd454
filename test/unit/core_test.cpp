#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <thread>

#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/redact.h"
#include "core/secrets.h"
#include "core/status.h"
#include "core/strings.h"
#include "core/utf8.h"

namespace sluice {
namespace {

Result<int> Half(int x) {
  if (x % 2) return Status::Invalid("odd");
  return x / 2;
}

Status UseHalf(int x, int* out) {
  ASSIGN_OR_RETURN(int h, Half(x));
  *out = h;
  return Status::Ok();
}

TEST(Status, OkAndErrors) {
  EXPECT_TRUE(Status::Ok().ok());
  Status st = Status::Invalid("bad");
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.WithContext("file.yaml:3").message(), "file.yaml:3: bad");
  int v = 0;
  EXPECT_TRUE(UseHalf(4, &v).ok());
  EXPECT_EQ(v, 2);
  EXPECT_EQ(UseHalf(3, &v).message(), "odd");
}

TEST(Hash, KnownVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Strings, DidYouMean) {
  EXPECT_EQ(DidYouMean("fromat", {"format", "fetch", "tables"}), "format");
  EXPECT_EQ(DidYouMean("zzzzzz", {"format", "fetch"}), "");
  EXPECT_EQ(QuoteIdent("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(QuoteLiteral("it's"), "'it''s'");
}

TEST(Redact, EveryForm) {
  ClearSecretsForTest();
  RegisterSecret("s3cr3t/+=&?");
  EXPECT_EQ(Redact("key=s3cr3t/+=&? end"), "key=*** end");
  EXPECT_EQ(Redact("q=" + UrlEncode("s3cr3t/+=&?")), "q=***");
  EXPECT_EQ(Redact("q=" + ToLower(UrlEncode("s3cr3t/+=&?"))), "q=***");
  EXPECT_EQ(Redact("Basic " + Base64Encode("s3cr3t/+=&?")), "Basic ***");
  EXPECT_FALSE(ContainsSecret(Redact("x s3cr3t/+=&? y")));
  EXPECT_EQ(Base64Encode("user:pw"), "dXNlcjpwdw==");
  ClearSecretsForTest();
}

// A secret inside a longer base64 text (Basic auth's "user:" + secret,
// `echo $SECRET | base64`'s newline after it), in the URL-safe alphabet, or
// printed line by line (a PEM key): each is found (Base64Encode itself is
// checked against a known vector above).
TEST(Redact, EncodedInsideLongerTextAndLineByLine) {
  ClearSecretsForTest();
  const std::string secret = "tok3n-Zq9/x+Yw";
  RegisterSecret(secret);
  for (const std::string& around :
       {"user:" + secret, secret + "\n", "a" + secret + "bc", "ab" + secret + ":"}) {
    std::string b64 = Base64Encode(around);
    EXPECT_TRUE(ContainsSecret(b64)) << around << " as " << b64;
    EXPECT_FALSE(ContainsSecret(Redact("Authorization: Basic " + b64))) << around;
    std::string url_safe = b64;
    for (char& c : url_safe) c = c == '+' ? '-' : c == '/' ? '_' : c;
    EXPECT_TRUE(ContainsSecret(url_safe)) << around << " as " << url_safe;
  }
  ClearSecretsForTest();
  const std::string pem =
      "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nshort\n"
      "-----END PRIVATE KEY-----";
  RegisterSecret(pem);
  EXPECT_EQ(Redact("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"), "***");
  EXPECT_EQ(Redact("-----BEGIN PRIVATE KEY-----"), "***");
  EXPECT_EQ(Redact("short"), "short");  // under kMinSecretLength: ordinary text
  ClearSecretsForTest();
}

// A secret with quotes, a backslash, a space and a non-ASCII letter, as a
// JSON writer and a form encoder write it (escaped by other code than
// Sluice's: Python's json module, curl --data-urlencode).
TEST(Redact, JsonEscapedAndFormEncoded) {
  ClearSecretsForTest();
  const std::string secret = "p\"a\\ss w\xC3\xA9rd\t42";
  RegisterSecret(secret);
  EXPECT_EQ(Redact(R"({"password": "p\"a\\ss w\u00e9rd\t42"})"), R"({"password": "***"})");
  EXPECT_EQ(Redact("{\"password\": \"p\\\"a\\\\ss w\xC3\xA9rd\\t42\"}"), R"({"password": "***"})");
  EXPECT_EQ(Redact("user=me&password=p%22a%5Css+w%C3%A9rd%0942&x=1"), "user=me&password=***&x=1");
  EXPECT_EQ(Redact("password=p%22a%5css+w%c3%a9rd%0942"), "password=***");
  EXPECT_FALSE(ContainsSecret(Redact(nlohmann::json({{"p", secret}}).dump())));
  ClearSecretsForTest();
}

// Where a long line may be cut: never after the start of a secret.
TEST(Redact, SafeCutStopsBeforeASplitSecret) {
  ClearSecretsForTest();
  RegisterSecret("s3cr3t-value");
  EXPECT_EQ(SafeCut("plain text"), 10u);
  EXPECT_EQ(SafeCut("text s3cr3t-va"), 5u);
  EXPECT_EQ(SafeCut("text s3cr3t-value"), 17u);  // whole: Redact finds it
  ClearSecretsForTest();
}

// JSON is redacted before it is escaped, in keys and nested values alike;
// a value holding no secret is written as it is.
TEST(Redact, JsonAnywhereInTheTree) {
  ClearSecretsForTest();
  const nlohmann::json clean = {{"a", {1, "two", {{"b", nullptr}}}}, {"c", "quote\"d"}};
  EXPECT_FALSE(JsonContainsSecret(clean));  // no secret registered at all
  RegisterSecret("pa\"ss/w0rd");
  EXPECT_FALSE(JsonContainsSecret(clean));
  EXPECT_EQ(DumpRedacted(clean), clean.dump());
  for (const nlohmann::json& dirty :
       {nlohmann::json("x pa\"ss/w0rd"), nlohmann::json{{"k", {1, {{"deep", "pa\"ss/w0rd"}}}}},
        nlohmann::json{{"pa\"ss/w0rd", 1}},
        nlohmann::json::array({"ok", UrlEncode("pa\"ss/w0rd")})}) {
    EXPECT_TRUE(JsonContainsSecret(dirty)) << dirty.dump();
    const std::string text = DumpRedacted(dirty);
    EXPECT_EQ(text.find("w0rd"), std::string::npos) << text;
    EXPECT_NE(text.find("***"), std::string::npos) << text;
    EXPECT_FALSE(JsonContainsSecret(RedactJson(dirty)));
  }
  ClearSecretsForTest();
}

TEST(Secrets, EnvThenFileAndModeCheck) {
  ClearSecretsForTest();
  auto dir =
      std::filesystem::temp_directory_path() / ("sluice-secrets-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string file = (dir / ".secrets").string();
  ASSERT_TRUE(WriteFileAtomic(file,
                              "# comment\nTOKEN=from-file\nQUOTED=\"a b c d e\"\nSHORT=abc12\n"
                              "UNUSED=not-used-anywhere\n")
                  .ok());
  ::chmod(file.c_str(), 0644);
  SecretResolver resolver({{SecretProvider::Kind::kEnv, ""}, {SecretProvider::Kind::kFile, file}});
  auto refused = resolver.Lookup("TOKEN");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("chmod 600"), std::string::npos);

  ::chmod(file.c_str(), 0600);
  SecretResolver resolver2({{SecretProvider::Kind::kEnv, ""}, {SecretProvider::Kind::kFile, file}});
  ::setenv("SLUICE_TEST_ENV_SECRET", "from-env", 1);
  EXPECT_EQ(*resolver2.Lookup("SLUICE_TEST_ENV_SECRET"), "from-env");
  EXPECT_EQ(*resolver2.Lookup("TOKEN"), "from-file");
  EXPECT_EQ(*resolver2.Lookup("QUOTED"), "a b c d e");
  EXPECT_EQ(*resolver2.Substitute("Bearer ${secret:TOKEN}!"), "Bearer from-file!");
  EXPECT_FALSE(resolver2.Lookup("MISSING").ok());
  EXPECT_TRUE(ContainsSecret("x from-file y"));
  // A value too short to be a secret is refused, by name, never by value.
  auto short_secret = resolver2.Lookup("SHORT");
  ASSERT_FALSE(short_secret.ok());
  EXPECT_NE(short_secret.status().message().find("secret SHORT is shorter than 8"),
            std::string::npos);
  EXPECT_EQ(short_secret.status().message().find("abc12"), std::string::npos);
  // Values never looked up are not secrets of this run.
  EXPECT_FALSE(ContainsSecret("not-used-anywhere"));
  std::filesystem::remove_all(dir);
  ClearSecretsForTest();
}

// A task attempt's log: its thread's lines at info or above, whatever the
// process's level, redacted; other threads' lines stay out; SwitchTo
// continues in the next attempt's file; nesting restores the outer log.
TEST(TaskLog, CapturesItsThreadsLinesRedacted) {
  ClearSecretsForTest();
  RegisterSecret("tok-9f8e");
  ConfigureLogging({LogLevel::kError, false});
  auto dir =
      std::filesystem::temp_directory_path() / ("sluice-tasklog-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::string one = (dir / "logs" / "7" / "a.1.log").string();
  std::string two = (dir / "logs" / "7" / "a.2.log").string();
  EXPECT_EQ(TaskLog::Current(), nullptr);
  {
    TaskLog log(one);
    EXPECT_EQ(TaskLog::Current(), &log);
    EXPECT_TRUE(LogEnabled(LogLevel::kInfo));  // though the process logs errors only
    log.Write("a: started");
    LOG_INFO("runner", "fetching with tok-9f8e");
    LOG_DEBUG("runner", "not kept");
    std::thread([] { LOG_WARN("other", "another task's line"); }).join();
    log.SwitchTo(two);
    LOG_WARN("runner", "attempt 2");
  }
  EXPECT_EQ(TaskLog::Current(), nullptr);
  EXPECT_FALSE(LogEnabled(LogLevel::kInfo));
  LOG_WARN("runner", "after the task");
  std::string first = *ReadFile(one);
  EXPECT_NE(first.find("a: started\n"), std::string::npos) << first;
  EXPECT_NE(first.find("[runner] fetching with ***"), std::string::npos) << first;
  EXPECT_EQ(first.find("tok-9f8e"), std::string::npos);
  EXPECT_EQ(first.find("not kept"), std::string::npos);
  EXPECT_EQ(first.find("another task"), std::string::npos);
  EXPECT_EQ(first.find("attempt 2"), std::string::npos);
  std::string second = *ReadFile(two);
  EXPECT_NE(second.find("attempt 2"), std::string::npos) << second;
  EXPECT_EQ(second.find("after the task"), std::string::npos);
  std::string three = (dir / "logs" / "7" / "b.1.log").string();
  {
    TaskLog unchanged(three);
    unchanged.Write("b: started");
    unchanged.Discard();  // nothing logged: no file
  }
  EXPECT_FALSE(std::filesystem::exists(three));
  {
    TaskLog outer(one);
    {
      TaskLog inner(two);
      EXPECT_EQ(TaskLog::Current(), &inner);
    }
    EXPECT_EQ(TaskLog::Current(), &outer);
  }
  std::filesystem::remove_all(dir);
  ConfigureLogging({});
  ClearSecretsForTest();
}

// With a shared file, a log of Write lines only (a task's start and
// outcome) becomes one block of it, not a file of its own; a log its
// thread wrote to keeps its own file; a discarded one leaves nothing.
// Blocks of tasks that end together never mix, and a block cut short is
// not read.
TEST(TaskLog, ShortLogsShareOneFileInBlocks) {
  ConfigureLogging({LogLevel::kError, false});
  auto dir =
      std::filesystem::temp_directory_path() / ("sluice-shortlog-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  const std::string run = (dir / "logs" / "3").string();
  const std::string shared = run + "/" + kShortTaskLogs;
  {
    TaskLog quiet(run + "/a.1.log", shared);
    quiet.Write("a: started");
    quiet.Write("a: success\n  check x: pass");
  }
  {
    TaskLog talkative(run + "/b.1.log", shared);
    talkative.Write("b: started");
    LOG_INFO("runner", "b fetched 3 pages");
    talkative.Write("b: success");
  }
  {
    TaskLog unchanged(run + "/c.1.log", shared);
    unchanged.Write("c: started");
    unchanged.Discard();
  }
  {
    TaskLog retried(run + "/d.1.log", shared);
    retried.Write("d: started");
    retried.SwitchTo(run + "/d.2.log");  // a second attempt has its own file
    retried.Write("d: success");
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        TaskLog log(run + "/t" + std::to_string(t) + "_" + std::to_string(i) + ".1.log", shared);
        log.Write(std::string(100 + 37 * i, static_cast<char>('a' + t)));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_FALSE(std::filesystem::exists(run + "/a.1.log"));
  EXPECT_TRUE(std::filesystem::exists(run + "/b.1.log"));
  EXPECT_FALSE(std::filesystem::exists(run + "/c.1.log"));
  EXPECT_TRUE(std::filesystem::exists(run + "/d.2.log"));
  std::string text = *ReadFile(shared);
  auto blocks = SharedTaskLogBlocks(text);
  ASSERT_EQ(blocks.size(), 2u + 400u);
  EXPECT_EQ(blocks[0].first, "a.1.log");
  EXPECT_EQ(blocks[0].second, "a: started\na: success\n  check x: pass\n");
  EXPECT_EQ(blocks[1].first, "d.1.log");
  EXPECT_EQ(blocks[1].second, "d: started\n");
  for (size_t i = 2; i < blocks.size(); ++i) {
    const std::string& body = blocks[i].second;
    ASSERT_GE(body.size(), 101u);
    EXPECT_EQ(body.find_first_not_of(body[0]), body.size() - 1) << blocks[i].first;
  }
  EXPECT_NE(ReadFile(run + "/b.1.log")->find("b fetched 3 pages"), std::string::npos);
  // The last block cut short: the ones before it are read.
  auto cut = SharedTaskLogBlocks(std::string_view(text).substr(0, text.size() - 5));
  EXPECT_EQ(cut.size(), blocks.size() - 1);
  EXPECT_TRUE(SharedTaskLogBlocks("== x.1.log 99999999999999\n").empty());
  EXPECT_TRUE(SharedTaskLogBlocks("garbage").empty());
  std::filesystem::remove_all(dir);
  ConfigureLogging({});
}

TEST(Fs, AtomicWriteAndCopyHash) {
  auto dir = std::filesystem::temp_directory_path() / ("sluice-fs-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string a = (dir / "a.txt").string();
  ASSERT_TRUE(WriteFileAtomic(a, "abc").ok());
  EXPECT_EQ(*ReadFile(a), "abc");
  auto copied = CopyAndHash(a, (dir / "b.tmp").string());
  ASSERT_TRUE(copied.ok());
  EXPECT_EQ(copied->sha256, Sha256Hex("abc"));
  EXPECT_EQ(copied->bytes, 3u);
  EXPECT_EQ(*Sha256File(a), Sha256Hex("abc"));
  auto lock1 = FileLock::TryAcquire((dir / "lock").string());
  ASSERT_TRUE(lock1.ok());
  std::filesystem::remove_all(dir);
}

// A copy of many chunks and hash buffers (the hash runs on its own thread):
// the digest, the size, the UTF-8 verdict and the bytes are those of the file,
// through the kernel's copy and, from another file system (/dev/shm, where
// copy_file_range says EXDEV), through the buffered one.
TEST(Fs, CopyAndHashOfManyChunks) {
  auto dir = std::filesystem::temp_directory_path() / ("sluice-fs-big-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string body;
  body.reserve(21 * 1024 * 1024 + 7);
  for (size_t i = 0; body.size() < 21 * 1024 * 1024 + 7; ++i) {
    body += "row " + std::to_string(i * 2654435761u % 1000003) + ",caf\xC3\xA9\n";
  }
  const uint64_t bad_at = body.rfind("row", body.size() - 1000);  // an ASCII byte
  body[bad_at] = '\xE9';                                          // Latin-1, late in the last chunk
  std::vector<std::string> sources = {(dir / "big.csv").string()};
  if (std::filesystem::is_directory("/dev/shm")) {
    sources.push_back("/dev/shm/sluice-fs-big-" + std::to_string(getpid()) + ".csv");
  }
  for (const std::string& src : sources) {
    ASSERT_TRUE(WriteFileAtomic(src, body).ok()) << src;
    std::string copy = (dir / "copy.tmp").string();
    auto copied = CopyAndHash(src, copy);
    ASSERT_TRUE(copied.ok()) << src << ": " << copied.status().message();
    EXPECT_EQ(copied->sha256, Sha256Hex(body)) << src;
    EXPECT_EQ(copied->bytes, body.size()) << src;
    ASSERT_TRUE(copied->utf8_invalid_at.has_value()) << src;
    EXPECT_EQ(*copied->utf8_invalid_at, bad_at) << src;
    EXPECT_TRUE(*ReadFile(copy) == body) << src;
    std::filesystem::remove(src);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// The scanner's verdict on bytes fed whole, byte by byte, and split at every
// point: the same, wherever the feeds are cut.
std::optional<uint64_t> ScanEveryWay(const std::string& bytes) {
  Utf8Scanner whole;
  whole.Feed(bytes.data(), bytes.size());
  Utf8Scanner single;
  for (char c : bytes) single.Feed(&c, 1);
  EXPECT_EQ(whole.Finish(), single.Finish()) << "byte by byte: " << bytes;
  for (size_t cut = 0; cut <= bytes.size(); ++cut) {
    Utf8Scanner split;
    split.Feed(bytes.data(), cut);
    split.Feed(bytes.data() + cut, bytes.size() - cut);
    EXPECT_EQ(whole.Finish(), split.Finish()) << "cut at " << cut << ": " << bytes;
  }
  return whole.Finish();
}

TEST(Utf8Scanner, ValidTextPassesWhereverTheFeedsAreCut) {
  EXPECT_EQ(ScanEveryWay(""), std::nullopt);
  EXPECT_EQ(ScanEveryWay("plain ascii, long enough for the eight-byte path\n"), std::nullopt);
  EXPECT_EQ(ScanEveryWay("\xEF\xBB\xBFM\xC3\xBCnchen \xE6\x9D\xB1\xE4\xBA\xAC \xF0\x9F\x9A\x8C "
                         "\xED\x9F\xBF \xF4\x8F\xBF\xBF"),
            std::nullopt);
}

TEST(Utf8Scanner, FindsTheStartOfTheFirstBadSequence) {
  EXPECT_EQ(ScanEveryWay("id,city\n1,M\xFCnchen\n"), 11u);  // Latin-1
  EXPECT_EQ(ScanEveryWay("ab\x80"), 2u);                    // lone continuation
  EXPECT_EQ(ScanEveryWay("overlong \xC0\xAF"), 9u);         // C0/C1 never lead
  EXPECT_EQ(ScanEveryWay("overlong \xE0\x80\x80"), 9u);     // 3-byte overlong
  EXPECT_EQ(ScanEveryWay("surrogate \xED\xA0\x80"), 10u);   // U+D800
  EXPECT_EQ(ScanEveryWay("too big \xF4\x90\x80\x80"), 8u);  // past U+10FFFF
  EXPECT_EQ(ScanEveryWay("too big \xF5\x80\x80\x80"), 8u);
  EXPECT_EQ(ScanEveryWay("cut at the end \xE2\x82"), 15u);        // truncated
  EXPECT_EQ(ScanEveryWay("short \xE2\x82x"), 6u);                 // a byte missing
  EXPECT_EQ(ScanEveryWay(std::string("\xFF\xFEi\0d\0", 6)), 0u);  // UTF-16 LE
  EXPECT_EQ(ScanEveryWay("ok \xC3\xA9 then \xC3"), 11u);
  // The first bad byte wins, and feeding more changes nothing.
  Utf8Scanner s;
  s.Feed("a\xFF", 2);
  EXPECT_TRUE(s.Failed());
  s.Feed("\xFE", 1);
  EXPECT_EQ(s.Finish(), 1u);
}

TEST(Utf8Scanner, VerdictsAreRememberedByPath) {
  EXPECT_EQ(RecallUtf8Verdict("/lake/raw/s/objects/never.csv"), std::nullopt);
  RememberUtf8Verdict("/lake/raw/s/objects/good.csv", std::nullopt);
  RememberUtf8Verdict("/lake/raw/s/objects/latin.csv", 42);
  auto good = RecallUtf8Verdict("/lake/raw/s/objects/good.csv");
  ASSERT_TRUE(good.has_value());
  EXPECT_EQ(*good, std::nullopt);
  auto latin = RecallUtf8Verdict("/lake/raw/s/objects/latin.csv");
  ASSERT_TRUE(latin.has_value());
  EXPECT_EQ(*latin, 42u);
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

TEST(StripStatementEnd, DropsWhatTrailsTheStatementOnly) {
  EXPECT_EQ(StripStatementEnd("select 1;  -- note\n/* more */ ;\n"), "select 1");
  EXPECT_EQ(StripStatementEnd("select '--x;' as a -- c"), "select '--x;' as a");
  EXPECT_EQ(StripStatementEnd("select \"a;--\" from t;"), "select \"a;--\" from t");
  EXPECT_EQ(StripStatementEnd("select 'it''s' -- x"), "select 'it''s'");
  EXPECT_EQ(StripStatementEnd("select $$a -- b$$;"), "select $$a -- b$$");
  EXPECT_EQ(StripStatementEnd("select 1 /* a */ + 2"), "select 1 /* a */ + 2");
}

}  // namespace
}  // namespace sluice
