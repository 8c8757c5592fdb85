"""Class names travel with the model: dataset -> checkpoint -> netlist file (npz and text) -> C
header, `lgn eval`, `lgn info` and the synthesis report, escaped correctly on the way into C."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import random_netlist, require_tool
from ladder import STRICT
from lgn.cli import main
from lgn.compile import c, formats
from lgn.compile.netlist import Netlist, NetlistError
from lgn.hdl.synth import SynthReport
from lgn.io import load_model_file

#: Names a C string literal must survive: quotes, backslashes, trigraphs, non-ASCII followed by a
#: digit (an octal escape must not swallow it), a newline, a comment closer, an empty name.
AWKWARD = ['say "hi"', "back\\slash", "??=trigraph?", "é1 中文", "two\nlines", "*/ not a comment", ""]


def named_netlist(names) -> Netlist:
    net = random_netlist(np.random.default_rng(0), num_classes=len(names), outputs_per_class=2)
    return net.replace(meta={"dataset": "toy", "class_names": list(names)})


def test_class_names_round_trip_through_both_file_forms(tmp_path):
    net = named_netlist(AWKWARD)
    for path, save in ((tmp_path / "m.npz", formats.save), (tmp_path / "m.lgn", formats.save_text)):
        save(net, path)
        loaded = formats.load(path)
        assert loaded == net and loaded.class_names == tuple(AWKWARD), path
        assert loaded.meta["class_names"] == AWKWARD
    assert random_netlist(np.random.default_rng(1), num_classes=3).class_names == ("0", "1", "2")


def test_malformed_class_names_are_refused_in_one_line():
    for names in (["a", "b"], ["a", "b", 3, "d"], "abcd"):
        with pytest.raises(NetlistError, match="meta: class_names must be a list of 4 strings"):
            named_netlist(list("abcd")).replace(meta={"class_names": names})


def test_the_c_api_names_every_class_and_compiles_warning_free(tmp_path):
    net = named_netlist(AWKWARD)
    files = c.emit(net, "toy")
    assert "extern const char *const TOY_CLASS_NAMES[TOY_NUM_CLASSES];" in files["toy.h"]
    assert "const char *toy_class_name(int c);" in files["toy.h"]
    assert r'"say \"hi\""' in files["toy.c"] and r'"back\\slash"' in files["toy.c"]
    assert r'"\303\2511 ' in files["toy.c"]
    c.export(net, tmp_path, name="toy")
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include <string.h>\n#include "toy.h"\n'
        "int main(void) {\n"
        "    int c;\n"
        "    for (c = 0; c < TOY_NUM_CLASSES; c++)\n"
        "        fwrite(toy_class_name(c), 1, strlen(TOY_CLASS_NAMES[c]) + 1, stdout);\n"
        "    return toy_class_name(-1) == NULL && toy_class_name(TOY_NUM_CLASSES) == NULL ? 0 : 1;\n"
        "}\n")
    for compiler in ("gcc", "clang"):
        require_tool(compiler, f"apt-get install {compiler}")
        exe = tmp_path / f"names_{compiler}"
        build = subprocess.run([compiler, *STRICT, "-o", str(exe), str(tmp_path / "main.c"), str(tmp_path / "toy.c")],
                               capture_output=True, text=True, timeout=120)
        assert build.returncode == 0 and not build.stderr, build.stderr
        run = subprocess.run([str(exe)], capture_output=True, timeout=60)
        assert run.returncode == 0
        assert run.stdout.split(b"\0")[:-1] == [n.encode() for n in AWKWARD], compiler


def test_the_synthesis_report_lists_the_classes():
    report = SynthReport("xilinx", "toy", 0, 0, 10, {6: 10}, 0, 0, 2, {}, class_names=("cat", "dog"))
    assert str(report).splitlines()[-1] == "  classes      0 cat, 1 dog"


def test_the_verilog_report_lists_the_classes():
    from lgn.hdl import describe

    report = describe(named_netlist(["cat", "dog", "é1", "x y"])).report()
    assert "classes: 0 cat, 1 dog, 2 é1, 3 x y" in report.splitlines()


CSV_LABELS = ["cat", 'say "hi"', "back\\slash"]


def test_csv_labels_reach_the_checkpoint_the_netlist_file_eval_info_and_c(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(240):
        label = i % 3
        features = rng.integers(0, 4, 6) + 4 * label  # separable: the class shifts every feature
        quoted = '"' + CSV_LABELS[label].replace('"', '""') + '"'
        rows.append(",".join(map(str, features)) + "," + quoted)
    data = tmp_path / "toy.csv"
    data.write_text("\n".join(rows) + "\n")
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(main, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return result.output

    model = tmp_path / "m.pt"
    run("train", "--dataset", data, "--epochs", "2", "--layers", "1", "--width", "60", "--tau", "3",
        "--encoder-bits", "3", "--out", model, "--no-progress")
    names = sorted(CSV_LABELS)  # the loader numbers string labels in sorted order
    assert load_model_file(model).netlist.meta["class_names"] == names
    run("export", model, "--target", "packed", "-o", tmp_path / "m.npz")
    assert formats.load(tmp_path / "m.npz").class_names == tuple(names)
    for path in (model, tmp_path / "m.npz"):
        evaluated = run("eval", path, "--backend", "packed").splitlines()
        assert [line.split()[2] for line in evaluated[1:]] == ["back\\slash", "cat", "say"]
        assert 'say "hi"' in evaluated[3]
        assert run("info", path).splitlines()[-1] == 'classes  0 back\\slash, 1 cat, 2 say "hi"'
    run("export", model, "--target", "c", "-o", tmp_path / "c")
    assert "MODEL_CLASS_NAMES" in (tmp_path / "c" / "model.h").read_text()
    assert '"say \\"hi\\""' in (tmp_path / "c" / "model.c").read_text()
