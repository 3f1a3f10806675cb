"""Worker processes: spawned with time and memory limits, dying with their parent; typed calls."""
