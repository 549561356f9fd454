/* ---
checks:
  - freshness: {column: taken_at, warn_after: 1h}
--- */
select sensor, max(taken_at::timestamp) as taken_at from readings group by sensor
