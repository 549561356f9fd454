#include "ingest/decoder.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "core/fs.h"
#include "core/strings.h"
#include "core/utf8.h"

namespace sluice {
namespace {

// Built-in decoders are added on first use (static-init registration would
// be dropped by the linker from a static library).
struct Registry {
  Registry() {
    for (auto& [format, factory] : BuiltinDecoders()) decoders[format] = factory();
  }
  std::mutex mu;
  std::map<std::string, std::unique_ptr<Decoder>> decoders;
};

Registry& GetRegistry() {
  static Registry registry;
  return registry;
}

}  // namespace

bool RegisterDecoder(const std::string& format, DecoderFactory factory) {
  Registry& reg = GetRegistry();
  std::lock_guard lock(reg.mu);
  reg.decoders[format] = factory();
  return true;
}

Result<const Decoder*> FindDecoder(const std::string& format) {
  Registry& reg = GetRegistry();
  std::lock_guard lock(reg.mu);
  auto it = reg.decoders.find(format);
  if (it != reg.decoders.end()) return static_cast<const Decoder*>(it->second.get());
  std::vector<std::string> known;
  for (const auto& [name, d] : reg.decoders) known.push_back(name);
  return Status::Invalid("unknown format '" + format + "'" + DidYouMeanHint(format, known) +
                         "; known formats: " + Join(known, ", "));
}

std::vector<std::string> RegisteredFormats() {
  Registry& reg = GetRegistry();
  std::lock_guard lock(reg.mu);
  std::vector<std::string> out;
  for (const auto& [name, d] : reg.decoders) out.push_back(name);
  return out;
}

}  // namespace sluice

namespace sluice {

Result<std::optional<Utf8Error>> FindInvalidUtf8(const std::string& path) {
  // A stored object scanned while it was written needs no second read.
  std::optional<std::optional<uint64_t>> known = RecallUtf8Verdict(path);
  std::optional<uint64_t> bad;
  if (known) {
    bad = *known;
  } else {
    ASSIGN_OR_RETURN(UniqueFd fd, UniqueFd::Open(path, O_RDONLY));
    Utf8Scanner scanner;
    std::vector<unsigned char> buf(1 << 20);
    while (true) {
      ssize_t n = ::read(fd.get(), buf.data(), buf.size());
      if (n < 0) return Status::IOError(path + ": read failed: " + strerror(errno));
      if (n == 0) break;
      scanner.Feed(buf.data(), static_cast<size_t>(n));
      if (scanner.Failed()) break;
    }
    bad = scanner.Finish();
  }
  if (!bad) return std::optional<Utf8Error>();
  // The line: count newlines before the offset (a second, rare pass).
  ASSIGN_OR_RETURN(UniqueFd again, UniqueFd::Open(path, O_RDONLY));
  uint64_t line = 1, pos = 0;
  std::vector<char> b(1 << 20);
  while (pos < *bad) {
    ssize_t n = ::read(again.get(), b.data(), std::min<uint64_t>(b.size(), *bad - pos));
    if (n <= 0) break;
    line += static_cast<uint64_t>(std::count(b.data(), b.data() + n, '\n'));
    pos += static_cast<uint64_t>(n);
  }
  return std::optional<Utf8Error>(Utf8Error{*bad, line});
}

}  // namespace sluice
