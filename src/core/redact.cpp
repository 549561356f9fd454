#include "core/redact.h"

#include <algorithm>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "core/strings.h"

namespace sluice {
namespace {

struct Registry {
  std::shared_mutex mu;
  std::vector<std::string> forms;  // longest first, so a form inside another is not cut early
};

Registry& GetRegistry() {
  static Registry registry;
  return registry;
}

void AddFormLocked(Registry& reg, std::string form) {
  if (form.empty()) return;
  if (std::find(reg.forms.begin(), reg.forms.end(), form) != reg.forms.end()) return;
  reg.forms.push_back(std::move(form));
  std::sort(reg.forms.begin(), reg.forms.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string UrlEncodeCase(std::string_view value, bool upper) {
  static const char* kUpper = "0123456789ABCDEF";
  static const char* kLower = "0123456789abcdef";
  const char* hex = upper ? kUpper : kLower;
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

}  // namespace

std::string UrlEncode(std::string_view value) { return UrlEncodeCase(value, true); }

std::string Base64Encode(std::string_view value) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  while (i + 2 < value.size()) {
    uint32_t n = (uint8_t(value[i]) << 16) | (uint8_t(value[i + 1]) << 8) | uint8_t(value[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
    i += 3;
  }
  if (i + 1 == value.size()) {
    uint32_t n = uint8_t(value[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == value.size()) {
    uint32_t n = (uint8_t(value[i]) << 16) | (uint8_t(value[i + 1]) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

namespace {

// The same text in base64's URL-safe alphabet (JWTs, some tokens).
std::string UrlSafe(std::string b64) {
  std::replace(b64.begin(), b64.end(), '+', '-');
  std::replace(b64.begin(), b64.end(), '/', '_');
  return b64;
}

void AddEncodedFormsLocked(Registry& reg, std::string_view value) {
  auto add = [&](std::string form) {
    if (form.size() >= kMinSecretLength) AddFormLocked(reg, std::move(form));
  };
  auto add_base64 = [&](const std::string& form) {
    add(form);
    add(UrlSafe(form));
  };
  add(std::string(value));
  add(UrlEncodeCase(value, true));
  add(UrlEncodeCase(value, false));
  // A form body (application/x-www-form-urlencoded) writes a space as '+'.
  for (bool upper : {true, false}) {
    std::string form = UrlEncodeCase(value, upper);
    for (size_t at = form.find("%20"); at != std::string::npos; at = form.find("%20", at + 1)) {
      form.replace(at, 3, "+");
    }
    add(std::move(form));
  }
  // Inside a JSON string (a request body, a log line as JSON, a payload):
  // quotes, backslashes and control characters escaped, and other
  // characters as \uXXXX where the writer keeps to ASCII.
  for (bool ascii : {false, true}) {
    std::string quoted = nlohmann::json(std::string(value))
                             .dump(-1, ' ', ascii, nlohmann::json::error_handler_t::replace);
    add(quoted.substr(1, quoted.size() - 2));
  }
  std::string b64 = Base64Encode(value);
  add_base64(b64);
  // Without padding too, as URL-safe encoders and JWTs write it.
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  add_base64(b64);
  // Inside a longer encoded text ("user:" + value in Basic auth, value +
  // "\n" from `echo | base64`), base64 writes value's bytes from any of
  // three offsets, and only the characters that encode value's bytes alone
  // are fixed: the whole groups after the first that other bytes share.
  for (size_t before = 1; before <= 2; ++before) {
    std::string shifted = Base64Encode(std::string(before, '\0') + std::string(value));
    const size_t whole = (before + value.size()) / 3 * 4;  // characters of whole groups
    const size_t skip = before == 1 ? 2 : 3;               // those that hold earlier bytes
    if (whole > skip) add_base64(shifted.substr(skip, whole - skip));
  }
  // Whole groups only at offset 0 as well, for text that follows it.
  add_base64(b64.substr(0, value.size() / 3 * 4));
}

}  // namespace

void RegisterSecret(std::string_view value) {
  if (value.size() < kMinSecretLength) return;
  Registry& reg = GetRegistry();
  std::unique_lock lock(reg.mu);
  AddEncodedFormsLocked(reg, value);
  // A value of several lines (a PEM key, a JSON credential) is written
  // line by line by whatever prints it, and program output is read and
  // redacted a line at a time: each line long enough is a form of its own.
  if (value.find('\n') != std::string_view::npos) {
    for (std::string line : Split(value, '\n')) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.size() >= kMinSecretLength) AddEncodedFormsLocked(reg, line);
    }
  }
}

size_t SafeCut(std::string_view text) {
  Registry& reg = GetRegistry();
  std::shared_lock lock(reg.mu);
  size_t cut = text.size();
  for (const std::string& form : reg.forms) {
    // The longest start of form that text ends with.
    for (size_t k = std::min(form.size() - 1, text.size()); k > 0; --k) {
      if (text.compare(text.size() - k, k, form, 0, k) == 0) {
        cut = std::min(cut, text.size() - k);
        break;
      }
    }
  }
  return cut;
}

void RegisterSecretForm(std::string_view form) {
  if (form.size() < kMinSecretLength) return;
  Registry& reg = GetRegistry();
  std::unique_lock lock(reg.mu);
  AddFormLocked(reg, std::string(form));
}

nlohmann::json RedactJson(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::string:
      return Redact(value.get_ref<const std::string&>());
    case nlohmann::json::value_t::array: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : value) out.push_back(RedactJson(item));
      return out;
    }
    case nlohmann::json::value_t::object: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& [key, item] : value.items()) out[Redact(key)] = RedactJson(item);
      return out;
    }
    default:
      return value;
  }
}

namespace {

bool HoldsFormLocked(const Registry& reg, std::string_view text) {
  for (const std::string& form : reg.forms) {
    if (text.find(form) != std::string_view::npos) return true;
  }
  return false;
}

bool JsonHoldsFormLocked(const Registry& reg, const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::string:
      return HoldsFormLocked(reg, value.get_ref<const std::string&>());
    case nlohmann::json::value_t::array:
      for (const auto& item : value) {
        if (JsonHoldsFormLocked(reg, item)) return true;
      }
      return false;
    case nlohmann::json::value_t::object:
      for (auto it = value.begin(); it != value.end(); ++it) {
        if (HoldsFormLocked(reg, it.key()) || JsonHoldsFormLocked(reg, it.value())) return true;
      }
      return false;
    default:
      return false;
  }
}

}  // namespace

bool JsonContainsSecret(const nlohmann::json& value) {
  Registry& reg = GetRegistry();
  std::shared_lock lock(reg.mu);
  return !reg.forms.empty() && JsonHoldsFormLocked(reg, value);
}

std::string DumpRedacted(const nlohmann::json& value) {
  // Most values hold no secret: written as they are, without a copy.
  if (!JsonContainsSecret(value)) {
    return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return RedactJson(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string Redact(std::string_view text) {
  Registry& reg = GetRegistry();
  std::shared_lock lock(reg.mu);
  std::string out(text);
  for (const std::string& form : reg.forms) {
    size_t pos = 0;
    while ((pos = out.find(form, pos)) != std::string::npos) {
      out.replace(pos, form.size(), kRedacted);
      pos += kRedacted.size();
    }
  }
  return out;
}

bool ContainsSecret(std::string_view text) {
  Registry& reg = GetRegistry();
  std::shared_lock lock(reg.mu);
  for (const std::string& form : reg.forms) {
    if (text.find(form) != std::string_view::npos) return true;
  }
  return false;
}

void ClearSecretsForTest() {
  Registry& reg = GetRegistry();
  std::unique_lock lock(reg.mu);
  reg.forms.clear();
}

}  // namespace sluice
