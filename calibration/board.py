"""Calibration boards (ChArUco and plain chessboard): definitions, detection, printing.

A ChArUco board is the default: each inner corner is identified by its neighbouring ArUco
markers, so partly visible or tilted boards still give correct correspondences; the plain
chessboard needs every inner corner visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from calibration.errors import CalibrationError

DICTIONARIES = {
    "4x4_50": cv2.aruco.DICT_4X4_50, "4x4_100": cv2.aruco.DICT_4X4_100,
    "5x5_100": cv2.aruco.DICT_5X5_100, "6x6_250": cv2.aruco.DICT_6X6_250,
}
MM_PER_INCH = 25.4
_SUBPIX_CRITERIA = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_COUNT, 40, 1e-3)


@dataclass(frozen=True)
class BoardSpec:
    """A board: ``squares_x`` by ``squares_y`` squares of ``square_m`` meters.

    ``kind``: "charuco" (markers of ``marker_m`` in the white squares, from ``dictionary``)
    or "chessboard" (inner corners only).
    """

    kind: str = "charuco"
    squares_x: int = 7
    squares_y: int = 5
    square_m: float = 0.035
    marker_m: float = 0.026
    dictionary: str = "5x5_100"

    def __post_init__(self) -> None:
        if self.kind not in ("charuco", "chessboard"):
            raise CalibrationError(f"board kind must be 'charuco' or 'chessboard', got "
                                   f"{self.kind!r}")
        if self.squares_x < 3 or self.squares_y < 3:
            raise CalibrationError(f"a board needs at least 3x3 squares, got "
                                   f"{self.squares_x}x{self.squares_y}")
        if not 0 < self.square_m < 1:
            raise CalibrationError(f"square_m must be 0-1 m, got {self.square_m}")
        if self.kind == "charuco" and not 0 < self.marker_m < self.square_m:
            raise CalibrationError(f"marker_m must be positive and smaller than square_m "
                                   f"({self.square_m}), got {self.marker_m}")
        if self.dictionary not in DICTIONARIES:
            raise CalibrationError(f"dictionary must be one of {sorted(DICTIONARIES)}, got "
                                   f"{self.dictionary!r}")

    @property
    def inner_corners(self) -> tuple[int, int]:
        return self.squares_x - 1, self.squares_y - 1

    @property
    def corner_count(self) -> int:
        return (self.squares_x - 1) * (self.squares_y - 1)

    def object_points(self) -> np.ndarray:
        """``(N,3)`` inner-corner positions on the board plane (z=0), meters, row-major:
        corner id ``i`` is at column ``i % (squares_x-1)``, row ``i // (squares_x-1)``
        (the same numbering as OpenCV's ChArUco corner ids)."""
        cx, cy = self.inner_corners
        g = np.stack(np.meshgrid(np.arange(1, cx + 1), np.arange(1, cy + 1)), -1).reshape(-1, 2)
        return np.concatenate([g * self.square_m, np.zeros((len(g), 1))], 1)

    def cv_board(self) -> cv2.aruco.CharucoBoard:
        d = cv2.aruco.getPredefinedDictionary(DICTIONARIES[self.dictionary])
        return cv2.aruco.CharucoBoard((self.squares_x, self.squares_y), self.square_m,
                                      self.marker_m, d)

    def render(self, px_per_square: int = 100, margin_px: int = 0) -> np.ndarray:
        """The board as a grayscale image ``(H,W)`` uint8, top-left square black."""
        w, h = self.squares_x * px_per_square, self.squares_y * px_per_square
        if self.kind == "charuco":
            img = self.cv_board().generateImage((w, h), marginSize=0, borderBits=1)
        else:
            yy, xx = np.mgrid[0:h, 0:w] // px_per_square
            img = np.where((xx + yy) % 2 == 0, 0, 255).astype(np.uint8)
        if margin_px:
            img = cv2.copyMakeBorder(img, margin_px, margin_px, margin_px, margin_px,
                                     cv2.BORDER_CONSTANT, value=255)
        return img


@dataclass(frozen=True)
class BoardView:
    """The corners of one board found in one image: ids into ``object_points``,
    pixel positions ``(N,2)``."""

    ids: np.ndarray
    corners: np.ndarray


class BoardDetector:
    """Finds a board's inner corners in images (subpixel)."""

    def __init__(self, spec: BoardSpec, min_corners: int = 6) -> None:
        self.spec = spec
        self.min_corners = min_corners
        if spec.kind == "charuco":
            params = cv2.aruco.CharucoParameters()
            params.tryRefineMarkers = True
            self._charuco = cv2.aruco.CharucoDetector(spec.cv_board(), params)

    def detect(self, image: np.ndarray) -> BoardView | None:
        """Corners of the board in a BGR or grayscale image, or None if too few."""
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self.spec.kind == "charuco":
            corners, ids, _, _ = self._charuco.detectBoard(gray)
            if ids is None or len(ids) < self.min_corners:
                return None
            # OpenCV <= 4.12 returns ChArUco corners shifted by +0.5 px (opencv#25539, fixed
            # by opencv#28380): refine again from there; cornerSubPix converges on the true
            # saddle point whatever the version.
            corners = cv2.cornerSubPix(gray, corners.reshape(-1, 1, 2).astype(np.float32),
                                       (3, 3), (-1, -1), _SUBPIX_CRITERIA)
            return BoardView(ids.reshape(-1).astype(np.int64),
                             corners.reshape(-1, 2).astype(np.float64))
        found, corners = cv2.findChessboardCornersSB(
            gray, self.spec.inner_corners, cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_ACCURACY)
        if not found:
            return None
        return BoardView(np.arange(self.spec.corner_count),
                         corners.reshape(-1, 2).astype(np.float64))


def save_board(spec: BoardSpec, path: str | Path, dpi: int = 300) -> Path:
    """Write the board for printing: ``.png`` at ``dpi``, or ``.pdf`` at true size.

    Print the PDF at 100% ("actual size", no fit to page) and measure one square: the
    calibration needs the printed size (``--square-mm``), not the nominal one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    px_per_square = max(20, int(round(spec.square_m * 1000 / MM_PER_INCH * dpi)))
    img = spec.render(px_per_square)
    suffix = path.suffix.lower()
    if suffix == ".png":
        cv2.imwrite(str(path), img)
        return path
    if suffix != ".pdf":
        raise CalibrationError(f"{path}: board files are .png or .pdf, not {suffix!r}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    margin_in = 0.4
    w_in = spec.squares_x * spec.square_m * 1000 / MM_PER_INCH
    h_in = spec.squares_y * spec.square_m * 1000 / MM_PER_INCH
    fig = plt.figure(figsize=(w_in + 2 * margin_in, h_in + 2 * margin_in))
    fw, fh = fig.get_size_inches()
    ax = fig.add_axes((margin_in / fw, margin_in / fh, w_in / fw, h_in / fh))
    ax.imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    fig.text(0.5, 0.3 * margin_in / fh,
             f"{spec.kind} {spec.squares_x}x{spec.squares_y}, square {spec.square_m * 1000:g} mm"
             + (f", marker {spec.marker_m * 1000:g} mm, {spec.dictionary}"
                if spec.kind == "charuco" else "") + " - print at 100% and measure a square",
             ha="center", fontsize=7)
    fig.savefig(path)
    plt.close(fig)
    return path
