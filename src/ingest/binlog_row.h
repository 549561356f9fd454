// MariaDB/MySQL row-based binlog events, decoded (cdc_mariadb.cpp): a
// TABLE_MAP's columns (their binlog types and metadata, and with
// binlog_row_metadata = FULL their names, signedness and ENUM/SET values)
// and one row image's values as the text the `database` decoder reads for
// the column's type — the same text a full read of the table writes.
// Connector/C's own row decoder (mariadb_rpl_extract_rows) mis-sizes ENUM
// and unsigned columns, so this one is ours, checked against bytes a real
// server wrote (test/unit/binlog_row_test.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace sluice::binlog {

struct Column {
  std::string name;
  uint8_t type = 0;         // the binlog's (enum_field_types; STRING's real type resolved)
  uint16_t meta = 0;        // its metadata (see DecodeValue)
  uint32_t max_length = 0;  // STRING, VARCHAR: the longest value in bytes
  bool is_unsigned = false;
  std::vector<std::string> elements;  // ENUM, SET: their values, in order
};

struct TableMap {
  uint64_t table_id = 0;
  std::string database, table;
  std::vector<Column> columns;
};

// A TABLE_MAP's parts, as Connector/C hands them over: the column types,
// the metadata block, the signedness bitmap (nullptr: all signed) and the
// optional metadata's names and ENUM/SET values (each a length-encoded
// list). Names must be there (binlog_row_metadata = FULL).
Result<TableMap> ParseTableMap(uint64_t table_id, std::string database, std::string table,
                               const std::string& types, const std::string& metadata,
                               const unsigned char* signedness, const std::string& names,
                               const std::string& enum_values, const std::string& set_values);

// One value of a row image.
struct Value {
  bool null = false;
  bool zero_date = false;  // '0000-00-00': written as NULL, and counted
  bool bytes = false;      // `text` holds the column's bytes (strings, blobs)
  std::string text;
};

// Decodes the value of column `c` at data[0..size): its text, and how many
// bytes it took. An error when the bytes run out or the type is unknown.
Result<size_t> DecodeValue(const Column& c, const unsigned char* data, size_t size, Value* out);

// One row image: the null bitmap over the `present` columns, then each
// present non-null column's value. `present`: a bit per column (LSB first).
// Returns the bytes it took; `out` gets a value per column (absent ones null).
Result<size_t> DecodeRow(const TableMap& map, const unsigned char* present,
                         const unsigned char* data, size_t size, std::vector<Value>* out);

}  // namespace sluice::binlog
