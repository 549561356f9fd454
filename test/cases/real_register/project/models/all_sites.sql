-- The three councils' registers as one table of sites.
select 'Teignbridge' as register, reference, name, latitude, longitude, hectares,
       dwellings_from, dwellings_to, first_added
from brownfield
union all
select 'Gosport', reference, name, latitude, longitude, hectares,
       dwellings_from, dwellings_to, first_added
from gosport
union all
select 'Lewisham', reference, name, latitude, longitude, hectares,
       dwellings_from, dwellings_to, first_added
from lewisham
