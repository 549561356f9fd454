// UTF-8 validation as a stream: fed the bytes of a body while it is being
// written (an HTTP download, a copy into the lake), so that decoding does not
// read the file a second time to learn whether it is UTF-8. The verdicts of
// stored raw objects are remembered by path for the process's lifetime:
// objects are content-addressed and read-only, so a verdict never goes stale.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace sluice {

class Utf8Scanner {
 public:
  // The next bytes of the input. Cheap once an invalid byte was found.
  void Feed(const void* data, size_t size);
  // At the end of the input: the offset of the first byte of the first
  // invalid sequence (a truncated sequence at the end counts), or nullopt.
  std::optional<uint64_t> Finish() const;
  // Whether an invalid byte was already found (feeding more changes nothing).
  bool Failed() const { return bad_.has_value(); }

 private:
  uint64_t offset_ = 0;        // of the next byte fed
  int pending_ = 0;            // continuation bytes still expected
  bool check_second_ = false;  // the next byte is the second of its sequence
  unsigned char lead_ = 0;
  uint64_t lead_offset_ = 0;
  std::optional<uint64_t> bad_;
};

// Remembers (and recalls) a stored object's verdict, by its local path.
void RememberUtf8Verdict(const std::string& path, std::optional<uint64_t> first_invalid);
// nullopt when nothing is remembered; else the verdict (itself an optional).
std::optional<std::optional<uint64_t>> RecallUtf8Verdict(const std::string& path);

}  // namespace sluice
