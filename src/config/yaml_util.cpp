#include "config/yaml_util.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>

#include "core/strings.h"

namespace sluice {
namespace {

bool IsAllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

bool IsPlainNull(std::string_view s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

std::optional<bool> PlainBool(std::string_view s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

// YAML 1.2 core schema integers and floats (no hex/octal, no .inf/.nan).
std::optional<nlohmann::json> PlainNumber(std::string_view s) {
  if (s.empty()) return std::nullopt;
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  std::string_view body = s.substr(i);
  if (IsAllDigits(body)) {
    int64_t value = 0;
    std::string_view digits = s[0] == '+' ? s.substr(1) : s;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec == std::errc() && ptr == digits.data() + digits.size()) return nlohmann::json(value);
  }
  // [0-9]*(\.[0-9]*)?([eE][-+]?[0-9]+)? with at least one digit before the exponent.
  size_t p = 0, mantissa_digits = 0;
  while (p < body.size() && std::isdigit(static_cast<unsigned char>(body[p])))
    ++p, ++mantissa_digits;
  if (p < body.size() && body[p] == '.') {
    ++p;
    while (p < body.size() && std::isdigit(static_cast<unsigned char>(body[p]))) {
      ++p;
      ++mantissa_digits;
    }
  }
  if (mantissa_digits == 0) return std::nullopt;
  if (p < body.size() && (body[p] == 'e' || body[p] == 'E')) {
    ++p;
    if (p < body.size() && (body[p] == '-' || body[p] == '+')) ++p;
    size_t exp_start = p;
    while (p < body.size() && std::isdigit(static_cast<unsigned char>(body[p]))) ++p;
    if (p == exp_start) return std::nullopt;
  }
  if (p != body.size()) return std::nullopt;
  std::string copy(s);
  return nlohmann::json(std::strtod(copy.c_str(), nullptr));
}

bool IsSecretName(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

bool IsPlain(const YAML::Node& node) { return node.Tag() == "?" || node.Tag().empty(); }

std::string KindName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
    default:
      return "nothing";
  }
}

}  // namespace

int FileErrors::LineOf(const YAML::Node& node, int fallback) const {
  try {
    YAML::Mark mark = node.Mark();
    if (mark.line >= 0) return FromYamlLine(mark.line);
  } catch (const YAML::Exception&) {
  }
  return fallback;
}

void FileErrors::At(int line, std::string message) {
  ++count_;
  errors_->push_back(ConfigError{SourceLoc{file_, line}, std::move(message)});
}

std::optional<YAML::Node> ParseYaml(const std::string& text, FileErrors& errs) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    errs.At(errs.FromYamlLine(e.mark.line), "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    errs.At(errs.FromYamlLine(0), std::string("cannot parse YAML: ") + e.what());
  }
  return std::nullopt;
}

void CheckSecretRefs(std::string_view text, int line, FileErrors& errs) {
  static constexpr std::string_view kOpen = "${secret:";
  size_t pos = 0;
  while ((pos = text.find(kOpen, pos)) != std::string_view::npos) {
    size_t end = text.find('}', pos);
    if (end == std::string_view::npos) {
      errs.At(line, "unterminated ${secret:...}; write ${secret:NAME}");
      return;
    }
    std::string name = Trim(text.substr(pos + kOpen.size(), end - pos - kOpen.size()));
    if (name.empty()) {
      errs.At(line, "${secret:} has no name; write ${secret:NAME}");
    } else if (!IsSecretName(name)) {
      errs.At(line, "bad secret name '" + name + "' in ${secret:" + name +
                        "}; use letters, digits and _");
    }
    pos = end + 1;
  }
}

namespace {

constexpr int kMaxDepth = 64;

// errs == nullptr: convert silently. *too_deep stops the walk after the first report.
nlohmann::json ToJson(const YAML::Node& node, FileErrors* errs, int depth, bool* too_deep) {
  if (depth > kMaxDepth) {
    if (!*too_deep && errs) {
      errs->At(node,
               "nesting deeper than " + std::to_string(kMaxDepth) + " levels (a recursive alias?)");
    }
    *too_deep = true;
    return nullptr;
  }
  switch (node.Type()) {
    case YAML::NodeType::Scalar: {
      const std::string& text = node.Scalar();
      if (errs) CheckSecretRefs(text, errs->LineOf(node), *errs);
      if (!IsPlain(node)) return text;
      if (IsPlainNull(text)) return nullptr;
      if (auto b = PlainBool(text)) return *b;
      if (auto n = PlainNumber(text)) return *n;
      return text;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const YAML::Node& item : node) {
        out.push_back(ToJson(item, errs, depth + 1, too_deep));
        if (*too_deep) break;
      }
      return out;
    }
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          if (errs) errs->At(kv.first, "a mapping key must be a plain string");
          continue;
        }
        out[kv.first.Scalar()] = ToJson(kv.second, errs, depth + 1, too_deep);
        if (*too_deep) break;
      }
      return out;
    }
    default:
      return nullptr;
  }
}

}  // namespace

nlohmann::json YamlToJson(const YAML::Node& node) {
  bool too_deep = false;
  return ToJson(node, nullptr, 0, &too_deep);
}

nlohmann::json ReadDocument(const YAML::Node& doc, FileErrors& errs) {
  bool too_deep = false;
  return ToJson(doc, &errs, 0, &too_deep);
}

MapReader::MapReader(const YAML::Node& node, const std::vector<std::string>& known,
                     std::string_view what, FileErrors& errs, int fallback_line) {
  if (node.IsNull()) {
    is_map_ = true;
    return;
  }
  if (!node.IsMap()) {
    errs.At(node, std::string(what) + ": expected a mapping (key: value), got " + KindName(node),
            fallback_line);
    return;
  }
  is_map_ = true;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) continue;  // reported by YamlToJson, which sees every node
    YamlEntry entry{kv.first.Scalar(), kv.first, kv.second, errs.LineOf(kv.first, fallback_line)};
    if (!known.empty() && std::find(known.begin(), known.end(), entry.key) == known.end()) {
      std::string hint = DidYouMeanHint(entry.key, known);
      if (hint.empty()) hint = "; known keys: " + Join(known, ", ");
      errs.At(entry.line, "unknown key '" + entry.key + "' in " + std::string(what) + hint);
      continue;
    }
    if (Find(entry.key) != nullptr) {
      errs.At(entry.line, "duplicate key '" + entry.key + "' in " + std::string(what));
      continue;
    }
    entries_.push_back(std::move(entry));
  }
}

const YamlEntry* MapReader::Find(std::string_view key) const {
  for (const YamlEntry& e : entries_) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

std::optional<std::string> ReadString(const YamlEntry& e, FileErrors& errs) {
  if (e.value.IsScalar()) return e.value.Scalar();
  errs.At(e.value, e.key + ": expected a string, got " + KindName(e.value), e.line);
  return std::nullopt;
}

std::optional<std::vector<std::string>> ReadStringList(const YamlEntry& e, FileErrors& errs,
                                                       std::string_view expected) {
  if (e.value.IsScalar()) return std::vector<std::string>{e.value.Scalar()};
  if (e.value.IsSequence()) {
    std::vector<std::string> out;
    bool ok = true;
    for (const YAML::Node& item : e.value) {
      if (!item.IsScalar()) {
        ok = false;
        break;
      }
      out.push_back(item.Scalar());
    }
    if (ok) return out;
  }
  errs.At(e.value, e.key + ": expected " + std::string(expected), e.line);
  return std::nullopt;
}

std::optional<int64_t> ReadInt(const YamlEntry& e, FileErrors& errs, int64_t min_value) {
  if (e.value.IsScalar() && IsPlain(e.value)) {
    const std::string& text = e.value.Scalar();
    int64_t value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc() && ptr == text.data() + text.size() && value >= min_value) return value;
  }
  errs.At(e.value,
          e.key + ": expected a whole number" +
              (min_value == 0 ? std::string(" (0 or more)")
                              : " (at least " + std::to_string(min_value) + ")") +
              ", got " + KindName(e.value),
          e.line);
  return std::nullopt;
}

std::optional<bool> ReadBool(const YamlEntry& e, FileErrors& errs) {
  if (e.value.IsScalar() && IsPlain(e.value)) {
    if (auto b = PlainBool(e.value.Scalar())) return b;
  }
  errs.At(e.value, e.key + ": expected true or false, got " + KindName(e.value), e.line);
  return std::nullopt;
}

std::optional<int64_t> ParseDuration(std::string_view text) {
  // Longer than 100 years is a typo, not a duration (and cannot overflow).
  constexpr int64_t kMaxSeconds = int64_t{100} * 366 * 86400;
  std::string s = Trim(text);
  if (IsAllDigits(s)) {
    if (s.size() > 12 || std::stoll(s) > kMaxSeconds) return std::nullopt;
    return std::stoll(s);
  }
  if (s.empty()) return std::nullopt;
  int64_t total = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    if (i == start || i >= s.size() || i - start > 12) return std::nullopt;
    int64_t n = std::stoll(s.substr(start, i - start));
    switch (std::tolower(static_cast<unsigned char>(s[i]))) {
      case 's':
        break;
      case 'm':
        n *= 60;
        break;
      case 'h':
        n *= 3600;
        break;
      case 'd':
        n *= 86400;
        break;
      case 'w':
        n *= 7 * 86400;
        break;
      default:
        return std::nullopt;
    }
    total += n;
    if (total > kMaxSeconds) return std::nullopt;
    ++i;
  }
  return total;
}

std::optional<std::string> NormalizeMemoryLimit(std::string_view text) {
  std::string s = Trim(text);
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  std::string number = s.substr(0, i);
  if (number.empty() || number.front() == '.' || number.back() == '.' ||
      std::count(number.begin(), number.end(), '.') > 1 ||
      std::strtod(number.c_str(), nullptr) <= 0) {
    return std::nullopt;
  }
  std::string unit = ToLower(Trim(s.substr(i)));
  static const std::vector<std::pair<std::string, std::string>> kUnits = {
      {"b", "B"},     {"kb", "KB"},   {"mb", "MB"},   {"gb", "GB"},  {"tb", "TB"},
      {"kib", "KiB"}, {"mib", "MiB"}, {"gib", "GiB"}, {"tib", "TiB"}};
  for (const auto& [lower, canonical] : kUnits) {
    if (unit == lower) return number + canonical;
  }
  return std::nullopt;
}

std::optional<int64_t> ParseByteSize(std::string_view text) {
  std::optional<std::string> size = NormalizeMemoryLimit(text);
  if (!size) return std::nullopt;
  size_t i = 0;
  while (i < size->size() &&
         (std::isdigit(static_cast<unsigned char>((*size)[i])) || (*size)[i] == '.')) {
    ++i;
  }
  double number = std::strtod(size->substr(0, i).c_str(), nullptr);
  std::string unit = size->substr(i);
  static const std::vector<std::pair<std::string, double>> kScale = {
      {"B", 1},           {"KB", 1e3},           {"MB", 1e6},
      {"GB", 1e9},        {"TB", 1e12},          {"KiB", 1024.0},
      {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
  for (const auto& [name, scale] : kScale) {
    if (unit == name) return static_cast<int64_t>(number * scale);
  }
  return std::nullopt;
}

std::optional<int64_t> ParseBlockSize(std::string_view text) {
  std::string trimmed = Trim(text);
  bool digits = !trimmed.empty() && trimmed.size() < 10 &&
                std::all_of(trimmed.begin(), trimmed.end(),
                            [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  std::optional<int64_t> bytes =
      digits ? std::optional<int64_t>(std::stoll(trimmed)) : ParseByteSize(trimmed);
  if (!bytes) return std::nullopt;
  for (int64_t kib = 16; kib <= 256; kib *= 2) {
    // "16KB" as people write it means 16 KiB here: blocks are powers of two.
    if (*bytes == kib * 1024 || (!digits && *bytes == kib * 1000)) return kib * 1024;
  }
  return std::nullopt;
}

bool IsLowerIdentifier(std::string_view name) {
  if (name.empty() || !(name[0] == '_' || (name[0] >= 'a' && name[0] <= 'z'))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  });
}

}  // namespace sluice
