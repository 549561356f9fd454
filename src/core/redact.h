// The redactor: every log line, error message and stored record passes
// through Redact() before it leaves the process or reaches disk. Each secret
// is registered with its plain, URL-encoded and base64 forms; callers that
// build other encodings (Basic auth's base64 of "user:password") register
// those too. Thread-safe; registration is rare, redaction frequent.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace sluice {

inline constexpr std::string_view kRedacted = "***";
// Shorter secret values are refused where they are looked up (secrets.h): an
// 8-character value occurs by chance in about one of 62^8 places, so
// redacting it masks no ordinary text, and it is not trivially guessed.
inline constexpr size_t kMinSecretLength = 8;

// Registers a secret value and its encoded forms: URL-encoded, base64
// (standard and URL-safe alphabets, padded or not, and the part fixed
// wherever the value sits in a longer encoded text), and the same for each
// line of a value of several lines. Forms shorter than kMinSecretLength are
// ignored (they would mask ordinary text everywhere).
void RegisterSecret(std::string_view value);
// Where to cut text so that it does not end with the start of a registered
// form (text.size() when it does not): a long line cut in two is redacted
// piece by piece, and a secret split at the cut would be found in neither.
size_t SafeCut(std::string_view text);
// Registers one exact string (an already-encoded form) without derivatives.
void RegisterSecretForm(std::string_view form);
// Replaces every registered form in text with "***". Redact the raw text
// before escaping or encoding it: an escaped secret is no longer found.
std::string Redact(std::string_view text);
// A copy of value with every string (object keys included) redacted.
nlohmann::json RedactJson(const nlohmann::json& value);
// RedactJson(value) as JSON text; invalid UTF-8 is replaced, never thrown on.
std::string DumpRedacted(const nlohmann::json& value);
// True when text contains a registered form (for tests and assertions).
bool ContainsSecret(std::string_view text);
// True when a string or key anywhere in value contains a registered form:
// when false, value may be written as it is (no RedactJson copy).
bool JsonContainsSecret(const nlohmann::json& value);
// Forgets all secrets (tests only).
void ClearSecretsForTest();

std::string UrlEncode(std::string_view value);
std::string Base64Encode(std::string_view value);

}  // namespace sluice
