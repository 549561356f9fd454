// The redactor: every log line, error message and stored record passes
// through Redact() before it leaves the process or reaches disk. Each secret
// is registered with its plain, URL-encoded and base64 forms; callers that
// build other encodings (Basic auth's base64 of "user:password") register
// those too. Thread-safe; registration is rare, redaction frequent.
#pragma once

#include <string>
#include <string_view>

namespace sluice {

inline constexpr std::string_view kRedacted = "***";

// Registers a secret value and its encoded forms. Empty values are ignored.
void RegisterSecret(std::string_view value);
// Registers one exact string (an already-encoded form) without derivatives.
void RegisterSecretForm(std::string_view form);
// Replaces every registered form in text with "***".
std::string Redact(std::string_view text);
// True when text contains a registered form (for tests and assertions).
bool ContainsSecret(std::string_view text);
// Forgets all secrets (tests only).
void ClearSecretsForTest();

std::string UrlEncode(std::string_view value);
std::string Base64Encode(std::string_view value);

}  // namespace sluice
