// The HTTP client and fetcher against the real fixture server on 127.0.0.1
// (test/support/fixture_server.h): every fault it injects, every pagination
// style, conditional requests, guards, and that secrets never reach the fetch
// log. Real libcurl, real lake folder, real SQLite metadata.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/fs.h"
#include "core/redact.h"
#include "core/strings.h"
#include "ingest/fetcher.h"
#include "ingest/http_client.h"
#include "lake/object_store.h"
#include "lake/raw_archive.h"
#include "metadata/metadata_store.h"
#include "support/fixture_server.h"

namespace sluice {
namespace {

using testing::FixtureServer;
using testing::FixtureServerOptions;
using ::testing::HasSubstr;
using ::testing::Not;

class HttpFetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-http-" + std::to_string(::getpid()) + "-" + info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "fixtures");
    Write("fixtures/a.csv", "id,name\n1,alpha\n2,beta\n");
    std::string records = "[";
    for (int i = 1; i <= 25; ++i) {
      records += (i > 1 ? "," : "") + std::string("{\"id\":") + std::to_string(i) + "}";
    }
    Write("fixtures/records.json", records + "]");
    Write("fixtures/census.json",
          "[[\"NAME\",\"POP\",\"state\"],[\"Alabama\",\"5024279\",\"01\"],"
          "[\"Alaska\",\"733391\",\"02\"]]");
    FixtureServerOptions opt;
    opt.root = (dir_ / "fixtures").string();
    opt.token = "tok-SECRET-1";
    opt.basic = "reader:pa ss/word+1";
    opt.api_key = "key&SECRET=2";
    server_ = std::make_unique<FixtureServer>(opt);
    ASSERT_TRUE(server_->Start());
    auto store = OpenLocalObjectStore((dir_ / "lake").string());
    ASSERT_TRUE(store.ok()) << store.status().message();
    store_ = std::move(*store);
    auto meta = OpenSqliteMetadata((dir_ / "meta.sqlite").string(), &clock_);
    ASSERT_TRUE(meta.ok()) << meta.status().message();
    metadata_ = std::move(*meta);
    archive_ = std::make_unique<RawArchive>(store_.get(), metadata_.get(), &clock_);
    client_ = NewCurlHttpClient();
    ::setenv("SLUICE_TEST_TOKEN", "tok-SECRET-1", 1);
    ::setenv("SLUICE_TEST_PASSWORD", "pa ss/word+1", 1);
    ::setenv("SLUICE_TEST_KEY", "key&SECRET=2", 1);
  }
  void TearDown() override {
    server_->Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void Write(const std::string& rel, const std::string& text) {
    std::ofstream(dir_ / rel, std::ios::binary) << text;
  }

  SourceSpec Source(const std::string& url, nlohmann::json options = nlohmann::json::object(),
                    nlohmann::json paginate = nlohmann::json::object()) {
    SourceSpec s;
    s.name = "src";
    s.fetch.url = url;
    s.fetch.options = std::move(options);
    s.fetch.options["backoff"] = "10ms";
    s.fetch.paginate = std::move(paginate);
    s.fetch.loc = {"sources/src.yaml", 2};
    s.format = "csv";
    return s;
  }

  Result<HttpFetchResult> Fetch(const SourceSpec& s, const std::string& format = "csv",
                                int default_retries = -1) {
    HttpFetcher fetcher(client_.get(), archive_.get(), metadata_.get(), &clock_,
                        SecretResolver({SecretProvider{}}));
    HttpFetchRequest req;
    req.source = &s;
    req.format = format;
    req.extension = format;
    req.default_retries = default_retries;
    return fetcher.Fetch(req);
  }

  std::vector<FetchRecord> Log() {
    auto log = metadata_->ListFetches("src", 1000);
    EXPECT_TRUE(log.ok());
    return log.ok() ? *log : std::vector<FetchRecord>{};
  }

  std::filesystem::path dir_;
  SystemClock clock_;
  std::unique_ptr<FixtureServer> server_;
  std::unique_ptr<ObjectStore> store_;
  std::unique_ptr<MetadataStore> metadata_;
  std::unique_ptr<RawArchive> archive_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(HttpFetchTest, DownloadsIntoTheLakeAndLogsTheFetch) {
  auto r = Fetch(Source(server_->Url("files/a.csv")));
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->objects.size(), 1u);
  EXPECT_EQ(*ReadFile(r->objects[0].local_path), "id,name\n1,alpha\n2,beta\n");
  auto log = Log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].status, 200);
  EXPECT_EQ(log[0].sha256, r->objects[0].sha256);
  EXPECT_FALSE(log[0].headers.value("etag", "").empty());
  // Nothing is left in staging.
  EXPECT_TRUE(std::filesystem::is_empty(store_->StagingDir()));
}

TEST_F(HttpFetchTest, PostsATemplatedBody) {
  SourceSpec s = Source(server_->Url("post/a.csv"),
                        {{"method", "post"}, {"body", {{"day", "{{ partition }}"}, {"n", 2}}}});
  HttpFetcher fetcher(client_.get(), archive_.get(), metadata_.get(), &clock_,
                      SecretResolver({SecretProvider{}}));
  HttpFetchRequest req;
  req.source = &s;
  req.format = "csv";
  req.extension = "csv";
  req.partition = "2026-01-02";
  req.context.partition = "2026-01-02";
  auto r = fetcher.Fetch(req);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(server_->Count("post"), 1);
  EXPECT_EQ(server_->LastPostBody(), R"({"day":"2026-01-02","n":2}|application/json)");
}

TEST_F(HttpFetchTest, CompressedResponsesAreStoredDecoded) {
  std::string big = "id,name\n";
  for (int i = 0; i < 2000; ++i) big += std::to_string(i) + ",the same words again\n";
  Write("fixtures/big.csv", big);
  auto r = Fetch(Source(server_->Url("files/big.csv")));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*ReadFile(r->objects[0].local_path), big);
  auto log = Log();
  ASSERT_EQ(log.size(), 1u);
  // libcurl offers gzip, deflate, br, zstd; cpp-httplib picks one.
  EXPECT_THAT(log[0].headers.value("content-encoding", ""), ::testing::AnyOf("gzip", "br"));
  EXPECT_EQ(log[0].bytes, static_cast<int64_t>(big.size()));
}

TEST_F(HttpFetchTest, ConditionalRequestKeepsThePreviousObjectOn304) {
  SourceSpec s = Source(server_->Url("files/a.csv"));
  auto first = Fetch(s);
  ASSERT_TRUE(first.ok());
  auto second = Fetch(s);
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_TRUE(second->not_modified);
  ASSERT_EQ(second->objects.size(), 1u);
  EXPECT_EQ(second->objects[0].sha256, first->objects[0].sha256);
  auto log = Log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].status, 304);
  EXPECT_EQ(log[0].sha256, first->objects[0].sha256);
  // Changed content: a 200 and a new object.
  Write("fixtures/a.csv", "id,name\n3,gamma\n");
  auto third = Fetch(s);
  ASSERT_TRUE(third.ok());
  EXPECT_FALSE(third->not_modified);
  EXPECT_NE(third->objects[0].sha256, first->objects[0].sha256);
}

// defaults.retries in sluice.yaml governs downloads too, unless the source
// says fetch.retries.
TEST_F(HttpFetchTest, ProjectRetriesGovernDownloadsUnlessTheSourceSays) {
  auto none = Fetch(Source(server_->Url("fail/k9/a.csv?times=2&status=503")), "csv", 0);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(server_->Count("fail/k9"), 1);
  auto own =
      Fetch(Source(server_->Url("fail/k8/a.csv?times=2&status=503"), {{"retries", 2}}), "csv", 0);
  ASSERT_TRUE(own.ok()) << own.status().message();
  EXPECT_EQ(server_->Count("fail/k8"), 3);
}

TEST_F(HttpFetchTest, RetriesServerErrorsThenSucceeds) {
  auto r = Fetch(Source(server_->Url("fail/k1/a.csv?times=2&status=503")));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(server_->Count("fail/k1"), 3);
  auto log = Log();
  ASSERT_EQ(log.size(), 3u);  // every attempt is logged, newest first
  EXPECT_EQ(log[2].status, 503);
  EXPECT_THAT(log[2].error, HasSubstr("injected failure"));
  EXPECT_EQ(log[0].status, 200);
}

TEST_F(HttpFetchTest, GivesUpAfterTheRetriesWithTheStatus) {
  auto r = Fetch(Source(server_->Url("fail/k2/a.csv?times=10"), {{"retries", 2}}));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("failed after 3 attempt(s)"));
  EXPECT_THAT(r.status().message(), HasSubstr("HTTP 500"));
  EXPECT_THAT(r.status().message(), HasSubstr("sources/src.yaml:2"));
  EXPECT_EQ(server_->Count("fail/k2"), 3);
}

TEST_F(HttpFetchTest, ClientErrorsAreNotRetried) {
  auto r = Fetch(Source(server_->Url("files/missing.csv")));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("HTTP 404 (check the URL)"));
  EXPECT_EQ(server_->Count("files/missing.csv"), 1);
}

TEST_F(HttpFetchTest, HonoursRetryAfterOn429) {
  auto r = Fetch(Source(server_->Url("throttle/t1/a.csv?times=1&retry_after=1")));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(server_->Count("throttle/t1"), 2);
  auto log = Log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1].status, 429);
  EXPECT_EQ(log[1].headers.value("retry-after", ""), "1");
  // The retry waited for the server's Retry-After, not the 10 ms backoff.
  EXPECT_GE(log[0].started_at - log[1].started_at, 900000);
  // A Retry-After beyond what a run should wait fails at once.
  auto far = Fetch(Source(server_->Url("throttle/t2/a.csv?times=1&retry_after=3600")));
  ASSERT_FALSE(far.ok());
  EXPECT_THAT(far.status().message(), HasSubstr("retry after 3600 s"));
}

TEST_F(HttpFetchTest, TruncatedBodiesAreRetriedAndNeverStored) {
  auto r = Fetch(Source(server_->Url("truncate/a.csv"), {{"retries", 1}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(server_->Count("truncate"), 2);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "lake/raw/src/objects"));
  EXPECT_TRUE(std::filesystem::is_empty(store_->StagingDir()));
}

TEST_F(HttpFetchTest, StalledResponsesTimeOut) {
  auto r = Fetch(Source(server_->Url("stall/a.csv"), {{"retries", 0}, {"stall_timeout", "1s"}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTimeout);
  EXPECT_THAT(r.status().message(), HasSubstr("timed out"));
  auto total = Fetch(Source(server_->Url("slow/a.csv?chunk=1&delay_ms=200"),
                            {{"retries", 0}, {"timeout", "500ms"}}));
  ASSERT_FALSE(total.ok());
  EXPECT_EQ(total.status().code(), StatusCode::kTimeout);
}

TEST_F(HttpFetchTest, SlowButSteadyResponsesComplete) {
  auto r = Fetch(Source(server_->Url("slow/a.csv?chunk=8&delay_ms=20")));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*ReadFile(r->objects[0].local_path), "id,name\n1,alpha\n2,beta\n");
}

TEST_F(HttpFetchTest, HtmlWhereDataWasExpectedIsAnError) {
  auto r = Fetch(Source(server_->Url("html_error")));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("HTML page ('Service temporarily unavailable')"));
  EXPECT_THAT(r.status().message(), HasSubstr("where csv data was expected"));
  // Kept in the lake, so what the server sent can be seen, and marked refused.
  EXPECT_THAT(r.status().message(), HasSubstr("kept in the lake as raw/src/objects/"));
  std::vector<FetchRecord> log = Log();
  ASSERT_FALSE(log.empty());
  EXPECT_THAT(log.front().error, HasSubstr("refused: the server sent an HTML page"));
  ASSERT_FALSE(log.front().object_path.empty());
  EXPECT_TRUE(EndsWith(log.front().object_path, ".html"));
  auto kept = ReadFile((dir_ / "lake" / log.front().object_path).string());
  ASSERT_TRUE(kept.ok());
  EXPECT_THAT(*kept, HasSubstr("Service temporarily unavailable"));
  // Sniffed even when the content type claims otherwise.
  Write("fixtures/page.csv", "  <!DOCTYPE html><html><body>oops</body></html>");
  auto sniffed = Fetch(Source(server_->Url("files/page.csv")));
  ASSERT_FALSE(sniffed.ok());
  EXPECT_THAT(sniffed.status().message(), HasSubstr("HTML page"));
  // Unless the source reads HTML tables.
  EXPECT_TRUE(Fetch(Source(server_->Url("html_error")), "html_table").ok());
}

TEST_F(HttpFetchTest, ExpectGuards) {
  auto type = Fetch(
      Source(server_->Url("files/a.csv"), {{"expect", {{"content_type", "application/json"}}}}));
  ASSERT_FALSE(type.ok());
  EXPECT_THAT(type.status().message(), HasSubstr("not the expected 'application/json'"));
  auto small = Fetch(Source(server_->Url("files/a.csv"), {{"expect", {{"min_bytes", 1000}}}}));
  ASSERT_FALSE(small.ok());
  EXPECT_THAT(small.status().message(), HasSubstr("fewer than fetch.expect.min_bytes (1000)"));
  auto big = Fetch(Source(server_->Url("files/a.csv"), {{"max_bytes", 5}}));
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(big.status().message(), HasSubstr("larger than max_bytes (5 bytes)"));
}

TEST_F(HttpFetchTest, RedirectsAreFollowedAndLoopsStopped) {
  auto r = Fetch(Source(server_->Url("redirect/a.csv")));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(Log()[0].headers.value("redirects", 0), 1);
  auto loop = Fetch(Source(server_->Url("loop/0")));
  ASSERT_FALSE(loop.ok());
  EXPECT_THAT(loop.status().message(), HasSubstr("too many redirects"));
  EXPECT_EQ(server_->Count("loop"), 11);  // not retried
}

TEST_F(HttpFetchTest, ConnectionRefusedIsRetriedThenReported) {
  int port = server_->port();
  server_->Stop();
  auto r =
      Fetch(Source("http://127.0.0.1:" + std::to_string(port) + "/files/a.csv", {{"retries", 1}}));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("failed after 2 attempt(s)"));
  EXPECT_EQ(Log().size(), 2u);
}

TEST_F(HttpFetchTest, EveryPaginationStyle) {
  struct Style {
    std::string url;
    nlohmann::json paginate;
  };
  std::vector<Style> styles = {
      {"pages/page/records.json", {{"type", "page"}, {"size_param", "per_page"}, {"size", 10}}},
      {"pages/page/records.json?per_page=5", {{"type", "page"}}},  // until an empty page
      {"pages/offset/records.json", {{"type", "offset"}, {"limit", 10}}},
      {"pages/cursor/records.json", {{"type", "cursor"}, {"cursor_path", "meta.next_cursor"}}},
      {"pages/next_url/records.json", {{"type", "cursor"}, {"next_url_path", "links.next"}}},
      {"pages/link/records.json", {{"type", "link"}}},
  };
  for (const Style& style : styles) {
    nlohmann::json pg = style.paginate;
    pg["records"] = "data";
    auto r = Fetch(Source(server_->Url(style.url), nlohmann::json::object(), pg), "json");
    ASSERT_TRUE(r.ok()) << style.url << ": " << r.status().message();
    int total = 0;
    for (const StoredObject& obj : r->objects) {
      total += static_cast<int>(nlohmann::json::parse(*ReadFile(obj.local_path))["data"].size());
    }
    EXPECT_EQ(total, 25) << style.url;
    EXPECT_GE(r->objects.size(), 3u) << style.url;
  }
}

TEST_F(HttpFetchTest, MaxPagesIsAGuard) {
  auto r = Fetch(Source(server_->Url("pages/page/records.json?per_page=2"), {},
                        {{"type", "page"}, {"max_pages", 3}, {"records", "data"}}),
                 "json");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("paginate.max_pages (3)"));
}

TEST_F(HttpFetchTest, MissingRecordsPathSaysWhereToLook) {
  auto r = Fetch(Source(server_->Url("pages/page/records.json"), {}, {{"type", "page"}}), "json");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("no array of records at '$'"));
}

TEST_F(HttpFetchTest, RateLimitSpacesRequests) {
  SourceSpec s =
      Source(server_->Url("pages/page/records.json?per_page=10"), {{"rate_limit", "5/s"}},
             {{"type", "page"}, {"records", "data"}, {"size", 10}});
  auto r = Fetch(s, "json");
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto log = Log();
  ASSERT_EQ(log.size(), 3u);
  // Three requests at 5/s: each at least ~200 ms after the one before.
  EXPECT_GE(log[0].started_at - log[2].started_at, 2 * 190000);
}

TEST_F(HttpFetchTest, SecretsInHeadersAuthAndEchoedUrlsNeverReachTheLog) {
  auto bearer = Fetch(Source(server_->Url("auth/bearer/a.csv"),
                             {{"auth", {{"bearer", "${secret:SLUICE_TEST_TOKEN}"}}}}));
  ASSERT_TRUE(bearer.ok()) << bearer.status().message();
  auto basic = Fetch(Source(
      server_->Url("auth/basic/a.csv"),
      {{"auth",
        {{"basic", {{"username", "reader"}, {"password", "${secret:SLUICE_TEST_PASSWORD}"}}}}}}));
  ASSERT_TRUE(basic.ok()) << basic.status().message();
  auto wrong = Fetch(Source(server_->Url("auth/bearer/a.csv")));
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(wrong.status().message(), HasSubstr("HTTP 401 (check the credentials"));
  // The key in the query string, echoed back by the API in every next URL.
  auto echoed =
      Fetch(Source(server_->Url("pages/next_url/records.json?per_page=10"),
                   {{"params", {{"api_key", "${secret:SLUICE_TEST_KEY}"}}}},
                   {{"type", "cursor"}, {"next_url_path", "links.next"}, {"records", "data"}}),
            "json");
  ASSERT_TRUE(echoed.ok()) << echoed.status().message();
  EXPECT_EQ(echoed->objects.size(), 3u);
  auto census = Fetch(
      Source(server_->Url("census/census.json"),
             {{"params",
               {{"get", "NAME,POP"}, {"for", "state:*"}, {"key", "${secret:SLUICE_TEST_KEY}"}}}}),
      "json");
  ASSERT_TRUE(census.ok()) << census.status().message();
  EXPECT_EQ(nlohmann::json::parse(*ReadFile(census->objects[0].local_path))[1][0], "Alabama");
  std::string everything;
  for (const FetchRecord& r : Log()) everything += r.url + r.error + r.headers.dump();
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir_ / "lake")) {
    everything += entry.path().string();
    if (entry.is_regular_file() && entry.path().string().find("/log/") != std::string::npos) {
      everything += *ReadFile(entry.path().string());
    }
  }
  EXPECT_THAT(everything, HasSubstr("api_key=***"));
  for (const std::string& secret :
       {std::string("tok-SECRET-1"), std::string("pa ss/word+1"), std::string("key&SECRET=2"),
        UrlEncode("key&SECRET=2"), UrlEncode("pa ss/word+1"), Base64Encode("reader:pa ss/word+1"),
        Base64Encode("tok-SECRET-1")}) {
    EXPECT_THAT(everything, Not(HasSubstr(secret))) << secret;
  }
}

TEST(FetchHelpersTest, LinkHeaderJsonPathAndRetryAfter) {
  EXPECT_EQ(NextLink("<https://a/x?page=2>; rel=\"next\", <https://a/x?page=9>; rel=\"last\""),
            "https://a/x?page=2");
  EXPECT_EQ(NextLink("<https://a/x?page=1>; rel=\"prev first\", <https://a/x?page=3>; rel=next"),
            "https://a/x?page=3");
  EXPECT_EQ(NextLink("<https://a/x?page=9>; rel=\"last\""), "");
  nlohmann::json doc = {{"meta", {{"next", "abc"}}}, {"items", {1, 2, {{"id", 7}}}}};
  EXPECT_EQ(JsonAtPath(doc, "meta.next"), "abc");
  EXPECT_EQ(JsonAtPath(doc, "$.items.2.id"), 7);
  EXPECT_TRUE(JsonAtPath(doc, "meta.missing").is_null());
  EXPECT_EQ(RetryAfterSeconds("120", 0), 120);
  // Wed, 21 Oct 2015 07:28:00 GMT is 1445412480.
  EXPECT_EQ(RetryAfterSeconds("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470LL * 1000000), 10);
  EXPECT_EQ(RetryAfterSeconds("soon", 0), -1);
}

TEST(FetchSettingsTest, RejectsBadSettingsWithTheKeyNamed) {
  SourceSpec s;
  s.fetch.options = {{"rate_limit", "fast"}};
  EXPECT_THAT(ParseFetchSettings(s).status().message(), HasSubstr("fetch.rate_limit: 'fast'"));
  s.fetch.options = {{"timeout", "soon"}};
  EXPECT_THAT(ParseFetchSettings(s).status().message(), HasSubstr("fetch.timeout: 'soon'"));
  s.fetch.options = {{"method", "DELETE"}};
  EXPECT_THAT(ParseFetchSettings(s).status().message(), HasSubstr("use GET or POST"));
  s.fetch.options = nlohmann::json::object();
  s.fetch.paginate = {{"type", "cursor"}};
  EXPECT_THAT(ParseFetchSettings(s).status().message(), HasSubstr("needs cursor_path"));
  s.fetch.paginate = {{"type", "page"}, {"pagesize", 3}};
  EXPECT_THAT(ParseFetchSettings(s).status().message(), HasSubstr("unknown key 'pagesize'"));
  s.fetch.paginate = nlohmann::json::object();
  s.fetch.options = {{"rate_limit", "100/min"}, {"backoff", "250ms"}};
  auto ok = ParseFetchSettings(s);
  ASSERT_TRUE(ok.ok());
  EXPECT_NEAR(ok->rate_per_second, 100.0 / 60, 1e-9);
  EXPECT_EQ(ok->backoff_ms, 250);
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// HTTPS for real: a self-signed certificate for 127.0.0.1 made with the
// openssl command, a TLS fixture server, and a plain one to be redirected to.
class HttpsRedirectTest : public HttpFetchTest {
 protected:
  void SetUp() override {
    HttpFetchTest::SetUp();
    ASSERT_FALSE(HasFatalFailure());
    cert_ = (dir_ / "cert.pem").string();
    std::string key = (dir_ / "key.pem").string();
    std::string cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
        "-addext subjectAltName=IP:127.0.0.1 -keyout " +
        key + " -out " + cert_ + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl could not make a certificate";
    FixtureServerOptions opt;
    opt.root = (dir_ / "fixtures").string();
    opt.tls_cert = cert_;
    opt.tls_key = key;
    https_ = std::make_unique<FixtureServer>(opt);
    ASSERT_TRUE(https_->Start());
  }
  void TearDown() override {
    if (https_) https_->Stop();
    HttpFetchTest::TearDown();
  }

  HttpRequest Request(const std::string& url) {
    HttpRequest req;
    req.url = url;
    req.headers = {{"X-API-Key", "api-key-SECRET-3"}, {"Authorization", "Bearer tok-SECRET-1"}};
    req.body_path = (dir_ / "body.tmp").string();
    req.ca_file = cert_;
    return req;
  }

  std::string cert_;
  std::unique_ptr<FixtureServer> https_;
};

TEST_F(HttpsRedirectTest, HttpsToHttpIsRefusedAndSendsNothing) {
  std::string target = server_->Url("echo?key=query-SECRET-4");
  auto res = client_->Send(Request(https_->Url("redirect_to?url=" + UrlEncode(target))));
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), StatusCode::kRefused) << res.status().ToString();
  EXPECT_THAT(res.status().message(), HasSubstr("redirected from https"));
  EXPECT_EQ(server_->Count("echo"), 0);  // the plain server saw no request at all
  EXPECT_EQ(https_->Count("redirect_to"), 1);
}

TEST_F(HttpsRedirectTest, HttpsToHttpsIsFollowedWithTheHeaders) {
  auto res =
      client_->Send(Request(https_->Url("redirect_to?url=" + UrlEncode(https_->Url("echo")))));
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->redirects, 1);
  EXPECT_THAT(https_->LastEcho(), HasSubstr("X-API-Key: api-key-SECRET-3"));
}

TEST_F(HttpsRedirectTest, CertificatesAreVerified) {
  HttpRequest req = Request(https_->Url("echo"));
  req.ca_file.clear();  // the system's CAs do not know this certificate
  auto res = client_->Send(req);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), StatusCode::kIOError);
  EXPECT_EQ(https_->Count("echo"), 0);
}

TEST_F(HttpsRedirectTest, TheFetcherRefusesADowngradeAndDoesNotRetryIt) {
  SourceSpec s = Source(https_->Url("redirect_to?url=" + UrlEncode(server_->Url("echo"))),
                        {{"ca_file", cert_}, {"retries", 3}});
  auto fetched = Fetch(s);
  ASSERT_FALSE(fetched.ok());
  EXPECT_EQ(fetched.status().code(), StatusCode::kRefused) << fetched.status().ToString();
  EXPECT_EQ(https_->Count("redirect_to"), 1);  // one attempt: running it again cannot help
  EXPECT_EQ(server_->Count("echo"), 0);
}

// An API's next page is a new request with all the source's credentials:
// from an https listing, an http next link is refused before it is sent.
TEST_F(HttpsRedirectTest, ANextPageThatDowngradesIsRefused) {
  Write("fixtures/downgrade.json",
        "{\"data\": [{\"id\": 1}], \"links\": {\"next\": \"" + server_->Url("echo") + "\"}}");
  SourceSpec s = Source(https_->Url("files/downgrade.json"), {{"ca_file", cert_}},
                        {{"type", "cursor"}, {"next_url_path", "links.next"}, {"records", "data"}});
  auto fetched = Fetch(s, "json");
  ASSERT_FALSE(fetched.ok());
  EXPECT_EQ(fetched.status().code(), StatusCode::kRefused) << fetched.status().ToString();
  EXPECT_THAT(fetched.status().message(), HasSubstr("is not https while the listing is"));
  EXPECT_EQ(server_->Count("echo"), 0);
}

}  // namespace
}  // namespace sluice
