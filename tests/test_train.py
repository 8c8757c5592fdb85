from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lgn.data import Encoding
from lgn.train import CheckpointError, TrainConfig, TrainingError, load_checkpoint, load_model, train
from lgn.train import loop


@pytest.fixture(scope="module")
def tiny_digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(d.target))[:600]
    x, y = d.data[perm].astype(np.float32), d.target[perm].astype(np.int64)
    return SimpleNamespace(
        name="digits", x_train=x[:500], y_train=y[:500], x_test=x[500:], y_test=y[500:], num_classes=10,
        feature_dtype="uint8", encoding=Encoding("uniform", 3, 0.0, 16.0),
    )


def small_config(**kw):
    base = dict(layers=2, width=200, tau=10, epochs=3, batch_size=64, lr=0.05, init="random")
    return TrainConfig.for_dataset("digits", **{**base, **kw})


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_training_reaches_threshold_and_reports_metrics(tiny_digits, tmp_path):
    result = train(small_config(epochs=8), tiny_digits, out=tmp_path / "m.pt", progress=False, log=lambda s: None)
    last = result.history[-1]
    assert set(last) >= {"loss", "relaxed_acc", "discrete_acc", "gap", "epoch", "step"}
    assert last["discrete_acc"] > 0.6
    assert abs(last["gap"] - (last["relaxed_acc"] - last["discrete_acc"])) < 1e-12


def test_checkpoint_round_trip(tiny_digits, tmp_path):
    out = tmp_path / "m.pt"
    result = train(small_config(), tiny_digits, out=out, progress=False, log=lambda s: None)
    model, config = load_model(out)
    assert config["width"] == 200 and config["num_classes"] == 10
    x = torch.as_tensor(tiny_digits.x_test)
    with torch.no_grad():
        assert torch.equal(model(x), result.model.eval()(x))
    state = torch.load(out, weights_only=True)  # pickle-free
    assert state["format"] == "lgn-checkpoint"


@pytest.mark.parametrize("split", [{"epochs": 2}, {"steps": 11}])
def test_resume_continues_exactly(tiny_digits, tmp_path, split):
    straight = train(small_config(epochs=4), tiny_digits, out=tmp_path / "a.pt", progress=False, log=lambda s: None)
    out = tmp_path / "b.pt"
    first = small_config(**split) if "epochs" in split else small_config(epochs=4, **split)
    train(first, tiny_digits, out=out, progress=False, log=lambda s: None)
    resumed = train(small_config(epochs=4), tiny_digits, out=out, resume=True, progress=False, log=lambda s: None)
    for (k, v), w in zip(weights(straight.model).items(), weights(resumed.model).values()):
        assert torch.equal(v, w), k
    assert [h["loss"] for h in straight.history] == [h["loss"] for h in resumed.history]


def test_stop_flag_saves_a_consistent_checkpoint(tiny_digits, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = loop.cross_entropy

    def interrupting(scores, target):  # the SIGINT handler sets the flag mid-epoch
        calls["n"] += 1
        if calls["n"] == 5:
            loop._StopFlag._handle(flag_holder["flag"], None, None)
        return real(scores, target)

    flag_holder = {}
    original_enter = loop._StopFlag.__enter__

    def enter(self):
        flag_holder["flag"] = self
        return original_enter(self)

    monkeypatch.setattr(loop._StopFlag, "__enter__", enter)
    monkeypatch.setattr(loop, "cross_entropy", interrupting)
    out = tmp_path / "m.pt"
    result = train(small_config(), tiny_digits, out=out, progress=False, log=lambda s: None)
    assert result.interrupted
    state = load_checkpoint(out)
    assert state["step"] == 5 and state["batch"] == 5
    monkeypatch.setattr(loop, "cross_entropy", real)
    resumed = train(small_config(), tiny_digits, out=out, resume=True, progress=False, log=lambda s: None)
    straight = train(small_config(), tiny_digits, out=tmp_path / "s.pt", progress=False, log=lambda s: None)
    for v, w in zip(weights(straight.model).values(), weights(resumed.model).values()):
        assert torch.equal(v, w)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_digits, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = loop.cross_entropy

    def poisoned(scores, target):
        calls["n"] += 1
        loss = real(scores, target)
        return loss * float("nan") if calls["n"] == 12 else loss

    monkeypatch.setattr(loop, "cross_entropy", poisoned)
    out = tmp_path / "m.pt"
    with pytest.raises(TrainingError, match=r"nan at step 12 \(epoch 2\); last good checkpoint: .*m\.pt"):
        train(small_config(), tiny_digits, out=out, progress=False, log=lambda s: None)
    state = load_checkpoint(out)
    assert state["epoch"] == 1 and state["step"] == 8
    assert not list(tmp_path.glob(".*tmp"))


def test_bad_checkpoints(tiny_digits, tmp_path):
    out = tmp_path / "m.pt"
    train(small_config(epochs=1), tiny_digits, out=out, progress=False, log=lambda s: None)
    data = out.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="trunc.pt is not a readable lgn checkpoint"):
        load_model(tmp_path / "trunc.pt")
    (tmp_path / "noise.pt").write_bytes(bytes(range(256)) * 10)
    with pytest.raises(CheckpointError, match="noise.pt is not a readable"):
        load_model(tmp_path / "noise.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an lgn checkpoint"):
        load_model(tmp_path / "foreign.pt")
    state = torch.load(out, weights_only=True)
    del state["checksum"]  # written as an older lgn would: the checks after the checksum apply
    state["config"]["width"] = 300
    torch.save(state, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="config does not match weights: 'layers.0.weights' has shape"):
        load_model(tmp_path / "mismatch.pt")
    state["config"]["width"] = 200
    state["version"] = 99
    torch.save(state, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="version 99"):
        load_model(tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "missing.pt")


def test_unwritable_output_fails_before_training(tiny_digits, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CheckpointError, match="cannot write to .*file/m.pt"):
        train(small_config(), tiny_digits, out=blocker / "m.pt", progress=False, log=lambda s: None)


def test_pass_decay_turns_unneeded_gates_into_wires(tiny_digits):
    from lgn.compile.lower import lower
    from lgn.compile.passes import optimize
    from lgn.nn import gates

    plain = train(small_config(epochs=8), tiny_digits, progress=False, log=lambda s: None)
    decayed = train(small_config(epochs=8, pass_decay=0.2), tiny_digits, progress=False, log=lambda s: None)
    count = lambda result: [int((layer.gate_ops() == gates.A).sum()) for layer in result.model.layers]  # noqa: E731
    assert sum(count(decayed)) > sum(count(plain))  # more pass-through gates
    assert optimize(lower(decayed.model)).num_gates < optimize(lower(plain.model)).num_gates
    assert decayed.history[-1]["discrete_acc"] > 0.5  # still a classifier


def test_pass_decay_step_moves_logits_toward_the_pass_through_gate():
    from lgn.nn import LogicLayer

    for parametrization in ("gates", "table"):
        layer = LogicLayer(4, 6, parametrization=parametrization)
        target = layer.pass_through_logits()
        before = (layer.weights - target).abs().sum()
        loop._decay_to_pass_through(loop._pass_through_targets(layer), 0.25)
        assert torch.allclose((layer.weights - target).abs().sum(), 0.75 * before)


def test_pass_decay_out_of_range(tiny_digits):
    with pytest.raises(TrainingError, match="--pass-decay 30.0 times --lr 0.05"):
        train(small_config(pass_decay=30.0), tiny_digits, progress=False, log=lambda s: None)
