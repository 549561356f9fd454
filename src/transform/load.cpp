#include "transform/load.h"

#include <fmt/format.h>

#include <set>

#include "core/strings.h"
#include "ingest/decoder.h"
#include "transform/publication.h"

namespace sluice {
namespace {

enum class BadRows { kFail, kSkip };

Result<BadRows> BadRowsPolicy(const LoadSpec& spec) {
  if (!spec.options.is_object() || !spec.options.contains("bad_rows")) return BadRows::kFail;
  const nlohmann::json& v = spec.options["bad_rows"];
  std::string text = v.is_string() ? v.get<std::string>() : v.dump();
  if (text == "fail") return BadRows::kFail;
  if (text == "skip") return BadRows::kSkip;
  return Status::Invalid(spec.table->loc.ToString() + ": options.bad_rows: '" + text +
                         "': use fail (the default: a row that cannot be read fails the load) "
                         "or skip (load the other rows; each skipped row is logged)");
}

// One read of the load: an object (or, for formats that read many files at
// once, all of them), with the temp tables its reader keeps rejects in.
struct Read {
  std::string sql;
  std::string sha256;  // "" for a read of several objects
  std::string label;   // " (object 0123456789ab)" when the load has several objects
  std::vector<RejectTables> rejects;
};

struct Reads {
  std::vector<Read> reads;
  std::vector<std::string> notes;
};

// How a read differs from the plain first one: guarded CSV reads (with the
// dialect the engine's sniffer chose, per object), columns read as text, or
// JSON types inferred from every row.
struct Widening {
  bool guarded = false;
  std::map<std::string, nlohmann::json> dialects;  // by object sha256
  std::vector<std::string> text_columns;
  bool sample_all = false;
};

Result<Reads> PlanReads(const LoadSpec& spec, const Decoder& decoder, bool cleaned,
                        const Widening& widening) {
  Reads out;
  DecodeRequest many;
  many.format = spec.format;
  many.options = spec.options;
  many.cache_dir = spec.cache_dir;
  many.sample_all = widening.sample_all;
  for (const LoadObject& obj : spec.objects) many.paths.push_back(obj.path);
  if (!cleaned && spec.objects.size() > 1 && decoder.ReadsManyFiles(many)) {
    // An API's pages: one reader over all of them.
    Result<DecodePlan> plan = decoder.Plan(many);
    if (!plan.ok()) return plan.status().WithContext(spec.table->loc.ToString());
    out.notes = plan->notes;
    out.reads.push_back({plan->sql, "", "", plan->rejects});
    return out;
  }
  for (const LoadObject& obj : spec.objects) {
    DecodeRequest one;
    one.path = obj.path;
    one.format = spec.format;
    one.options = spec.options;
    one.all_text = cleaned;
    one.cache_dir = spec.cache_dir;
    one.sample_all = widening.sample_all;
    one.keep_rejects = widening.guarded;
    one.text_columns = widening.text_columns;
    auto dialect = widening.dialects.find(obj.sha256);
    if (dialect != widening.dialects.end()) one.dialect = dialect->second;
    Result<DecodePlan> plan = decoder.Plan(one);
    if (!plan.ok()) return plan.status().WithContext(spec.table->loc.ToString());
    std::string label = spec.objects.size() > 1 ? " (object " + obj.sha256.substr(0, 12) + ")" : "";
    for (const std::string& note : plan->notes) out.notes.push_back(note + label);
    out.reads.push_back({plan->sql, obj.sha256, label, plan->rejects});
  }
  return out;
}

void DropRejectTables(WarehouseSession& session, const Reads& reads) {
  for (const Read& read : reads.reads) {
    for (const RejectTables& r : read.rejects) {
      (void)session.Execute("DROP TABLE IF EXISTS temp." + QuoteIdent(r.errors) +
                            "; DROP TABLE IF EXISTS temp." + QuoteIdent(r.scans));
    }
  }
}

// The columns of the raw objects (read as text), in order, across objects.
Result<std::vector<std::string>> InputColumns(WarehouseSession& session, const Reads& reads) {
  std::vector<std::string> columns;
  std::set<std::string> seen;
  for (const Read& read : reads.reads) {
    ASSIGN_OR_RETURN(nlohmann::json schema, DescribeRelation(session, read.sql));
    for (const auto& c : schema) {
      std::string name = c.value("name", "");
      if (seen.insert(name).second) columns.push_back(name);
    }
  }
  return columns;
}

// What the readers set aside, per object.
struct CastFailure {
  std::string column;
  std::string line;
  std::string message;
};
struct BadRow {
  std::string line;
  std::string message;
};
struct ReadRejects {
  std::map<std::string, std::vector<CastFailure>> casts;  // by object sha256
  int64_t bad_rows = 0;                                   // distinct lines, all objects
  std::vector<std::pair<std::string, BadRow>> examples;   // (label, row), the first few
};

Result<ReadRejects> CollectRejects(WarehouseSession& session, const Reads& reads) {
  ReadRejects out;
  for (const Read& read : reads.reads) {
    for (const RejectTables& r : read.rejects) {
      std::string errors = "temp." + QuoteIdent(r.errors);
      ASSIGN_OR_RETURN(QueryResult casts,
                       session.Query("SELECT column_name, min(line), arg_min(error_message, line) "
                                     "FROM " +
                                     errors + " WHERE error_type = 'CAST' GROUP BY 1 ORDER BY 2"));
      for (const auto& row : casts.rows) {
        out.casts[read.sha256].push_back(
            {row[0].value_or(""), row[1].value_or("?"), row[2].value_or("")});
      }
      ASSIGN_OR_RETURN(QueryResult bad,
                       session.Query("SELECT line, string_agg(DISTINCT error_message, '; '), "
                                     "count(*) OVER () FROM " +
                                     errors +
                                     " WHERE error_type <> 'CAST' GROUP BY line ORDER BY line "
                                     "LIMIT 5"));
      if (!bad.rows.empty()) out.bad_rows += std::stoll(bad.rows[0][2].value_or("0"));
      for (const auto& row : bad.rows) {
        if (out.examples.size() < 5) {
          out.examples.push_back({read.label, {row[0].value_or("?"), row[1].value_or("")}});
        }
      }
    }
  }
  return out;
}

// The types a column inferred as `type` may widen to, narrowest first.
std::vector<std::string> WiderTypes(const std::string& type) {
  if (type == "TINYINT" || type == "SMALLINT" || type == "INTEGER") {
    return {"BIGINT", "HUGEINT", "DOUBLE", "VARCHAR"};
  }
  if (type == "BIGINT") return {"HUGEINT", "DOUBLE", "VARCHAR"};
  if (type == "HUGEINT" || type == "FLOAT" || StartsWith(type, "DECIMAL")) {
    return {"DOUBLE", "VARCHAR"};
  }
  if (type == "DATE") return {"TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "VARCHAR"};
  if (type == "TIMESTAMP") return {"TIMESTAMP WITH TIME ZONE", "VARCHAR"};
  return {"VARCHAR"};
}

// The date and timestamp formats the sniffer chose ("" when ISO).
struct Formats {
  std::string date, timestamp;
};

// A text value as `type`, parsed as the sniffed read parses it; NULL when it is not one.
std::string ConvertSql(const std::string& column, const std::string& type, const Formats& f) {
  if (type == "DATE" && !f.date.empty()) {
    return "CAST(try_strptime(" + column + ", " + QuoteLiteral(f.date) + ") AS DATE)";
  }
  if (type == "TIMESTAMP" && !f.timestamp.empty()) {
    return "try_strptime(" + column + ", " + QuoteLiteral(f.timestamp) + ")";
  }
  if (type == "TINYINT" || type == "SMALLINT" || type == "INTEGER" || type == "BIGINT" ||
      type == "HUGEINT") {
    // TRY_CAST('2.5' AS BIGINT) rounds; the CSV reader refuses it, and so must this.
    return "CASE WHEN regexp_full_match(trim(" + column + "), '[+-]?[0-9]+') THEN TRY_CAST(" +
           column + " AS " + type + ") END";
  }
  return "TRY_CAST(" + column + " AS " + type + ")";
}

// After a read with columns as text, each takes the narrowest type on its
// ladder (the type first inferred, then wider ones) that holds every value:
// one pass to count what each candidate would lose, one to convert. Returns
// "column: from -> to" for the columns that did not keep their type.
Result<std::vector<std::string>> NarrowTextColumns(
    WarehouseSession& session, const std::string& physical,
    const std::map<std::string, std::string>& inferred, const Formats& formats) {
  std::vector<std::string> counts;
  std::vector<std::pair<std::string, std::string>> candidates;  // (column, type), ladder order
  for (const auto& [column, type] : inferred) {
    std::vector<std::string> ladder = {type};
    for (const std::string& wider : WiderTypes(type)) ladder.push_back(wider);
    for (const std::string& t : ladder) {
      if (t == "VARCHAR") break;
      std::string id = QuoteIdent(column);
      counts.push_back("count(*) FILTER (WHERE " + id + " IS NOT NULL AND " +
                       ConvertSql(id, t, formats) + " IS NULL)");
      candidates.push_back({column, t});
    }
  }
  std::map<std::string, std::string> chosen;
  for (const auto& [column, type] : inferred) chosen[column] = "VARCHAR";
  if (!counts.empty()) {
    ASSIGN_OR_RETURN(QueryResult failures,
                     session.Query("SELECT " + Join(counts, ", ") + " FROM " + physical));
    std::set<std::string> settled;
    for (size_t i = 0; i < candidates.size(); ++i) {
      const auto& [column, type] = candidates[i];
      if (settled.count(column)) continue;
      if (failures.rows[0][i].value_or("1") == "0") {
        chosen[column] = type;
        settled.insert(column);
      }
    }
  }
  std::vector<std::string> conversions, widened;
  for (const auto& [column, type] : chosen) {
    if (type != "VARCHAR") {
      conversions.push_back(ConvertSql(QuoteIdent(column), type, formats) + " AS " +
                            QuoteIdent(column));
    }
    if (type != inferred.at(column))
      widened.push_back(column + ": " + inferred.at(column) + " -> " + type);
  }
  if (!conversions.empty()) {
    RETURN_IF_ERROR(session.Execute(CreateTableSql(physical, /*replace=*/true) +
                                    " AS SELECT * REPLACE (" + Join(conversions, ", ") + ") FROM " +
                                    physical));
  }
  return widened;
}

}  // namespace

// A database's numbers of unbounded precision (numeric without a typmod)
// were read as text: each becomes the narrowest DECIMAL(p,s) that holds
// every value exactly, or stays text when none does (NaN, more than 38
// digits) — said so, never rounded.
Result<std::vector<std::string>> FitNumericColumns(WarehouseSession& session,
                                                   const nlohmann::json& columns,
                                                   const std::string& physical) {
  std::vector<std::string> notes, conversions;
  if (!columns.is_array()) return notes;
  for (const auto& c : columns) {
    if (c.value("encoding", "") != "fit") continue;
    std::string id = QuoteIdent(c.value("name", ""));
    std::string digits = "ltrim(" + id + ", '-')";
    ASSIGN_OR_RETURN(
        QueryResult r,
        session.Query("SELECT coalesce(max(length(ltrim(split_part(" + digits +
                      ", '.', 1), '0'))), 0), coalesce(max(length(split_part(" + digits +
                      ", '.', 2))), 0), count(*) FILTER (WHERE NOT regexp_full_match(" + id +
                      ", '-?[0-9]+(\\.[0-9]+)?')) FROM " + physical + " WHERE " + id +
                      " IS NOT NULL"));
    int64_t whole = std::stoll(r.rows[0][0].value_or("0"));
    int64_t scale = std::stoll(r.rows[0][1].value_or("0"));
    int64_t odd = std::stoll(r.rows[0][2].value_or("0"));
    std::string name = c.value("name", "");
    if (odd > 0 || whole + scale > 38) {
      notes.push_back("column " + name + " (" + c.value("source_type", "numeric") +
                      ") kept as text: " +
                      (odd > 0 ? std::to_string(odd) + " value(s) are not finite numbers"
                               : "its values need more than 38 digits") +
                      "; DECIMAL would lose them");
      continue;
    }
    std::string type = "DECIMAL(" + std::to_string(std::max<int64_t>(1, whole + scale)) + "," +
                       std::to_string(scale) + ")";
    conversions.push_back("CAST(" + id + " AS " + type + ") AS " + id);
  }
  // One parallel rewrite for them all (ALTER TABLE converts on one thread).
  if (!conversions.empty()) {
    RETURN_IF_ERROR(session.Execute(CreateTableSql(physical, /*replace=*/true) +
                                    " AS SELECT * REPLACE (" + Join(conversions, ", ") + ") FROM " +
                                    physical));
  }
  return notes;
}

namespace {

bool IsJsonTypeMismatch(const Status& st) {
  const std::string& m = st.message();
  return m.find("JSON transform error") != std::string::npos ||
         m.find("Failed to cast value") != std::string::npos;
}

std::map<std::string, std::string> TypesOf(const nlohmann::json& schema) {
  std::map<std::string, std::string> types;
  for (const auto& c : schema) types[c.value("name", "")] = c.value("type", "");
  return types;
}

// Statements of the build, in order, for a load's reads.
Result<std::string> BuildStatement(WarehouseSession& session, const LoadSpec& spec,
                                   const Reads& reads, bool cleaned, PhaseSql* phases) {
  if (!cleaned) {
    std::vector<std::string> selects;
    for (const Read& read : reads.reads) selects.push_back("SELECT * FROM " + read.sql);
    return CreateTableSql(spec.targets.physical) + " AS " + Join(selects, " UNION ALL BY NAME ");
  }
  ASSIGN_OR_RETURN(std::vector<std::string> columns, InputColumns(session, reads));
  std::vector<PhaseInput> inputs;
  for (const Read& read : reads.reads) inputs.push_back({read.sql, read.sha256});
  static const std::map<std::string, FieldSpec> kNoFields;
  ASSIGN_OR_RETURN(*phases, CompilePhases(*spec.table, inputs, columns,
                                          spec.fields ? *spec.fields : kNoFields, spec.targets));
  return phases->build;
}

std::string BadRowsText(const ReadRejects& rejects) {
  std::vector<std::string> lines;
  for (const auto& [label, row] : rejects.examples) {
    lines.push_back("line " + row.line + label + " (" + row.message + ")");
  }
  return Join(lines, "; ") + (rejects.bad_rows > static_cast<int64_t>(lines.size()) ? "; ..." : "");
}

// Asks the engine's sniffer what it chose for each object (the dialect a
// guarded read states); NotFound for formats without a sniffer.
Status Guard(WarehouseSession& session, const LoadSpec& spec, const Decoder& decoder, bool cleaned,
             Widening& widening) {
  for (const LoadObject& obj : spec.objects) {
    DecodeRequest one;
    one.path = obj.path;
    one.format = spec.format;
    one.options = spec.options;
    one.all_text = cleaned;
    one.cache_dir = spec.cache_dir;
    std::optional<std::string> sniff = decoder.SniffSql(one);
    if (!sniff) return Status::NotFound(spec.format + " has no sniffer");
    Result<QueryResult> row = session.Query(*sniff);
    if (!row.ok()) {
      // The strict sniffer gives up on a file whose rows disagree (the
      // engine's default read fails too): ask the tolerant one.
      one.keep_rejects = true;
      sniff = decoder.SniffSql(one);
      row = session.Query(*sniff);
      if (!row.ok()) return row.status();
    }
    nlohmann::json dialect =
        nlohmann::json::parse(row->Scalar().value_or(""), nullptr, /*allow_exceptions=*/false);
    if (!dialect.is_object()) return Status::Internal("sniff_csv returned no dialect");
    widening.dialects[obj.sha256] = std::move(dialect);
  }
  widening.guarded = true;
  return Status::Ok();
}

// The column (and line) a plain CSV read stopped at, from the engine's
// conversion error ("CSV Error on Line: 7 ... converting column \"id\"").
std::optional<CastFailure> CastFailureOf(const Status& st) {
  const std::string& m = st.message();
  const std::string column_mark = "converting column \"";
  size_t at = m.find(column_mark);
  if (at == std::string::npos) return std::nullopt;
  size_t start = at + column_mark.size();
  size_t end = m.find('"', start);
  if (end == std::string::npos) return std::nullopt;
  CastFailure f;
  f.column = m.substr(start, end - start);
  const std::string line_mark = "Line: ";
  size_t line_at = m.find(line_mark);
  if (line_at != std::string::npos) {
    size_t digits = line_at + line_mark.size();
    while (digits < m.size() && std::isdigit(static_cast<unsigned char>(m[digits]))) {
      f.line += m[digits++];
    }
  }
  size_t could = m.find("Could not convert", end);
  if (could != std::string::npos) f.message = m.substr(could, m.find('\n', could) - could);
  return f;
}

// Reads `f.column` as text from now on; remembers the type the sniffer gave it.
void AddTextColumn(const CastFailure& f, const std::string& label, Widening& widening,
                   std::map<std::string, std::string>& inferred,
                   std::map<std::string, std::string>& misfits) {
  if (std::find(widening.text_columns.begin(), widening.text_columns.end(), f.column) ==
      widening.text_columns.end()) {
    widening.text_columns.push_back(f.column);
  }
  if (!inferred.count(f.column)) {
    for (const auto& [sha, dialect] : widening.dialects) {
      for (const auto& c : dialect.value("columns", nlohmann::json::array())) {
        if (c.value("name", "") == f.column) inferred[f.column] = c.value("type", "VARCHAR");
      }
    }
  }
  if (!f.line.empty() && !misfits.count(f.column)) {
    std::string message = f.message;
    size_t could = message.find("Could not convert");
    if (could != std::string::npos) message = message.substr(could);
    misfits[f.column] = "line " + f.line + label + (message.empty() ? "" : ": " + message);
  }
}

}  // namespace

Result<LoadOutcome> LoadSourceTable(WarehouseSession& session, const LoadSpec& spec,
                                    const BuildExecutor& execute) {
  ASSIGN_OR_RETURN(const Decoder* decoder, FindDecoder(spec.format));
  ASSIGN_OR_RETURN(BadRows policy, BadRowsPolicy(spec));
  const bool cleaned = !spec.table->columns.empty();
  const bool json = spec.format == "json" || spec.format == "ndjson";
  const bool pad = spec.options.is_object() && spec.options.value("ragged", "report") == "pad";
  const std::string& physical = spec.targets.physical;
  LoadOutcome out;
  Widening widening;
  std::map<std::string, std::string> inferred;  // column -> the type first inferred
  std::map<std::string, std::string> misfits;   // column -> where a value did not fit
  Reads reads;
  ReadRejects rejects;
  PhaseSql phases;
  // A plain read first, exactly as the engine reads by default. When it
  // fails: a guarded read with the dialect the engine chose, that keeps what
  // it cannot read aside; when a value did not fit its type, the column is
  // read as text (and narrowed after). Padded reads are guarded from the start:
  // a plain padded read would make columns of a long row's extra fields.
  if (pad) RETURN_IF_ERROR(Guard(session, spec, *decoder, cleaned, widening));
  for (int attempt = 0;; ++attempt) {
    if (attempt > 3) {
      return Status::Internal(spec.table->loc.ToString() +
                              ": values still did not fit after widening their columns");
    }
    ASSIGN_OR_RETURN(reads, PlanReads(spec, *decoder, cleaned, widening));
    DropRejectTables(session, reads);
    (void)session.Execute("DROP TABLE IF EXISTS " + physical);
    Result<std::string> build = BuildStatement(session, spec, reads, cleaned, &phases);
    Status built = build.ok() ? execute(*build) : build.status();
    if (!built.ok()) {
      DropRejectTables(session, reads);
      if (built.code() == StatusCode::kTimeout) return built;
      if (!widening.guarded) {
        Status guarded = Guard(session, spec, *decoder, cleaned, widening);
        if (guarded.ok()) {
          if (std::optional<CastFailure> misfit = CastFailureOf(built)) {
            // A value did not fit: every typed column is read as text once
            // more and narrowed after, so one more read settles them all.
            AddTextColumn(*misfit, "", widening, inferred, misfits);
            for (const auto& [sha, dialect] : widening.dialects) {
              for (const auto& c : dialect.value("columns", nlohmann::json::array())) {
                std::string type = c.value("type", "VARCHAR");
                if (type == "VARCHAR") continue;
                AddTextColumn({c.value("name", ""), "", ""}, "", widening, inferred, misfits);
              }
            }
          }
          continue;
        }
        // Not a format with a sniffer (NotFound), or one the engine cannot read either.
        if (guarded.code() != StatusCode::kNotFound) return built;
      }
      if (!widening.sample_all && json && !cleaned && IsJsonTypeMismatch(built)) {
        // JSON's reader stops at the first value its sample did not foresee:
        // read again with types inferred from every row.
        for (const Read& read : reads.reads) {
          Result<nlohmann::json> sampled = DescribeRelation(session, read.sql);
          if (sampled.ok()) {
            for (const auto& [name, type] : TypesOf(*sampled)) inferred.emplace(name, type);
          }
        }
        widening.sample_all = true;
        out.notes.push_back("a value did not fit the type inferred from a sample (" +
                            Split(built.message(), '\n').front() +
                            "); read again with types inferred from every row");
        continue;
      }
      return built;
    }
    ASSIGN_OR_RETURN(rejects, CollectRejects(session, reads));
    if (!rejects.casts.empty()) {
      for (const auto& [sha, failures] : rejects.casts) {
        std::string label = spec.objects.size() > 1 ? " of object " + sha.substr(0, 12) : "";
        for (const CastFailure& f : failures) {
          AddTextColumn(f, label, widening, inferred, misfits);
        }
      }
      DropRejectTables(session, reads);
      continue;
    }
    break;
  }
  for (const std::string& note : reads.notes) out.notes.push_back(note);
  if (!cleaned && !spec.options.contains("delimiter")) {
    // The engine's answer to a file whose rows disagree on their fields: one
    // column holding each line. Loaded as the engine loads it, but said.
    ASSIGN_OR_RETURN(nlohmann::json schema, DescribeRelation(session, physical));
    std::string only = schema.size() == 1 ? schema[0].value("name", "") : "";
    if (only.find_first_of(",;|\t") != std::string::npos) {
      out.notes.push_back("read as one column named '" + only +
                          "': DuckDB's sniffer found no delimiter that gives every row the same "
                          "number of fields; set options: {delimiter: ...} to split the rows "
                          "(those with a wrong number of fields are then reported by line)");
    }
  }

  // Rows broken in structure: fail, or leave them out and log each.
  if (rejects.bad_rows > 0 && policy == BadRows::kFail) {
    DropRejectTables(session, reads);
    return Status::DataError(fmt::format(
        "{} row(s) could not be read (too many or too few fields, or bad quoting): {}; nothing "
        "was published. Fix the file, or set options: {{bad_rows: skip}} on the table to load "
        "the other rows (each skipped row is logged in _sluice.issues){}",
        rejects.bad_rows, BadRowsText(rejects),
        cleaned ? "" : ", or options: {ragged: pad} when short rows should get nulls"));
  }

  if (spec.format == "database" && !cleaned) {
    auto columns = spec.options.find("columns");
    ASSIGN_OR_RETURN(
        std::vector<std::string> fitted,
        FitNumericColumns(session, columns == spec.options.end() ? nlohmann::json() : *columns,
                          physical));
    for (std::string& note : fitted) out.notes.push_back(std::move(note));
  }

  // Columns read as text the second time take the narrowest type that holds
  // every value; JSON columns the full read made JSON become text.
  if (!widening.text_columns.empty()) {
    Formats formats;
    if (!widening.dialects.empty()) {
      const nlohmann::json& d = widening.dialects.begin()->second;
      if (d.contains("dateformat") && d["dateformat"].is_string()) formats.date = d["dateformat"];
      if (d.contains("timestampformat") && d["timestampformat"].is_string()) {
        formats.timestamp = d["timestampformat"];
      }
    }
    ASSIGN_OR_RETURN(out.widened, NarrowTextColumns(session, physical, inferred, formats));
  } else if (widening.sample_all) {
    ASSIGN_OR_RETURN(nlohmann::json schema, DescribeRelation(session, physical));
    for (const auto& [column, type] : TypesOf(schema)) {
      auto before = inferred.find(column);
      if (before == inferred.end() || before->second == type) continue;
      std::string now = type;
      if (type == "JSON" && before->second != "JSON") {
        std::string id = QuoteIdent(column);
        RETURN_IF_ERROR(session.Execute("ALTER TABLE " + physical + " ALTER COLUMN " + id +
                                        " SET DATA TYPE VARCHAR USING json_extract_string(" + id +
                                        ", '$')"));
        now = "VARCHAR";
      }
      out.widened.push_back(column + ": " + before->second + " -> " + now);
    }
  }
  if (!out.widened.empty()) {
    std::vector<std::string> said;
    for (const std::string& w : out.widened) {
      auto misfit = misfits.find(w.substr(0, w.find(": ")));
      said.push_back(w + (misfit == misfits.end() ? "" : " (" + misfit->second + ")"));
    }
    out.notes.push_back(
        "a value did not fit the type inferred from a sample, so its column "
        "was widened and no row was dropped: " +
        Join(said, "; "));
  }

  // The issue log: this version's rows replace an earlier build's.
  const std::string asset = QuoteLiteral(spec.targets.asset);
  const std::string version = QuoteLiteral(spec.targets.version);
  Status logged = session.Execute("DELETE FROM _sluice.issues WHERE asset = " + asset +
                                  " AND version_id = " + version);
  if (logged.ok() && cleaned) {
    for (const std::string* sql : {&phases.dedup, &phases.quarantine, &phases.issues}) {
      if (logged.ok() && !sql->empty()) logged = session.Execute(*sql);
    }
  }
  if (logged.ok() && rejects.bad_rows > 0) {
    for (const Read& read : reads.reads) {
      for (const RejectTables& r : read.rejects) {
        if (!logged.ok()) break;
        logged = session.Execute(
            "INSERT INTO _sluice.issues (asset, version_id, object_sha256, record, field, "
            "issue_type, value, message, severity) SELECT " +
            asset + ", " + version + ", " + QuoteLiteral(read.sha256) +
            ", line, NULL, 'bad_row', any_value(csv_line), 'line ' || line || ' not loaded "
            "(bad_rows: skip): ' || string_agg(DISTINCT error_message, '; '), 'warn' FROM temp." +
            QuoteIdent(r.errors) + " WHERE error_type <> 'CAST' GROUP BY line");
      }
    }
    out.bad_rows = rejects.bad_rows;
    out.notes.push_back(fmt::format(
        "{} row(s) could not be read and were left out (bad_rows: skip): {}; each is in "
        "_sluice.issues as bad_row (its record is the line in the file)",
        rejects.bad_rows, BadRowsText(rejects)));
  }
  if (logged.ok() && cleaned) logged = session.Execute(phases.finalize);
  if (cleaned && !phases.unmapped.empty()) {
    out.notes.push_back(std::string(spec.table->columns_only
                                        ? "input columns left out (columns_only: true): "
                                        : "input columns without a columns: entry, kept "
                                          "under their own names: ") +
                        Join(phases.unmapped, ", "));
  }
  DropRejectTables(session, reads);
  if (!logged.ok()) return logged.WithContext("writing the issue log");
  if (cleaned && !spec.targets.quarantine.empty() && !phases.quarantine.empty()) {
    ASSIGN_OR_RETURN(QueryResult q,
                     session.Query("SELECT count(*) FROM " + spec.targets.quarantine));
    if (q.ScalarInt() > 0) {
      out.notes.push_back(
          fmt::format("{} row(s) quarantined (a value failed its type or range): see {}",
                      q.ScalarInt(), spec.targets.quarantine));
    }
  }
  ASSIGN_OR_RETURN(std::string summary,
                   IssueSummary(session, spec.targets.asset, spec.targets.version));
  if (!summary.empty()) out.notes.push_back(summary);
  return out;
}

Result<std::string> IssueSummary(WarehouseSession& session, const std::string& asset,
                                 const std::string& version) {
  ASSIGN_OR_RETURN(
      QueryResult counts,
      session.Query("SELECT issue_type, coalesce(field, ''), "
                    "sum(CASE WHEN record IS NULL THEN TRY_CAST(split_part(message, ' ', 1) AS "
                    "BIGINT) ELSE 1 END), "
                    "count(*) FILTER (WHERE record IS NULL) FROM _sluice.issues WHERE asset = " +
                    QuoteLiteral(asset) + " AND version_id = " + QuoteLiteral(version) +
                    " GROUP BY ALL ORDER BY 3 DESC, 1, 2"));
  if (counts.rows.empty()) return std::string();
  int64_t total = 0;
  bool bounded = false;
  std::vector<std::string> parts;
  for (const auto& row : counts.rows) {
    int64_t n = std::stoll(row[2].value_or("0"));
    total += n;
    bounded = bounded || row[3].value_or("0") != "0";
    std::string field = row[1].value_or("");
    parts.push_back(
        fmt::format("{} {}{}", n, row[0].value_or(""), field.empty() ? "" : " (" + field + ")"));
  }
  if (parts.size() > 8) {
    parts.resize(8);
    parts.push_back("...");
  }
  return fmt::format(
      "{} issue(s): {}{}; see _sluice.current_issues (sluice query \"select * from "
      "_sluice.current_issues where asset = '{}'\")",
      total, Join(parts, ", "),
      bounded ? fmt::format("; beyond {} per object, field and issue type only a count is kept",
                            kIssueRowsPerKind)
              : "",
      asset);
}

}  // namespace sluice
