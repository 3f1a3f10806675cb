"""Every command in README.md and docs/*.md works when copied.

The commands are read from the pages themselves: each line of their ``bash`` blocks (Linux's
and macOS's; the ``powershell`` ones are Windows'), a line ending in a backslash joined to
the next, ``&&`` chains split, comments dropped; and, in the README, the ``python ...``
commands written in its text. Every command, and every ``python ...`` written anywhere in the
pages, names scripts, flags and files that exist, or models the scripts make (a quick
check). Then the pages' commands run, in a copy of the repository, as a newcomer copies them
into an activated environment, page after page in the order a newcomer reads them (a page
may use the models the pages before it trained), with small data: MNIST_DATA names 12,000
training and 2,000 test images, each training command gets ``--epochs 1`` appended, and
draw.py is started, asked for its page (and by curl, where a page says so) and stopped. What
is not run is listed in SKIPPED, with the reason; a stale entry fails the test.
"""

import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, save_npz
from tests.docs_commands import Clone, command_problems

# The order a newcomer reads the pages: the README, how to train, then the tools.
PAGES = ["README.md", "docs/training.md", "docs/evaluate.md", "docs/export.md",
         "docs/draw.md", "docs/results.md", "docs/speed.md", "docs/scaling.md"]
# Commands not run, by how they begin (a regular expression); their scripts, flags and
# files are still checked.
SKIPPED = {
    r"python3(\.\d+)? -m venv": "makes the environment these tests run in",
    r"(\.venv/bin/)?pip install": "installs packages (the environment these tests run in, or "
                                  "another backend's, which the full lane has)",
    r"\.venv/bin/python -m pytest": "the test suite, this test among them",
    r"tensorboard --logdir": "TensorBoard's own server, which runs until stopped",
    r"python benchmarks/": "a benchmark, minutes to an hour by design: "
                           "tests/test_benchmark.py runs each with --quick",
    r"export KERAS_(DISTRIBUTION_|BACKEND=jax)": "names the machines of a run over two machines",
    r"python train_cnn\.py --distribute$": "one process of that run over two machines: "
                                          "tests/test_scale.py runs it as two processes here",
}
# Words in the pages' commands that stand for what the reader brings.
PLACEHOLDERS = {
    "my_digit.png": "the reader's own picture",
    "A.h5": "the reader's models, one of each format",
    "B.keras": "the same",
    "C.tflite": "the same",
    "D.onnx": "the same",
    "saved_model_dir/": "the same",
    "folder/": "the same",
}


def page_text(page: str) -> str:
    return (ROOT / page).read_text(encoding="utf-8")


def commands_in_order(text: str, readme: bool) -> list[str]:
    """The commands of a page, in the order they appear: each line of its ``bash`` blocks
    and, in the README, the ``python ...`` commands written in its text."""
    found = []
    for language, block, span in re.findall(r"^```(\w*)\n(.*?)^```|(`[^`]+`)", text,
                                            re.M | re.S):
        if language in ("bash", "sh", "shell"):
            for line in block.replace("\\\n", " ").splitlines():
                found += split_chain(shlex.split(line, comments=True))
        elif readme and span.strip("`").startswith("python "):
            found.append(" ".join(span.strip("`").split()))
    return found


def split_chain(words: list[str]) -> list[str]:
    """``a && b`` as two commands (each quoted again as the shell reads it)."""
    parts, current = [], []
    for word in [*words, "&&"]:
        if word == "&&":
            if current:
                parts.append(shlex.join(current))
            current = []
        else:
            current.append(word)
    return parts


def written_commands(text: str) -> list[str]:
    """Every ``python ...`` written in a page's text, outside its code blocks."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    spans = (" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose))
    return [span for span in spans
            if re.sub(r"^([A-Z_]+=\S+ )+", "", span).startswith("python ")]


def skip_reason(command: str) -> str | None:
    return next((why for start, why in SKIPPED.items() if re.match(start, command)), None)


def test_the_pages_commands_are_found_and_every_skip_is_used():
    every = [command for page in PAGES
             for command in commands_in_order(page_text(page), page == "README.md")]
    assert len(every) >= 20
    assert any(command.startswith("python draw.py") for command in every)
    used = {start for start in SKIPPED if any(re.match(start, c) for c in every)}
    assert used == set(SKIPPED), f"SKIPPED entries no page needs: {set(SKIPPED) - used}"
    # an unlabelled block is output or a listing, never a command to copy
    for page in PAGES:
        for block in re.findall(r"^```\n(.*?)^```", page_text(page), re.M | re.S):
            assert not block.lstrip().startswith(("python ", "pip ")), (page, block)


def test_every_command_names_real_scripts_flags_and_files():
    problems, placeholders = [], set()
    for page in ["README.md", *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("docs/*.md"))]:
        text = page_text(page)
        for command in {*commands_in_order(text, True), *written_commands(text)}:
            for problem in command_problems(command, PLACEHOLDERS, placeholders):
                problems.append(f"{page}: `{command}`: {problem}")
    assert not problems, "\n".join(problems)
    assert placeholders == set(PLACEHOLDERS), set(PLACEHOLDERS) - placeholders


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory, mnist):
    """12,000 training and 2,000 test images: each command's test in a second or two."""
    path = tmp_path_factory.mktemp("data") / "mnist.npz"
    save_npz(mnist.subset(12000, 2000), path)
    return path


@pytest.fixture(scope="module")
def clone(tmp_path_factory, small_npz):
    """A copy of the repository, as cloned, with this environment as its .venv."""
    folder = tmp_path_factory.mktemp("clone") / "mnist"
    caches = shutil.ignore_patterns("__pycache__", "*_cache")
    # what a clone lacks: git's own folder, the environment, what the scripts wrote here
    made_here = {".git", ".venv", "models", "report", "predictions", "runs", "results.json"}

    def ignore(where: str, names: list[str]) -> set[str]:
        if Path(where) == ROOT:
            return made_here | set(caches(where, names))
        if Path(where) == ROOT / "tests":  # the Keras 2 models that a page names
            return {name for name in names if name != "legacy_models"}
        return set(caches(where, names))

    shutil.copytree(ROOT, folder, ignore=ignore)
    # curl posts the reader's own digit.png (docs/draw.md): a drawn 7 stands in for it
    shutil.copy(ROOT / "docs/examples/drawn_7.png", folder / "digit.png")
    made = Clone(folder, Path(sys.prefix), small_npz, tmp_path_factory.mktemp("cache"))
    yield made
    made.stop_servers()


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_the_commands_of_each_page_work_when_copied(page, clone):
    ran = []
    for command in commands_in_order(page_text(page), page == "README.md"):
        if skip_reason(command) or command in ran:  # the same on another system: once
            continue
        clone.run(command)
        ran.append(command)
    clone.stop_servers()
    if page in ("docs/results.md", "docs/speed.md", "docs/scaling.md"):
        assert ran == []  # benchmarks and machines only: checked, not run
    else:
        assert ran, f"{page} has no command to run"
