#include "core/secrets.h"

#include <sys/stat.h>

#include <fmt/format.h>

#include <cstdlib>

#include "core/fs.h"
#include "core/redact.h"
#include "core/strings.h"

namespace sluice {

Result<std::map<std::string, std::string>> ParseSecretsFile(std::string_view body,
                                                            const std::string& path) {
  std::map<std::string, std::string> out;
  int line_no = 0;
  for (const std::string& raw : Split(body, '\n')) {
    ++line_no;
    std::string line = Trim(raw);
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::Invalid(path + ":" + std::to_string(line_no) +
                             ": expected KEY=VALUE (the line is not shown, it may hold a secret)");
    }
    std::string key = Trim(line.substr(0, eq));
    std::string value = Trim(line.substr(eq + 1));
    if (value.size() >= 2 && (value[0] == '"' || value[0] == '\'') && value.back() == value[0]) {
      value = value.substr(1, value.size() - 2);
    }
    out[key] = value;
  }
  return out;
}

bool HasSecretRef(std::string_view text) {
  return text.find("${secret:") != std::string_view::npos;
}

namespace {

// A secret too short to redact safely or keep secret; the message names it,
// never its value or length.
Status CheckSecretLength(const std::string& name, std::string_view value) {
  if (value.size() >= kMinSecretLength) return Status::Ok();
  return Status::Invalid("secret " + name + " is shorter than " + std::to_string(kMinSecretLength) +
                         " characters; Sluice refuses it (masking it in every output would hide "
                         "ordinary text, and it is easy to guess). If it is not a secret, use a "
                         "var.");
}

}  // namespace

Result<const std::map<std::string, std::string>*> SecretResolver::LoadFile(
    const std::string& path) const {
  auto it = files_.find(path);
  if (it != files_.end()) return &it->second;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    files_[path] = {};
    return &files_[path];
  }
  if ((st.st_mode & 077) != 0) {
    return Status::Invalid(path + ": secrets file is readable by others (mode " +
                           fmt::format("{:o}", st.st_mode & 0777) + "); run: chmod 600 " + path);
  }
  ASSIGN_OR_RETURN(std::string body, ReadFile(path));
  ASSIGN_OR_RETURN(auto parsed, ParseSecretsFile(body, path));
  files_[path] = std::move(parsed);  // values are registered when looked up
  return &files_[path];
}

Result<std::string> SecretResolver::Lookup(const std::string& name) const {
  std::vector<std::string> looked;
  for (const SecretProvider& p : providers_) {
    if (p.kind == SecretProvider::Kind::kEnv) {
      looked.push_back("the environment");
      if (const char* v = std::getenv(name.c_str())) {
        RETURN_IF_ERROR(CheckSecretLength(name, v));
        RegisterSecret(v);
        return std::string(v);
      }
    } else {
      looked.push_back(p.path);
      ASSIGN_OR_RETURN(const auto* values, LoadFile(p.path));
      auto it = values->find(name);
      if (it != values->end()) {
        RETURN_IF_ERROR(CheckSecretLength(name, it->second));
        RegisterSecret(it->second);
        return it->second;
      }
    }
  }
  return Status::NotFound("secret " + name + " not found (looked in " +
                          (looked.empty() ? std::string("no provider") : Join(looked, ", ")) +
                          "); set it in the environment or add NAME=VALUE to a secrets file");
}

Result<std::string> SecretResolver::Substitute(std::string_view text) const {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t start = text.find("${secret:", pos);
    if (start == std::string_view::npos) break;
    size_t end = text.find('}', start);
    if (end == std::string_view::npos) {
      return Status::Invalid("unterminated ${secret:...} reference");
    }
    out.append(text.substr(pos, start - pos));
    std::string name(text.substr(start + 9, end - start - 9));
    ASSIGN_OR_RETURN(std::string value, Lookup(Trim(name)));
    out += value;
    pos = end + 1;
  }
  out.append(text.substr(pos));
  return out;
}

}  // namespace sluice
