"""What the tests and the benchmarks share: MNIST digits as pen strokes, hostile inputs."""
