"""Loading data into the warehouse's `raw` database: Goldsky fills and reference files."""
