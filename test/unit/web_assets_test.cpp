// The web UI compiled into the binary (server/web_assets.h): every file the
// page loads is there, typed, with its own ETag, and found by name.
#include "server/web_assets.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace sluice {
namespace {

TEST(WebAssets, ThePageAndEveryFileItLoadsAreEmbedded) {
  const WebAsset* page = FindWebAsset("index.html");
  ASSERT_NE(page, nullptr);
  EXPECT_EQ(page->content_type, "text/html; charset=utf-8");
  const std::string html(page->content);
  for (const char* file : {"app.js", "app.css", "theme.js", "icon.svg"}) {
    EXPECT_NE(html.find(std::string("/ui/") + file), std::string::npos) << file;
    const WebAsset* asset = FindWebAsset(file);
    ASSERT_NE(asset, nullptr) << file;
    EXPECT_GT(asset->content.size(), 0u) << file;
  }
  // The lineage page's layout worker, loaded by the script.
  ASSERT_NE(FindWebAsset("elk-worker.js"), nullptr);
  EXPECT_EQ(FindWebAsset("app.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(FindWebAsset("app.css")->content_type, "text/css; charset=utf-8");
  EXPECT_NE(std::string(FindWebAsset("app.js")->content).find("/api/v1/"), std::string::npos);
}

TEST(WebAssets, EachFileHasItsOwnQuotedEtag) {
  std::set<std::string_view> etags;
  std::string_view previous;
  for (const WebAsset& a : WebAssets()) {
    EXPECT_LT(previous, a.name) << "sorted by name";
    previous = a.name;
    ASSERT_EQ(a.etag.size(), 34u) << a.name;
    EXPECT_EQ(a.etag.front(), '"');
    EXPECT_EQ(a.etag.back(), '"');
    EXPECT_TRUE(etags.insert(a.etag).second) << a.name;
  }
}

TEST(WebAssets, UnknownNamesAreNotFound) {
  EXPECT_EQ(FindWebAsset(""), nullptr);
  EXPECT_EQ(FindWebAsset("../index.html"), nullptr);
  EXPECT_EQ(FindWebAsset("app.js.tmp"), nullptr);
  EXPECT_EQ(FindWebAsset("zzz"), nullptr);
}

}  // namespace
}  // namespace sluice
