// Fuzzes the HTML table extractor (gumbo, spans, header rows): any page must
// give a table or an error, never a crash, a hang or a runaway allocation.
#include <cstdint>
#include <string>

#include "ingest/html_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string html(reinterpret_cast<const char*>(data), size);
  (void)sluice::ExtractHtmlTable(html, nullptr);
  (void)sluice::ExtractHtmlTable(html, 1, false);
  (void)sluice::ExtractHtmlTable(html, "#t");
  return 0;
}
