#include <gtest/gtest.h>

#include "config/template.h"

namespace sluice {
namespace {

TemplateContext Ctx() {
  TemplateContext ctx;
  ctx.vars = {{"region", "north"}, {"limit", 10}, {"flag", false}, {"on", true}, {"empty", ""}};
  ctx.env = "prod";
  ctx.partition = "2026-01-02";
  ctx.start = "2026-01-02 00:00:00";
  ctx.end = "2026-01-03 00:00:00";
  ctx.this_name = "mart_x";
  return ctx;
}

std::string Render(std::string_view text, const TemplateContext& ctx = Ctx(), int first_line = 1) {
  Result<std::string> out = RenderTemplate(text, ctx, first_line);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.ok() ? *out : "<error>";
}

std::string RenderError(std::string_view text, const TemplateContext& ctx = Ctx(),
                        int first_line = 1) {
  Result<std::string> out = RenderTemplate(text, ctx, first_line);
  EXPECT_FALSE(out.ok()) << "rendered: " << (out.ok() ? *out : "");
  return out.ok() ? "<ok>" : out.status().message();
}

TEST(Template, TextWithoutTagsIsCopiedByteForByte) {
  std::string text = "select '{' as a, '}}' as b, '%}' as c\r\n-- { x }\n\t";
  EXPECT_EQ(Render(text), text);
  EXPECT_EQ(Render(""), "");
  EXPECT_FALSE(HasTemplateTags(text));
  EXPECT_TRUE(HasTemplateTags("a {{ env }}"));
  EXPECT_TRUE(HasTemplateTags("{% if is_incremental %}{% endif %}"));
}

TEST(Template, Variables) {
  EXPECT_EQ(Render("{{ env }}|{{ partition }}|{{ start }}|{{ end }}|{{ this }}"),
            "prod|2026-01-02|2026-01-02 00:00:00|2026-01-03 00:00:00|mart_x");
  EXPECT_EQ(Render("select * from t where r = '{{ var('region') }}' limit {{var('limit')}}"),
            "select * from t where r = 'north' limit 10");
  EXPECT_EQ(Render("{{  var( \"region\" )  }}"), "north");
  EXPECT_EQ(Render("{{ var('flag') }}/{{ var('on') }}"), "false/true");
  EXPECT_EQ(Render("{{\nvar('region')\n}}"), "north");
}

TEST(Template, VarDefaults) {
  EXPECT_EQ(Render("{{ var('missing', 'dflt') }}"), "dflt");
  EXPECT_EQ(Render("{{ var('missing', \"it's\") }}"), "it's");
  EXPECT_EQ(Render("{{ var('missing', 42) }}"), "42");
  EXPECT_EQ(Render("{{ var('missing', '') }}"), "");
  // A set var wins over its default.
  EXPECT_EQ(Render("{{ var('region', 'south') }}"), "north");
  EXPECT_EQ(Render("{{ var('a\\'b', 'x') }}"), "x");
}

TEST(Template, UnpartitionedRendersEmpty) {
  TemplateContext ctx;
  EXPECT_EQ(Render("[{{ partition }}][{{ start }}][{{ end }}][{{ env }}]", ctx), "[][][][dev]");
}

TEST(Template, IfElifElse) {
  TemplateContext ctx = Ctx();
  const char* text = "a{% if is_incremental %}INC{% elif var('on') %}ON{% else %}ELSE{% endif %}b";
  ctx.is_incremental = true;
  EXPECT_EQ(Render(text, ctx), "aINCb");
  ctx.is_incremental = false;
  EXPECT_EQ(Render(text, ctx), "aONb");
  ctx.vars["on"] = false;
  EXPECT_EQ(Render(text, ctx), "aELSEb");
}

TEST(Template, NotAndTruthiness) {
  TemplateContext ctx = Ctx();
  EXPECT_EQ(Render("{% if not is_incremental %}full{% endif %}", ctx), "full");
  EXPECT_EQ(Render("{% if not not is_incremental %}inc{% endif %}", ctx), "");
  EXPECT_EQ(Render("{% if partition %}p{% endif %}", ctx), "p");
  EXPECT_EQ(Render("{% if var('empty') %}x{% else %}empty{% endif %}", ctx), "empty");
  EXPECT_EQ(Render("{% if var('flag') %}x{% else %}false{% endif %}", ctx), "false");
  EXPECT_EQ(Render("{% if var('limit') %}ten{% endif %}", ctx), "ten");
  EXPECT_EQ(Render("{% if var('nope', '') %}x{% else %}d{% endif %}", ctx), "d");
  TemplateContext plain;
  EXPECT_EQ(Render("{% if partition %}p{% else %}none{% endif %}", plain), "none");
}

TEST(Template, Nesting) {
  TemplateContext ctx = Ctx();
  const char* text =
      "{% if partition %}P{% if is_incremental %}I{% else %}F{% endif %}{% else %}"
      "N{% if is_incremental %}X{% endif %}{% endif %}";
  EXPECT_EQ(Render(text, ctx), "PF");
  ctx.is_incremental = true;
  EXPECT_EQ(Render(text, ctx), "PI");
  ctx.partition = "";
  EXPECT_EQ(Render(text, ctx), "NX");
}

TEST(Template, UntakenBranchIsNotEvaluated) {
  // var('unset') is only an error when its branch is taken.
  EXPECT_EQ(Render("{% if is_incremental %}{{ var('unset') }}{% endif %}ok"), "ok");
  EXPECT_EQ(RenderError("{% if not is_incremental %}{{ var('unset') }}{% endif %}"),
            "line 1: var('unset') is not set; define it under vars: in sluice.yaml or give a "
            "default");
}

TEST(Template, ErrorsNameTheLine) {
  EXPECT_EQ(RenderError("select\n*\nfrom t\nwhere d = '{{ partiton }}'"),
            "line 4: unknown template variable 'partiton' (did you mean partition?)");
  EXPECT_EQ(RenderError("select\n{{ var('region2') }}", TemplateContext{}),
            "line 2: var('region2') is not set; define it under vars: in sluice.yaml or give a "
            "default");
  EXPECT_EQ(RenderError("a\nb\nc\nd\ne\nf\ng\nh\n{% if is_incremental %}\nx\n"),
            "line 9: {% if %} without {% endif %}");
  // first_line shifts every line.
  EXPECT_EQ(RenderError("x\n{{ nope_nope_nope }}", Ctx(), 10),
            "line 11: unknown template variable 'nope_nope_nope'; known: var('name'), env, "
            "partition, start, end, this");
  // A tag spanning lines reports where it starts; later lines count its newlines.
  EXPECT_EQ(RenderError("{{\nenv\n}}\n{{ xyzzy }}"),
            "line 4: unknown template variable 'xyzzy'; known: var('name'), env, partition, "
            "start, end, this");
}

TEST(Template, UnknownNamesEvenInUntakenBranches) {
  EXPECT_EQ(RenderError("{% if is_incremental %}\n{{ thsi }}\n{% endif %}"),
            "line 2: unknown template variable 'thsi' (did you mean this?)");
}

TEST(Template, StructureErrors) {
  EXPECT_EQ(RenderError("x {{ env"), "line 1: {{ without }}; close the tag with }}");
  EXPECT_EQ(RenderError("\n{% if env"), "line 2: {% without %}; close the tag with %}");
  EXPECT_EQ(RenderError("{% endif %}"), "line 1: {% endif %} without {% if %}");
  EXPECT_EQ(RenderError("{% else %}"), "line 1: {% else %} without {% if %}");
  EXPECT_EQ(RenderError("{% elif env %}"), "line 1: {% elif %} without {% if %}");
  EXPECT_EQ(RenderError("{% if env %}{% else %}{% elif env %}{% endif %}"),
            "line 1: {% elif %} after {% else %}");
  EXPECT_EQ(RenderError("{% if env %}{% else %}\n{% else %}{% endif %}"),
            "line 2: a second {% else %} in one {% if %}");
  EXPECT_EQ(RenderError("{% if %}{% endif %}"),
            "line 1: {% if %} needs a condition, e.g. {% if is_incremental %}");
  EXPECT_EQ(RenderError("{% fi env %}"),
            "line 1: unknown tag {% fi %} (did you mean if?); supported: if, elif, else, endif");
  EXPECT_EQ(RenderError("{% for x in y %}"),
            "line 1: unknown tag {% for %}; supported: if, elif, else, endif");
  EXPECT_EQ(RenderError("{% %}"), "line 1: empty {% %}; expected if, elif, else or endif");
  EXPECT_EQ(RenderError("{% if env %}{% endif extra %}"),
            "line 1: unexpected 'extra' after endif; write {% endif %}");
  // The innermost unclosed if is named.
  EXPECT_EQ(RenderError("{% if env %}\n{% if env %}\n{% endif %}"),
            "line 1: {% if %} without {% endif %}");
  EXPECT_EQ(RenderError("{% if env %}\n{% if env %}\n"), "line 2: {% if %} without {% endif %}");
}

TEST(Template, ExpressionErrors) {
  EXPECT_EQ(RenderError("{{ }}"),
            "line 1: empty {{ }}; write a variable such as var('name') or partition");
  EXPECT_EQ(RenderError("{{ var(region) }}"),
            "line 1: var() takes a quoted name, e.g. var('region')");
  EXPECT_EQ(RenderError("{{ var }}"), "line 1: var needs a quoted name: var('name')");
  EXPECT_EQ(RenderError("{{ var('') }}"), "line 1: var('') needs a name, e.g. var('region')");
  EXPECT_EQ(RenderError("{{ var('x) }}"),
            "line 1: unterminated string in var(...); close the quote");
  EXPECT_EQ(RenderError("{{ var('x' }}"), "line 1: missing ) after var('x'");
  EXPECT_EQ(RenderError("{{ var('x', y) }}"),
            "line 1: the default in var('x', ...) must be a quoted string or a number");
  EXPECT_EQ(RenderError("{{ vars('x') }}"),
            "line 1: unknown template function 'vars' (did you mean var?); the only function "
            "is var('name')");
  EXPECT_EQ(RenderError("{{ partition | upper }}"),
            "line 1: unexpected '| upper' after partition; a tag holds one expression (filters "
            "and operators are not supported)");
  EXPECT_EQ(RenderError("{{ is_incremental }}"),
            "line 1: is_incremental is a condition; use {% if is_incremental %}");
  EXPECT_EQ(RenderError("{% if is_incremental and env %}{% endif %}"),
            "line 1: unexpected 'and env' after is_incremental; a tag holds one expression "
            "(filters and operators are not supported)");
  EXPECT_EQ(RenderError("{{ 'x' }}"),
            "line 1: unexpected ''x'' in a tag; expected var('name'), env, partition, start, end "
            "or this");
}

TEST(Template, CheckTemplateValidatesEveryBranch) {
  nlohmann::json vars = {{"region", "north"}};
  EXPECT_FALSE(CheckTemplate("plain text", vars).has_value());
  EXPECT_FALSE(
      CheckTemplate("{% if is_incremental %}{{ var('region') }}{% else %}{{ this }}{% endif %}",
                    vars)
          .has_value());
  // An unset var is reported even in a branch a render might not take.
  std::optional<TemplateError> err =
      CheckTemplate("a\n{% if is_incremental %}\n{{ var('cutoff') }}{% endif %}", vars, 5);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->line, 7);
  EXPECT_EQ(err->ToString(),
            "line 7: var('cutoff') is not set; define it under vars: in sluice.yaml or give a "
            "default");
  EXPECT_FALSE(CheckTemplate("{{ var('cutoff', '2020') }}", vars).has_value());
  err = CheckTemplate("{% if env %}", vars);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->message, "{% if %} without {% endif %}");
}

}  // namespace
}  // namespace sluice
