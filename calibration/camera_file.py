"""Camera calibration files: read, validate and write a :class:`~calibration.camera.Camera`.

Files are OpenCV-compatible: the YAML is what ``cv2.FileStorage`` writes and OpenCV's own
calibration sample reads (``image_width``, ``image_height``, ``camera_matrix``,
``distortion_coefficients``, ``avg_reprojection_error``, ``calibration_time``), plus
``camera_name``; the JSON file has the same keys with nested lists. Doubles are written with
17 significant digits, so a save/load round trip is exact.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from calibration.camera import DIST_LENGTHS, Camera
from calibration.errors import CalibrationError
from calibration.intrinsics import CameraIntrinsics

_REQUIRED = ("image_width", "image_height", "camera_matrix", "distortion_coefficients")


def _field_number(where: str, name: str, value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"{where}: field {name!r} is not a number: {value!r}") from exc
    if not math.isfinite(out):
        raise CalibrationError(f"{where}: field {name!r} is not finite: {value!r}; "
                               "recalibrate the camera")
    return out


def calibration_from_dict(data: dict, where: str = "calibration") -> Camera:
    """Validate the JSON/YAML fields; every error names the field and says what to do."""
    if not isinstance(data, dict):
        raise CalibrationError(f"{where}: expected a mapping of calibration fields")
    for name in _REQUIRED:
        if data.get(name) is None:
            raise CalibrationError(f"{where}: field {name!r} is missing; a calibration file "
                                   f"needs {', '.join(_REQUIRED)} "
                                   "(write one with `handmesh-calibrate intrinsics`)")
    width = _field_number(where, "image_width", data["image_width"])
    height = _field_number(where, "image_height", data["image_height"])
    if width != int(width) or height != int(height) or width <= 0 or height <= 0:
        raise CalibrationError(f"{where}: fields 'image_width'/'image_height' must be positive "
                               f"integers, got {width}x{height}")
    try:
        K = np.asarray(data["camera_matrix"], dtype=np.float64)  # noqa: N806
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"{where}: field 'camera_matrix' is not a 3x3 matrix") from exc
    if K.shape != (3, 3):
        raise CalibrationError(f"{where}: field 'camera_matrix' must be 3x3, got {K.shape}")
    if not np.all(np.isfinite(K)):
        raise CalibrationError(f"{where}: field 'camera_matrix' contains NaN or inf")
    if K[0, 1] != 0 or np.any(K[2] != (0, 0, 1)) or K[1, 0] != 0:
        raise CalibrationError(f"{where}: field 'camera_matrix' must be [[fx,0,cx],[0,fy,cy],"
                               f"[0,0,1]], got {K.tolist()}")
    if not (0 < K[0, 2] < width and 0 < K[1, 2] < height):
        raise CalibrationError(
            f"{where}: field 'camera_matrix' puts the principal point at ({K[0, 2]:.1f}, "
            f"{K[1, 2]:.1f}), outside the {int(width)}x{int(height)} image given by "
            "'image_width'/'image_height': wrong image size or wrong file")
    try:
        dist = np.asarray(data["distortion_coefficients"], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"{where}: field 'distortion_coefficients' is not a list of "
                               "numbers") from exc
    if len(dist) not in DIST_LENGTHS or not np.all(np.isfinite(dist)):
        raise CalibrationError(f"{where}: field 'distortion_coefficients' must be "
                               f"{DIST_LENGTHS} finite numbers, got {dist.tolist()}")
    rms = data.get("avg_reprojection_error")
    rms = float("nan") if rms is None else _field_number(where, "avg_reprojection_error", rms)
    try:
        intr = CameraIntrinsics.from_matrix(K, int(width), int(height))
    except CalibrationError as exc:
        raise CalibrationError(f"{where}: field 'camera_matrix': {exc}") from exc
    try:  # plausible focal lengths, principal point and distortion (Camera checks them)
        return Camera(intr, dist, str(data.get("camera_name", "camera")),
                      str(data.get("calibration_time", "")), rms)
    except CalibrationError as exc:
        raise CalibrationError(f"{where}: {exc}") from exc


def save_calibration(path: str | Path, calib: Camera) -> Path:
    """Write ``.yaml``/``.yml`` (cv2.FileStorage) or ``.json``; returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".json":
        path.write_text(json.dumps(calib.to_dict(), indent=2) + "\n")
        return path
    if suffix not in (".yaml", ".yml", ".xml"):
        raise CalibrationError(f"{path}: unknown calibration format {suffix!r}; use .yaml or "
                               ".json")
    import cv2

    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    try:
        fs.write("camera_name", calib.camera_name)
        fs.write("calibration_time", calib.date)
        fs.write("image_width", int(calib.intrinsics.width))
        fs.write("image_height", int(calib.intrinsics.height))
        fs.write("camera_matrix", calib.K)
        fs.write("distortion_coefficients", calib.dist.reshape(1, -1))
        if not math.isnan(calib.rms_px):
            fs.write("avg_reprojection_error", float(calib.rms_px))
    finally:
        fs.release()
    return path


#: Calibration files are a few kB; anything much larger is not one (and is not read).
MAX_CALIBRATION_BYTES = 1 << 20
_OPENCV_SUFFIXES = (".yaml", ".yml", ".xml")
_HOW = "write one with `handmesh-calibrate intrinsics`"


def _read_opencv(path: Path, text: str) -> dict:
    """The fields of an OpenCV YAML/XML file: read from ``path`` when its suffix names the
    format, else from ``text`` (which then starts with ``%YAML`` or ``<``). cv2.FileStorage
    raises cv2.error, or a SystemError wrapping it, on anything malformed: both become one
    CalibrationError."""
    import cv2

    where = str(path)
    try:
        if path.suffix.lower() in _OPENCV_SUFFIXES:
            fs = cv2.FileStorage(where, cv2.FILE_STORAGE_READ)
        else:
            fs = cv2.FileStorage(text, cv2.FILE_STORAGE_READ | cv2.FILE_STORAGE_MEMORY)
    except Exception as exc:  # noqa: BLE001 - cv2.error, or SystemError around it
        raise CalibrationError(f"{where}: not a valid OpenCV YAML/XML calibration file "
                               f"({_first_line(exc)}); {_HOW}") from exc
    if not fs.isOpened():
        raise CalibrationError(f"{where}: cannot be opened as an OpenCV YAML/XML file; {_HOW}")
    try:
        out: dict = {}
        for name in ("camera_name", "calibration_time"):
            node = fs.getNode(name)
            if not node.empty():
                out[name] = node.string() if node.isString() else str(node.real())
        for name in ("image_width", "image_height", "avg_reprojection_error"):
            node = fs.getNode(name)
            if not node.empty():
                out[name] = node.string() if node.isString() else node.real()
        for name in ("camera_matrix", "distortion_coefficients"):
            node = fs.getNode(name)
            if not node.empty():
                mat = node.mat()
                out[name] = None if mat is None else np.asarray(mat, dtype=np.float64)
        return out
    except Exception as exc:  # noqa: BLE001 - a node of the wrong kind raises in cv2
        raise CalibrationError(f"{where}: a field is not what OpenCV expects "
                               f"({_first_line(exc)}); {_HOW}") from exc
    finally:
        fs.release()


def _first_line(exc: BaseException) -> str:
    """A library's message on one line: OpenCV's span several (file, line, function)."""
    if isinstance(exc, SystemError) and (exc.__cause__ or exc.__context__):
        exc = exc.__cause__ or exc.__context__  # cv2 wraps its cv2.error so
    text = " ".join(str(getattr(exc, "err", None) or exc).split())  # cv2.error: .err
    return text[:200] if text else type(exc).__name__


def load_calibration(path: str | Path) -> Camera:
    """Read and validate a calibration file (``.yaml``/``.yml``/``.xml`` or ``.json``).

    The format is the suffix's, or for another suffix the content's (a JSON object, an
    OpenCV ``%YAML`` or XML file). Every failure is one :class:`CalibrationError` line: a
    missing, unreadable, empty, binary, oversized or malformed file, a missing field or
    implausible intrinsics.
    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file not found: {path}; make one with "
                               "`handmesh-calibrate intrinsics --camera 0 --out FILE`")
    try:
        size = path.stat().st_size
        if size > MAX_CALIBRATION_BYTES:
            raise CalibrationError(f"{path}: {size} bytes is far too large for a calibration "
                                   f"file (at most {MAX_CALIBRATION_BYTES} bytes); wrong file?")
        raw = path.read_bytes()
    except OSError as exc:
        raise CalibrationError(f"{path}: cannot be read ({exc.strerror}); check its "
                               "permissions") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CalibrationError(f"{path}: not a calibration file (binary data, not text); "
                               f"{_HOW}") from exc
    if not text.strip():
        raise CalibrationError(f"{path}: the file is empty; {_HOW}")
    suffix, head = path.suffix.lower(), text.lstrip()[:64]
    if suffix == ".json" or (suffix not in _OPENCV_SUFFIXES and head.startswith("{")):
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise CalibrationError(f"{path}: not a JSON calibration file "
                                   f"({_first_line(exc)})") from exc
    elif suffix in _OPENCV_SUFFIXES or head.startswith(("%YAML", "<?xml", "<opencv_storage")):
        data = _read_opencv(path, text)
    else:
        raise CalibrationError(f"{path}: unknown calibration format {suffix or '(no suffix)'!r}"
                               " and not JSON or OpenCV YAML/XML inside; pass the .yaml or "
                               ".json file written by `handmesh-calibrate intrinsics`")
    return calibration_from_dict(data, str(path))
