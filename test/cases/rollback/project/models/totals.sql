select count(*) as n, sum(amount) as total from orders
