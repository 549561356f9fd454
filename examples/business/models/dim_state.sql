/* ---
description: One row per state (and DC) - codes, capital, region, 2020 population.
checks:
  - unique: [usps]
  - not_null: [usps, fips, population]
  - row_count: {min: 51, max: 51}
--- */
select s."Codes USPS" as usps,
       s."Codes FIPS" as fips,
       s."Name" as name,
       nullif(s."Capital", '—') as capital,
       s."Region" as region,
       s."Division" as division,
       cast(c.P1_001N as bigint) as population
from us_states s
join census_population c on c.state = s."Codes FIPS"
