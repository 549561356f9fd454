select count(*) as products, sum(price) as total_price from products
