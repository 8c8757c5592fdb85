"""Build the Cortex-M4 firmware example around a generated model and run it under QEMU.

    python examples/firmware/firmware.py                 # train a small digits model, 200 samples
    python examples/firmware/firmware.py --netlist m.npz --features x.npy

Writes ``model.c/.h`` (lgn's C back end) and ``samples.c/.h`` (the samples as a C array) into a
build directory, runs ``make`` with this folder's Makefile (arm-none-eabi-gcc, no libc), boots the
ELF in ``qemu-system-arm -M mps2-an386`` with semihosting, and parses the printed predictions.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from lgn.compile import c, packed

HERE = Path(__file__).resolve().parent
TOOLS = ("arm-none-eabi-gcc", "qemu-system-arm", "make")
QEMU = ["qemu-system-arm", "-M", "mps2-an386", "-nographic",
        "-semihosting-config", "enable=on,target=native", "-kernel"]


class FirmwareError(RuntimeError):
    """The firmware did not build or did not run to completion."""


def missing_tools() -> list[str]:
    """Return the external tools this example needs that are not on PATH."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def write_sources(netlist, features: np.ndarray, gen_dir: Path, **options) -> None:
    """Write the model (``model.h/.c``) and the samples (``samples.h/.c``) into ``gen_dir``."""
    c.export(netlist, gen_dir, name="model", **options)
    features = np.asarray(features)
    rows = ",\n".join("    {" + ", ".join(map(_literal, row)) + "}" for row in features)
    (gen_dir / "samples.h").write_text(
        "#ifndef SAMPLES_H_\n#define SAMPLES_H_\n#include \"model.h\"\n"
        f"#define NUM_SAMPLES {len(features)}\n"
        f"#define MODEL_NAME \"{netlist!r}\"\n"
        "extern const model_feature_t samples[NUM_SAMPLES][MODEL_NUM_FEATURES];\n#endif\n"
    )
    (gen_dir / "samples.c").write_text(
        "#include \"samples.h\"\n"
        f"const model_feature_t samples[NUM_SAMPLES][MODEL_NUM_FEATURES] = {{\n{rows}\n}};\n"
    )


def _literal(value) -> str:
    if not isinstance(value, np.floating):
        return str(int(value))
    if np.isnan(value):  # GCC builtins: constant expressions, no <math.h> needed
        return "__builtin_nanf(\"\")"
    if np.isinf(value):
        return "__builtin_inff()" if value > 0 else "(-__builtin_inff())"
    return float(value).hex() + "f"


def build(gen_dir: Path, build_dir: Path, cpu: str = "cortex-m4") -> Path:
    """Compile and link the firmware with this folder's Makefile; return the ELF's path."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-f", str(HERE / "Makefile"), f"GEN={gen_dir}",
         f"BUILD={build_dir}", f"CPU={cpu}"], capture_output=True, text=True)
    if result.returncode:
        raise FirmwareError(f"firmware build failed:\n{result.stdout}\n{result.stderr}")
    return build_dir / "fw.elf"


def run(elf: Path, num_samples: int, timeout: float = 300) -> np.ndarray:
    """Boot ``elf`` under QEMU; return the predictions ``(num_samples,)`` it printed.

    The firmware classifies every sample twice (single-sample and batch API); both must agree.
    """
    try:
        result = subprocess.run([*QEMU, str(elf)], capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise FirmwareError(f"QEMU did not finish within {timeout} s") from exc
    output = result.stdout + result.stderr  # QEMU writes semihosting output to stderr
    lines = re.findall(r"^pred (\d+) (\d+) (\d+)\r?$", output, flags=re.M)
    if result.returncode or not re.search(r"^done\r?$", output, flags=re.M) or len(lines) != num_samples:
        raise FirmwareError(f"firmware run failed (exit {result.returncode}):\n{output[-2000:]}")
    table = np.array(lines, dtype=np.int64)
    if not (table[:, 0] == np.arange(num_samples)).all() or not (table[:, 1] == table[:, 2]).all():
        raise FirmwareError("single-sample and batch predictions differ on the device")
    return table[:, 1]


def classify(netlist, features: np.ndarray, workdir: Path | None = None, cpu: str = "cortex-m4",
             **options) -> np.ndarray:
    """Generate, build and run the firmware on ``features``; return the device's predictions."""
    with tempfile.TemporaryDirectory(prefix="lgn_fw_") as tmp:
        root = Path(workdir) if workdir is not None else Path(tmp)
        gen, out = root / "gen", root / "build"
        gen.mkdir(parents=True, exist_ok=True)
        write_sources(netlist, features, gen, **options)
        return run(build(gen, out, cpu), len(features))


def _digits_netlist():
    """A small digits model trained in seconds, and its held-out test features."""
    from lgn import data as datasets
    from lgn.compile.lower import lower
    from lgn.train import TrainConfig, train

    digits = datasets.load("digits")
    config = TrainConfig.for_dataset("digits", layers=2, width=600, tau=10, epochs=12, lr=0.05, encoder_bits=3)
    model = train(config, digits, progress=False, log=lambda line: None).model
    return lower(model), digits.x_test.astype(np.uint8)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run an lgn model as Cortex-M4 firmware under QEMU.")
    parser.add_argument("--model", help="checkpoint or netlist file; runs on its dataset's test set")
    parser.add_argument("--netlist", help="netlist file (lgn.compile.formats.load); default: digits")
    parser.add_argument("--features", help=".npy of raw features (N, num_features)")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--style", default="table", choices=c.STYLES)
    parser.add_argument("--word-bits", type=int, default=32)
    parser.add_argument("--workdir", help="keep the generated sources and the ELF here")
    args = parser.parse_args(argv)
    if missing_tools():
        print(f"missing tools: {', '.join(missing_tools())}", file=sys.stderr)
        return 2
    if args.model:
        from lgn.compile.passes import optimize
        from lgn.io import load_for_eval

        setup = load_for_eval(args.model)
        netlist, features = optimize(setup.file.netlist), setup.features.astype(setup.file.netlist.encoding.dtype)
    elif args.netlist:
        from lgn.compile import formats

        netlist, features = formats.load(args.netlist), np.load(args.features, allow_pickle=False)
    else:
        netlist, features = _digits_netlist()
    features = features[: args.samples]
    device = classify(netlist, features, args.workdir, style=args.style, word_bits=args.word_bits)
    bits = netlist.encoding.encode(features) if netlist.encoding is not None else features != 0
    host = packed.predict(netlist, bits)
    print(f"{len(device)} samples on QEMU mps2-an386 (Cortex-M4): "
          f"{int((device == host).sum())} equal the packed executor")
    return 0 if (device == host).all() else 1


if __name__ == "__main__":
    sys.exit(main())
