"""The augmentation experiment: does generator X's data help classifier Y, by how much,
and is it significant? plan.py lays out the configurations, stats.py turns results into
paired differences with confidence intervals, table.py prints them."""
