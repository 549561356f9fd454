#include "config/template.h"

#include <algorithm>
#include <cctype>
#include <vector>

#include "core/strings.h"

namespace sluice {
namespace {

enum class ExprKind { kVar, kEnv, kPartition, kStart, kEnd, kThis, kIsIncremental };

struct Expr {
  ExprKind kind = ExprKind::kEnv;
  std::string var_name;
  std::optional<std::string> var_default;
};

struct Cond {
  bool negated = false;
  Expr expr;
};

const std::vector<std::string>& KnownNames() {
  static const std::vector<std::string> kNames = {"var", "env",  "partition",     "start",
                                                  "end", "this", "is_incremental"};
  return kNames;
}

std::string JsonToText(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "";
  return value.dump();
}

bool JsonTruthy(const nlohmann::json& value) {
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_null()) return false;
  if (value.is_string()) return !value.get<std::string>().empty();
  if (value.is_number()) return value.get<double>() != 0;
  return !value.empty();
}

bool IsIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Tokens inside one tag body.
class TagLexer {
 public:
  explicit TagLexer(std::string_view body) : s_(body) {}

  void SkipSpace() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool AtEnd() {
    SkipSpace();
    return pos_ >= s_.size();
  }
  char Peek() {
    SkipSpace();
    return pos_ < s_.size() ? s_[pos_] : '\0';
  }
  bool Consume(char c) {
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }
  std::string_view Ident() {
    SkipSpace();
    if (pos_ >= s_.size() || !IsIdentStart(s_[pos_])) return {};
    size_t start = pos_;
    while (pos_ < s_.size() && IsIdentChar(s_[pos_])) ++pos_;
    return s_.substr(start, pos_ - start);
  }
  // A quoted string ('x' or "x", backslash escapes the next character).
  // nullopt when the next token is no string; *unterminated set when it never ends.
  std::optional<std::string> String(bool* unterminated) {
    *unterminated = false;
    char quote = Peek();
    if (quote != '\'' && quote != '"') return std::nullopt;
    size_t i = pos_ + 1;
    std::string out;
    while (i < s_.size() && s_[i] != quote) {
      if (s_[i] == '\\' && i + 1 < s_.size()) ++i;
      out += s_[i++];
    }
    if (i >= s_.size()) {
      *unterminated = true;
      return std::nullopt;
    }
    pos_ = i + 1;
    return out;
  }
  // A bare number such as 10, -2 or 0.5.
  std::optional<std::string> Number() {
    SkipSpace();
    size_t i = pos_;
    if (i < s_.size() && (s_[i] == '-' || s_[i] == '+')) ++i;
    size_t digits = i;
    while (i < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[i])) || s_[i] == '.')) ++i;
    if (i == digits) return std::nullopt;
    std::string out(s_.substr(pos_, i - pos_));
    pos_ = i;
    return out;
  }
  std::string Rest() {
    SkipSpace();
    return Trim(s_.substr(pos_));
  }
  size_t pos() const { return pos_; }
  void set_pos(size_t pos) { pos_ = pos; }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

class Engine {
 public:
  // ctx == nullptr: check mode (validate every branch, produce no output).
  Engine(std::string_view text, int first_line, const TemplateContext* ctx,
         const nlohmann::json& vars)
      : text_(text), first_line_(first_line), ctx_(ctx), vars_(vars) {}

  std::optional<TemplateError> Run(std::string* out) {
    size_t pos = 0;
    int line = first_line_;
    if (out) out->reserve(text_.size());
    while (true) {
      size_t open = FindOpener(pos);
      if (open == std::string_view::npos) {
        Emit(out, text_.substr(pos));
        break;
      }
      std::string_view before = text_.substr(pos, open - pos);
      Emit(out, before);
      line += static_cast<int>(std::count(before.begin(), before.end(), '\n'));
      bool is_expr = text_[open + 1] == '{';
      std::string_view closer = is_expr ? "}}" : "%}";
      size_t close = text_.find(closer, open + 2);
      if (close == std::string_view::npos) {
        return TemplateError{line, is_expr ? "{{ without }}; close the tag with }}"
                                           : "{% without %}; close the tag with %}"};
      }
      std::string_view body = text_.substr(open + 2, close - open - 2);
      std::optional<std::string> err =
          is_expr ? HandleExpr(body, out) : HandleStatement(body, line);
      if (err) return TemplateError{line, std::move(*err)};
      line += static_cast<int>(std::count(body.begin(), body.end(), '\n'));
      pos = close + 2;
    }
    if (!frames_.empty()) {
      return TemplateError{frames_.back().line, "{% if %} without {% endif %}"};
    }
    return std::nullopt;
  }

 private:
  struct Frame {
    int line = 0;
    bool parent_active = true;
    bool taken = false;  // some branch so far was chosen
    bool active = false;
    bool seen_else = false;
  };

  size_t FindOpener(size_t from) const {
    while (true) {
      size_t p = text_.find('{', from);
      if (p == std::string_view::npos || p + 1 >= text_.size()) return std::string_view::npos;
      if (text_[p + 1] == '{' || text_[p + 1] == '%') return p;
      from = p + 1;
    }
  }

  bool Active() const { return frames_.empty() || frames_.back().active; }
  bool check_mode() const { return ctx_ == nullptr; }

  void Emit(std::string* out, std::string_view s) const {
    if (out && !check_mode() && Active()) out->append(s);
  }

  // Parses one expression; the lexer must be at its start.
  std::optional<std::string> ParseExpr(TagLexer& lex, bool in_condition, Expr* expr) {
    std::string_view ident = lex.Ident();
    if (ident.empty()) {
      if (lex.AtEnd()) {
        return in_condition
                   ? std::string("missing condition; write e.g. {% if is_incremental %}")
                   : std::string("empty {{ }}; write a variable such as var('name') or partition");
      }
      return "unexpected '" + lex.Rest() +
             "' in a tag; expected var('name'), env, partition, start, end or this";
    }
    if (ident == "var") {
      if (!lex.Consume('(')) return std::string("var needs a quoted name: var('name')");
      bool unterminated = false;
      std::optional<std::string> name = lex.String(&unterminated);
      if (unterminated) return std::string("unterminated string in var(...); close the quote");
      if (!name) return std::string("var() takes a quoted name, e.g. var('region')");
      if (name->empty()) return std::string("var('') needs a name, e.g. var('region')");
      expr->kind = ExprKind::kVar;
      expr->var_name = *name;
      if (lex.Consume(',')) {
        std::optional<std::string> def = lex.String(&unterminated);
        if (unterminated) return std::string("unterminated string in var(...); close the quote");
        if (!def) def = lex.Number();
        if (!def) {
          return "the default in var('" + *name + "', ...) must be a quoted string or a number";
        }
        expr->var_default = std::move(*def);
      }
      if (!lex.Consume(')')) return "missing ) after var('" + *name + "'";
    } else if (ident == "env") {
      expr->kind = ExprKind::kEnv;
    } else if (ident == "partition") {
      expr->kind = ExprKind::kPartition;
    } else if (ident == "start") {
      expr->kind = ExprKind::kStart;
    } else if (ident == "end") {
      expr->kind = ExprKind::kEnd;
    } else if (ident == "this") {
      expr->kind = ExprKind::kThis;
    } else if (ident == "is_incremental") {
      if (!in_condition) {
        return std::string("is_incremental is a condition; use {% if is_incremental %}");
      }
      expr->kind = ExprKind::kIsIncremental;
    } else if (lex.Peek() == '(') {
      return "unknown template function '" + std::string(ident) + "'" +
             DidYouMeanHint(ident, {"var"}) + "; the only function is var('name')";
    } else {
      std::string hint = DidYouMeanHint(ident, KnownNames());
      if (hint.empty()) hint = "; known: var('name'), env, partition, start, end, this";
      return "unknown template variable '" + std::string(ident) + "'" + hint;
    }
    if (!lex.AtEnd()) {
      return "unexpected '" + lex.Rest() + "' after " + std::string(ident) +
             "; a tag holds one expression (filters and operators are not supported)";
    }
    return std::nullopt;
  }

  std::optional<std::string> ParseCond(TagLexer& lex, Cond* cond) {
    while (true) {
      size_t save = lex.pos();
      if (lex.Ident() != "not") {
        lex.set_pos(save);
        break;
      }
      cond->negated = !cond->negated;
    }
    return ParseExpr(lex, /*in_condition=*/true, &cond->expr);
  }

  // The value of expr; `truthy` (when given) receives its truth for conditions.
  std::optional<std::string> Eval(const Expr& expr, std::string* value, bool* truthy) {
    static const TemplateContext kCheckCtx;  // check mode: values do not matter
    const TemplateContext& ctx = ctx_ ? *ctx_ : kCheckCtx;
    switch (expr.kind) {
      case ExprKind::kVar: {
        if (vars_.is_object()) {
          auto it = vars_.find(expr.var_name);
          if (it != vars_.end()) {
            *value = JsonToText(*it);
            if (truthy) *truthy = JsonTruthy(*it);
            return std::nullopt;
          }
        }
        if (check_mode() && vars_.is_null()) break;  // vars unknown: not checked
        if (!expr.var_default) {
          return "var('" + expr.var_name +
                 "') is not set; define it under vars: in sluice.yaml or give a default";
        }
        *value = *expr.var_default;
        break;
      }
      case ExprKind::kEnv:
        *value = ctx.env;
        break;
      case ExprKind::kPartition:
        *value = ctx.partition;
        break;
      case ExprKind::kStart:
        *value = ctx.start;
        break;
      case ExprKind::kEnd:
        *value = ctx.end;
        break;
      case ExprKind::kThis:
        *value = ctx.this_name;
        break;
      case ExprKind::kIsIncremental:
        *value = ctx.is_incremental ? "true" : "";
        break;
    }
    if (truthy) *truthy = !value->empty();
    return std::nullopt;
  }

  std::optional<std::string> EvalCond(const Cond& cond, bool* result) {
    std::string value;
    bool truthy = false;
    if (auto err = Eval(cond.expr, &value, &truthy)) return err;
    *result = cond.negated ? !truthy : truthy;
    return std::nullopt;
  }

  std::optional<std::string> HandleExpr(std::string_view body, std::string* out) {
    TagLexer lex(body);
    Expr expr;
    if (auto err = ParseExpr(lex, /*in_condition=*/false, &expr)) return err;
    if (!check_mode() && !Active()) return std::nullopt;
    std::string value;
    if (auto err = Eval(expr, &value, nullptr)) return err;
    Emit(out, value);
    return std::nullopt;
  }

  std::optional<std::string> HandleStatement(std::string_view body, int line) {
    TagLexer lex(body);
    std::string keyword(lex.Ident());
    if (keyword == "if" || keyword == "elif") {
      if (keyword == "elif") {
        if (frames_.empty()) return std::string("{% elif %} without {% if %}");
        if (frames_.back().seen_else) return std::string("{% elif %} after {% else %}");
      }
      if (lex.AtEnd()) {
        return "{% " + keyword + " %} needs a condition, e.g. {% " + keyword + " is_incremental %}";
      }
      Cond cond;
      if (auto err = ParseCond(lex, &cond)) return err;
      if (keyword == "if") {
        Frame frame;
        frame.line = line;
        frame.parent_active = Active();
        bool value = false;
        if (check_mode() || frame.parent_active) {
          if (auto err = EvalCond(cond, &value)) return err;
        }
        frame.active = frame.parent_active && value;
        frame.taken = frame.active;
        frames_.push_back(frame);
      } else {
        Frame& frame = frames_.back();
        bool value = false;
        if (check_mode() || (frame.parent_active && !frame.taken)) {
          if (auto err = EvalCond(cond, &value)) return err;
        }
        frame.active = frame.parent_active && !frame.taken && value;
        frame.taken = frame.taken || frame.active;
      }
      return std::nullopt;
    }
    if (keyword == "else" || keyword == "endif") {
      if (!lex.AtEnd()) {
        return "unexpected '" + lex.Rest() + "' after " + keyword + "; write {% " + keyword + " %}";
      }
      if (frames_.empty()) return "{% " + keyword + " %} without {% if %}";
      Frame& frame = frames_.back();
      if (keyword == "endif") {
        frames_.pop_back();
        return std::nullopt;
      }
      if (frame.seen_else) return std::string("a second {% else %} in one {% if %}");
      frame.seen_else = true;
      frame.active = frame.parent_active && !frame.taken;
      frame.taken = true;
      return std::nullopt;
    }
    if (keyword.empty()) {
      if (lex.AtEnd()) return std::string("empty {% %}; expected if, elif, else or endif");
      return "unexpected '" + lex.Rest() + "' in {% %}; expected if, elif, else or endif";
    }
    return "unknown tag {% " + keyword + " %}" +
           DidYouMeanHint(keyword, {"if", "elif", "else", "endif"}) +
           "; supported: if, elif, else, endif";
  }

  std::string_view text_;
  int first_line_;
  const TemplateContext* ctx_;
  const nlohmann::json& vars_;
  std::vector<Frame> frames_;
};

}  // namespace

std::string TemplateError::ToString() const {
  return "line " + std::to_string(line) + ": " + message;
}

bool HasTemplateTags(std::string_view text) {
  size_t p = 0;
  while ((p = text.find('{', p)) != std::string_view::npos) {
    if (p + 1 < text.size() && (text[p + 1] == '{' || text[p + 1] == '%')) return true;
    ++p;
  }
  return false;
}

Result<std::string> RenderTemplate(std::string_view text, const TemplateContext& ctx,
                                   int first_line) {
  if (!HasTemplateTags(text)) return std::string(text);
  std::string out;
  Engine engine(text, first_line, &ctx, ctx.vars);
  if (auto err = engine.Run(&out)) return Status::Invalid(err->ToString());
  return out;
}

std::optional<TemplateError> CheckTemplate(std::string_view text, const nlohmann::json& vars,
                                           int first_line) {
  if (!HasTemplateTags(text)) return std::nullopt;
  Engine engine(text, first_line, nullptr, vars);
  return engine.Run(nullptr);
}

}  // namespace sluice
