"""Shared code of the MNIST training scripts: data, command line, training, saving, reports.

Importing the package is cheap: TensorFlow and Keras load only when a function needs them.
"""
