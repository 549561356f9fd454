/* ---
materialized: incremental
strategy: merge
key: [customer]
--- */
{% if is_incremental %}
select customer, amount, id as last_id from events
where id > (select max(last_id) from {{ this }})
{% else %}
select customer, arg_max(amount, id) as amount, max(id) as last_id from events group by customer
{% endif %}
