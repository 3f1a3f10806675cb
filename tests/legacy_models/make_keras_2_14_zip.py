"""Make tf2.14_mlp.keras: a .keras zip as tf.keras 2.14 writes it (Keras 2.13-2.15's
"keras_v3" format), a small MLP trained on raw MNIST scaled to 0-1.

Run once in a virtualenv of its own, outside the repository:

    python3 -m venv /tmp/tf2.14 && /tmp/tf2.14/bin/pip install tensorflow-cpu==2.14.1
    MNIST_DATA=/path/to/mnist /tmp/tf2.14/bin/python tests/legacy_models/make_keras_2_14_zip.py

It prints the accuracy that tf.keras 2.14 gives the saved file on all 10,000 test images
(tests/test_legacy.py expects the same from evaluate.py: 0.9132 with tf.keras 2.14.1).
The test makes the Windows variant itself from this file.
"""

import gzip
import os
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow import keras

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("MNIST_DATA", "../shared/data/mnist"))


def idx(name: str, offset: int) -> np.ndarray:
    return np.frombuffer(gzip.open(DATA / name).read(), np.uint8, offset=offset)


x = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)[:12000] / 255.0
y = idx("train-labels-idx1-ubyte.gz", 8)[:12000]
tf.keras.utils.set_random_seed(1)
model = keras.Sequential([keras.layers.Flatten(input_shape=(28, 28)),
                          keras.layers.Dense(16, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x, y, epochs=3, batch_size=32, verbose=0)
plain = keras.models.clone_model(model)  # uncompiled: no optimizer state in the file
plain.set_weights(model.get_weights())
plain.save(HERE / "tf2.14_mlp.keras")
loaded = keras.models.load_model(HERE / "tf2.14_mlp.keras", compile=False)
test_x = idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28) / 255.0
test_y = idx("t10k-labels-idx1-ubyte.gz", 8)
accuracy = float((loaded.predict(test_x, verbose=0).argmax(1) == test_y).mean())
print(f"test accuracy {accuracy} with tf.keras {tf.__version__}")
