"""Load model files named on stdin and report each outcome as one JSON line (for test_fuzz.py).

Run as ``python fuzz_worker.py MEMORY_BYTES``: after its imports the process limits its address
space to what it uses then plus ``MEMORY_BYTES`` (``RLIMIT_AS``), so a load that tries to allocate
more fails here instead of swapping the machine. For every path read from stdin it loads the file
with :func:`lgn.io.load_model_file` (what every command does) and writes
``{"outcome", "seconds", "peak_bytes", ...}`` to stdout:

- ``loaded``: a valid model (with ``content``, the netlist's content SHA-256, and ``verified``);
- ``clean``: the one clean error (one line, starting with the path, no memory failure in it);
- ``unclean``: the right error type but a bad message; ``other``: any other exception.

``peak_bytes`` is the growth of the resident set during that load (the peak is reset before each).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time
import traceback


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM to the current resident set
        return True
    except OSError:
        return False


def main() -> None:
    memory = int(sys.argv[1])
    results = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything the libraries print goes to stderr, not into the results
    import torch

    torch.set_num_threads(1)
    from lgn.compile.formats import NetlistFormatError
    from lgn.io import load_model_file
    from lgn.train import CheckpointError

    import lgn.compile.lower  # noqa: F401  (imported lazily by load_model_file: not during a load)

    logging.getLogger("lgn").setLevel(logging.ERROR)  # no "carries no checksum" notes

    base = _status_kib("VmSize") * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (base + memory, hard))
    for line in sys.stdin:
        path = line.rstrip("\n")
        can_reset = _reset_peak()
        before = _status_kib("VmHWM" if can_reset else "VmRSS")
        start = time.perf_counter()
        try:
            file = load_model_file(path)
            file.netlist.validate()
            result = {"outcome": "loaded", "content": file.netlist.content_sha256,
                      "verified": file.verified, "kind": file.kind}
        except (NetlistFormatError, CheckpointError) as exc:
            message = str(exc)
            clean = ("\n" not in message and message.startswith(path)
                     and not any(word in message for word in ("MemoryError", "allocate", "memory")))
            result = {"outcome": "clean" if clean else "unclean", "message": message[:400]}
        except BaseException as exc:  # noqa: BLE001 - every other outcome is what we look for
            result = {"outcome": "other", "message": f"{type(exc).__name__}: {str(exc)[:300]}",
                      "traceback": traceback.format_exc()[-2000:]}
        result["seconds"] = time.perf_counter() - start
        result["peak_bytes"] = max(0, _status_kib("VmHWM") - before) * 1024
        results.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
