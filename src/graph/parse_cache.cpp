#include "graph/parse_cache.h"

#include <algorithm>
#include <string_view>
#include <utility>
#include <vector>

#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "warehouse/duckdb.h"

namespace sluice {
namespace {

// Bump when the walker in sql_refs.cpp changes what it extracts, so stale
// entries are not reused.
constexpr std::string_view kWalkerVersion = "refs-1";
constexpr std::string_view kHeader = "sluice-parse-cache 1";
constexpr char kItemSep = '\x1f';

// File format, one line per entry, fields separated by tabs:
//   <sha256 hex>\t<0|1 nondeterministic>\t<tables>\t<files>\t<functions>
// Lists are items separated by \x1f; \\, \t, \n and \x1f inside an item are
// escaped as \\\\, \\t, \\n and \\u.
void AppendEscaped(std::string& out, std::string_view item) {
  for (char c : item) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case kItemSep:
        out += "\\u";
        break;
      default:
        out += c;
    }
  }
}

void AppendList(std::string& out, const std::vector<std::string>& items) {
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += kItemSep;
    AppendEscaped(out, items[i]);
  }
}

bool ParseList(std::string_view field, std::vector<std::string>& out) {
  out.clear();
  if (field.empty()) return true;
  std::string item;
  for (size_t i = 0; i < field.size(); ++i) {
    char c = field[i];
    if (c == kItemSep) {
      out.push_back(std::move(item));
      item.clear();
    } else if (c == '\\') {
      if (++i == field.size()) return false;
      switch (field[i]) {
        case '\\':
          item += '\\';
          break;
        case 't':
          item += '\t';
          break;
        case 'n':
          item += '\n';
          break;
        case 'u':
          item += kItemSep;
          break;
        default:
          return false;
      }
    } else {
      item += c;
    }
  }
  out.push_back(std::move(item));
  return true;
}

bool IsHexKey(std::string_view key) {
  if (key.size() != 64) return false;
  return std::all_of(key.begin(), key.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Parses one entry line; false when it is malformed.
bool ParseLine(std::string_view line, std::string& key, SqlRefs& refs) {
  std::string_view fields[5];
  size_t start = 0;
  for (size_t field_idx = 0; field_idx < 5; ++field_idx) {
    size_t tab = line.find('\t', start);
    if (field_idx == 4) {
      if (tab != std::string_view::npos) return false;
      fields[field_idx] = line.substr(start);
    } else {
      if (tab == std::string_view::npos) return false;
      fields[field_idx] = line.substr(start, tab - start);
      start = tab + 1;
    }
  }
  if (!IsHexKey(fields[0])) return false;
  if (fields[1] != "0" && fields[1] != "1") return false;
  key.assign(fields[0]);
  refs.nondeterministic = fields[1] == "1";
  return ParseList(fields[2], refs.tables) && ParseList(fields[3], refs.files) &&
         ParseList(fields[4], refs.functions);
}

}  // namespace

ParseCache::ParseCache(std::string path)
    : path_(std::move(path)),
      key_salt_(DuckDbLibraryVersion() + "\n" + std::string(kWalkerVersion)) {}

ParseCache::ParseCache(ParseCache&& other) noexcept
    : path_(other.path_), key_salt_(other.key_salt_) {
  std::lock_guard<std::mutex> lock(other.mu_);
  entries_ = std::move(other.entries_);
  dirty_ = other.dirty_;
}

ParseCache ParseCache::Load(const std::string& path) {
  ParseCache cache(path);
  if (path.empty() || !FileExists(path)) return cache;
  Result<std::string> content = ReadFile(path);
  if (!content.ok()) {
    LOG_WARN("graph", "ignoring parse cache {}: {}", path, content.status().ToString());
    return cache;
  }
  std::string_view text = *content;
  size_t pos = text.find('\n');
  if (pos == std::string_view::npos || text.substr(0, pos) != kHeader) {
    LOG_WARN("graph", "ignoring corrupt parse cache {}: bad header", path);
    return cache;
  }
  ++pos;
  std::string key;
  size_t line_no = 1;
  while (pos < text.size()) {
    ++line_no;
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) {
      // Every line ends with '\n'; a missing one means a torn write.
      LOG_WARN("graph", "ignoring corrupt parse cache {}: truncated line {}", path, line_no);
      cache.entries_.clear();
      return cache;
    }
    SqlRefs refs;
    if (!ParseLine(text.substr(pos, end - pos), key, refs)) {
      LOG_WARN("graph", "ignoring corrupt parse cache {}: bad line {}", path, line_no);
      cache.entries_.clear();
      return cache;
    }
    cache.entries_.insert_or_assign(key, std::move(refs));
    pos = end + 1;
  }
  return cache;
}

std::string ParseCache::Key(const std::string& sql) const {
  Sha256 hash;
  hash.Update(sql);
  hash.Update("\n", 1);
  hash.Update(key_salt_);
  return hash.HexDigest();
}

std::optional<SqlRefs> ParseCache::Get(const std::string& sql) const {
  std::string key = Key(sql);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

void ParseCache::Put(const std::string& sql, const SqlRefs& refs) {
  std::string key = Key(sql);
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = entries_.try_emplace(key, refs);
  if (!inserted && it->second == refs) return;
  it->second = refs;
  dirty_ = true;
}

size_t ParseCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

Status ParseCache::Save() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!dirty_ || path_.empty()) return Status::Ok();
  std::vector<const std::pair<const std::string, SqlRefs>*> sorted;
  sorted.reserve(entries_.size());
  for (const auto& entry : entries_) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });

  std::string out;
  out.reserve(64 + entries_.size() * 128);
  out += kHeader;
  out += '\n';
  for (const auto* entry : sorted) {
    const SqlRefs& refs = entry->second;
    out += entry->first;
    out += refs.nondeterministic ? "\t1\t" : "\t0\t";
    AppendList(out, refs.tables);
    out += '\t';
    AppendList(out, refs.files);
    out += '\t';
    AppendList(out, refs.functions);
    out += '\n';
  }
  RETURN_IF_ERROR(MakeDirs(Dirname(path_)));
  RETURN_IF_ERROR(WriteFileAtomic(path_, out));
  dirty_ = false;
  return Status::Ok();
}

}  // namespace sluice
