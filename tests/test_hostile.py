"""The fast part of benchmarks/hostile_sweep.py (testkit/hostile*.py): a few hostile inputs
of each kind, run through the real scripts. Each must end in one line naming the file or flag and a
non-zero exit, never a crash, hang or traceback, with the good files' results all there and
nothing that was on disk replaced."""

import pytest

from testkit import hostile as sweep
from testkit import hostile_data, hostile_models, hostile_outputs, hostile_pictures

ACCEPTED = ("refused", "evaluated", "contained")


@pytest.fixture(scope="module")
def kit(tmp_path_factory, mnist):
    """A logistic regression trained by train_logreg.py (one epoch on 2,000 images), its
    score, and a good picture of a digit."""
    return sweep.make_kit(tmp_path_factory.mktemp("hostile"), ("logreg.h5",), timeout=180)


def outcomes(results):
    return {result.name: (result.outcome, result.detail) for result in results}


@pytest.mark.slow
def test_damaged_and_crafted_models_fail_their_own_rows_only(kit, tmp_path):
    # a 0xFF flip, a truncation, zeroed bytes
    damaged = hostile_models.damaged_models(kit, tmp_path, 1)
    crafted = hostile_models.crafted_models(kit, tmp_path, quick=True)
    crafted = [path for path in crafted if not path.name.startswith("name-")]  # hangs 30 s
    results = outcomes(hostile_models.sweep_models(kit, damaged + crafted, "models", batch=99))
    # Every good copy (one named in bytes that are not UTF-8) kept its exact score beside them.
    assert all(outcome in ACCEPTED for outcome, _ in results.values()), results
    for name in ("units-1.5M.h5", "units-negative.h5", "config-missing.h5", "empty.h5",
                 "random.keras", "config-1GB.keras"):
        outcome, why = results[name]
        assert outcome in ("refused", "contained") and "\n" not in why, (name, why)
    assert "needed more than" in results["units-1.5M.h5"][1]
    assert results[damaged[1].name][0] == "refused"  # a truncated file has no score
    for name in ("weights-nan.h5", "weights-inf.h5"):  # no silent score of garbage
        outcome, why = results[name]
        assert outcome == "refused" and "not finite" in why, (name, why)
    assert "unpacks to" in results["config-1GB.keras"][1]  # refused unread


def test_hostile_pictures_get_one_line_each_and_the_good_one_its_answer(kit, tmp_path):
    made, odd = hostile_pictures.hostile_pictures(kit, tmp_path, quick=True)
    odd_name = tmp_path / f"{sweep.NON_UTF8}.png"  # bytes a UTF-8 terminal cannot show
    odd_name.write_bytes(kit.picture.read_bytes())
    results = outcomes(hostile_pictures.sweep_pictures(kit, [*made, *odd, odd_name], "pictures"))
    assert all(outcome in ACCEPTED for outcome, _ in results.values()), results
    for name in ("zeroed-tail.png", "truncated.png", "fifo.png", "folder.png", "zero",
                 "loop.png", "missing.png", "blank.png", "bomb-1x170M.png"):
        outcome, line = results[name]
        assert outcome == "refused" and line.startswith("error: "), (name, line)
    assert "too many pixels" in results["bomb-1x170M.png"][1]
    assert "not a regular file" in results["fifo.png"][1]
    assert results["cmyk.jpg"][0] == "evaluated"
    assert results[odd_name.name][0] == "evaluated"


def test_hostile_data_is_refused_in_one_line(kit, tmp_path):
    paths = hostile_data.hostile_data(kit, tmp_path, quick=True)
    results = hostile_data.sweep_data(kit, paths, "data", training=False)
    for result in results:
        assert result.outcome == "refused", result
        assert result.name.split()[-1] in result.detail, result
    assert any("not a regular file" in result.detail for result in results
               if "fifo" in result.name)


def test_output_paths_are_refused_and_nothing_is_replaced(kit, tmp_path):
    for result in hostile_outputs.sweep_outputs(kit, tmp_path, quick=True):
        assert result.outcome == "refused", result  # "replaced files" if anything changed
        assert result.detail.startswith("error: --"), result


@pytest.mark.parametrize("case", ["train --seed -1", "train --batch-size 10**20",
                                  "train --distribute --cpu-devices 1000",
                                  "evaluate --timeout 1e308", "predict --test-index 10**30"])
def test_extreme_flags_are_refused_in_one_line(kit, case):
    argv = dict(hostile_outputs.flag_cases(kit, quick=True))[case]
    outcome, line = sweep.judge(sweep.run(argv, 120), {}, {})
    assert outcome == "refused", line
    assert [word for word in case.split() if word.startswith("--")][-1] in line


def test_the_memory_limit_is_beyond_the_backend_and_at_least_one_gb(kit):
    # The backend's own libraries are not the model's: a 1 GB budget scores a model even
    # where CUDA's libraries alone map more than that.
    done = sweep.run(["evaluate.py", str(kit.models["logreg.h5"]), "--data", str(kit.data),
                      "--memory-limit", "1"], 120)
    assert done.code == 0, done.text
    done = sweep.run(["evaluate.py", str(kit.models["logreg.h5"]), "--memory-limit", "0.5"],
                     120)
    assert done.code == 2 and "Traceback" not in done.text, done.text
    assert "--memory-limit: must be at least 1 (GB), got 0.5" in done.text


def test_draw_answers_hostile_uploads_and_keeps_serving(kit, tmp_path):
    made, _ = hostile_pictures.hostile_pictures(kit, tmp_path, quick=True)
    results = outcomes(hostile_pictures.sweep_draw(kit, made))
    assert set(results) == {path.name for path in made}, results
    assert all(outcome in ACCEPTED for outcome, _ in results.values()), results
    assert results["zeroed-tail.png"][0] == "refused"



# ------------------------------------------------------------------ around the model files
@pytest.mark.slow
def test_a_hostile_record_costs_only_its_settings(kit, tmp_path, monkeypatch):
    from testkit import hostile_records

    monkeypatch.setattr(hostile_records, "RECORDS", {
        kind: hostile_records.RECORDS[kind] for kind in ("fifo", "deep", "accuracy-text")})
    results = outcomes(hostile_records.sweep_records(kit, tmp_path))
    assert all(outcome in ("evaluated", "refused") for outcome, _ in results.values()), results
    assert results["evaluate fifo"][0] == "evaluated"  # both rows scored, exit 0


@pytest.mark.slow
def test_draw_answers_every_malformed_request(kit):
    from testkit import hostile_requests

    results = outcomes(hostile_requests.sweep_requests(kit))
    assert set(hostile_requests.REQUESTS) <= set(results)
    assert all(outcome in ("refused", "evaluated") for outcome, _ in results.values()), results
    assert results["50 clients hang up, then one asks"][0] == "evaluated"


@pytest.mark.slow
def test_an_unusable_tensorboard_folder_is_refused_in_one_line(kit, tmp_path):
    from testkit import hostile_checkpoints

    results = outcomes(hostile_checkpoints.sweep_tensorboard(kit, tmp_path))
    assert all(outcome == "refused" for outcome, _ in results.values()), results


@pytest.mark.slow
def test_killed_scripts_leave_no_workers_and_no_files(kit):
    from testkit import hostile_records

    results = outcomes(hostile_records.sweep_kills(kit, quick=True))  # the sweep: all nine
    assert set(results) == {"evaluate SIGTERM", "predict SIGHUP", "draw SIGKILL"}
    assert all(outcome == "refused" for outcome, _ in results.values()), results


@pytest.mark.slow
def test_damaged_checkpoints_are_refused_never_resumed(kit, tmp_path):
    from testkit import hostile_checkpoints

    results = outcomes(hostile_checkpoints.sweep_checkpoints(kit, tmp_path, quick=True))
    assert set(results) == set(hostile_checkpoints.QUICK_CHECKPOINTS)
    assert results.pop("the intact pair")[0] == "evaluated"
    assert all(outcome == "refused" and "cannot resume from it" in detail
               for outcome, detail in results.values()), results


@pytest.mark.slow
def test_stored_code_never_runs_and_runs_leave_no_temporary_files(kit, tmp_path):
    from testkit.hostile_code import sweep_stored_code

    results = outcomes(sweep_stored_code(kit, tmp_path))
    assert len(results) == 9, results
    print("\n".join(f"{name}: {outcome} ({detail})" for name, (outcome, detail) in results.items()))
    assert all(outcome in ACCEPTED for outcome, _ in results.values()), results
    for name in ("fed_identity_n", "loader_saver", "nested_function"):
        assert results[name] == ("refused", "SavedModel uses op WriteFile, which touches the "
                                            "world: refused"), results[name]
    assert results["inside.onnx"][0] == "evaluated"  # its bias read beside it, never refused
    assert "outside the model's folder: refused" in results["outside.onnx"][1]
