// ${secret:NAME} lookup. Providers are tried in the order sluice.yaml lists
// them: the process environment, then KEY=VALUE files (refused unless mode
// 0600). Every value found is registered with the redactor before it is
// returned, so no later output can carry it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sluice {

struct SecretProvider {
  enum class Kind { kEnv, kFile } kind = Kind::kEnv;
  std::string path;  // kFile: absolute path
};

class SecretResolver {
 public:
  SecretResolver() = default;
  explicit SecretResolver(std::vector<SecretProvider> providers)
      : providers_(std::move(providers)) {}

  // The value of NAME, or NotFound naming where it was looked for.
  Result<std::string> Lookup(const std::string& name) const;
  // Replaces every ${secret:NAME} in text. Errors name the missing secret.
  Result<std::string> Substitute(std::string_view text) const;

 private:
  Result<const std::map<std::string, std::string>*> LoadFile(const std::string& path) const;

  std::vector<SecretProvider> providers_;
  mutable std::map<std::string, std::map<std::string, std::string>> files_;
};

// Parses a .secrets file body: KEY=VALUE lines, '#' comments, blank lines;
// an optional pair of matching quotes around VALUE is removed.
Result<std::map<std::string, std::string>> ParseSecretsFile(std::string_view body,
                                                            const std::string& path);
// True when text holds a ${secret:...} reference.
bool HasSecretRef(std::string_view text);

}  // namespace sluice
