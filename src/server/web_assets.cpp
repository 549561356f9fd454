#include "server/web_assets.h"

#include <algorithm>

namespace sluice {

const WebAsset* FindWebAsset(std::string_view name) {
  const std::vector<WebAsset>& assets = WebAssets();
  auto it = std::lower_bound(assets.begin(), assets.end(), name,
                             [](const WebAsset& a, std::string_view n) { return a.name < n; });
  if (it == assets.end() || it->name != name) return nullptr;
  return &*it;
}

}  // namespace sluice
