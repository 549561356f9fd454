// Fuzzes the template engine: checking and rendering arbitrary text must
// return a value or an error with a line number, never crash or hang.
#include <cstdint>
#include <string_view>

#include "config/template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  sluice::TemplateContext ctx;
  ctx.vars = {{"x", 1}, {"name", "a'b"}};
  ctx.partition = "2026-01-01";
  ctx.start = "2026-01-01";
  ctx.end = "2026-01-02";
  ctx.this_name = "t";
  (void)sluice::CheckTemplate(text, ctx.vars);
  (void)sluice::RenderTemplate(text, ctx);
  ctx.is_incremental = true;
  (void)sluice::RenderTemplate(text, ctx);
  return 0;
}
