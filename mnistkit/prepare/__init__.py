"""Inputs prepared: pixel scales, input layouts, pictures turned into digits, training batches."""
