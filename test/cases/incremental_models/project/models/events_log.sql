/* ---
materialized: incremental
strategy: append
--- */
select id, day, customer, amount from events
{% if is_incremental %} where id > (select max(id) from {{ this }}) {% endif %}
