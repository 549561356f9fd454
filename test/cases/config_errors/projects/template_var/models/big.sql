select * from orders
where amount > {{ var('minimum') }}
