"""Train a two-layer perceptron on MNIST: 512 ReLU units, then a softmax over the 10 digits.

The course demo's (and Chollet's "Deep Learning with Python") dense network, 407,050
parameters. With the defaults (Adam, 5 epochs, batch 128, validation split 0.2) it reaches
about 97.8% test accuracy (the demo: 97.66%).

    python train_mlp.py --epochs 10
"""

from mnistkit.environment import require_installed

require_installed()  # outside the project's environment: one line saying what to install

from mnistkit.runtime import exit_now
from mnistkit.train.flags import parse_training_args, training_parser
from mnistkit.train.run import TrainingRun


def build_model(config):
    import keras  # here, not at the top, so that --help answers without loading TensorFlow
    from keras import layers

    return keras.Sequential([
        keras.Input(shape=(784,)),                # a flattened 28x28 image
        layers.Dense(512, activation="relu"),     # the hidden layer
        layers.Dense(10, activation="softmax"),   # one probability per digit
    ], name="mlp")


def make_parser():
    return training_parser("mlp", __doc__)


def main(argv=None) -> int:
    # Flags: every value checked here, before TensorFlow loads
    config = parse_training_args(make_parser(), argv)
    with TrainingRun(config) as run:  # an error of the run: one line, and run.status
        # Data: MNIST's 60,000 training images and its 10,000 test images
        run.load_data()
        with run.scope():  # where --distribute makes the model; nothing on one device
            # The model, to train in the run's precision (--precision), the same weights
            model = run.for_training(build_model(config))
            # Batches in a seeded order (the same on --resume), the validation share apart
            data = run.training_data(model)
            model.compile(optimizer=run.optimizer(), loss=run.loss(), metrics=["accuracy"],
                          steps_per_execution=run.steps_per_execution())
            # Fresh, or with --resume the weights and optimizer after the last epoch
            initial_epoch = run.start(model)
        # Train: a line per epoch, and a checkpoint after each
        model.fit(data.train, validation_data=data.validation,
                  validation_batch_size=data.validation_batch_size, shuffle=False,
                  epochs=config.epochs, initial_epoch=initial_epoch,
                  callbacks=run.callbacks(), verbose=run.verbose)
        # Test on all 10,000 test images, then save the model, its record and its curves
        model = run.trained(model)
        run.save(model, run.test(model))
    return run.status


if __name__ == "__main__":
    exit_now(main())
