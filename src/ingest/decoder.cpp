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
  ASSIGN_OR_RETURN(UniqueFd fd, UniqueFd::Open(path, O_RDONLY));
  std::vector<unsigned char> buf(1 << 20);
  uint64_t offset = 0;  // of buf[0] in the file
  int pending = 0;      // continuation bytes still expected
  unsigned char lead = 0;
  uint64_t lead_offset = 0;
  bool first = true;
  auto found = [&](uint64_t at) -> Result<std::optional<Utf8Error>> {
    // The line: count newlines before the offset (a second, rare pass).
    ASSIGN_OR_RETURN(UniqueFd again, UniqueFd::Open(path, O_RDONLY));
    uint64_t line = 1, pos = 0;
    std::vector<char> b(1 << 20);
    while (pos < at) {
      ssize_t n = ::read(again.get(), b.data(), std::min<uint64_t>(b.size(), at - pos));
      if (n <= 0) break;
      line += static_cast<uint64_t>(std::count(b.data(), b.data() + n, '\n'));
      pos += static_cast<uint64_t>(n);
    }
    return std::optional<Utf8Error>(Utf8Error{at, line});
  };
  while (true) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) return Status::IOError(path + ": read failed: " + strerror(errno));
    if (n == 0) break;
    size_t len = static_cast<size_t>(n), i = 0;
    if (first && len >= 2 &&
        ((buf[0] == 0xFF && buf[1] == 0xFE) || (buf[0] == 0xFE && buf[1] == 0xFF))) {
      return found(0);
    }
    first = false;
    while (i < len) {
      if (pending == 0) {
        // ASCII fast path, eight bytes at a time.
        while (i + 8 <= len) {
          uint64_t word;
          std::memcpy(&word, buf.data() + i, 8);
          if (word & 0x8080808080808080ULL) break;
          i += 8;
        }
        if (i >= len) break;
        unsigned char c = buf[i];
        if (c < 0x80) {
          ++i;
          continue;
        }
        lead = c;
        lead_offset = offset + i;
        if (c >= 0xC2 && c <= 0xDF) {
          pending = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
          pending = 2;
        } else if (c >= 0xF0 && c <= 0xF4) {
          pending = 3;
        } else {
          return found(offset + i);
        }
        ++i;
        // The second byte's range depends on the lead (no overlongs, no surrogates).
        if (i < len) {
          unsigned char c2 = buf[i];
          bool ok = (c2 & 0xC0) == 0x80;
          if (lead == 0xE0) ok = ok && c2 >= 0xA0;
          if (lead == 0xED) ok = ok && c2 <= 0x9F;
          if (lead == 0xF0) ok = ok && c2 >= 0x90;
          if (lead == 0xF4) ok = ok && c2 <= 0x8F;
          if (!ok) return found(lead_offset);
          --pending;
          ++i;
        }  // else: the second byte starts the next buffer; only its form is checked there
      } else {
        if ((buf[i] & 0xC0) != 0x80) return found(lead_offset);
        --pending;
        ++i;
      }
    }
    offset += len;
  }
  if (pending) return found(lead_offset);
  return std::optional<Utf8Error>();
}

}  // namespace sluice
