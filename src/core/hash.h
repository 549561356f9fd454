// SHA-256 through OpenSSL's EVP interface (uses the CPU's SHA instructions).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sluice {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // Lower-case hex digest; the object must not be updated afterwards.
  std::string HexDigest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string Sha256Hex(std::string_view data);
// `bytes` random bytes (OpenSSL's CSPRNG) as lower-case hex: request ids.
std::string RandomHex(size_t bytes);
Result<std::string> Sha256File(const std::string& path);

}  // namespace sluice
