/* ---
materialized: tabel
--- */
select 1
