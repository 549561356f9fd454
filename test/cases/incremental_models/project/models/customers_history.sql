/* ---
materialized: snapshot
key: [customer]
--- */
select customer, max(amount) as biggest from events group by customer
