"""The write stage: a trained Keras model in the formats other runtimes read, each checked."""
