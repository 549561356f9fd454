// The binlog row decoder against bytes a real MariaDB 10.11 wrote
// (binlog_format ROW, binlog_row_metadata FULL) for one row of every type
// change capture reads: the table map as Connector/C hands it over and the
// WRITE_ROWS event's row image.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ingest/binlog_row.h"

namespace sluice::binlog {
namespace {

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s += static_cast<char>(c);
  return s;
}

std::string Names(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += static_cast<char>(n.size()) + n;
  return s;
}

// create table t (id bigint unsigned primary key, ti tinyint, si smallint
//   unsigned, mi mediumint, f float, dd double, dt date, dtm datetime(6),
//   ts timestamp(3) null, tm time(2), y year, b bit(10), s set('x','y','z'),
//   c char(5), bn binary(4), vb varbinary(20), bl blob, tx text,
//   dec2 decimal(30,10), dt0 datetime, e enum('a','b'))
TableMap EveryType() {
  const std::string types =
      Bytes({8, 1, 2, 9, 4, 5, 10, 18, 17, 19, 13, 16, 254, 254, 254, 15, 252, 252, 246, 18, 254});
  const std::string meta =
      Bytes({0x04, 0x08, 0x06, 0x03, 0x02, 0x02, 0x01, 0xf8, 0x01, 0xfe, 0x14,
             0xfe, 0x04, 0x14, 0x00, 0x02, 0x02, 0x1e, 0x0a, 0x00, 0xf7, 0x01});
  const unsigned char signedness[] = {0xa2};
  Result<TableMap> map =
      ParseTableMap(70, "sluice", "t", types, meta, signedness,
                    Names({"id", "ti", "si", "mi", "f",  "dd", "dt", "dtm",  "ts",  "tm", "y",
                           "b",  "s",  "c",  "bn", "vb", "bl", "tx", "dec2", "dt0", "e"}),
                    Bytes({2, 1, 'a', 1, 'b'}), Bytes({3, 1, 'x', 1, 'y', 1, 'z'}));
  EXPECT_TRUE(map.ok()) << map.status().ToString();
  return *map;
}

TEST(BinlogRowTest, DecodesEveryTypeAsAFullReadWritesIt) {
  TableMap map = EveryType();
  ASSERT_EQ(map.columns.size(), 21u);
  EXPECT_TRUE(map.columns[0].is_unsigned);    // id
  EXPECT_FALSE(map.columns[1].is_unsigned);   // ti
  EXPECT_TRUE(map.columns[2].is_unsigned);    // si
  EXPECT_FALSE(map.columns[18].is_unsigned);  // dec2: after the YEAR, which has a bit too
  const std::string row = Bytes(
      {0x00, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfb, 0xff, 0xff, 0x00,
       0x00, 0x80, 0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xc0, 0x5d,
       0xd0, 0x0f, 0x99, 0xb2, 0xba, 0xd3, 0x8f, 0x01, 0xe2, 0x40, 0x65, 0xe1, 0x29, 0x0b, 0x11,
       0xd0, 0x7f, 0x37, 0x47, 0xb2, 0x7c, 0x02, 0xaa, 0x05, 0x02, 0x61, 0x62, 0x02, 0x61, 0x62,
       0x03, 0x78, 0x00, 0x79, 0x06, 0x00, 0x62, 0x6c, 0x6f, 0x62, 0x62, 0x79, 0x05, 0x00, 0x74,
       0x65, 0x78, 0x74, 0x79, 0x73, 0xeb, 0x65, 0x5b, 0xca, 0xf2, 0x04, 0xc7, 0x2d, 0xff, 0x43,
       0x9e, 0xb1, 0xf6, 0x99, 0x63, 0xff, 0x7e, 0xfb, 0x02});
  ASSERT_EQ(row.size(), 99u);
  const unsigned char present[] = {0xff, 0xff, 0x1f};
  std::vector<Value> values;
  Result<size_t> used = DecodeRow(map, present, reinterpret_cast<const unsigned char*>(row.data()),
                                  row.size(), &values);
  ASSERT_TRUE(used.ok()) << used.status().ToString();
  EXPECT_EQ(*used, row.size());
  const std::vector<std::string> want = {"18446744073709551615",
                                         "-5",
                                         "65535",
                                         "-8388608",
                                         "1.5",
                                         "-2.25",
                                         "2024-02-29",
                                         "2024-02-29 13:14:15.123456",
                                         "2024-03-01 01:02:03.456+00",
                                         "-12:34:56.78",
                                         "2024",
                                         "682",
                                         "x,z",
                                         "ab",
                                         "ab",
                                         std::string("x\0y", 3),
                                         "blobby",
                                         "texty",
                                         "-12345678901234567890.0123456789",
                                         "1999-12-31 23:59:59",
                                         "b"};
  ASSERT_EQ(values.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_FALSE(values[i].null) << map.columns[i].name;
    EXPECT_EQ(values[i].text, want[i]) << map.columns[i].name;
  }
  EXPECT_TRUE(values[15].bytes);
  EXPECT_FALSE(values[0].bytes);
}

TEST(BinlogRowTest, NullsAndShortRows) {
  TableMap map = EveryType();
  // Every column but id null: id's 8 bytes follow the bitmap.
  std::string row = Bytes({0xfe, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0});
  const unsigned char present[] = {0xff, 0xff, 0x1f};
  std::vector<Value> values;
  Result<size_t> used = DecodeRow(map, present, reinterpret_cast<const unsigned char*>(row.data()),
                                  row.size(), &values);
  ASSERT_TRUE(used.ok()) << used.status().ToString();
  EXPECT_EQ(values[0].text, "1");
  for (size_t i = 1; i < values.size(); ++i) EXPECT_TRUE(values[i].null);
  // Cut short: an error, not a read past the end.
  row.pop_back();
  EXPECT_FALSE(DecodeRow(map, present, reinterpret_cast<const unsigned char*>(row.data()),
                         row.size(), &values)
                   .ok());
}

TEST(BinlogRowTest, DecimalsAndTimes) {
  auto decode = [](Column c, const std::string& bytes) {
    Value v;
    Result<size_t> used =
        DecodeValue(c, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), &v);
    EXPECT_TRUE(used.ok()) << used.status().ToString();
    return v.null ? std::string("NULL") : v.text;
  };
  Column dec{"d", 246, static_cast<uint16_t>(10 << 8 | 2), 0, false, {}};
  // decimal(10,2) 12.50 and -12.50, as the server writes them.
  EXPECT_EQ(decode(dec, Bytes({0x80, 0x00, 0x00, 0x0c, 0x32})), "12.50");
  EXPECT_EQ(decode(dec, Bytes({0x7f, 0xff, 0xff, 0xf3, 0xcd})), "-12.50");
  EXPECT_EQ(decode(dec, Bytes({0x80, 0x00, 0x00, 0x00, 0x00})), "0.00");
  Column time{"t", 19, 0, 0, false, {}};
  EXPECT_EQ(decode(time, Bytes({0x80, 0x00, 0x00})), "00:00:00");
  EXPECT_EQ(decode(time, Bytes({0x7f, 0xff, 0xff})), "-00:00:01");
  Column date{"d", 10, 0, 0, false, {}};
  Value v;
  std::string zero = Bytes({0, 0, 0});
  ASSERT_TRUE(DecodeValue(date, reinterpret_cast<const unsigned char*>(zero.data()), 3, &v).ok());
  EXPECT_TRUE(v.null && v.zero_date);
  Column e{"e", 247, 1, 0, false, {"a"}};
  std::string bad = Bytes({2});
  EXPECT_FALSE(DecodeValue(e, reinterpret_cast<const unsigned char*>(bad.data()), 1, &v).ok());
}

TEST(BinlogRowTest, TableMapWithoutNamesIsRefusedWithTheFix) {
  Result<TableMap> map = ParseTableMap(1, "db", "t", Bytes({3}), "", nullptr, "", "", "");
  ASSERT_FALSE(map.ok());
  EXPECT_NE(map.status().message().find("binlog_row_metadata = FULL"), std::string::npos);
}

}  // namespace
}  // namespace sluice::binlog
