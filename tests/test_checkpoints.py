"""Checkpoint files: the checksum over the whole state, old files, and the checks made before a
model is built (config types and ranges, the tensors the config implies)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lgn.compile import formats
from lgn.compile.lower import lower
from lgn.data import Encoding
from lgn.io import load_model_file
from lgn.nn import Thermometer
from lgn.train import CheckpointError, TrainConfig, load_checkpoint, load_model, save_checkpoint, train
from lgn.train.checkpoint import build_model, implied_shapes, state_sha256, validate_config

OLD_RELEASE = Path(__file__).parent / "data" / "old-release"


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = d.data[:300].astype(np.float32), d.target[:300].astype(np.int64)
    return SimpleNamespace(name="digits", x_train=x[:250], y_train=y[:250], x_test=x[250:], y_test=y[250:],
                           num_classes=10, feature_dtype="uint8", encoding=Encoding("uniform", 2, 0.0, 16.0))


@pytest.fixture(scope="module")
def checkpoint(digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "m.pt"
    config = TrainConfig.for_dataset("digits", layers=2, width=20, tau=2.0, steps=4, batch_size=64, encoder_bits=2)
    train(config, digits, out=out, progress=False, log=lambda s: None)
    return out


def resaved(tmp_path, state, name="edited.pt") -> Path:
    path = tmp_path / name
    torch.save(state, path)
    return path


def test_the_checksum_covers_the_whole_state_and_is_stable(checkpoint, tmp_path):
    state = load_checkpoint(checkpoint)
    assert state["checksum"] == state_sha256(state)
    again = save_checkpoint(tmp_path / "again.pt", {k: v for k, v in state.items()
                                                    if k not in ("format", "version", "checksum")})
    assert load_checkpoint(again)["checksum"] == state["checksum"]  # save -> load -> save is stable
    for edit in (lambda s: s["optimizer"]["state"][0]["exp_avg"].add_(1e-3),  # training state only
                 lambda s: s["history"].append({}),
                 lambda s: s["config"].update(lr=0.5),
                 lambda s: s["model"]["layers.1.weights"].mul_(2)):
        raw = torch.load(checkpoint, weights_only=True)
        edit(raw)
        with pytest.raises(CheckpointError, match=r"edited\.pt: checksum mismatch, the file is damaged$"):
            load_model(resaved(tmp_path, raw))


def test_state_sha256_tells_types_apart():
    base = {"a": [1, 2.0, "3", None, True, (4,), torch.zeros(2, dtype=torch.int32)]}
    variants = [{"a": [1.0, 2.0, "3", None, True, (4,), torch.zeros(2, dtype=torch.int32)]},
                {"a": [1, 2.0, "3", None, 1, (4,), torch.zeros(2, dtype=torch.int32)]},
                {"a": [1, 2.0, "3", None, True, [4], torch.zeros(2, dtype=torch.int32)]},
                {"a": [1, 2.0, "3", None, True, (4,), torch.zeros(2, dtype=torch.float32)]},
                {"a": [1, 2.0, "3", None, True, (4,), torch.zeros(1, 2, dtype=torch.int32)]},
                {"b": base["a"]}]
    digests = {state_sha256(v) for v in variants} | {state_sha256(base)}
    assert len(digests) == len(variants) + 1
    assert state_sha256({"x": 1, "y": 2}) == state_sha256({"y": 2, "x": 1})
    with pytest.raises(TypeError, match="cannot checksum a set"):
        state_sha256({"x": {1}})


def test_previous_release_checkpoint_loads_with_a_note_and_resumes(digits, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="lgn"):
        file = load_model_file(OLD_RELEASE / "model.pt")
    assert file.kind == "checkpoint" and not file.verified
    assert [r.getMessage() for r in caplog.records] == [
        f"note: {OLD_RELEASE / 'model.pt'}: checkpoint carries no checksum (written before lgn recorded one); "
        "loaded without verification"]
    # the netlist the old release exported from it is the same model
    assert formats.load(OLD_RELEASE / "model.npz").sha256 == file.digest
    out = tmp_path / "resumed.pt"
    shutil.copy(OLD_RELEASE / "model.pt", out)
    config = TrainConfig.for_dataset("digits", steps=6)
    train(config, digits, out=out, resume=True, progress=False, log=lambda s: None)
    state = load_checkpoint(out)
    assert state["step"] == 6 and state["checksum"] == state_sha256(state)


def test_an_old_checkpoint_with_damaged_data_fails_its_zip_crc(tmp_path):
    data = bytearray((OLD_RELEASE / "model.pt").read_bytes())
    position = data.index(b"archive/data/1") + 200  # inside a tensor record
    data[position] ^= 0x40
    (tmp_path / "old.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"old\.pt: damaged \(CRC mismatch in 'archive/data/"):
        load_checkpoint(tmp_path / "old.pt")


@pytest.mark.parametrize("key, value, message", [
    ("layers", 10**6, r"'layers' must be an integer in 1..10000, got 1000000"),
    ("layers", 500, r"config does not match weights: 'layers.2.weights' is missing \(the config implies 1501 "
                    r"tensors, the file holds 7\)"),
    ("width", 2**70, "'width' must be an integer in 1..67108864"),
    ("width", 40, r"'layers.0.weights' has shape \(20, 16\), config implies \(40, 16\)"),
    ("seed", 1.5, "'seed' must be an integer"),
    ("seed", 2**70, "'seed' must be an integer"),
    ("layers", True, "'layers' must be an integer"),
    ("num_classes", 3, "'width' 20 is not a multiple of 'num_classes' 3"),
    ("tau", 10**400, "'tau' must be a positive finite number or None"),
    ("tau", float("nan"), "'tau' must be a positive finite number or None"),
    ("connections", "nope", "'connections' must be one of"),
    ("parametrization", "table", r"'layers.0.weights' has shape \(20, 16\), config implies \(20, 4\)"),
    ("feature_dtype", 7, "'feature_dtype' must be one of"),
    ("dataset", ["digits"], "'dataset' must be a string"),
])
def test_config_is_checked_before_the_model_is_built(checkpoint, tmp_path, key, value, message):
    raw = torch.load(checkpoint, weights_only=True)
    raw["config"][key] = value
    raw["checksum"] = f"sha256:{state_sha256(raw)}"  # a consistent file: the config checks must catch it
    with pytest.raises(CheckpointError, match=message) as info:
        load_model(resaved(tmp_path, raw))
    assert str(info.value).startswith(f"{tmp_path / 'edited.pt'}: ") and "\n" not in str(info.value)


@pytest.mark.parametrize("edit, message", [
    (lambda w: w.update({"layers.0.idx_a": w["layers.0.idx_a"].float()}),
     r"'layers.0.idx_a' has dtype torch.float32, expected torch.int64"),
    (lambda w: w["layers.1.idx_b"].__setitem__(0, 20), r"layers.1.idx_b indexes outside 0\.\.19"),
    (lambda w: w["layers.0.idx_a"].__setitem__(0, -1), "layers.0.idx_a indexes outside"),
    (lambda w: w["layers.0.weights"].__setitem__((0, 0), float("nan")), "'layers.0.weights' holds non-finite"),
    (lambda w: w.update({"layers.0.weights": w["layers.0.weights"].int()}), "expected floats"),
    (lambda w: w.update({"extra": torch.zeros(1)}), "unexpected 'extra'"),
    (lambda w: w.pop("encoder.thresholds"), "weights lack a 2-d 'encoder.thresholds'"),
    (lambda w: w.update({"encoder.thresholds": torch.zeros(0, 3)}), r"'encoder.thresholds' has shape \(0, 3\)"),
])
def test_weights_are_checked_against_the_config(checkpoint, tmp_path, edit, message):
    raw = torch.load(checkpoint, weights_only=True)
    edit(raw["model"])
    raw["checksum"] = f"sha256:{state_sha256(raw)}"
    with pytest.raises(CheckpointError, match=message):
        load_model(resaved(tmp_path, raw))


@pytest.mark.parametrize("field, value, message", [
    ("epoch", -1, "field 'epoch' is not a count"),
    ("perm", torch.zeros(3), "field 'perm' is not a 1-d torch.int64 tensor"),
    ("rng", [1, 2], "field 'rng' is malformed"),
    ("version", 1.0, "checkpoint version 1.0"),
    ("checksum", "md5:0", "bad checksum field 'md5:0'"),
])
def test_training_state_fields_are_checked(checkpoint, tmp_path, field, value, message):
    raw = torch.load(checkpoint, weights_only=True)
    raw[field] = value
    if field != "checksum":
        raw["checksum"] = f"sha256:{state_sha256(raw)}"
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(resaved(tmp_path, raw))


@pytest.mark.parametrize("config", [
    dict(layers=1, width=10, parametrization="gates"), dict(layers=3, width=12, parametrization="table"),
    dict(layers=2, width=30, parametrization="gates", connections="unique", init="residual"),
])
def test_implied_shapes_are_what_build_model_creates(config):
    config = validate_config({"num_classes": 2, "tau": None, "connections": "random", "init": "random",
                              "seed": 3, "feature_dtype": "uint8", **config})
    encoder = Thermometer(torch.rand(5, 3))
    built = build_model(config, encoder).state_dict()
    specs = implied_shapes(config, (5, 3))
    assert list(specs) == list(built)
    for key, spec in specs.items():
        assert tuple(built[key].shape) == spec.shape
        assert (built[key].dtype == torch.int64) == (spec.kind == "index")
        if spec.kind == "index":
            assert int(built[key].max()) < spec.index_bound


def test_the_model_hash_is_that_of_the_lowered_netlist(checkpoint, tmp_path):
    file = load_model_file(checkpoint)
    model, _ = load_model(checkpoint)
    assert file.digest == lower(model).sha256 == formats.digest(file.netlist)
    assert file.verified and file.checksum == load_checkpoint(checkpoint)["checksum"]


def test_unwritable_checkpoint_names_the_path(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(CheckpointError, match=r"cannot write to .*file/m\.pt: .*file is a file, not a directory"):
        save_checkpoint(tmp_path / "file" / "m.pt", {"config": {}, "model": {}})
    with pytest.raises(CheckpointError, match="cannot write checkpoint .*: cannot checksum a set"):
        save_checkpoint(tmp_path / "m.pt", {"config": {"x": {1}}, "model": {}})
