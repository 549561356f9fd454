select cast('x' as integer) as never
