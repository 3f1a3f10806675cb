"""Pictures: training curves, confusion matrices, galleries of mistakes, model comparisons,
reliability diagrams and the images two models disagree on.

Matplotlib draws off-screen (the Agg backend), so everything works with no display.
Every function writes one PNG to the path it is given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no window, no display needed
    import matplotlib.pyplot as plt

    return plt


def training_curves(record: dict, path: Path) -> None:
    """Loss and accuracy per epoch, training and validation, final test accuracy in the title."""
    plt = _pyplot()
    history = record["history"]
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 4))
    for axes, metric in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        for key, label, style in ((metric, "training", "o-"), (f"val_{metric}", "validation", "s-"),
                                  (f"test_{metric}", "test (after each epoch)", "^-")):
            if key in history:
                axes.plot(epochs, history[key], style, label=label, markersize=4)
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3)
        axes.legend()
        if len(epochs) < 15:
            axes.set_xticks(epochs)
    test = record["test"]
    stem = Path(record.get("file", record["model"])).stem
    name = stem if stem == record["model"] else f"{stem} ({record['model']})"
    figure.suptitle(f"{name}: test accuracy {test['accuracy']:.4f} "
                    f"({test['errors']}/{test['total']} wrong), {record['params']:,} parameters")
    _save(figure, path)


def confusion_matrix(matrix: np.ndarray, title: str, path: Path) -> None:
    """A 10x10 matrix of counts: rows the true digit, columns the predicted one."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6.5, 5.5))
    # Log colour scale: the diagonal (about 1,000 a cell) would otherwise hide every error.
    shown = axes.imshow(np.log1p(matrix), cmap="Blues")
    for true in range(10):
        for predicted in range(10):
            count = matrix[true, predicted]
            if count:
                dark = shown.norm(np.log1p(count)) > 0.6
                axes.text(predicted, true, str(count), ha="center", va="center", fontsize=8,
                          color="white" if dark else "black")
    axes.set_xticks(range(10))
    axes.set_yticks(range(10))
    axes.set_xlabel("predicted digit")
    axes.set_ylabel("true digit")
    axes.set_title(title)
    _save(figure, path)


def mistakes_gallery(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
                     title: str, path: Path, count: int = 25) -> None:
    """The ``count`` test images the model got wrong with the highest confidence."""
    plt = _pyplot()
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    worst = wrong[np.argsort(-probabilities[wrong, predicted[wrong]])][:count]
    figure = _grid(plt, [(images[index], f"#{index}: {labels[index]} → {predicted[index]}\n"
                                         f"p={probabilities[index, predicted[index]]:.3f}")
                         for index in worst], cell=(1.7, 1.95), extra=0.4)
    figure.suptitle(f"{title}: most confident mistakes (true → predicted)"
                    if len(worst) else f"{title}: no mistakes")
    _save(figure, path)


def accuracy_against_parameters(names: list[str], params: list[int], accuracies: list[float],
                                path: Path) -> None:
    """Every model as a point: test accuracy against parameter count (log scale)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.scatter(params, accuracies, zorder=2)
    for name, x, y in zip(names, params, accuracies, strict=True):
        axes.annotate(name, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    axes.set_xscale("log")
    axes.set_xlabel("parameters (log scale)")
    axes.set_ylabel("test accuracy")
    axes.set_title("Test accuracy against model size")
    axes.grid(alpha=0.3, which="both")
    _save(figure, path)


def reliability_diagram(curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                        path: Path) -> None:
    """Accuracy against stated confidence per confidence bin, one line per model, for the
    bins holding images: on the diagonal, a model is as sure as it is right. Below, the
    images in each bin (log scale, each count written on its point): a bin of three images
    far from the diagonal is luck, not a miscalibrated model."""
    plt = _pyplot()
    figure, (axes, below) = plt.subplots(2, 1, figsize=(6, 7), sharex=True,
                                         gridspec_kw={"height_ratios": [2.2, 1]})
    axes.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
    for name, (counts, confidence, accuracy) in curves.items():
        filled = counts > 0
        line, = axes.plot(confidence[filled], accuracy[filled], "o-", markersize=4, label=name)
        below.plot(confidence[filled], counts[filled], "o-", markersize=4,
                   color=line.get_color())
        for x, count in zip(confidence[filled], counts[filled], strict=True):
            below.annotate(f"{int(count):,}", (x, count), textcoords="offset points",
                           xytext=(0, 4), ha="center", fontsize=6, color=line.get_color())
    axes.set_ylabel("accuracy in the bin")
    axes.set_title("Reliability: 15 equal-width confidence bins")
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    below.set_yscale("log")
    below.set_ylabel("test images in the bin")
    below.set_xlabel("confidence (highest probability), mean per bin")
    below.set_xlim(0, 1)
    below.grid(alpha=0.3, which="both")
    _save(figure, path)


def disagreements(images: np.ndarray, labels: np.ndarray, names: tuple[str, str],
                  predicted: tuple[np.ndarray, np.ndarray], path: Path, count: int = 25) -> None:
    """The first ``count`` test images on which two models read different digits, with the
    true digit and what each read."""
    plt = _pyplot()
    first, second = predicted
    differ = np.flatnonzero(first != second)[:count]
    figure = _grid(plt, [(images[index], f"#{index}: true {labels[index]}\n"
                                         f"A {first[index]}, B {second[index]}")
                         for index in differ], cell=(1.9, 2.1), extra=0.6)
    figure.suptitle(f"A = {names[0]}, B = {names[1]}: "
                    + (f"{int(np.sum(first != second))} images read differently"
                       if len(differ) else "no image read differently"), fontsize=9)
    _save(figure, path)


def prediction(images: np.ndarray, probabilities: np.ndarray, title: str, path: Path) -> None:
    """Each digit of a picture as the model saw it (uint8, (n, 28, 28), left to right) with
    its probabilities for each digit ((n, 10)): one digit beside its bars, several each
    above its own."""
    plt = _pyplot()
    images, probabilities = np.reshape(images, (-1, 28, 28)), np.reshape(probabilities, (-1, 10))
    count, best = len(images), probabilities.argmax(axis=1)
    if count == 1:
        figure, cells = plt.subplots(1, 2, figsize=(7, 3), squeeze=False,
                                     gridspec_kw={"width_ratios": [1, 1.4]})
        pairs = [(cells[0, 0], cells[0, 1])]
    else:
        figure, cells = plt.subplots(2, count, figsize=(2.6 * count, 5), squeeze=False,
                                     gridspec_kw={"height_ratios": [1, 0.8]})
        pairs = [(cells[0, column], cells[1, column]) for column in range(count)]
    for (picture, bars), image, row, digit in zip(pairs, images, probabilities, best,
                                                  strict=True):
        picture.imshow(image, cmap="gray", vmin=0, vmax=255)  # uint8, as MNIST stores it
        picture.set_title("what the model saw (28x28)" if count == 1
                          else f"{digit} (p={row[digit]:.3f})", fontsize=9)
        picture.axis("off")
        bars.bar(range(10), row, color=["C1" if d == digit else "C0" for d in range(10)])
        bars.set_xticks(range(10))
        bars.set_ylim(0, 1)
        bars.set_xlabel("digit")
        bars.set_ylabel("probability" if bars is pairs[0][1] else "")
    read = "".join(str(int(digit)) for digit in best)
    figure.suptitle(f"{title}: {read}" + (f" (p={probabilities[0, best[0]]:.3f})"
                                          if count == 1 else " (each digit, left to right)"),
                    fontsize=10)
    _save(figure, path)


def _save(figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=100, format="png")
    _pyplot().close(figure)


def corruption_gallery(clean: np.ndarray, corrupted: dict[str, np.ndarray], path: Path) -> None:
    """One 28x28 digit as it is, then under each corruption, each titled with its name; on
    grey, so that a corruption that whitens the background still shows its edges."""
    plt = _pyplot()
    pictures = [(clean, "clean"), *((image, name.replace("_", " "))
                                    for name, image in corrupted.items())]
    figure = _grid(plt, pictures, columns=8, cell=(1.3, 1.5), cmap="gray", facecolor="0.75")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _grid(plt, pictures: list[tuple[np.ndarray, str]], columns: int = 5,
          cell: tuple[float, float] = (1.7, 1.95), extra: float = 0.0, cmap: str = "gray_r",
          facecolor: str = "white"):
    """A figure of 28x28 pictures in rows of ``columns``, each with its title."""
    rows = max(1, -(-len(pictures) // columns))
    figure, grid = plt.subplots(rows, columns, squeeze=False, facecolor=facecolor,
                                figsize=(columns * cell[0], rows * cell[1] + extra))
    for axes in grid.flat:
        axes.axis("off")
    for axes, (image, title) in zip(grid.flat, pictures, strict=False):
        axes.imshow(image, cmap=cmap, vmin=0, vmax=255)
        axes.set_title(title, fontsize=8)
    return figure
