"""lgn.data: registry, digits, MONK's problems, npz/csv files, encodings and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from lgn.data import DEFAULT, Dataset, DatasetError, Encoding, describe, load, names
from lgn.data.monk import ATTRIBUTE_VALUES, monk_examples, monk_labels
from lgn.nn import Thermometer


def check_dataset(ds: Dataset, num_features: int, num_classes: int, dtype: str):
    assert isinstance(ds, Dataset)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32 and x.ndim == 2 and x.shape[1] == num_features
        assert y.dtype == np.int64 and y.shape == (len(x),)
        assert 0 <= y.min() and y.max() < num_classes
    assert ds.num_classes == num_classes and len(ds.class_names) == num_classes
    assert ds.feature_dtype == dtype and ds.num_features == num_features
    assert isinstance(ds.encoding, Encoding)


# --- registry -----------------------------------------------------------------------------------

def test_names_and_descriptions():
    assert names()[0] == DEFAULT == "digits"
    assert {"digits", "mnist", "fashion-mnist", "cifar10", "monk1", "monk2", "monk3"} == set(names())
    assert all(describe(n) for n in names())


def test_unknown_name_lists_known_ones():
    with pytest.raises(DatasetError, match=r"unknown dataset 'imagenet'; known: digits, mnist.*npz:PATH"):
        load("imagenet")


def test_aliases_and_case():
    assert load("MONK_1").name == "monk1"
    assert load("monks-3").name == "monk3"


@pytest.mark.parametrize("kwargs, match", [
    ({"test_fraction": 0.0}, "test_fraction"), ({"test_fraction": 1.5}, "test_fraction"),
    ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"),
])
def test_bad_options(kwargs, match):
    with pytest.raises(DatasetError, match=match):
        load("digits", **kwargs)


@pytest.mark.parametrize("spec", ["", "  ", "npz:", "csv:"])
def test_bad_spec(spec):
    with pytest.raises(DatasetError):
        load(spec)


# --- digits -------------------------------------------------------------------------------------

def test_digits_default_split():
    ds = load("digits")
    check_dataset(ds, 64, 10, "uint8")
    assert (len(ds.y_train), len(ds.y_test)) == (1437, 360)
    assert ds.x_train.min() == 0 and ds.x_train.max() == 16
    # Stratified: each class has 20 % of its examples in the test set, to within one.
    total = np.bincount(ds.y_train, minlength=10) + np.bincount(ds.y_test, minlength=10)
    assert np.all(np.abs(np.bincount(ds.y_test, minlength=10) - 0.2 * total) <= 1)
    assert ds.encoding == Encoding("uniform", 3, 0.0, 16.0)


def test_digits_split_is_seeded_and_disjoint():
    a, b, c = load("digits"), load("digits"), load("digits", seed=1)
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.x_test, c.x_test)
    from sklearn.datasets import load_digits
    rows = {r.tobytes() for r in load_digits().data.astype(np.float32)}
    assert {r.tobytes() for r in a.x_train} | {r.tobytes() for r in a.x_test} <= rows
    assert len(load("digits", test_fraction=0.5).y_test) == 899


# --- MONK's problems ----------------------------------------------------------------------------

def _rule(problem: int, a) -> int:
    """The published MONK's rules, transcribed literally from the UCI description."""
    a1, a2, a3, a4, a5, a6 = a
    if problem == 1:
        return int(a1 == a2 or a5 == 1)
    if problem == 2:
        return int(sum(v == 1 for v in a) == 2)
    return int((a5 == 3 and a4 == 1) or (a5 != 4 and a2 != 3))


def test_monk_examples_span_the_domain():
    x = monk_examples()
    assert x.shape == (432, 6)
    assert len({tuple(r) for r in x}) == 432
    assert [len(set(x[:, i])) for i in range(6)] == list(ATTRIBUTE_VALUES)
    assert x.min() == 1


@pytest.mark.parametrize("problem, train_size, test_positives", [(1, 124, 216), (2, 169, 142), (3, 122, 228)])
def test_monk(problem, train_size, test_positives):
    ds = load(f"monk{problem}")
    check_dataset(ds, 6, 2, "uint8")
    assert len(ds.y_train) == train_size and len(ds.y_test) == 432
    # The test set is the whole domain, noise-free; positive counts match the UCI test files.
    expected = np.array([_rule(problem, a) for a in ds.x_test.astype(int)])
    assert np.array_equal(ds.y_test, expected) and ds.y_test.sum() == test_positives
    assert np.array_equal(monk_labels(problem, ds.x_test), expected)
    # Training rows are distinct examples of the domain with (noisy, for MONK-3) rule labels.
    assert len({r.tobytes() for r in ds.x_train}) == train_size
    truth = np.array([_rule(problem, a) for a in ds.x_train.astype(int)])
    assert (ds.y_train != truth).sum() == (6 if problem == 3 else 0)
    # Stratified draw: the train class balance follows the domain's, to within one example.
    assert abs(truth.sum() - train_size * test_positives / 432) <= 1


def test_monk_encoding_separates_every_value():
    ds = load("monk2")
    t = ds.encoding.thresholds(ds.x_train)
    codes = (monk_examples()[:, :, None] > t[None]).reshape(432, -1)
    for i, k in enumerate(ATTRIBUTE_VALUES):
        assert len({tuple(c) for c in codes[:, 3 * i:3 * i + 3]}) == k


def test_monk_seed():
    a, b = load("monk3"), load("monk3", seed=7)
    assert np.array_equal(a.x_train, load("monk3").x_train)
    assert not np.array_equal(a.x_train, b.x_train)


# --- encodings ----------------------------------------------------------------------------------

def test_encoding_builds_the_documented_thermometer():
    ds = load("digits")
    enc = ds.encoding.thermometer(ds.x_train)
    assert isinstance(enc, Thermometer)
    assert torch.equal(enc.thresholds, Thermometer.uniform(64, 3, 0, 16).thresholds)
    assert np.allclose(ds.encoding.thresholds(ds.x_train)[0], [4, 8, 12])
    q = Encoding("quantile", 7).thresholds(ds.x_train)
    assert q.shape == (64, 7) and np.all(np.diff(q, axis=1) >= 0)
    assert str(Encoding("quantile", 7)) == "quantile x 7"


@pytest.mark.parametrize("args", [("linear", 3), ("uniform", 0, 0, 1), ("uniform", 3), ("uniform", 3, 2, 1),
                                  ("uniform", 3, 0, float("inf")), ("quantile", 3, 0, 1), ("uniform", True, 0, 1)])
def test_bad_encoding(args):
    with pytest.raises(DatasetError, match="encoding"):
        Encoding(*args)


# --- the Dataset contract -----------------------------------------------------------------------

def _make(**changes):
    fields = dict(name="t", x_train=np.zeros((4, 2)), y_train=np.array([0, 1, 0, 1]), x_test=np.zeros((2, 2)),
                  y_test=np.array([0, 1]), num_classes=2, feature_dtype="uint8", encoding=Encoding("quantile", 2))
    fields.update(changes)
    return Dataset(**fields)


def test_dataset_converts_types():
    ds = _make(x_train=np.ones((4, 2), dtype=np.uint8), y_train=np.array([0, 1, 1, 0], dtype=np.uint8))
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.class_names == ("0", "1")
    assert "train=4, test=2, features=2, classes=2" in repr(ds)


@pytest.mark.parametrize("changes, match", [
    ({"x_train": np.zeros((4,))}, r"x_train: features must be a non-empty 2-d"),
    ({"x_train": np.zeros((0, 2)), "y_train": np.zeros(0, int)}, "non-empty"),
    ({"y_train": np.array([0, 1, 0])}, "x_train has 4 rows but y_train has 3"),
    ({"x_test": np.zeros((2, 3))}, "x_train has 2 features but x_test has 3"),
    ({"x_test": np.array([[0.0, np.nan], [0, 0]])}, r"non-finite feature nan at row 0, column 1"),
    ({"y_test": np.array([0, 2])}, r"labels must lie in 0..1"),
    ({"y_test": np.array([0.0, 1.0])}, "1-d integer array"),
    ({"num_classes": 1}, "at least 2 classes"),
    ({"feature_dtype": "uint64"}, "feature_dtype"),
    ({"x_train": np.full((4, 2), 300.0)}, "not all integers in the range 0..255 of feature type uint8"),
    ({"x_train": np.full((4, 2), 0.5)}, "not all integers in the range 0..255 of feature type uint8"),
    ({"class_names": ("a",)}, "1 class names for 2 classes"),
    ({"encoding": "uniform"}, "encoding must be an Encoding"),
    ({"x_train": np.full((4, 2), 2 ** 25, dtype=np.int64), "feature_dtype": "int32"}, "2\\*\\*24"),
])
def test_dataset_rejects(changes, match):
    with pytest.raises(DatasetError, match=match):
        _make(**changes)


# --- npz files ----------------------------------------------------------------------------------

def test_npz_split(tmp_path, rng):
    x = rng.integers(0, 200, (50, 3)).astype(np.uint8)
    y = np.repeat([3, 7], 25)
    np.savez(tmp_path / "toy.npz", X=x, y=y)
    ds = load(f"npz:{tmp_path / 'toy.npz'}")
    check_dataset(ds, 3, 2, "uint8")
    assert ds.name == "toy" and ds.class_names == ("3", "7")
    assert (len(ds.y_train), len(ds.y_test)) == (40, 10) and np.bincount(ds.y_test).tolist() == [5, 5]
    assert ds.encoding == Encoding("quantile", 7)
    rows = {(r.tobytes(), c) for r, c in zip(x.astype(np.float32), y)}
    got = {(r.tobytes(), int(ds.class_names[c])) for r, c in zip(np.concatenate([ds.x_train, ds.x_test]),
                                                                 np.concatenate([ds.y_train, ds.y_test]))}
    assert got == rows
    assert np.array_equal(load(str(tmp_path / "toy.npz")).x_test, ds.x_test)  # bare path works too
    assert len(load(f"npz:{tmp_path / 'toy.npz'}", test_fraction=0.5).y_test) == 25


def test_npz_explicit_test_and_string_labels(tmp_path, rng):
    x = rng.normal(size=(6, 2))
    np.savez(tmp_path / "s.npz", X=x, y=np.array(["cat", "dog", "ant", "cat", "dog", "ant"]),
             X_test=x[:2], y_test=np.array(["dog", "ant"]))
    ds = load(f"npz:{tmp_path / 's.npz'}")
    check_dataset(ds, 2, 3, "float32")
    assert ds.class_names == ("ant", "cat", "dog")
    assert ds.y_train.tolist() == [1, 2, 0, 1, 2, 0] and ds.y_test.tolist() == [2, 0]
    assert np.array_equal(ds.x_train, x.astype(np.float32))


@pytest.mark.parametrize("x, dtype", [
    (np.array([[True, False], [False, True]] * 5), "uint8"),
    (np.arange(20, dtype=np.int64).reshape(10, 2) - 5, "int8"),
    (np.arange(20, dtype=np.int16).reshape(10, 2), "int16"),
    (np.arange(20, dtype=np.float64).reshape(10, 2), "float32"),
])
def test_npz_feature_dtype(tmp_path, x, dtype):
    np.savez(tmp_path / "d.npz", X=x, y=np.arange(10) % 2)
    assert load(f"npz:{tmp_path / 'd.npz'}").feature_dtype == dtype


@pytest.mark.parametrize("arrays, match", [
    ({"y": np.zeros(4)}, r"missing array 'X'"),
    ({"X": np.zeros((4, 2))}, r"missing array 'y'"),
    ({"X": np.zeros((4, 2, 2)), "y": np.arange(4) % 2}, r"X: features must be a non-empty 2-d .* shape \(4, 2, 2\)"),
    ({"X": np.zeros(4), "y": np.arange(4) % 2}, "2-d"),
    ({"X": np.zeros((4, 2)), "y": np.arange(3) % 2}, r"y has shape \(3,\), expected \(4,\)"),
    ({"X": np.zeros((4, 2)), "y": np.zeros((4, 1))}, r"y has shape \(4, 1\)"),
    ({"X": np.array([[0, 1], [np.inf, 0], [0, 0], [1, 1]]), "y": np.arange(4) % 2}, "non-finite feature inf at row 1"),
    ({"X": np.zeros((4, 2)), "y": np.array([0, 0.5, 1, 1])}, "labels are not integers"),
    ({"X": np.zeros((4, 2)), "y": np.ones(4, int)}, r"at least 2 classes, found 1"),
    ({"X": np.array([["a", "b"]] * 4), "y": np.arange(4) % 2}, "features must be numeric"),
    ({"X": np.zeros((4, 2)), "y": np.arange(4) % 2, "X_test": np.zeros((2, 2))}, "X_test and y_test"),
    ({"X": np.zeros((4, 2)), "y": np.arange(4) % 2, "X_test": np.zeros((2, 3)), "y_test": np.arange(2)},
     "X_test has 3 features but X has 2"),
    ({"X": np.zeros((4, 2)), "y": np.arange(4) % 2, "X_test": np.zeros((2, 2)), "y_test": np.arange(3) % 2},
     r"y_test has shape \(3,\)"),
    ({"X": np.zeros((2, 2)), "y": np.arange(2)}, "leaves an empty split"),
])
def test_npz_rejects(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=match) as info:
        load(f"npz:{path}", test_fraction=0.2 if len(arrays.get("y", ())) > 2 else 0.6)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_npz_never_unpickles(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, X=np.array([[1, 2], [3, 4]], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DatasetError, match="allow_pickle"):
        load(f"npz:{path}")


@pytest.mark.parametrize("content, match", [
    (b"not a zip file", "not a readable .npz archive"),
    (None, "file not found"),
])
def test_npz_unreadable(tmp_path, content, match):
    path = tmp_path / "x.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DatasetError, match=match):
        load(f"npz:{path}")


def test_npy_is_not_npz(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(3))
    (tmp_path / "a.npy").rename(tmp_path / "a.npz")
    with pytest.raises(DatasetError, match="single array"):
        load(f"npz:{tmp_path / 'a.npz'}")


# --- csv files ----------------------------------------------------------------------------------

def _csv(tmp_path, text: str, name: str = "t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return f"csv:{path}"


def test_csv_header_and_string_labels(tmp_path):
    rows = "".join(f"{i},{i % 5 - 2},{'yes' if i % 2 else 'no'}\n" for i in range(20))
    ds = load(_csv(tmp_path, "size,delta,label\n" + rows))
    check_dataset(ds, 2, 2, "int8")
    assert ds.class_names == ("no", "yes") and (len(ds.y_train), len(ds.y_test)) == (16, 4)
    all_x = np.concatenate([ds.x_train, ds.x_test])
    all_y = np.concatenate([ds.y_train, ds.y_test])
    assert np.array_equal(all_y, all_x[:, 0].astype(int) % 2)  # label follows its row


def test_csv_without_header_tabs_and_floats(tmp_path):
    rows = "".join(f"{i * 0.5}\t{-i}\t{i % 3}\n" for i in range(30))
    ds = load(_csv(tmp_path, "\n" + rows + "\n\n"))
    check_dataset(ds, 2, 3, "float32")
    assert ds.class_names == ("0", "1", "2")


def test_csv_integer_features_pick_a_small_type(tmp_path):
    rows = "".join(f"{i * 1000},{i % 2}\n" for i in range(10))
    assert load(_csv(tmp_path, rows)).feature_dtype == "uint16"


@pytest.mark.parametrize("text, match", [
    ("", "no data rows"),
    ("a,b,label\n", "no data rows"),
    ("1\n2\n", "at least one feature column"),
    ("1,2,0\n3,4,1\n5,1\n", r"line 3: 2 fields, expected 3"),
    ("1,2,0\n3,x,1\n5,6,0\n", r"line 2, column 2: 'x' is not a number"),
    ("1,2,0\n3,,1\n5,6,0\n", r"line 2, column 2: '' is not a number"),
    ("1,2,0\n3,nan,1\n5,6,0\n", r"line 2, column 2: 'nan' is not a number"),
    ("1,2,0\n3,4,?\n5,6,1\n", r"line 2: missing label"),
    ("1,2,0\n3,4,0.5\n5,6,1\n", "labels are not integers"),
    ("1,2,a\n3,4,a\n5,6,a\n", "at least 2 classes"),
])
def test_csv_rejects(tmp_path, text, match):
    spec = _csv(tmp_path, text)
    with pytest.raises(DatasetError, match=match) as info:
        load(spec)
    assert spec[4:] in str(info.value)


def test_csv_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="file not found"):
        load(f"csv:{tmp_path / 'nope.csv'}")


def test_csv_not_text(tmp_path):
    (tmp_path / "b.csv").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(DatasetError, match="UTF-8"):
        load(f"csv:{tmp_path / 'b.csv'}")


def test_exhaustive_small_labels_round_trip(tmp_path):
    # Every label value set over {-1, 0, 5} of size >= 2 maps to sorted indices.
    for labels in itertools.chain.from_iterable(itertools.combinations([-1, 0, 5], k) for k in (2, 3)):
        y = np.array(labels * 4)
        np.savez(tmp_path / "l.npz", X=np.arange(len(y) * 2).reshape(-1, 2), y=y, X_test=np.zeros((1, 2)),
                 y_test=y[:1])
        ds = load(f"npz:{tmp_path / 'l.npz'}")
        assert ds.class_names == tuple(str(v) for v in sorted(labels))
        assert np.array_equal(np.array(labels)[np.argsort(labels)][ds.y_train], y)
