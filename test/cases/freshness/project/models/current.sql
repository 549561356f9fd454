/* ---
checks:
  - freshness: {column: taken_at, error_after: 1d}
--- */
select now()::timestamp as taken_at
