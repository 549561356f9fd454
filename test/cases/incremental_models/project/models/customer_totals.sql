/* ---
materialized: incremental
strategy: merge
key: [customer]
checks:
  - not_null: [customer]
  - range: {column: total, min: 0}
--- */
select customer, sum(amount) as total, max(id) as last_id from events
{% if is_incremental %} where customer in (select customer from events where id > (select max(last_id) from {{ this }})) {% endif %}
group by customer
