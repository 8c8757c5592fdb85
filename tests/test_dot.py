"""Graphviz DOT of a netlist: it parses, names every gate, and the drawing is the same function."""

import re
import subprocess

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_cli_files import run
from test_luts import TEXT as LUT_TEXT

from lgn.compile import reference
from lgn.compile.dot import MAX_NODES, to_dot, write_dot
from lgn.compile.netlist import Netlist, NetlistError
from strategies import examples, netlists

_TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|(->|[{}\[\];=,])|([A-Za-z0-9_.]+))')


def tokens(text: str) -> list[str]:
    """DOT tokens; quoted strings are returned unquoted and unescaped, with a leading '"'."""
    out, pos = [], 0
    while text[pos:].strip():
        match = _TOKEN.match(text, pos)
        assert match, f"cannot tokenize DOT at {text[pos:pos + 40]!r}"
        quoted, punct, word = match.groups()
        out.append('"' + re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], quoted[1:-1])
                   if quoted else punct or word)
        pos = match.end()
    return out


def parse_dot(text: str) -> dict:
    """A tiny DOT reader for what :func:`to_dot` writes: ``{"name", "graph": attrs, "nodes":
    {id: attrs}, "edges": [(tail, head, attrs)], "clusters": {name: (attrs, [ids])}}``."""
    toks = tokens(text)
    assert toks[:1] == ["digraph"] and toks[2] == "{" and toks[-1] == "}", toks[:3]
    graph = {"name": toks[1].lstrip('"'), "graph": {}, "nodes": {}, "edges": [], "clusters": {}}
    pos = 3

    def attributes():
        nonlocal pos
        attrs = {}
        if toks[pos] == "[":
            pos += 1
            while toks[pos] != "]":
                key, eq, value = toks[pos:pos + 3]
                assert eq == "=", toks[pos:pos + 3]
                attrs[key] = value.lstrip('"')
                pos += 3 + (toks[pos + 3] == ",")
            pos += 1
        return attrs

    def statements(into: dict, members: list | None):
        nonlocal pos
        while toks[pos] != "}":
            if toks[pos] == "subgraph":
                name, brace = toks[pos + 1], toks[pos + 2]
                assert brace == "{"
                pos += 3
                cluster = {}
                graph["clusters"][name] = (cluster, [])
                statements(cluster, graph["clusters"][name][1])
                continue  # a block needs no ';'
            elif toks[pos + 1] == "=":
                into[toks[pos]] = toks[pos + 2].lstrip('"')
                pos += 3
            elif toks[pos] in ("node", "edge"):
                pos += 1
                attributes()
            elif toks[pos + 1] == "->":
                tail, head = toks[pos], toks[pos + 2]
                pos += 3
                graph["edges"].append((tail, head, attributes()))
            else:
                node = toks[pos]
                pos += 1
                graph["nodes"][node] = attributes()
                if members is not None:
                    members.append(node)
            assert toks[pos] == ";", toks[pos - 2:pos + 2]
            pos += 1
        pos += 1

    statements(graph["graph"], None)
    assert pos == len(toks), "text after the graph"
    for tail, head, _ in graph["edges"]:
        assert tail in graph["nodes"] and head in graph["nodes"], (tail, head)
    return graph


def rebuild(graph: dict, num_inputs: int) -> Netlist:
    """The netlist a reader of the drawing sees: ops from the gate labels, operands from edges."""
    into = {}
    for tail, head, attrs in graph["edges"]:
        into.setdefault(head, []).append((attrs.get("label", ""), tail))
    lines = [f"inputs {num_inputs}"]
    gates = sorted((n for n in graph["nodes"] if n.startswith("g")), key=lambda n: int(n[1:]))
    for node in gates:
        op, name = graph["nodes"][node]["label"].split("\n")
        assert name == node  # every gate carries its name and its op
        operands = [tail for _, tail in sorted(into.get(node, []))]  # a < b, i0 < i1 < ...
        if op.startswith("LUT"):
            lines.append(f"{node} = {op} {' '.join(operands)}")
        else:
            operands = (operands * 2 or ["c0", "c0"])[:2] if len(operands) < 2 else operands
            lines.append(f"{node} = {op} {operands[0]} {operands[1]}")
    classes, offsets = [], []
    for c in range(len(graph["clusters"])):
        attrs, members = graph["clusters"][f"cluster_class{c}"]
        offset = re.fullmatch(rf"class {c}(?: \(([+-]\d+)\))?", attrs["label"])[1]
        offsets.append(int(offset or 0))
        assert members == [f"class{c}_{j}" for j in range(len(members))]
        classes.append(" ".join(into[m][0][1] for m in members))
    if any(offsets):
        lines.append("offsets " + " ".join(map(str, offsets)))
    lines.append("outputs " + " | ".join(classes))
    return Netlist.from_text("\n".join(lines) + "\n")


def assert_draws(net: Netlist, bits) -> dict:
    graph = parse_dot(to_dot(net, name='a "quoted" name'))
    assert graph["name"] == 'a "quoted" name'
    assert {n for n in graph["nodes"] if n.startswith("g")} == {f"g{net.first_gate + g}" for g in range(net.num_gates)}
    assert np.array_equal(reference.scores(rebuild(graph, net.num_inputs), bits), reference.scores(net, bits))
    return graph


@given(net=netlists(max_gates=40), data=st.data())
@examples(60)
def test_the_drawing_parses_names_every_gate_and_is_the_same_function(net, data):
    bits = data.draw(st.lists(st.lists(st.booleans(), min_size=net.num_inputs, max_size=net.num_inputs),
                              min_size=1, max_size=20))
    graph = assert_draws(net, np.array(bits, dtype=bool).reshape(len(bits), net.num_inputs))
    if net.encoding is not None:  # thermometer bits show their feature and threshold
        for node, attrs in graph["nodes"].items():
            if node.startswith("x"):
                i = int(node[1:])
                assert attrs["label"] == f"{node}\nf{net.encoding.feature[i]} > {net.encoding.threshold[i]:g}"


def test_luts_and_offsets_are_drawn():
    net = Netlist.from_text(LUT_TEXT)
    graph = assert_draws(net, np.array([[i >> j & 1 for j in range(6)] for i in range(64)]))
    assert graph["nodes"]["g9"]["label"] == "LUT6 0x123456789abcdef0\ng9"
    assert graph["clusters"]["cluster_class0"][0]["label"] == "class 0 (+2)"
    assert graph["clusters"]["cluster_class1"][0]["label"] == "class 1 (-1)"


def test_too_many_nodes_is_refused_in_one_line(rng, tmp_path):
    from conftest import random_netlist

    net = random_netlist(rng, num_inputs=8, num_gates=MAX_NODES, num_classes=2)
    with pytest.raises(NetlistError, match=rf"nodes to draw \({MAX_NODES} gates, .* more than max_nodes {MAX_NODES}"):
        write_dot(net, tmp_path / "big.dot")
    assert not (tmp_path / "big.dot").exists()
    write_dot(net, tmp_path / "big.dot", max_nodes=MAX_NODES + 100)
    assert parse_dot((tmp_path / "big.dot").read_text())["nodes"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("dot") / "model.pt"
    assert run("train", "--dataset", "digits", "--epochs", "1", "--out", out, "--layers", "2", "--width", "100",
               "--tau", "10", "--encoder-bits", "2", "--no-progress").exit_code == 0
    return out


def test_export_target_dot_and_its_limit(trained, tmp_path):
    from lgn.io import load_model_file

    out = tmp_path / "m.dot"
    result = run("export", trained, "--target", "dot", "--name", "digits", "-o", out)
    assert result.exit_code == 0, result.output
    graph = parse_dot(out.read_text())
    net = load_model_file(trained).netlist
    assert graph["name"] == "digits" and len(graph["clusters"]) == net.num_classes
    result = run("export", trained, "--target", "dot", "--max-nodes", "50", "-o", tmp_path / "small.dot")
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and "more than max_nodes 50" in lines[0], result.output
    assert "--max-nodes" in lines[0] and not (tmp_path / "small.dot").exists()


@pytest.mark.needs_tool("dot")
def test_graphviz_reads_it(tmp_path):
    net = Netlist.from_text(LUT_TEXT)
    write_dot(net, tmp_path / "m.dot")
    done = subprocess.run(["dot", "-Tsvg", str(tmp_path / "m.dot")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "<svg" in done.stdout, done.stderr
