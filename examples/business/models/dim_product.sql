/* ---
description: Products with their price in dollars.
checks:
  - unique: [product_id]
  - range: {column: price_usd, min: 0}
--- */
select id as product_id, name, category, price.amount as price_usd, active
from products
