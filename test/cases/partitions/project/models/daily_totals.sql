select sensor, count(*) as n, sum(value) as total
from readings
group by sensor
