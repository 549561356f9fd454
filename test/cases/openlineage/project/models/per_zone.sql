select z.name, count(*) as stops from stops s join zones z using (zone) group by all
