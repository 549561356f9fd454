// The web UI's files (web/, built by npm + esbuild at build time), compiled
// into the binary: `sluice serve` answers GET / and /ui/{file} from here, so
// the UI needs no CDN, no network and no files beside the binary.
#pragma once

#include <string_view>
#include <vector>

namespace sluice {

struct WebAsset {
  std::string_view name;          // "app.js"
  std::string_view content;       // the file's bytes
  std::string_view content_type;  // "text/javascript; charset=utf-8"
  std::string_view etag;          // "\"<32 hex digits of its SHA-256>\""
};

// Every embedded file, sorted by name.
const std::vector<WebAsset>& WebAssets();

// The file named `name`, or nullptr.
const WebAsset* FindWebAsset(std::string_view name);

}  // namespace sluice
