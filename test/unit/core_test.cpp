#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>

#include "core/fs.h"
#include "core/hash.h"
#include "core/redact.h"
#include "core/secrets.h"
#include "core/status.h"
#include "core/strings.h"

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

TEST(Secrets, EnvThenFileAndModeCheck) {
  ClearSecretsForTest();
  auto dir =
      std::filesystem::temp_directory_path() / ("sluice-secrets-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string file = (dir / ".secrets").string();
  ASSERT_TRUE(WriteFileAtomic(file, "# comment\nTOKEN=from-file\nQUOTED=\"a b\"\n").ok());
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
  EXPECT_EQ(*resolver2.Lookup("QUOTED"), "a b");
  EXPECT_EQ(*resolver2.Substitute("Bearer ${secret:TOKEN}!"), "Bearer from-file!");
  EXPECT_FALSE(resolver2.Lookup("MISSING").ok());
  EXPECT_TRUE(ContainsSecret("x from-file y"));
  std::filesystem::remove_all(dir);
  ClearSecretsForTest();
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

}  // namespace
}  // namespace sluice
