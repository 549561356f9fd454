/* ---
materialized: tabel
--- */
select * from orders
