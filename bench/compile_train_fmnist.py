"""Train a 784 -> 6 x 8000 LogicNet on Fashion-MNIST briefly and save its netlist for bench/compile.py.

A stand-in until ``lgn train`` exists: plain Adam on the cross-entropy of the relaxed network, one
thread. Prints the test accuracy of the model and of the packed netlist, then writes ``--out``
(an lgn model file, :func:`lgn.compile.formats.save`).

Usage::

    python bench/compile_train_fmnist.py --steps 1000 --out /tmp/fmnist.npz
    python bench/compile.py --netlist /tmp/fmnist.npz
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import gzip  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lgn.compile import formats, packed  # noqa: E402
from lgn.compile.lower import lower  # noqa: E402
from lgn.compile.passes import optimize  # noqa: E402
from lgn.nn import LogicNet, Thermometer  # noqa: E402


def read_idx(path: str, offset: int) -> np.ndarray:
    with gzip.open(path) as file:
        return np.frombuffer(file.read(), np.uint8, offset=offset)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    load = lambda name, offset: read_idx(os.path.join(args.data, name), offset)  # noqa: E731
    x_train = torch.tensor(load("train-images-idx3-ubyte.gz", 16).reshape(-1, 784), dtype=torch.float32)
    y_train = torch.tensor(load("train-labels-idx1-ubyte.gz", 8), dtype=torch.int64)
    x_test = load("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 784)
    y_test = load("t10k-labels-idx1-ubyte.gz", 8)

    model = LogicNet(Thermometer.uniform(784, 1, 0, 255), 10, layers=6, width=8000, feature_dtype="uint8")
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    start = time.perf_counter()
    for step in range(args.steps):
        batch = torch.randint(len(x_train), (args.batch,))
        loss = torch.nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 200 == 0:
            print(f"step {step:5d}  loss {loss.item():.3f}  {time.perf_counter() - start:.0f} s", flush=True)
    model.eval()
    with torch.no_grad():
        accuracy = (model(torch.tensor(x_test, dtype=torch.float32)).argmax(1).numpy() == y_test).mean()
    net = lower(model, meta={"dataset": "fashion-mnist", "test_accuracy": float(accuracy),
                             "steps": args.steps, "batch": args.batch, "lr": args.lr})
    predicted = packed.predict(optimize(net), net.encoding.encode(x_test))
    print(f"test accuracy: model {accuracy:.4f}, optimized packed netlist {(predicted == y_test).mean():.4f}")
    formats.save(net, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
