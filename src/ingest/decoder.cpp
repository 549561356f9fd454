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

namespace {

// Windows-1252's characters at 0x80-0x9F; the five it leaves undefined keep
// their Latin-1 (C1 control) code points.
constexpr uint16_t kWindows1252High[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

Status TranscodeWindows1252(const std::string& path, const std::string& out_path) {
  ASSIGN_OR_RETURN(UniqueFd in, UniqueFd::Open(path, O_RDONLY));
  RETURN_IF_ERROR(MakeDirs(Dirname(out_path)));
  std::string tmp = out_path + ".tmp" + std::to_string(::getpid());
  ASSIGN_OR_RETURN(UniqueFd out, UniqueFd::Open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644));
  std::vector<unsigned char> buf(1 << 20);
  std::string converted;
  bool first = true;
  while (true) {
    ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0) return Status::IOError(path + ": read failed: " + strerror(errno));
    if (n == 0) break;
    size_t start = 0;
    if (first && n >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF) start = 3;
    first = false;
    converted.clear();
    converted.reserve(static_cast<size_t>(n) * 2);
    for (size_t i = start; i < static_cast<size_t>(n); ++i) {
      unsigned char c = buf[i];
      if (c < 0x80) {
        converted += static_cast<char>(c);
      } else {
        AppendUtf8(converted, c < 0xA0 ? kWindows1252High[c - 0x80] : c);
      }
    }
    RETURN_IF_ERROR(WriteAll(out.get(), converted.data(), converted.size(), tmp));
  }
  out = UniqueFd();
  if (SysRename(tmp.c_str(), out_path.c_str()) != 0) {
    return Status::IOError(out_path + ": cannot rename: " + strerror(errno));
  }
  return Status::Ok();
}

}  // namespace sluice
