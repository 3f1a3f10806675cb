"""Files on disk: MNIST read and checked, outputs written whole, model records and discovery."""
