-- Big enough that closing the warehouse (a checkpoint) takes a while: the
-- window in which a lease released before the close let the next owner fail.
select range as id, range * 2 as twice, 'row ' || range as label from range(2000000)
