select id,
  amount
from orders
where and amount > 1
