#include "ingest/binlog_row.h"

#include <cstring>
#include <ctime>

#include <fmt/format.h>

namespace sluice::binlog {
namespace {

// enum_field_types, as the binlog writes them.
enum : uint8_t {
  kDecimal = 0,
  kTiny = 1,
  kShort = 2,
  kLong = 3,
  kFloat = 4,
  kDouble = 5,
  kNull = 6,
  kTimestamp = 7,
  kLongLong = 8,
  kInt24 = 9,
  kDate = 10,
  kTime = 11,
  kDatetime = 12,
  kYear = 13,
  kNewDate = 14,
  kVarchar = 15,
  kBit = 16,
  kTimestamp2 = 17,
  kDatetime2 = 18,
  kTime2 = 19,
  kJson = 245,
  kNewDecimal = 246,
  kEnum = 247,
  kSet = 248,
  kTinyBlob = 249,
  kMediumBlob = 250,
  kLongBlob = 251,
  kBlob = 252,
  kVarString = 253,
  kString = 254,
  kGeometry = 255,
};

bool IsNumeric(uint8_t t) {
  // MariaDB's numeric fields (YEAR is one: Field_year is a Field_tiny), the
  // ones the signedness bitmap has a bit for.
  switch (t) {
    case kTiny:
    case kShort:
    case kInt24:
    case kLong:
    case kLongLong:
    case kFloat:
    case kDouble:
    case kNewDecimal:
    case kDecimal:
    case kYear:
      return true;
    default:
      return false;
  }
}

uint64_t LittleEndian(const unsigned char* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = n; i > 0; --i) v = (v << 8) | p[i - 1];
  return v;
}

uint64_t BigEndian(const unsigned char* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

// A length-encoded integer of the client protocol.
bool LengthEncoded(const unsigned char*& p, const unsigned char* end, uint64_t* out) {
  if (p >= end) return false;
  unsigned char first = *p++;
  size_t n = first < 251 ? 0 : first == 252 ? 2 : first == 253 ? 3 : first == 254 ? 8 : 99;
  if (n == 99 || static_cast<size_t>(end - p) < n) return false;
  *out = n == 0 ? first : LittleEndian(p, n);
  p += n;
  return true;
}

bool Strings(const unsigned char*& p, const unsigned char* end, uint64_t count,
             std::vector<std::string>* out) {
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t len = 0;
    if (!LengthEncoded(p, end, &len) || static_cast<uint64_t>(end - p) < len) return false;
    out->emplace_back(reinterpret_cast<const char*>(p), len);
    p += len;
  }
  return true;
}

size_t MetadataBytes(uint8_t t) {
  switch (t) {
    case kFloat:
    case kDouble:
    case kBlob:
    case kTinyBlob:
    case kMediumBlob:
    case kLongBlob:
    case kGeometry:
    case kJson:
    case kTimestamp2:
    case kDatetime2:
    case kTime2:
      return 1;
    case kVarchar:
    case kVarString:
    case kBit:
    case kNewDecimal:
    case kString:
    case kEnum:
    case kSet:
      return 2;
    default:
      return 0;
  }
}

std::string Fraction(uint32_t micros, int fsp) {
  if (fsp <= 0) return "";
  static const uint32_t kScale[] = {1000000, 100000, 10000, 1000, 100, 10, 1};
  return fmt::format(".{:0{}}", micros / kScale[fsp], fsp);
}

// The fraction of a TIMESTAMP2/DATETIME2 (big-endian, (fsp + 1) / 2 bytes)
// in microseconds.
uint32_t FractionMicros(const unsigned char* p, int fsp) {
  switch (fsp) {
    case 1:
    case 2:
      return static_cast<uint32_t>(p[0]) * 10000;
    case 3:
    case 4:
      return static_cast<uint32_t>(BigEndian(p, 2)) * 100;
    case 5:
    case 6:
      return static_cast<uint32_t>(BigEndian(p, 3));
    default:
      return 0;
  }
}

// A decimal's binary form (decimal2bin): groups of nine digits in four
// bytes, the leftover digits in fewer, the first bit flipped, and every bit
// inverted when negative.
Result<size_t> Decimal(int precision, int scale, const unsigned char* data, size_t size,
                       std::string* out) {
  static const int kDigitBytes[] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 4};
  if (precision < 1 || precision > 65 || scale < 0 || scale > precision) {
    return Status::DataError("a DECIMAL column's metadata is not a precision and scale");
  }
  const int intg = precision - scale;
  const int intg0 = intg / 9, intg0x = intg % 9, frac0 = scale / 9, frac0x = scale % 9;
  const size_t bytes =
      static_cast<size_t>(intg0 * 4 + kDigitBytes[intg0x] + frac0 * 4 + kDigitBytes[frac0x]);
  if (size < bytes) return Status::DataError("a DECIMAL value is cut short");
  std::vector<unsigned char> b(data, data + bytes);
  const bool negative = (b[0] & 0x80) == 0;
  b[0] ^= 0x80;
  if (negative) {
    for (unsigned char& c : b) c = static_cast<unsigned char>(~c);
  }
  size_t at = 0;
  auto group = [&](int digits) {
    int n = kDigitBytes[digits];
    uint64_t v = BigEndian(b.data() + at, static_cast<size_t>(n));
    at += static_cast<size_t>(n);
    return fmt::format("{:0{}}", v, digits);
  };
  std::string whole;
  if (intg0x > 0) whole += group(intg0x);
  for (int i = 0; i < intg0; ++i) whole += group(9);
  std::string frac;
  for (int i = 0; i < frac0; ++i) frac += group(9);
  if (frac0x > 0) frac += group(frac0x);
  size_t first = whole.find_first_not_of('0');
  whole = first == std::string::npos ? "0" : whole.substr(first);
  *out = (negative ? "-" : "") + whole + (scale > 0 ? "." + frac : "");
  return bytes;
}

std::string Civil(int64_t seconds, uint32_t micros, int fsp) {
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}{}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, Fraction(micros, fsp));
}

Status Short(const Column& c) {
  return Status::DataError("a binlog row of column " + c.name + " is cut short");
}

}  // namespace

Result<TableMap> ParseTableMap(uint64_t table_id, std::string database, std::string table,
                               const std::string& types, const std::string& metadata,
                               const unsigned char* signedness, const std::string& names,
                               const std::string& enum_values, const std::string& set_values) {
  TableMap map;
  map.table_id = table_id;
  map.database = std::move(database);
  map.table = std::move(table);
  const std::string where = "the binlog's description of " + map.database + "." + map.table;
  const auto* m = reinterpret_cast<const unsigned char*>(metadata.data());
  const unsigned char* m_end = m + metadata.size();
  std::vector<std::string> column_names;
  const auto* n = reinterpret_cast<const unsigned char*>(names.data());
  if (!Strings(n, n + names.size(), types.size(), &column_names)) {
    return Status::DataError(where +
                             " has no column names (binlog_row_metadata must be FULL: SET GLOBAL "
                             "binlog_row_metadata = FULL, and in the server's configuration)");
  }
  const auto* e = reinterpret_cast<const unsigned char*>(enum_values.data());
  const unsigned char* e_end = e + enum_values.size();
  const auto* s = reinterpret_cast<const unsigned char*>(set_values.data());
  const unsigned char* s_end = s + set_values.size();
  size_t numeric = 0;
  for (size_t i = 0; i < types.size(); ++i) {
    Column c;
    c.name = column_names[i];
    c.type = static_cast<uint8_t>(types[i]);
    size_t mb = MetadataBytes(c.type);
    if (static_cast<size_t>(m_end - m) < mb) return Status::DataError(where + " is cut short");
    if (c.type == kString || c.type == kEnum || c.type == kSet) {
      uint8_t b0 = m[0], b1 = m[1];
      uint8_t real = b0;
      uint32_t length = b1;
      if ((b0 & 0x30) != 0x30) {
        length = b1 | (static_cast<uint32_t>((b0 & 0x30) ^ 0x30) << 4);
        real = static_cast<uint8_t>(b0 | 0x30);
      }
      if (real == kEnum || real == kSet) {
        c.type = real;
        c.meta = b1;  // bytes a value takes
      } else {
        c.type = kString;
        c.max_length = length;
      }
    } else if (c.type == kVarchar || c.type == kVarString) {
      c.meta = static_cast<uint16_t>(LittleEndian(m, 2));
      c.max_length = c.meta;
    } else if (c.type == kNewDecimal) {
      c.meta = static_cast<uint16_t>(m[0] << 8 | m[1]);  // precision, scale
    } else if (c.type == kBit) {
      c.meta = static_cast<uint16_t>(m[1] << 8 | m[0]);  // bytes, bits
    } else if (mb == 1) {
      c.meta = m[0];
      if ((c.type == kTimestamp2 || c.type == kDatetime2 || c.type == kTime2) && c.meta > 6) {
        return Status::DataError(where + " gives column " + c.name + " " + std::to_string(c.meta) +
                                 " fractional digits (at most 6)");
      }
    }
    m += mb;
    if (IsNumeric(c.type)) {
      if (signedness) c.is_unsigned = (signedness[numeric / 8] >> (7 - numeric % 8)) & 1;
      ++numeric;
    }
    if (c.type == kEnum || c.type == kSet) {
      const unsigned char*& p = c.type == kEnum ? e : s;
      const unsigned char* end = c.type == kEnum ? e_end : s_end;
      uint64_t count = 0;
      if (!LengthEncoded(p, end, &count) || !Strings(p, end, count, &c.elements)) {
        return Status::DataError(where + " lacks the values of " +
                                 std::string(c.type == kEnum ? "ENUM" : "SET") + " column " +
                                 c.name + " (binlog_row_metadata must be FULL)");
      }
    }
    map.columns.push_back(std::move(c));
  }
  return map;
}

Result<size_t> DecodeValue(const Column& c, const unsigned char* p, size_t size, Value* out) {
  *out = Value{};
  auto need = [&](size_t n) { return size >= n; };
  auto integer = [&](size_t n) -> Result<size_t> {
    if (!need(n)) return Short(c);
    uint64_t v = LittleEndian(p, n);
    if (c.is_unsigned) {
      out->text = std::to_string(v);
    } else {
      int shift = static_cast<int>(64 - 8 * n);
      out->text = std::to_string(static_cast<int64_t>(v << shift) >> shift);
    }
    return n;
  };
  switch (c.type) {
    case kTiny:
      return integer(1);
    case kShort:
      return integer(2);
    case kInt24:
      return integer(3);
    case kLong:
      return integer(4);
    case kLongLong:
      return integer(8);
    case kYear: {
      if (!need(1)) return Short(c);
      out->text = p[0] == 0 ? "0" : std::to_string(1900 + p[0]);
      return size_t{1};
    }
    case kFloat: {
      if (!need(4)) return Short(c);
      uint32_t bits = static_cast<uint32_t>(LittleEndian(p, 4));
      float f;
      std::memcpy(&f, &bits, 4);
      out->text = fmt::format("{}", f);
      return size_t{4};
    }
    case kDouble: {
      if (!need(8)) return Short(c);
      uint64_t bits = LittleEndian(p, 8);
      double d;
      std::memcpy(&d, &bits, 8);
      out->text = fmt::format("{}", d);
      return size_t{8};
    }
    case kNewDecimal:
      return Decimal(c.meta >> 8, c.meta & 0xff, p, size, &out->text);
    case kDate:
    case kNewDate: {
      if (!need(3)) return Short(c);
      uint32_t v = static_cast<uint32_t>(LittleEndian(p, 3));
      uint32_t day = v & 31, month = (v >> 5) & 15, year = v >> 9;
      if (v == 0) {
        out->null = out->zero_date = true;
      } else {
        out->text = fmt::format("{:04}-{:02}-{:02}", year, month, day);
      }
      return size_t{3};
    }
    case kTimestamp:
    case kTimestamp2: {
      const bool two = c.type == kTimestamp2;
      const int fsp = two ? c.meta : 0;
      const size_t n = 4 + (two ? static_cast<size_t>((fsp + 1) / 2) : 0);
      if (!need(n)) return Short(c);
      uint64_t seconds = two ? BigEndian(p, 4) : LittleEndian(p, 4);
      uint32_t micros = two ? FractionMicros(p + 4, fsp) : 0;
      if (seconds == 0 && micros == 0) {
        out->null = out->zero_date = true;
      } else {
        out->text = Civil(static_cast<int64_t>(seconds), micros, fsp) + "+00";
      }
      return n;
    }
    case kDatetime: {
      if (!need(8)) return Short(c);
      uint64_t v = LittleEndian(p, 8);  // YYYYMMDDhhmmss
      if (v / 1000000 == 0) {
        out->null = out->zero_date = true;
      } else {
        uint64_t date = v / 1000000, time = v % 1000000;
        out->text =
            fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", date / 10000, date / 100 % 100,
                        date % 100, time / 10000, time / 100 % 100, time % 100);
      }
      return size_t{8};
    }
    case kDatetime2: {
      const int fsp = c.meta;
      const size_t n = 5 + static_cast<size_t>((fsp + 1) / 2);
      if (!need(n)) return Short(c);
      int64_t v = static_cast<int64_t>(BigEndian(p, 5)) - 0x8000000000LL;
      uint32_t micros = FractionMicros(p + 5, fsp);
      int64_t ymd = v >> 17, hms = v & 0x1FFFF;
      int64_t ym = ymd >> 5;
      int64_t day = ymd & 31, month = ym % 13, year = ym / 13;
      if (year == 0 && month == 0 && day == 0) {  // as a full read's zero dates
        out->null = out->zero_date = true;
      } else {
        out->text = fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}{}", year, month, day,
                                hms >> 12, (hms >> 6) & 63, hms & 63, Fraction(micros, fsp));
      }
      return n;
    }
    case kTime: {
      if (!need(3)) return Short(c);
      int64_t v = static_cast<int64_t>(LittleEndian(p, 3) << 40) >> 40;  // [-]HHMMSS
      uint64_t a = static_cast<uint64_t>(v < 0 ? -v : v);
      out->text =
          fmt::format("{}{:02}:{:02}:{:02}", v < 0 ? "-" : "", a / 10000, a / 100 % 100, a % 100);
      return size_t{3};
    }
    case kTime2: {
      // my_time_packed_from_binary: the whole part less 0x800000, and a
      // fraction that borrows from it when the time is negative.
      const int fsp = c.meta;
      const size_t n = 3 + static_cast<size_t>((fsp + 1) / 2);
      if (!need(n)) return Short(c);
      int64_t packed = 0;
      int64_t whole = static_cast<int64_t>(BigEndian(p, 3)) - 0x800000;
      if (fsp == 1 || fsp == 2) {
        int64_t frac = p[3];
        if (whole < 0 && frac != 0) {
          ++whole;
          frac -= 0x100;
        }
        packed = whole * (int64_t{1} << 24) + frac * 10000;
      } else if (fsp == 3 || fsp == 4) {
        int64_t frac = static_cast<int64_t>(BigEndian(p + 3, 2));
        if (whole < 0 && frac != 0) {
          ++whole;
          frac -= 0x10000;
        }
        packed = whole * (int64_t{1} << 24) + frac * 100;
      } else if (fsp == 5 || fsp == 6) {
        packed = static_cast<int64_t>(BigEndian(p, 6)) - 0x800000000000LL;
      } else {
        packed = whole * (int64_t{1} << 24);
      }
      uint64_t a = static_cast<uint64_t>(packed < 0 ? -packed : packed);
      uint64_t hms = a >> 24, micros = a % (uint64_t{1} << 24);
      out->text =
          fmt::format("{}{:02}:{:02}:{:02}{}", packed < 0 ? "-" : "", (hms >> 12) % 1024,
                      (hms >> 6) % 64, hms % 64, Fraction(static_cast<uint32_t>(micros), fsp));
      return n;
    }
    case kBit: {
      size_t n = static_cast<size_t>(c.meta >> 8) + ((c.meta & 0xff) ? 1 : 0);
      if (!need(n) || n > 8) return Short(c);
      out->text = std::to_string(BigEndian(p, n));
      return n;
    }
    case kEnum: {
      size_t n = c.meta;
      if (!need(n) || n < 1 || n > 2) return Short(c);
      uint64_t index = LittleEndian(p, n);
      if (index > c.elements.size()) {
        return Status::DataError("ENUM column " + c.name + " holds value number " +
                                 std::to_string(index) + ", which it does not list");
      }
      out->text = index == 0 ? "" : c.elements[index - 1];
      return n;
    }
    case kSet: {
      size_t n = c.meta;
      if (!need(n) || n < 1 || n > 8) return Short(c);
      uint64_t bits = LittleEndian(p, n);
      std::string text;
      for (size_t i = 0; i < c.elements.size() && i < 64; ++i) {
        if (!((bits >> i) & 1)) continue;
        if (!text.empty()) text += ',';
        text += c.elements[i];
      }
      out->text = std::move(text);
      return n;
    }
    case kVarchar:
    case kVarString:
    case kString:
    case kBlob:
    case kTinyBlob:
    case kMediumBlob:
    case kLongBlob:
    case kGeometry: {
      size_t prefix = 0;
      if (c.type == kVarchar || c.type == kVarString || c.type == kString) {
        prefix = c.max_length < 256 ? 1 : 2;
      } else {
        prefix = c.meta;
        if (prefix < 1 || prefix > 4) return Short(c);
      }
      if (!need(prefix)) return Short(c);
      uint64_t len = LittleEndian(p, prefix);
      if (size - prefix < len) return Short(c);
      out->bytes = true;
      out->text.assign(reinterpret_cast<const char*>(p + prefix), len);
      return prefix + len;
    }
    case kJson:
      return Status::DataError("column " + c.name +
                               " is MySQL's binary JSON, which change capture does not decode; "
                               "capture from MariaDB, or read the table with incremental:");
    default:
      return Status::DataError("column " + c.name + " has binlog type " + std::to_string(c.type) +
                               ", which change capture does not decode; read the table with "
                               "incremental: instead");
  }
}

Result<size_t> DecodeRow(const TableMap& map, const unsigned char* present,
                         const unsigned char* data, size_t size, std::vector<Value>* out) {
  const size_t n = map.columns.size();
  out->assign(n, Value{});
  size_t count = 0;
  for (size_t i = 0; i < n; ++i) count += (present[i / 8] >> (i % 8)) & 1;
  const size_t null_bytes = (count + 7) / 8;
  if (size < null_bytes) return Status::DataError("a binlog row of " + map.table + " is cut short");
  const unsigned char* nulls = data;
  size_t at = null_bytes, k = 0;
  for (size_t i = 0; i < n; ++i) {
    Value& v = (*out)[i];
    if (!((present[i / 8] >> (i % 8)) & 1)) {
      v.null = true;
      continue;
    }
    bool null = (nulls[k / 8] >> (k % 8)) & 1;
    ++k;
    if (null) {
      v.null = true;
      continue;
    }
    ASSIGN_OR_RETURN(size_t used, DecodeValue(map.columns[i], data + at, size - at, &v));
    at += used;
  }
  return at;
}

}  // namespace sluice::binlog
