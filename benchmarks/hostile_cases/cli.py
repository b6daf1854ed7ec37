"""Hostile input to the demo's command line, and signals to a running demo.

Each case is a fresh ``run_demo.py`` process (the real entry point, exit codes included) on
a crafted input: calibration files, images, a camera index, output folders, regressor
manifests and models, publish ports, key files; then SIGTERM, Ctrl-C and SIGKILL sent to
running demos whose output folder holds a previous run. Per case: the exit code (2 and one
``error:`` line naming the problem for a refusal; 0 for what must be accepted), whether it
hung (killed after a bounded timeout), and its peak memory (``ru_maxrss`` of that child,
from ``os.wait4``), compared with the same command on a normal input (the built-in sample
for a few frames).

:func:`run` gives one summary per surface; ``tests/test_hostile_cli.py`` asserts the same
behaviour case by case.

::

    python -m benchmarks.hostile_cases.cli          # prints the summaries
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "realtime" / "assets" / "sample" / "sample.mp4"
WEIGHTS = ROOT / "models" / "weights"
TIMEOUT_S = 180.0  # per case; a hang is far longer, a loaded machine is slower
FRAMES = 5  # frames of the sample per run
OUTPUTS = ("overlay.mp4", "hands.jsonl", "contact_sheet.png", "stats.json")


@dataclass
class Outcome:
    """What one process did: exit code (None: killed by the hang guard; negative: killed by
    that signal), its output, peak memory."""

    rc: int | None
    stdout: str
    stderr: str
    peak_mb: float

    @property
    def hang(self) -> bool:
        return self.rc is None


class Demo:
    """``run_demo.py`` in a process of its own: outputs to files, peak RSS by ``wait4``."""

    def __init__(self, args: list[str], tmp: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("DISPLAY", None)
        env.pop("WAYLAND_DISPLAY", None)
        self._out = open(tmp / f"out-{id(self)}.txt", "w+")  # noqa: SIM115 - closed in wait
        self._err = open(tmp / f"err-{id(self)}.txt", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "run_demo.py"), *args],
                                     cwd=ROOT, env=env, stdout=self._out, stderr=self._err,
                                     text=True)

    def running(self) -> bool:
        return os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None

    def wait(self, timeout_s: float = TIMEOUT_S) -> Outcome:
        killed = threading.Event()

        def guard() -> None:
            killed.set()
            self.proc.kill()

        timer = threading.Timer(timeout_s, guard)
        timer.start()
        try:
            _, status, usage = os.wait4(self.proc.pid, 0)
        finally:
            timer.cancel()
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self._out.seek(0)
        self._err.seek(0)
        out, err = self._out.read(), self._err.read()
        self._out.close()
        self._err.close()
        return Outcome(None if killed.is_set() else self.proc.returncode, out, err,
                       usage.ru_maxrss / 1024)


def sample_args(out: Path, *extra: str) -> list[str]:
    return ["--source", str(SAMPLE), "--output", str(out), "--headless",
            "--max-frames", str(FRAMES), *extra]


# -- crafted inputs ---------------------------------------------------------------------------


def _calibration(**changes) -> str:
    data = {"image_width": 640, "image_height": 480,
            "camera_matrix": [[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]],
            "distortion_coefficients": [0.0] * 5}
    data.update(changes)
    return json.dumps(data)


def _write(path: Path, data: bytes | str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return str(path)


def _image(path: Path, w: int, h: int) -> str:
    import cv2
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w), 90, np.uint8))
    return str(path)


def _folder_with_a_bad_image(d: Path) -> str:
    import cv2

    cap = cv2.VideoCapture(str(SAMPLE))
    folder = d / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a1.jpg"), cap.read()[1])
    (folder / "a2.jpg").write_bytes(b"this is not an image")
    cv2.imwrite(str(folder / "a3.jpg"), cap.read()[1])
    cap.release()
    return str(folder)


def _manifest(d: Path, edit: Callable[[dict], None] | None = None,
              model: Path | None = None) -> str:
    manifest = json.loads((WEIGHTS / "regressor.json").read_text())
    manifest["model_file"] = str(model or WEIGHTS / manifest["model_file"])  # absolute
    if model is not None:
        manifest.pop("model_sha256", None)
    if edit is not None:
        edit(manifest)
    return _write(d / "manifest.json", json.dumps(manifest))


def wrong_shape_model(path: Path, declare: bool) -> Path:
    """An ONNX model with the right input and output names but the wrong shapes: 21
    vertices instead of the hand model's, and a scalar vertex_std. ``declare``: the graph
    says so; otherwise its outputs have symbolic sizes and only a run shows them."""
    import onnx  # the [test] extra; callers check it is importable
    from onnx import TensorProto, helper

    def value(name, dims):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)

    def ints(*v):
        return helper.make_tensor(f"c{v}", TensorProto.INT64, [len(v)], v)

    nodes = [
        helper.make_node("Identity", ["world"], ["vertices"]),
        helper.make_node("ReduceMean", ["world"], ["vertex_std"], keepdims=0),
        helper.make_node("Identity", ["image"], ["joints"]),
        helper.make_node("Constant", [], ["s0"], value=ints(0, 0)),
        helper.make_node("Constant", [], ["s1"], value=ints(20, 3)),
        helper.make_node("Constant", [], ["ax"], value=ints(1, 2)),
        helper.make_node("Slice", ["world", "s0", "s1", "ax"], ["w20"]),
        helper.make_node("Concat", ["w20", "w20"], ["pose6d"], axis=2),
        helper.make_node("Constant", [], ["t0"], value=ints(0, 0)),
        helper.make_node("Constant", [], ["t1"], value=ints(10, 1)),
        helper.make_node("Slice", ["world", "t0", "t1", "ax"], ["w10"]),
        helper.make_node("Constant", [], ["sq"], value=ints(2)),
        helper.make_node("Squeeze", ["w10", "sq"], ["shape"]),
        helper.make_node("Identity", ["handedness"], ["unused"]),
    ]
    outs = ([value("vertices", ["batch", 21, 3]), value("vertex_std", []),
             value("joints", ["batch", 21, 3]), value("pose6d", ["batch", 20, 6]),
             value("shape", ["batch", 10]), value("unused", ["batch", 1])] if declare else
            [value(n, None) for n in ("vertices", "vertex_std", "joints", "pose6d", "shape",
                                      "unused")])
    graph = helper.make_graph(nodes, "wrong", [value("world", ["batch", 21, 3]),
                                                value("image", ["batch", 21, 3]),
                                                value("handedness", ["batch", 1])], outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _wrong_shape_model(d: Path) -> str | None:
    """A manifest for :func:`wrong_shape_model` (undeclared shapes); None without onnx."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        return None
    return _manifest(d, model=wrong_shape_model(d / "wrong.onnx", declare=False))


def _key_readable_by_all(d: Path) -> list[str]:
    from realtime.stream import keys

    _, secret = keys.generate(d / "keys", "server")
    keys.generate(d / "keys" / "allowed", "client-a")
    secret.chmod(0o644)
    return ["--publish", "tcp://127.0.0.1:47911", "--curve-keys", str(secret),
            "--allowed-clients", str(d / "keys" / "allowed")]


def _scalar_std(m: dict) -> None:
    m["outputs"]["vertex_std"]["shape"] = []


#: (name, extra arguments from a scratch folder, expected exit code, words of the error line,
#: in the quick set)
Case = tuple[str, Callable[[Path], list[str] | None], int, tuple[str, ...], bool]
INPUT_CASES: list[Case] = [
    ("calib-empty-yaml", lambda d: ["--calib", _write(d / "c.yaml", b"")], 2,
     ("is empty",), True),
    ("calib-malformed-yaml", lambda d: ["--calib", _write(d / "c.yaml", b"a: [1\n b: : c")],
     2, ("not a valid OpenCV",), False),
    ("calib-random-bytes", lambda d: ["--calib", _write(d / "c.yaml", os.urandom(4096))], 2,
     ("binary data",), True),
    ("calib-json-named-txt", lambda d: ["--calib", _write(d / "c.txt", _calibration())], 0,
     (), False),
    ("calib-fx-1e300", lambda d: ["--calib", _write(d / "c.json", _calibration(
        camera_matrix=[[1e300, 0, 320], [0, 1e300, 240], [0, 0, 1]]))], 2,
     ("implausible focal length",), True),
    ("calib-fx-1e-300", lambda d: ["--calib", _write(d / "c.json", _calibration(
        camera_matrix=[[1e-300, 0, 320], [0, 1e-300, 240], [0, 0, 1]]))], 2,
     ("implausible focal length",), False),
    ("calib-distortion-1e9", lambda d: ["--calib", _write(d / "c.json", _calibration(
        distortion_coefficients=[1e9, 0, 0, 0, 0]))], 2, ("no real lens",), False),
    ("image-1x1", lambda d: ["--source", _image(d / "dot.png", 1, 1)], 2, ("too small",),
     True),
    ("image-10000x10000-png", lambda d: ["--source", _image(d / "big.png", 10000, 10000)], 2,
     ("over the limit",), True),
    ("image-10000x10000-jpeg", lambda d: ["--source", _image(d / "big.jpg", 10000, 10000)], 0,
     (), False),
    ("folder-with-corrupt-image", lambda d: ["--source", _folder_with_a_bad_image(d)], 0, (),
     True),
    ("camera-index-99999999999", lambda d: ["--source", "99999999999"], 2,
     ("out of range",), True),
    ("output-under-a-file", lambda d: ["--output", _write(d / "file", "x") + "/out"], 2,
     ("cannot write to the output folder",), False),
    ("output-unwritable", lambda d: ["--output", "/sys/handmesh-hostile"]
     if Path("/sys").is_dir() else None, 2, ("cannot write to the output folder",), False),
    ("regressor-onnx-file", lambda d: ["--regressor", str(WEIGHTS / "regressor.onnx")], 2,
     ("pass its manifest",), True),
    ("manifest-scalar-std", lambda d: ["--regressor", _manifest(d, _scalar_std)], 2,
     ("'vertex_std'",), False),
    ("model-wrong-output-shapes", lambda d: (["--regressor", m] if (m := _wrong_shape_model(d))
                                             else None), 2, ("do not belong together",), False),
    ("publish-port-99999", lambda d: ["--publish", "tcp://127.0.0.1:99999"], 2,
     ("1-65535",), True),
    ("publish-port-65535", lambda d: ["--publish", "tcp://127.0.0.1:65535"], 2,
     ("topology",), False),
    ("secret-key-mode-644", _key_readable_by_all, 2, ("chmod 600",), False),
    ("no-video", lambda d: ["--no-video"], 0, (), False),
]


def _judge_input(case: Case, outcome: Outcome) -> dict:
    """crash: traceback, unexpected exit code or killed by a signal; unclear: a refusal
    whose one error line is missing, doubled or does not name the problem."""
    name, _, want_rc, words, _ = case
    errors = [line for line in outcome.stderr.splitlines() if line.startswith("error:")]
    crash = (not outcome.hang) and ("Traceback" in outcome.stderr or outcome.rc != want_rc)
    unclear = want_rc == 2 and outcome.rc == 2 and not (
        len(errors) == 1 and all(w in errors[0] for w in words))
    if want_rc == 0 and outcome.rc == 0 and name == "no-video":
        last = outcome.stdout.strip().splitlines()[-1:]
        unclear = not last or "overlay.mp4" in last[0]
    return {"case": name, "rc": outcome.rc, "crash": crash, "hang": outcome.hang,
            "unclear": unclear, "peak_mb": round(outcome.peak_mb, 1),
            "error": errors[0][:160] if errors else ""}


def baseline_peak_mb(tmp: Path) -> float:
    """Peak RSS of the demo on a normal input: the sample for a few frames."""
    outcome = Demo(sample_args(tmp / "baseline"), tmp).wait()
    if outcome.rc != 0:
        raise RuntimeError(f"the normal run failed ({outcome.rc}): {outcome.stderr[-500:]}")
    return outcome.peak_mb


def input_cases(tmp: Path, quick: bool) -> list[dict]:
    results = []
    for case in INPUT_CASES:
        if quick and not case[4]:
            continue
        scratch = tmp / case[0]
        scratch.mkdir()
        extra = case[1](scratch)
        if extra is None:  # not possible here (no /sys, no onnx)
            continue
        outcome = Demo(sample_args(scratch / "out") + extra, tmp).wait()
        results.append(_judge_input(case, outcome))
    return results


# -- signals ----------------------------------------------------------------------------------


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {n: (folder / n).read_bytes() for n in OUTPUTS if (folder / n).exists()}


def _consistent(folder: Path) -> bool:
    """stats.json parses and counts hands.jsonl's lines; the files it lists exist; the video
    opens with frames; no partial file is left."""
    import cv2

    try:
        stats = json.loads((folder / "stats.json").read_text())
        lines = [json.loads(x) for x in (folder / "hands.jsonl").read_text().splitlines()]
    except (OSError, ValueError):
        return False
    if stats.get("hands") != len(lines) or list(folder.glob(".*.partial*")):
        return False
    for key, name in (("video", "overlay.mp4"), ("contact_sheet", "contact_sheet.png"),
                      ("overlays", "overlays")):
        if (stats["outputs"].get(key) is not None) != (folder / name).exists():
            return False
    if stats["outputs"].get("video"):
        cap = cv2.VideoCapture(str(folder / "overlay.mp4"))
        ok = cap.read()[0]
        cap.release()
        return bool(ok)
    return True


def _wait_mid_run(demo: Demo, out: Path, size: int = 20000) -> bool:
    partial = out / ".hands.partial.jsonl"
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline and demo.running():
        if partial.exists() and partial.stat().st_size >= size:
            return True
        time.sleep(0.1)
    return False


def signal_cases(tmp: Path, previous: Path, quick: bool) -> list[dict]:
    """(name, signal, when, expected exit code, what must hold afterwards)."""
    cases = [("sigterm-mid-run", signal.SIGTERM, "mid", 143, "new"),
             ("sigint-mid-run", signal.SIGINT, "mid", 130, "new"),
             ("sigterm-at-startup", signal.SIGTERM, "start", 143, "previous"),
             ("sigkill-mid-run", signal.SIGKILL, "mid", -signal.SIGKILL, "previous")]
    if quick:
        cases = [cases[0], cases[3]]
    import shutil

    results = []
    for name, signum, when, want_rc, keep in cases:
        out = tmp / name
        shutil.copytree(previous, out)
        before = _snapshot(out)
        demo = Demo(["--source", str(SAMPLE), "--output", str(out), "--headless"], tmp)
        reached = _wait_mid_run(demo, out) if when == "mid" else (time.sleep(1.0) or True)
        if demo.running():
            demo.proc.send_signal(signum)
        outcome = demo.wait()
        if keep == "new":
            intact = _consistent(out) and _snapshot(out) != before
        else:
            intact = _snapshot(out) == before
        crash = (not outcome.hang) and (outcome.rc != want_rc or (
            "Traceback" in outcome.stderr and when != "start"))  # see test_demo: an
        # interrupted import may print its own traceback
        results.append({"case": name, "rc": outcome.rc, "reached": reached, "crash": crash,
                        "hang": outcome.hang, "outputs_intact": intact,
                        "peak_mb": round(outcome.peak_mb, 1)})
    return results


# -- summary ----------------------------------------------------------------------------------


def _summary(surface: str, cases: list[dict], baseline_mb: float) -> dict:
    worst = max(cases, key=lambda c: c["peak_mb"])
    out = {"surface": surface, "cases": len(cases),
           "crashes": sum(c["crash"] for c in cases),
           "hangs": sum(c["hang"] for c in cases),
           "peak_growth_mb": round(max(0.0, worst["peak_mb"] - baseline_mb), 1),
           "peak_case": worst["case"], "baseline_peak_mb": round(baseline_mb, 1)}
    if "unclear" in cases[0]:
        out["unclear_errors"] = sum(c["unclear"] for c in cases)
    if "outputs_intact" in cases[0]:
        out["outputs_intact"] = sum(c["outputs_intact"] for c in cases)
    out["failed_cases"] = [c for c in cases if c["crash"] or c["hang"] or c.get("unclear")
                           or c.get("outputs_intact") is False]
    return out


def run(quick: bool = False) -> list[dict]:
    """One summary per surface: ``demo_cli_inputs`` (crafted files and arguments) and
    ``signals`` (SIGTERM, Ctrl-C, SIGKILL on running demos over a previous run's files)."""
    with tempfile.TemporaryDirectory(prefix="hostile-cli-") as name:
        tmp = Path(name)
        baseline = baseline_peak_mb(tmp)
        inputs = input_cases(tmp, quick)
        signals = signal_cases(tmp, tmp / "baseline", quick)
    return [_summary("demo_cli_inputs", inputs, baseline), _summary("signals", signals,
                                                                     baseline)]


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv[1:]))
