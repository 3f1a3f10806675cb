"""Training: the configuration, the loop, devices, callbacks, checkpoints, TensorBoard logs."""
