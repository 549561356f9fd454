#include "core/utf8.h"

#include <cstring>
#include <mutex>
#include <unordered_map>

namespace sluice {

void Utf8Scanner::Feed(const void* data, size_t size) {
  if (bad_) return;
  const auto* p = static_cast<const unsigned char*>(data);
  size_t i = 0;
  while (i < size) {
    if (pending_ == 0) {
      // ASCII fast path, eight bytes at a time.
      while (i + 8 <= size) {
        uint64_t word;
        std::memcpy(&word, p + i, 8);
        if (word & 0x8080808080808080ULL) break;
        i += 8;
      }
      if (i >= size) break;
      unsigned char c = p[i];
      if (c < 0x80) {
        ++i;
        continue;
      }
      lead_ = c;
      lead_offset_ = offset_ + i;
      if (c >= 0xC2 && c <= 0xDF) {
        pending_ = 1;
      } else if (c >= 0xE0 && c <= 0xEF) {
        pending_ = 2;
      } else if (c >= 0xF0 && c <= 0xF4) {
        pending_ = 3;
      } else {
        bad_ = offset_ + i;  // a continuation byte, an overlong lead, 0xF5..0xFF
        return;
      }
      check_second_ = true;
      ++i;
      continue;
    }
    unsigned char c = p[i];
    bool ok = (c & 0xC0) == 0x80;
    if (check_second_) {
      // The second byte's range depends on the lead: no overlongs, no
      // surrogates, nothing past U+10FFFF.
      if (lead_ == 0xE0) ok = ok && c >= 0xA0;
      if (lead_ == 0xED) ok = ok && c <= 0x9F;
      if (lead_ == 0xF0) ok = ok && c >= 0x90;
      if (lead_ == 0xF4) ok = ok && c <= 0x8F;
      check_second_ = false;
    }
    if (!ok) {
      bad_ = lead_offset_;
      return;
    }
    --pending_;
    ++i;
  }
  offset_ += size;
}

std::optional<uint64_t> Utf8Scanner::Finish() const {
  if (bad_) return bad_;
  if (pending_) return lead_offset_;
  return std::nullopt;
}

namespace {

struct Verdicts {
  std::mutex mu;
  std::unordered_map<std::string, std::optional<uint64_t>> by_path;
};

Verdicts& TheVerdicts() {
  static Verdicts* v = new Verdicts;  // never destroyed: used from any thread until exit
  return *v;
}

constexpr size_t kMaxVerdicts = 100000;  // a long-lived owner forgets, it never grows unbounded

}  // namespace

void RememberUtf8Verdict(const std::string& path, std::optional<uint64_t> first_invalid) {
  Verdicts& v = TheVerdicts();
  std::lock_guard lock(v.mu);
  if (v.by_path.size() >= kMaxVerdicts) v.by_path.clear();
  v.by_path[path] = first_invalid;
}

std::optional<std::optional<uint64_t>> RecallUtf8Verdict(const std::string& path) {
  Verdicts& v = TheVerdicts();
  std::lock_guard lock(v.mu);
  auto it = v.by_path.find(path);
  if (it == v.by_path.end()) return std::nullopt;
  return it->second;
}

}  // namespace sluice
