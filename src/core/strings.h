// Small string helpers shared by every stage.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sluice {

std::string ToLower(std::string_view s);
std::string Trim(std::string_view s);
std::vector<std::string> Split(std::string_view s, char sep);
std::string Join(const std::vector<std::string>& parts, std::string_view sep);
bool StartsWith(std::string_view s, std::string_view prefix);
bool EndsWith(std::string_view s, std::string_view suffix);
size_t EditDistance(std::string_view a, std::string_view b);
// The closest candidate within a small edit distance, or "" when none is close.
std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates);
// " (did you mean X?)" or "".
std::string DidYouMeanHint(std::string_view word, const std::vector<std::string>& candidates);
// Double-quoted SQL identifier ("a""b").
std::string QuoteIdent(std::string_view name);
// One SQL statement without what may trail it: whitespace, ';' and comments
// (-- and /* */), read as SQL reads them (quotes and $$ strings kept whole),
// so that it nests inside another statement.
std::string StripStatementEnd(std::string_view sql);
// Single-quoted SQL string literal ('it''s').
std::string QuoteLiteral(std::string_view value);

}  // namespace sluice
