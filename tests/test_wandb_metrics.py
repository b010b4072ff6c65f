"""W&B's metric calls as training scripts write them (``wandb.log``, ``run.summary``,
``define_metric``, ``watch``, ``alert``, ``save``): a store keeps no metric history, but
such a script runs, and each key's last value is the run's summary, as in W&B."""

from __future__ import annotations

import os
import warnings

import pytest

import artifacts
from tests.helpers import write


def test_log_keeps_each_keys_last_value_as_the_runs_summary(ws):
    run = artifacts.init(project="train")
    with pytest.warns(UserWarning, match="no metric history.*TensorBoard") as said:
        for epoch in range(3):
            artifacts.log({"loss": 1.0 / (epoch + 1), "epoch": epoch})
    assert len(said) == 1  # once per run, not per call
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run.log({"acc": 0.5}, step=10)
        run.log({"acc": 0.7, "lr": 0.1}, commit=False)
    run.summary["best_acc"] = 0.9  # W&B's explicit summary
    run.summary.update({"note": "ok"})
    artifacts.summary["final"] = True  # wandb.summary: the active run's
    assert (run.summary["loss"], run.summary.acc, run.summary["_step"]) == (1 / 3, 0.7, 10)
    run.log({"best_acc": 0.8})  # a later log replaces it, as in W&B
    del run.summary["note"]
    assert "note" not in run.summary
    before = artifacts.Api().run(run.path).summary
    assert before == {}  # nothing written per log call: once, at finish
    run.finish()
    expected = {"loss": 1 / 3, "epoch": 2, "acc": 0.7, "lr": 0.1, "best_acc": 0.8}
    expected.update(final=True, _step=10)  # best_acc joined step 10, as in W&B
    got = artifacts.Api().run(run.path)
    assert {k: got.summary[k] for k in expected} == expected
    assert got.summary_metrics == got.summary
    assert isinstance(got.summary["_timestamp"], float)
    with pytest.raises(artifacts.UsageError, match="finished"):
        run.log({"late": 1})


def test_a_summary_value_that_cannot_be_kept_is_said_once_and_the_rest_kept(ws):
    with artifacts.init() as run:
        with pytest.warns(UserWarning, match="'obj' .*not kept") as said:
            run.log({"obj": object(), "x": 1})
            run.log({"obj": object(), "x": 2})
        assert [str(w.message) for w in said].count(str(said[0].message)) == 1
        with pytest.raises(TypeError, match="dict"):
            run.log([1, 2])
    assert artifacts.Api().run(run.path).summary["x"] == 2


def test_a_step_lower_than_the_runs_is_ignored_with_a_warning_as_in_w_and_b(ws):
    with artifacts.init() as run, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run.log({"a": 1}, step=5)
        with pytest.warns(UserWarning, match="step 2 .*less than the current step 5"):
            run.log({"a": 2}, step=2)
    assert artifacts.Api().run(run.path).summary["a"] == 1


def test_define_metric_summaries_are_w_and_bs_and_watch_alert_save_say_they_do_nothing(ws):
    with artifacts.init() as run, warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        artifacts.define_metric("acc", summary="max")  # W&B's best-so-far recipe
        run.define_metric("loss", summary="min,last")
        run.define_metric("val/*", summary="mean")  # a glob: every key it starts
        run.define_metric("skip", summary="none")  # none: not in the summary
        run.define_metric("epoch_acc", step_metric="epoch")  # no history: said
        for acc, loss, val in ((0.5, 3, 1), (0.9, 1, 2), (0.7, 2, 6)):
            run.log({"acc": acc, "loss": loss, "val/a": val, "skip": 1, "x": acc})
        artifacts.watch(object(), log="all")
        artifacts.alert(title="low acc", text="acc < 0.5")
        artifacts.save("*.ckpt")
        run.save("*.ckpt")
        artifacts.unwatch()
        with pytest.raises(artifacts.UsageError, match="median"):
            run.define_metric("acc", summary="median")
    messages = [str(w.message) for w in said if "metric history" not in str(w.message)]
    assert len(messages) == 5, messages
    for name in ("define_metric('epoch_acc'", "watch(", "alert(", "save(", "unwatch("):
        assert any(m.startswith(name) for m in messages), name
    assert any("low acc" in m and "acc < 0.5" in m for m in messages)
    assert any("log_artifact" in m for m in messages if m.startswith("save("))
    summary = artifacts.Api().run(run.path).summary
    assert (summary["acc"], summary["loss"]) == ({"max": 0.9}, {"min": 1, "last": 2})
    assert (summary["val/a"], summary["x"], "skip" in summary) == ({"mean": 3.0}, 0.7, False)
    with pytest.raises(artifacts.UsageError, match="init"):
        artifacts.log({"a": 1})
    with pytest.raises(artifacts.UsageError, match="init"):
        artifacts.summary  # noqa: B018


def test_a_resumed_run_keeps_its_summary(ws):
    with artifacts.init(id="r1") as run:
        run.log({"a": 1, "b": 2})
    with artifacts.init(id="r1", resume="allow") as run:
        assert run.summary["a"] == 1
        run.log({"a": 3})  # the step after the last one, as W&B's resumed run goes on
        assert run.summary["_step"] == 1
    assert artifacts.Api().run("r1").summary["a"] == 3


def test_a_recorded_runs_summary_edited_is_stored_by_update_as_w_and_bs(ws):
    with artifacts.init() as run, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run.log({"acc": 0.5, "loss": 2.0})
    recorded = artifacts.Api().run(run.path)
    recorded.summary["best_acc"] = 0.9  # W&B's way to add a metric after the fact
    del recorded.summary["loss"]
    recorded.update()
    summary = artifacts.Api().run(run.path).summary
    assert (summary["best_acc"], summary["acc"], "loss" in summary) == (0.9, 0.5, False)
    with artifacts.init():  # a run with another best, which the filter leaves out
        pass
    found = artifacts.Api().runs(filters={"summary_metrics.best_acc": {"$in": [0.9]}})
    assert [r.id for r in found] == [run.id]


def test_a_runs_url_dir_and_username_as_w_and_bs_offline_run(ws, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wdir"))  # W&B's root of run dirs
    with artifacts.init() as run:
        with pytest.warns(UserWarning, match="no web page.*artifacts ui.*~runs"):
            assert run.url is None and run.get_url() is None
        assert os.path.isdir(run.dir) and run.dir.startswith(str(tmp_path / "wdir"))
        write(os.path.join(run.dir, "model.pt"), "weights")  # W&B would upload it
        with pytest.warns(UserWarning, match="model.pt.*not kept.*log_artifact"):
            run.finish()
    assert os.path.isfile(os.path.join(run.dir, "model.pt"))  # left where it was
    recorded = artifacts.Api().run(run.path)
    with pytest.warns(UserWarning, match="no web page"):
        assert recorded.url is None
    with pytest.warns(DeprecationWarning, match="entity"):
        assert recorded.username == recorded.entity
    with artifacts.init(mode="disabled") as off:
        assert off.url is None and off.get_url() is None and os.path.isdir(off.dir)


def test_a_finished_runs_summary_refuses_changes_it_could_not_keep(ws):
    with artifacts.init() as run:
        with pytest.raises(TypeError, match="string"):
            run.summary[1] = "one"  # W&B's keys are strings
        run.summary["a"] = 1
    with pytest.raises(artifacts.UsageError, match="finished"):
        run.summary["late"] = 2  # never written: refused, as log is
    with pytest.raises(artifacts.UsageError, match="finished"):
        del run.summary["a"]
    assert run.summary["a"] == 1 and artifacts.Api().run(run.path).summary == {"a": 1}


def test_a_nested_summary_changed_in_place_is_written_and_read_by_attribute(ws):
    with artifacts.init() as run:
        run.summary["best"] = {"acc": 0.5}
    with artifacts.init(id=run.id, resume="allow") as again:
        again.summary["best"]["acc"] = 0.9  # in place, as W&B's nested summary takes it
    recorded = artifacts.Api().run(run.path)
    assert recorded.summary["best"] == {"acc": 0.9}
    assert recorded.summary.best == {"acc": 0.9}  # W&B's public summary, by attribute


def test_init_dir_is_where_run_dir_goes_as_w_and_bs(ws, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "env"))
    with artifacts.init(dir=tmp_path / "given") as run:  # init's dir wins, as in W&B
        assert run.dir.startswith(str(tmp_path / "given")) and os.path.isdir(run.dir)


def test_run_step_is_w_and_bs_step_counter(ws):
    with artifacts.init() as run, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert run.step == 0
        run.log({"a": 1})
        run.log({"a": 2})
        assert run.step == 2  # the step the next log goes to, as W&B's
        run.log({"a": 3}, step=7)
        assert run.step == 7
    with artifacts.init(mode="disabled") as off:
        assert off.step == 0  # W&B's disabled run's


def test_a_resumed_runs_max_goes_on_from_its_summary(ws):
    for acc in (0.8, 0.6):
        with artifacts.init(id="r2", resume="allow") as run, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run.define_metric("acc", summary="max")
            run.log({"acc": acc, "acc_text": "n/a"})
    assert artifacts.Api().run("r2").summary["acc"] == {"max": 0.8}


def test_runs_ordered_by_a_summary_metric_give_the_best_run_first_as_w_and_bs(ws):
    made = {}
    for acc, lr in ((0.5, 0.1), (0.9, 0.01), (None, 0.5)):
        with artifacts.init(config={"lr": lr}) as run, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run.define_metric("val_acc", summary="max")
            if acc is not None:
                run.log({"acc": acc, "val_acc": acc})
        made[run.id] = acc
    api = artifacts.Api()
    best = api.runs(order="-summary_metrics.acc")  # W&B's "best run" recipe
    assert [made[r.id] for r in best] == [0.9, 0.5, None]  # a run without it: last
    assert [made[r.id] for r in api.runs(order="+summary_metrics.acc")] == [None, 0.5, 0.9]
    by_max = api.runs(order="-summary_metrics.val_acc.max")  # into define_metric's dict
    assert [made[r.id] for r in by_max] == [0.9, 0.5, None]
    assert [r.config["lr"] for r in api.runs(order="config.lr")] == [0.01, 0.1, 0.5]
    with pytest.raises(artifacts.UsageError, match="summary_metrics.KEY"):
        api.runs(order="-heartbeat_at")


def test_a_recorded_runs_history_is_refused_saying_where_its_last_values_are(ws):
    with artifacts.init() as run, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run.log({"loss": 1.0})
    recorded = artifacts.Api().run(run.path)
    for read in (recorded.history, recorded.scan_history):
        with pytest.raises(artifacts.UsageError, match=r"no metric history.*run.summary"):
            read(keys=["loss"])
