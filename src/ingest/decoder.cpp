#include "ingest/decoder.h"

#include <map>
#include <mutex>

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
