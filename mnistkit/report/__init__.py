"""What evaluate.py shows: the table, the report, the pictures."""
