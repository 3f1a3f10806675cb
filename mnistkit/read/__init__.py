"""Model files read: safely loaded, old Keras configs repaired, opened only in worker processes."""
