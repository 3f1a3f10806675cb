"""Each script's model has the tutorials' parameter count and the layout it declares."""

import pytest

from tests.conftest import training_config

MODELS = [
    ("train_logreg", [], 7_850, (None, 784)),
    ("train_mlp", [], 407_050, (None, 784)),
    ("train_cnn", ["--arch", "simple"], 54_410, (None, 28, 28, 1)),
    ("train_cnn", ["--arch", "deeper"], 17_578, (None, 28, 28, 1)),
    ("train_cnn", ["--arch", "large"], 1_201_578, (None, 28, 28, 1)),
    ("train_cnn", ["--arch", "fast"], 19_530, (None, 28, 28, 1)),
    ("train_cnn", ["--arch", "modern"], 162_474, (None, 28, 28, 1)),
]


@pytest.mark.parametrize("script,argv,params,input_shape", MODELS)
def test_parameter_counts_match_the_tutorials(script, argv, params, input_shape):
    module, config = training_config(script, *argv)
    model = module.build_model(config)
    assert model.count_params() == params
    assert model.input_shape == input_shape
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize("argv,epochs,batch_size,output", [
    ([], 5, 128, "models/cnn_deeper.h5"),
    (["--arch", "simple"], 5, 128, "models/cnn_simple.h5"),
    (["--arch", "large"], 10, 32, "models/cnn_large.h5"),
    (["--arch", "fast"], 2, 384, "models/cnn_fast.h5"),
    (["--arch", "modern"], 20, 128, "models/cnn_modern.h5"),
    (["--arch", "large", "--epochs", "2"], 2, 32, "models/cnn_large.h5"),
])
def test_cnn_defaults_follow_the_architecture(argv, epochs, batch_size, output):
    _, config = training_config("train_cnn", *argv)
    assert (config.epochs, config.batch_size, config.output) == (epochs, batch_size, output)
    assert config.seed == 1
    assert config.validation_split == (0.0 if config.arch in ("large", "fast", "modern")
                                       else 0.2)
    assert config.optimizer == ("adamw" if config.arch == "modern" else "adam")
    assert config.label_smoothing == (0.1 if config.arch == "modern" else 0.0)
