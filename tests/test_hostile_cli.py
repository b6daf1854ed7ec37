"""The demo's command line against hostile and careless input: crafted calibration files,
images, regressor manifests and models, key files, output folders, and signals.

Every refusal is exit 2 with one ``error:`` line naming the problem and no traceback; a
run that fails or is killed leaves the previous run's files as they were; SIGTERM finishes
a run like Ctrl-C. Real parts throughout: the real command line (in-process ``main`` for
refusals, real subprocesses for signals and exit codes), real MediaPipe and onnxruntime,
real files. Time bounds are hang guards, never performance thresholds.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.hostile_cases.cli import wrong_shape_model
from calibration.camera_file import load_calibration
from calibration.errors import CalibrationError
from realtime.cli.demo import main
from realtime.io.hands_file import read_hands
from realtime.io.outputs import partial_path
from realtime.io.sample import SAMPLE_GT, SAMPLE_VIDEO

REPO = Path(__file__).resolve().parent.parent
WEIGHTS = REPO / "models" / "weights"
OUTPUTS = ("overlay.mp4", "hands.jsonl", "contact_sheet.png", "stats.json")
HANG_GUARD_S = 180  # a subprocess that has not ended by then is stuck


# -- helpers ---------------------------------------------------------------------------------


def refused(capsys, args: list[str], *words: str) -> str:
    """``handmesh args`` exits 2 with exactly one ``error:`` line containing ``words``."""
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def sample_args(out: Path, *extra: str, frames: int = 2) -> list[str]:
    """The built-in sample, headless, a few frames, the fitting baseline (fast to load)."""
    return ["--source", str(SAMPLE_VIDEO), "--output", str(out), "--headless",
            "--max-frames", str(frames), "--regressor", "fit", *extra]


def sample_calibration(**changes) -> dict:
    """The sample's true camera as a JSON calibration, with ``changes``."""
    with np.load(SAMPLE_GT) as gt:
        K, w, h = gt["K"].astype(float), int(gt["width"]), int(gt["height"])
    data = {"image_width": w, "image_height": h, "camera_matrix": K.tolist(),
            "distortion_coefficients": [0.0] * 5}
    data.update(changes)
    return data


def env_for_subprocess() -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("DISPLAY", None)
    return env


def start_demo(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "run_demo.py"), *args], cwd=REPO,
                            env=env_for_subprocess(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_partial_hands(proc: subprocess.Popen, out: Path, size: int = 20000) -> None:
    """Until the running demo has written ``size`` bytes of hands (so it is mid-run)."""
    partial = partial_path(out / "hands.jsonl")
    deadline = time.monotonic() + HANG_GUARD_S
    while not (partial.exists() and partial.stat().st_size >= size):
        assert proc.poll() is None, "the demo ended before the signal: " + proc.stderr.read()
        assert time.monotonic() < deadline, "the demo wrote no hands"
        time.sleep(0.1)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in OUTPUTS if (folder / name).exists()}


def video_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    count = 0
    while count < 10_000 and cap.read()[0]:
        count += 1
    cap.release()
    return count


def assert_consistent(out: Path) -> dict:
    """The folder's files agree: stats.json counts the hands in hands.jsonl, lists the
    files that exist, the video opens with frames; no partial file is left."""
    stats = json.loads((out / "stats.json").read_text())
    records = list(read_hands(out / "hands.jsonl"))  # every line parses
    assert stats["hands"] == len(records)
    for key, name in (("video", "overlay.mp4"), ("contact_sheet", "contact_sheet.png"),
                      ("overlays", "overlays")):
        assert (stats["outputs"][key] is not None) == (out / name).exists(), key
    if stats["outputs"]["video"]:
        assert video_frames(out / "overlay.mp4") > 0
    if stats["outputs"]["overlays"]:
        assert len(list((out / "overlays").iterdir())) == stats["overlay_files"] > 0
    assert not list(out.glob(".*.partial*")), list(out.glob(".*"))
    return stats


@pytest.fixture(scope="module")
def previous_run(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """A good earlier run (all four files) to copy into folders that a later run reuses."""
    out = tmp_path_factory.mktemp("previous")
    assert main(sample_args(out, frames=3)) == 0
    files = snapshot(out)
    assert set(files) == set(OUTPUTS)
    return out, files


def folder_with_previous_run(previous_run, tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    out = tmp_path / "out"
    shutil.copytree(previous_run[0], out)
    return out, previous_run[1]


# -- calibration files -----------------------------------------------------------------------

CALIBRATIONS = {
    "empty.yaml": (b"", "is empty"),
    "blank.yaml": (b"  \n\n", "is empty"),
    "malformed.yaml": (b"camera_matrix: [1, 2\n  foo: : bar\n\t- x", "not a valid OpenCV"),
    "random.yaml": (np.random.default_rng(0).bytes(4096), "binary data"),
    "random.xml": (b"<?xml version='1.0'?><opencv_storage><a>", "not a valid OpenCV"),
    "wrong_matrix.yaml": ((b"%YAML:1.0\n---\nimage_width: 640\nimage_height: 480\n"
                           b"camera_matrix: !!opencv-matrix\n  rows: 3\n  cols: 3\n  dt: d\n"
                           b"  data: [1.0, 2.0]\ndistortion_coefficients: [0]\n"),
                          "not what OpenCV expects"),
    "notes.txt": (b"fx = 600\n", "unknown calibration format"),
    "huge_focal.json": (json.dumps(sample_calibration(camera_matrix=[
        [1e300, 0, 320], [0, 1e300, 240], [0, 0, 1]])).encode(), "implausible focal length"),
    "tiny_focal.json": (json.dumps(sample_calibration(camera_matrix=[
        [1e-300, 0, 320], [0, 1e-300, 240], [0, 0, 1]])).encode(), "implausible focal length"),
    "stretched.json": (json.dumps(sample_calibration(camera_matrix=[
        [600, 0, 320], [0, 60, 240], [0, 0, 1]])).encode(), "ratio"),
    "distortion.json": (json.dumps(sample_calibration(
        distortion_coefficients=[1e9, 0, 0, 0, 0])).encode(), "no real lens"),
    "nan.json": (b'{"image_width": 640, "image_height": 480, "camera_matrix": NaN}',
                 "camera_matrix"),
}


@pytest.mark.parametrize("name", sorted(CALIBRATIONS))
def test_bad_calibration_file_is_refused_in_one_line(capsys, tmp_path, name):
    data, words = CALIBRATIONS[name]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(CalibrationError, match=words):
        load_calibration(path)
    refused(capsys, sample_args(tmp_path / "out", "--calib", str(path)), name, words)
    assert not (tmp_path / "out" / "stats.json").exists()


def test_oversized_calibration_file_is_not_read(capsys, tmp_path):
    path = tmp_path / "cam.yaml"
    path.write_bytes(b"%YAML:1.0\n" + b"#" * (2 << 20))
    refused(capsys, sample_args(tmp_path / "out", "--calib", str(path)), "too large")


def test_json_calibration_under_another_suffix_is_read_by_content(tmp_path):
    """A JSON calibration named .txt is read as JSON (it was an OpenCV assertion)."""
    path = tmp_path / "cam.txt"
    path.write_text(json.dumps(sample_calibration()))
    camera = load_calibration(path)
    assert camera.size == (640, 480) and not camera.estimated
    assert main(sample_args(tmp_path / "out", "--calib", str(path), "--no-video")) == 0
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["intrinsics"]["fx"] == pytest.approx(sample_calibration()["camera_matrix"][0][0])


# -- images and sources ---------------------------------------------------------------------


def _image(path: Path, w: int, h: int, value: int = 90) -> str:
    assert cv2.imwrite(str(path), np.full((h, w, 3), value, np.uint8))
    return str(path)


@pytest.mark.parametrize("make, words", [
    (lambda d: _image(d / "dot.png", 1, 1), ("dot.png", "1x1", "too small")),
    (lambda d: _image(d / "strip.png", 640, 8), ("640x8", "too small")),
    (lambda d: _image(d / "huge.png", 10000, 10000), ("10000x10000", "over the limit")),
    (lambda d: "99999999999", ("99999999999", "out of range")),
], ids=["1x1", "640x8", "10000x10000-png", "camera-index"])
def test_bad_source_is_refused_in_one_line(capsys, tmp_path, make, words):
    refused(capsys, sample_args(tmp_path / "out")[2:] + ["--source", make(tmp_path)], *words)


def test_huge_jpeg_is_decoded_scaled_down(tmp_path):
    """A 10000x10000 JPEG is decoded at a quarter of its size straight from the file (never
    at full size) and processed."""
    source = str(tmp_path / "huge.jpg")
    assert cv2.imwrite(source, np.full((10000, 10000), 90, np.uint8))  # gray: 100 MB here
    out = tmp_path / "out"
    assert main(sample_args(out)[2:] + ["--source", source]) == 0
    drawn = cv2.imread(str(out / "overlays" / "huge.png"))  # a photo: its own overlay image
    assert drawn is not None and drawn.shape[:2] == (2500, 2500)


def sample_frames(count: int) -> list[np.ndarray]:
    """The first ``count`` frames of the built-in sample (a hand in each)."""
    cap = cv2.VideoCapture(str(SAMPLE_VIDEO))
    frames = [cap.read()[1] for _ in range(count)]
    cap.release()
    assert all(f is not None for f in frames)
    return frames


def test_corrupt_image_in_a_folder_is_skipped_and_named(tmp_path, caplog):
    """Good images around a file that is not an image: the good ones are all processed and
    the bad file is named in a warning (it used to end the run, truncating hands.jsonl)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    first, second = sample_frames(2)
    cv2.imwrite(str(folder / "a1.jpg"), first)
    (folder / "a2.jpg").write_bytes(b"this is not an image")
    cv2.imwrite(str(folder / "a3.jpg"), second)
    _image(folder / "a4.png", 2, 2)  # too small: skipped too
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="realtime.io.sources"):
        code = main(["--source", str(folder), "--output", str(out), "--headless",
                     "--regressor", "fit"])
    assert code == 0
    skipped = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert any("a2.jpg" in m and "not a readable image" in m for m in skipped), skipped
    assert any("a4.png" in m and "too small" in m for m in skipped), skipped
    stats = assert_consistent(out)
    assert stats["frames"] == 2
    assert {r["frame_index"] for r in read_hands(out / "hands.jsonl")} <= {0, 1}
    # each overlay named for the file it shows, the skipped ones left out
    assert sorted(p.name for p in (out / "overlays").iterdir()) == ["a1.png", "a3.png"]


def test_folder_of_unreadable_images_is_refused(capsys, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"not an image")
    (folder / "b.png").write_bytes(b"")
    refused(capsys, sample_args(tmp_path / "out")[2:] + ["--source", str(folder)],
            "no readable image", "2 skipped")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_unreadable_source_folder_is_refused(capsys, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    _image(folder / "a.png", 64, 64)
    folder.chmod(0)
    try:
        refused(capsys, sample_args(tmp_path / "out")[2:] + ["--source", str(folder)],
                "cannot list the folder")
    finally:
        folder.chmod(0o755)


# -- output folders ---------------------------------------------------------------------------


def test_output_under_a_file_is_refused(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    refused(capsys, sample_args(tmp_path / "file" / "out"), "cannot write to the output folder")


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="no /sys to be refused by")
def test_unwritable_output_folder_is_refused(capsys):
    out = Path("/sys/handmesh-test-output")
    refused(capsys, sample_args(out), "cannot write to the output folder", str(out))


class FailingSink:
    """A record sink that fails on frame ``at``: a stage failing mid-run, after frames were
    written (a full disk, a bug)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def write(self, packet) -> None:
        if packet.frame.index >= self.at:
            raise OSError(28, "No space left on device")

    def close(self) -> None:
        pass


def test_a_failed_run_leaves_the_previous_run_intact(previous_run, tmp_path):
    """Frames were written, then a stage failed: the folder still holds the previous run,
    byte for byte, and no partial file (hands.jsonl used to be cut to this run's frames
    beside the old video and stats.json)."""
    from realtime.app import AppConfig, OutputConfig, Sinks, build_pipeline
    from realtime.io.sources import SourceConfig
    from realtime.mesh.estimator import EstimatorConfig
    from realtime.mesher import HandMesherConfig

    out, before = folder_with_previous_run(previous_run, tmp_path)
    config = AppConfig(source=SourceConfig(str(SAMPLE_VIDEO)), max_frames=8,
                       mesher=HandMesherConfig(estimator=EstimatorConfig(kind="fit")),
                       output=OutputConfig(folder=out))
    with build_pipeline(config, Sinks(record=[FailingSink(at=4)])) as run:
        with pytest.raises(OSError, match="No space left"):
            run.run()
        assert run.hands_sink.frames >= 4  # this run had written frames
    assert snapshot(out) == before
    assert_consistent(out)


@pytest.mark.parametrize("option", ["--calibrate-hand", "--save-texture", "--stats-json"])
def test_unwritable_end_of_run_file_is_refused_before_the_run(capsys, tmp_path, option):
    """A file written at the end of the run (the hand profile, the texture) whose folder
    cannot be written is refused at the start, not after the whole session."""
    target = "/sys/handmesh-test/me.png"
    if not Path("/sys").is_dir():
        target = str(tmp_path / "file" / "me.png")
        (tmp_path / "file").write_text("x")
    refused(capsys, sample_args(tmp_path / "out", option, target), option, "cannot write")
    (tmp_path / "folder.png").mkdir()
    refused(capsys, sample_args(tmp_path / "out", option, str(tmp_path / "folder.png")),
            option, "is a folder")


def test_no_video_lists_and_keeps_no_video(previous_run, tmp_path, capsys):
    """--no-video: the final line does not list overlay.mp4, and the previous run's video
    is removed with the rest replaced (the folder would otherwise contradict stats.json)."""
    out, _ = folder_with_previous_run(previous_run, tmp_path)
    assert main(sample_args(out, "--no-video")) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("results in") and "overlay.mp4" not in last, last
    assert "hands.jsonl" in last and "stats.json" in last
    stats = assert_consistent(out)
    assert stats["outputs"]["video"] is None and not (out / "overlay.mp4").exists()


# -- regressor manifests and models -----------------------------------------------------------


def _manifest(tmp_path: Path, edit=None, model: Path | None = None) -> Path:
    """A copy of the shipped manifest (with ``edit`` applied) beside a model file."""
    manifest = json.loads((WEIGHTS / "regressor.json").read_text())
    shutil.copy(model or WEIGHTS / manifest["model_file"], tmp_path / "model.onnx")
    manifest["model_file"] = "model.onnx"
    if model is not None:
        manifest.pop("model_sha256")
    if edit is not None:
        edit(manifest)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def _wrong_shape_model(path: Path, declare: bool) -> Path:
    """:func:`benchmarks.hostile_cases.cli.wrong_shape_model` (the benchmark's case too)."""
    pytest.importorskip("onnx")
    return wrong_shape_model(path, declare)


def _scalar_std(m: dict) -> None:
    m["outputs"]["vertex_std"]["shape"] = []


def _short_pose(m: dict) -> None:
    m["outputs"]["pose6d"]["shape"] = ["batch", 16, 6]


@pytest.mark.parametrize("make, words", [
    (lambda d: str(WEIGHTS / "regressor.onnx"), ("ONNX model itself", "regressor.json")),
    (lambda d: str(_manifest(d, _scalar_std)), ("'vertex_std'", "shape")),
    (lambda d: str(_manifest(d, _short_pose)), ("'pose6d'", "[batch, 20, 6]")),
    (lambda d: str(_manifest(d, model=_wrong_shape_model(d / "w.onnx", True))),
     ("'vertices'", "do not belong together")),
    (lambda d: str(_manifest(d, model=_wrong_shape_model(d / "w.onnx", False))),
     ("do not belong together",)),
], ids=["onnx-file", "scalar-std", "wrong-pose-shape", "declared-shapes", "run-shapes"])
def test_regressor_that_does_not_fit_is_refused(capsys, tmp_path, make, words):
    args = sample_args(tmp_path / "out")
    args[args.index("--regressor") + 1] = make(tmp_path)
    refused(capsys, args, *words)


# -- publishing: ports and keys ---------------------------------------------------------------


@pytest.mark.parametrize("endpoint, words", [
    ("tcp://127.0.0.1:99999", ("99999", "1-65535")),
    ("tcp://127.0.0.1:65535", ("65536", "topology", "65534")),
    ("tcp://127.0.0.1:0", ("'0'", "1-65535")),
])
def test_publish_port_out_of_range_is_refused(capsys, tmp_path, endpoint, words):
    refused(capsys, sample_args(tmp_path / "out", "--publish", endpoint), *words)


@pytest.fixture
def server_keys(tmp_path) -> tuple[Path, Path]:
    from realtime.stream import keys

    _, secret = keys.generate(tmp_path / "keys", "server")
    keys.generate(tmp_path / "keys" / "allowed", "client-a")
    return secret, tmp_path / "keys" / "allowed"


def test_secret_key_readable_by_everyone_is_refused(capsys, tmp_path, server_keys):
    secret, allowed = server_keys
    secret.chmod(0o644)
    refused(capsys, sample_args(tmp_path / "out", "--publish", "tcp://127.0.0.1:47811",
                                "--curve-keys", str(secret), "--allowed-clients", str(allowed)),
            str(secret), "0644", "chmod 600")


def test_secret_key_readable_by_its_group_is_warned(server_keys, caplog):
    from realtime.stream import keys

    secret, _ = server_keys
    secret.chmod(0o640)
    with caplog.at_level(logging.WARNING, logger="realtime.stream.keys"):
        public, _ = keys.load_secret(secret)
    assert len(public) == 40
    assert any("readable by its group" in r.getMessage() for r in caplog.records)
    secret.chmod(0o600)
    caplog.clear()
    keys.load_secret(secret)
    assert not caplog.records


# -- signals ---------------------------------------------------------------------------------


def test_sigterm_finishes_the_run_like_ctrl_c(previous_run, tmp_path):
    """SIGTERM mid-run (systemd, Docker): exit 143, the video finalised and playable,
    stats.json and the contact sheet written, every hands line intact."""
    out, before = folder_with_previous_run(previous_run, tmp_path)
    proc = start_demo("--source", str(SAMPLE_VIDEO), "--output", str(out))
    try:
        wait_for_partial_hands(proc, out)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=HANG_GUARD_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    stats = assert_consistent(out)
    assert stats["interrupted"] is True and stats["signal"] == "SIGTERM"
    assert 0 < stats["frames"] < 450  # stopped before the end of the clip
    assert video_frames(out / "overlay.mp4") > 0
    assert (out / "contact_sheet.png").stat().st_size > 0
    assert snapshot(out)["hands.jsonl"] != before["hands.jsonl"]  # this run's, not the old


def test_sigterm_during_startup_keeps_the_previous_run(previous_run, tmp_path):
    """SIGTERM while the demo still loads: exit 143, no error line, and the previous run's
    files untouched (nothing was written yet)."""
    out, before = folder_with_previous_run(previous_run, tmp_path)
    proc = start_demo("--source", str(SAMPLE_VIDEO), "--output", str(out))
    try:
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=HANG_GUARD_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, err
    assert not any(line.startswith("error") for line in err.splitlines()), err
    assert snapshot(out) == before


def test_a_killed_run_leaves_the_previous_run_intact(previous_run, tmp_path):
    """SIGKILL mid-run (the OOM killer, a manager out of patience): nothing can be
    finished, but nothing of the previous run is lost or mixed with the new one."""
    out, before = folder_with_previous_run(previous_run, tmp_path)
    proc = start_demo("--source", str(SAMPLE_VIDEO), "--output", str(out))
    try:
        wait_for_partial_hands(proc, out)
        proc.kill()
        proc.communicate(timeout=HANG_GUARD_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(out) == before


def test_stream_record_stops_cleanly_on_sigterm(tmp_path):
    """``handmesh-stream record`` under a process manager: SIGTERM ends it like Ctrl-C
    (exit 0, the recording closed), not with a traceback."""
    out = tmp_path / "run.hmstream"
    proc = subprocess.Popen([sys.executable, "-m", "realtime.cli.stream", "record", "--connect",
                             "tcp://127.0.0.1:47813", "--out", str(out)], cwd=REPO,
                            env=env_for_subprocess(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + HANG_GUARD_S
        while not out.exists():  # recording (the file is created when it starts)
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        stdout, err = proc.communicate(timeout=HANG_GUARD_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "wrote" in stdout


def test_signals_while_the_outputs_are_finished_are_deferred():
    """Inside ``interrupts.deferred()`` (closing the video, writing stats.json, renaming) a
    signal is recorded, not raised, so the files are finished; outside it raises like
    Ctrl-C, and the exit code says which signal it was."""
    from realtime.engine import interrupts

    handlers = {s: signal.getsignal(s) for s in interrupts.SIGNALS}
    try:
        interrupts.clear()
        interrupts.install()
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler runs here, between bytecodes
        assert interrupts.first() == signal.SIGTERM and interrupts.exit_code() == 143
        interrupts.clear()
        for signum, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signum)
                time.sleep(5)  # never finishes: the signal lands first
            assert interrupts.exit_code() == code
            interrupts.clear()
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        interrupts.clear()


def _has_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open (Linux /proc)."""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if Path(os.readlink(fd)) == path.resolve():
                return True
        except OSError:
            continue
    return False


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc")
def test_calibrate_stops_quietly_on_sigterm(tmp_path):
    """``handmesh-calibrate intrinsics`` on a video (the sample: no board in it) stopped by
    SIGTERM: "interrupted", exit 143, no traceback, no calibration file half-written."""
    out = tmp_path / "cam.yaml"
    proc = subprocess.Popen([sys.executable, "-m", "calibration", "intrinsics", "--camera",
                             str(SAMPLE_VIDEO), "--out", str(out), "--headless"], cwd=REPO,
                            env=env_for_subprocess(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + HANG_GUARD_S
        while not _has_open(proc.pid, SAMPLE_VIDEO):  # reading frames (450: a second or two)
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=HANG_GUARD_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, err
    assert "interrupted" in err and "Traceback" not in err
    assert not out.exists()


def test_calibrate_camera_index_out_of_range_is_one_line(capsys, tmp_path):
    from calibration.cli import main as calibrate_main

    assert calibrate_main(["intrinsics", "--camera", "99999999999", "--out",
                           str(tmp_path / "cam.yaml"), "--headless"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: camera index 99999999999 is out of range")
    assert len(err.strip().splitlines()) == 1


# -- what held before: kept ---------------------------------------------------------------------


def _truncated_sample(d: Path) -> str:
    data = SAMPLE_VIDEO.read_bytes()
    return _write(d / "cut.mp4", data[: len(data) // 3])


def _write(path: Path, data: bytes | str) -> str:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


@pytest.mark.parametrize("extra, words", [
    (lambda d: ["--source", _write(d / "empty.mp4", b"")], ("cannot read video",)),
    (lambda d: ["--source", _write(d / "text.jpg", "hello")], ("not a readable image",)),
    (lambda d: ["--max-frames", "0"], ("--max-frames must be at least 1",)),
    (lambda d: ["--source", "7"], ("camera 7 could not be opened",)),
    (lambda d: ["--calib", _write(d / "c.json", "{ not json")], ("not a JSON calibration",)),
    (lambda d: ["--hand-profile", _write(d / "p.json", "[1, 2")], ("p.json",)),
    (lambda d: ["--publish", "tcp://0.0.0.0:47931"], ("refusing to publish unencrypted",)),
    (lambda d: ["--publish", "nonsense"], ("not a ZeroMQ endpoint",)),
    (lambda d: ["--regressor", str(_manifest(d, model=Path(_write(d / "junk.onnx",
                                                                 b"\x08junk"))))],
     ("not a loadable ONNX model",)),
], ids=["0-byte-video", "text-named-jpg", "max-frames-0", "missing-camera", "malformed-json-calib",
        "malformed-profile", "exposed-publish", "bad-url", "corrupt-onnx"])
def test_what_held_still_holds(capsys, tmp_path, extra, words):
    refused(capsys, sample_args(tmp_path / "out") + extra(tmp_path), *words)


def test_busy_publish_port_is_one_line(capsys, tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        refused(capsys, sample_args(tmp_path / "out", "--publish", f"tcp://127.0.0.1:{port}"),
                str(port))


def test_truncated_video_is_one_line(capsys, tmp_path):
    """The sample cut to a third: its index (at the end) is gone, so it is refused clearly."""
    refused(capsys, sample_args(tmp_path / "out", "--source", _truncated_sample(tmp_path)),
            "cannot read video", "cut.mp4")
