select *
from ordrs
