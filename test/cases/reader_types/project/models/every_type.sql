/* ---
checks:
  - not_null: [hour, u]
--- */
select
  true as bo, 1::tinyint as ti, 2::smallint as si, 3::integer as i, 4::bigint as bi,
  170141183460469231731687303715884105727::hugeint as hi, 5::utinyint as uti, 6::usmallint as usi,
  7::uinteger as ui, 18446744073709551615::ubigint as ubi,
  340282366920938463463374607431768211455::uhugeint as uhi,
  1.25::float as f, 2.5::double as d, 'nan'::double as d_nan, '-inf'::double as d_ninf,
  123.45::decimal(10,2) as dec, 12345678901234567890.123456789::decimal(38,9) as dec38,
  'text, with "quotes"' as v, '\xAA\x00'::blob as bl, '1010'::bit as bt,
  date '2024-02-29' as dt, time '13:14:15.5' as tm, '13:14:15+02:00'::timetz as tmtz,
  timestamp '2024-02-29 13:14:15.123456' as ts, '2024-02-29 13:14:15'::timestamp_s as ts_s,
  '2024-02-29 13:14:15.123'::timestamp_ms as ts_ms, '2024-02-29 13:14:15.123456789'::timestamp_ns as ts_ns,
  date_trunc('hour', '2024-02-29 13:14:15+00'::timestamptz) as hour,
  interval '1 year 2 months 3 days 04:05:06' as iv,
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid as u,
  [1, 2, null] as li, ['a', 'b']::varchar[2] as arr,
  {'x': 1, 'y': [true]} as st, map {'k': 1.5} as mp,
  union_value(num := 7) as un, 'b'::enum ('a', 'b') as en,
  123456789012345678901234567890::bignum as bn,
  null as nul
