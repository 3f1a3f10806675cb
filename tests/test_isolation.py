"""Nothing a model file does takes the run down: crashes, hangs and runaway memory stay in
the worker process that read the file (mnistkit.workers)."""

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from mnistkit.score.hosting import ModelHost
from mnistkit.score.model_files import score_files
from tests.conftest import ROOT
from tests.hostile_tasks import HostileTasks

HOSTILE = {"tasks": HostileTasks}
FILES = ["good_1.h5", "segfault.h5", "good_2.h5", "abort.h5", "hang.h5", "greedy.h5",
         "good_3.h5"]


@pytest.mark.slow
def test_every_failure_stays_in_its_row(small_mnist):
    started = time.monotonic()
    results, about = score_files(FILES, small_mnist, timeout=5, memory_gb=5, **HOSTILE)
    reasons = {row.path: row.error for row, _ in results}
    assert [row.path for row, _ in results] == FILES  # every file has its row, in order
    assert all(reasons[name] is None for name in FILES if name.startswith("good"))
    assert reasons["segfault.h5"] == ("crashed the model reader (segmentation fault): "
                                      "the file is damaged")
    assert "crashed the model reader (abort)" in reasons["abort.h5"]
    assert reasons["hang.h5"].startswith("no answer in 5 s")
    assert reasons["greedy.h5"].startswith("needed more than the 5 GB of memory")
    assert about["device"].startswith(("CPU", "GPU"))
    assert time.monotonic() - started < 240  # the hang cost its time limit, not an hour


@pytest.mark.slow
def test_host_keeps_serving_the_other_models(small_mnist):
    host = ModelHost(["good.h5", "hang.h5"], mnist=small_mnist, timeout=5, **HOSTILE)
    try:
        host.start()
        errors = {model.path: model.error for model in host.models}
        assert errors["good.h5"] is None
        assert errors["hang.h5"].startswith("no answer in 5 s")
        images = np.zeros((2, 28, 28), np.uint8)
        answers, lock = [], threading.Lock()

        def ask() -> None:
            try:
                answer = host.predict("good.h5", images)
            except Exception as error:  # noqa: BLE001 - kept, to fail the test below
                answer = error
            with lock:
                answers.append(answer)

        threads = [threading.Thread(target=ask) for _ in range(8)]  # they share a worker
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(answers) == 8
        assert all(isinstance(answer, np.ndarray) and answer.shape == (2, 10)
                   and np.allclose(answer, 0.1) for answer in answers), answers
        assert host.predict("good.h5", images).shape == (2, 10)
    finally:
        host.close()


@pytest.mark.slow
def test_a_model_that_kills_its_worker_is_reported_and_the_others_answer(small_mnist):
    """A file whose model crashes when predicting, not when loading."""
    from mnistkit.read.loading import ModelError

    host = ModelHost(["good.h5", "crash_on_predict.h5"], mnist=small_mnist, timeout=5,
                     **HOSTILE)
    try:
        host.start()
        assert all(model.error is None for model in host.models)
        for _ in range(2):  # the model is loaded again after each crash, and crashes again
            with pytest.raises(ModelError, match=r"crashed the model reader \(segmentation"):
                host.predict("crash_on_predict.h5", np.zeros((1, 28, 28), np.uint8))
            assert host.predict("good.h5", np.zeros((1, 28, 28), np.uint8)).shape == (1, 10)
    finally:
        host.close()


def test_evaluate_orchestrates_without_tensorflow(tmp_path):
    """The parent process never imports TensorFlow; --help answers at once."""
    probe = ("import runpy, sys; sys.argv = ['evaluate.py', sys.argv[1]]\n"
             "try: runpy.run_path('evaluate.py', run_name='__main__')\n"
             "except SystemExit: pass\n"
             "print('TF', 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    (tmp_path / "notes.h5").write_text("not a model")
    result = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "notes.h5")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "TF False False" in result.stdout, result.stderr
    assert "not a model file" in result.stdout
    started = time.monotonic()
    help_ = subprocess.run([sys.executable, "evaluate.py", "--help"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert help_.returncode == 0 and "--timeout" in help_.stdout
    assert time.monotonic() - started < 5
