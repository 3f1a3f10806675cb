"""Make small Keras 2 / tf.keras model files, the ways 2017-2023 tutorials wrote them.

Run it once under each old TensorFlow, in a virtualenv of its own outside the repository
(TensorFlow 2.12 to 2.15 still install on Python 3.11), from the repository root:

    python3 -m venv /tmp/tf2.12 && /tmp/tf2.12/bin/pip install "tensorflow-cpu==2.12.*" "numpy<2"
    MNIST_DATA=../shared/data/mnist /tmp/tf2.12/bin/python tests/legacy_models/make_legacy_models.py

(the same with 2.13 and 2.15). Each run adds its files to tests/legacy_models/ and its entries
to manifest.json there: the file, the TensorFlow and Keras versions that wrote it, how it was
built, the pixel scale it was trained on, and the accuracy that this very Keras gives it on
all 10,000 MNIST test images fed that way (what tests/test_legacy.py expects from
evaluate.py). Models are trained for 3 epochs on 12,000 training images: small files (tens
of KB), real accuracies.
"""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # channels-first convolutions on CPU
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402
from tensorflow.keras import layers  # noqa: E402

HERE = Path(__file__).resolve().parent
TRAIN_IMAGES = 12000
EPOCHS = 3
REFUSED = ("lambda_code",)  # stored Python code: refused unless the user trusts the file
MEAN, STD = 0.1307, 0.3081


def read_idx(folder: Path, stem: str) -> np.ndarray:
    path = next(p for p in (folder / f"{stem}.gz", folder / stem) if p.exists())
    data = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def feed(images: np.ndarray, scale: str, shape: tuple) -> np.ndarray:
    """uint8 (n, 28, 28) images as the model was trained on them (as mnistkit.prepare does)."""
    side = 32 if 32 in shape else 28
    if side == 32:
        images = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    x = images.astype("float32")
    if scale == "0-1":
        x = x / 255
    elif scale == "standardised":
        x = (x / 255 - MEAN) / STD
    elif scale == "normalize":  # the sentdex tutorial: tf.keras.utils.normalize(x_train, axis=1)
        x = keras.utils.normalize(x, axis=1).astype("float32")
    if len(shape) == 3 and 3 in (shape[0], shape[2]):
        axis = 1 if shape[0] == 3 else -1
        return np.repeat(np.expand_dims(x, axis), 3, axis=axis)
    return x.reshape((len(x), *shape))


def keras_version() -> str:
    import importlib

    return importlib.import_module("keras").__version__  # tf.keras is the keras package


def touch_marker(x):
    """A Lambda that leaves a marker file when it runs and $LEGACY_MARKER names one: the tests
    check that loading the file never calls it unless --trust-code is given."""
    import os
    if os.environ.get("LEGACY_MARKER"):
        open(os.environ["LEGACY_MARKER"], "w").close()
    return x / 255.0


def builders():
    """name -> (how it was built, input scale it is trained on, model builder)."""
    def mlp_input_shape():  # the Keras README / TF "beginner" tutorial shape
        return keras.Sequential([layers.Flatten(input_shape=(28, 28)),
                                 layers.Dense(8, activation="relu"), layers.Dropout(0.2),
                                 layers.Dense(10, activation="softmax")])

    def cnn_batch_input_shape():
        return keras.Sequential([
            layers.Conv2D(8, (3, 3), activation="relu", batch_input_shape=(None, 28, 28, 1)),
            layers.MaxPooling2D(pool_size=(2, 2)), layers.Conv2D(8, (3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)), layers.Flatten(),
            layers.Dense(10, activation="softmax")])

    def functional_cast_div():  # x = tf.cast(inputs, "float32") / 255 inside the model
        inputs = keras.Input(shape=(28, 28))
        x = tf.cast(inputs, tf.float32) / 255.0
        x = layers.Reshape((28, 28, 1))(x)
        x = layers.Conv2D(4, 3, strides=2, activation="relu")(x)
        x = layers.Flatten()(x)
        return keras.Model(inputs, layers.Dense(10)(x))  # logits

    def functional_standardise_inside():
        inputs = keras.Input(shape=(784,))
        x = (inputs / 255.0 - MEAN) / STD
        x = layers.Dense(8, activation="relu")(x)
        return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))

    def channels_first_cnn():
        return keras.Sequential([
            layers.Conv2D(4, 3, activation="relu", data_format="channels_first",
                          input_shape=(1, 28, 28)),
            layers.MaxPooling2D(data_format="channels_first"),
            layers.Flatten(data_format="channels_first"),
            layers.Dense(10, activation="softmax")])

    def reshape_first_batchnorm():
        return keras.Sequential([
            layers.Reshape((28, 28, 1), input_shape=(784,)),
            layers.Conv2D(4, 3, use_bias=False), layers.BatchNormalization(),
            layers.Activation("relu"), layers.MaxPooling2D(), layers.Flatten(),
            layers.Dropout(0.25), layers.Dense(10, activation="softmax")])

    def normalize_mlp():
        return keras.Sequential([layers.Flatten(), layers.Dense(8, activation=tf.nn.relu),
                                 layers.Dense(10, activation=tf.nn.softmax)])  # built by fit

    def rescaling_layer():
        return keras.Sequential([layers.Rescaling(1.0 / 255, input_shape=(28, 28, 1)),
                                 layers.Conv2D(4, 3, strides=2, activation="relu"),
                                 layers.Flatten(), layers.Dense(10, activation="softmax")])

    def lenet_32():
        return keras.Sequential([
            layers.Conv2D(4, 5, activation="tanh", input_shape=(32, 32, 1)),
            layers.AveragePooling2D(), layers.Conv2D(8, 5, activation="tanh"),
            layers.AveragePooling2D(), layers.Flatten(), layers.Dense(10, activation="softmax")])

    def rgb_functional():
        inputs = keras.Input(shape=(28, 28, 3))
        x = layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
        x = layers.Flatten()(x)
        return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))

    def lambda_code():
        return keras.Sequential([layers.Lambda(touch_marker, input_shape=(28, 28)),
                                 layers.Flatten(), layers.Dense(10, activation="softmax")])

    def expand_dims_op():
        inputs = keras.Input(shape=(28, 28))
        x = tf.expand_dims(inputs, -1)
        x = layers.Conv2D(4, 3, strides=2, activation="relu")(x)
        x = layers.Flatten()(x)
        return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))

    def lstm_rows():  # each image row a time step, as the RNN tutorials do
        return keras.Sequential([layers.LSTM(16, input_shape=(28, 28)),
                                 layers.Dense(10, activation="softmax")])

    def normalization_adapted():  # a Normalization layer adapted to the training images
        norm = layers.Normalization(axis=None, input_shape=(28, 28))
        norm.adapt(read_idx(Path(os.environ.get("MNIST_DATA", "../shared/data/mnist")),
                            "train-images-idx3-ubyte")[:1000].astype("float32"))
        return keras.Sequential([norm, layers.Flatten(), layers.Dense(8, activation="relu"),
                                 layers.Dense(10, activation="softmax")])

    return {
        "lstm_rows": ("Sequential LSTM over the 28 rows, input_shape=(28, 28)", "0-1",
                      lstm_rows),
        "normalization_adapted": ("Sequential, Normalization layer adapted to raw pixels first",
                                  "0-255", normalization_adapted),
        "mlp_input_shape": ("Sequential, Flatten(input_shape=(28, 28)), Dense, Dropout",
                            "0-1", mlp_input_shape),
        "cnn_batch_input_shape": ("Sequential CNN, batch_input_shape on the first Conv2D, "
                                  "trained on raw pixels", "0-255", cnn_batch_input_shape),
        "functional_cast_div": ("functional, tf.cast(x, float32) / 255 inside (TFOpLambda), "
                                "Reshape, logits", "0-255", functional_cast_div),
        "functional_standardise": ("functional, (x / 255 - 0.1307) / 0.3081 inside "
                                   "(three TFOpLambda)", "0-255", functional_standardise_inside),
        "channels_first_cnn": ("Sequential CNN, data_format channels_first, input (1, 28, 28)",
                               "0-1", channels_first_cnn),
        "reshape_batchnorm": ("Sequential, Reshape first from (784,), BatchNormalization, "
                              "trained on standardised pixels", "standardised",
                              reshape_first_batchnorm),
        "normalize_mlp": ("Sequential without input shape (built by fit), trained on "
                          "keras.utils.normalize(x, axis=1)", "normalize", normalize_mlp),
        "rescaling_layer": ("Sequential with a Rescaling(1/255) layer first, fed raw pixels",
                            "0-255", rescaling_layer),
        "lenet_32x32": ("LeNet-5 style, 32x32 input (MNIST padded by 2)", "0-1", lenet_32),
        "rgb_28x28x3": ("functional, 3-channel input (grey repeated)", "0-1", rgb_functional),
        "lambda_code": ("Lambda layer with Python bytecode (x / 255): must be refused",
                        "0-255", lambda_code),
        "expand_dims_op": ("functional, tf.expand_dims(x, -1) inside (TFOpLambda of a "
                           "non-arithmetic op)", "0-1", expand_dims_op),
    }


# Which builds each TensorFlow makes: every version the common ones, one each the rest, so
# that the collection stays under 1 MB.
PER_VERSION = {
    "2.12": ["mlp_input_shape", "cnn_batch_input_shape", "functional_cast_div", "lambda_code",
             "lenet_32x32"],
    "2.13": ["mlp_input_shape", "channels_first_cnn", "reshape_batchnorm", "normalize_mlp",
             "expand_dims_op"],
    "2.15": ["cnn_batch_input_shape", "functional_standardise", "rescaling_layer",
             "rgb_28x28x3", "functional_cast_div", "lstm_rows", "normalization_adapted"],
}


def mnist_arrays():
    folder = Path(os.environ.get("MNIST_DATA", "../shared/data/mnist"))
    stems = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")
    return [read_idx(folder, stem) for stem in stems]


def file_name(name: str) -> str:
    return f"tf{'.'.join(tf.__version__.split('.')[:2])}_{name}.h5"


def build(name: str) -> None:
    """Train and save one model (in a process of its own: see main)."""
    train_x, train_y, _, _ = mnist_arrays()
    _, scale, builder = builders()[name]
    keras.utils.set_random_seed(1)
    model = builder()
    logits = model.layers[-1].get_config().get("activation") == "linear"
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=logits),
                  metrics=["accuracy"])
    shape = (28, 28) if not model.built else tuple(model.input_shape[1:])
    model.fit(feed(train_x[:TRAIN_IMAGES], scale, shape), train_y[:TRAIN_IMAGES],
              epochs=EPOCHS, batch_size=32, verbose=0)
    # The .h5 format, as tutorials did; most without the optimizer's state, which only
    # makes the files bigger (one kind keeps it, as model.save did by default).
    model.save(HERE / file_name(name), include_optimizer=name == "cnn_batch_input_shape")


def score(name: str) -> None:
    """Print the accuracy that this Keras, loading the file afresh, gives on the test set."""
    _, _, test_x, test_y = mnist_arrays()
    model = keras.models.load_model(HERE / file_name(name), compile=False)
    scale = builders()[name][1]
    predicted = model.predict(feed(test_x, scale, tuple(model.input_shape[1:])),
                              verbose=0).argmax(axis=1)
    print(json.dumps({"test_accuracy": float((predicted == test_y).mean())}))


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] in ("--build", "--score"):
        (build if sys.argv[1] == "--build" else score)(sys.argv[2])
        return 0
    version = ".".join(tf.__version__.split(".")[:2])
    manifest_path = HERE / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else []
    # Each model is trained, and then scored, in a fresh process: models built one after
    # another in one tf.keras process can save files that a fresh process loads differently
    # (seen with BatchNormalization under TF 2.13), and users load files afresh.
    for name in sys.argv[1:] or PER_VERSION.get(version, []):
        subprocess.run([sys.executable, __file__, "--build", name], check=True)
        scored = subprocess.run([sys.executable, __file__, "--score", name], check=True,
                                capture_output=True, text=True).stdout.strip().splitlines()[-1]
        file = file_name(name)
        how, scale, _ = builders()[name]
        entry = {"file": file, "tensorflow": tf.__version__, "keras": keras_version(),
                 "built": how, "input_scale": scale, **json.loads(scored),
                 "expect": "refused" if name in REFUSED else "loads",
                 "bytes": (HERE / file).stat().st_size}
        manifest = [e for e in manifest if e["file"] != file] + [entry]
        print(json.dumps(entry))
    manifest_path.write_text(json.dumps(sorted(manifest, key=lambda e: e["file"]), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
