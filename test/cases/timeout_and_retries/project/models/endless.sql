-- Far longer than the 1s timeout: the watchdog interrupts it.
select sum(a.range * b.range) as s from range(200000) a, range(1000000) b
