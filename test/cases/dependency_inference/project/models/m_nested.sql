select (select max(id) from m_join) as top, s.*
from (select * from main.m_union) s
