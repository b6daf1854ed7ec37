"""The live 3D viewer: both hands as shaded meshes in an Open3D window, with the camera.

Open3D's legacy ``VisualizerWithKeyCallback`` is used because it runs wherever there is an
X display, Xvfb included (its GLFW window needs one; the new GUI's ``OffscreenRenderer``
needs Vulkan and took ~1.35 s a frame here). Open3D windows must be driven from the thread
that made them, so the viewer is polled from the main thread (the demo's ``on_poll``) and
fed by :class:`ViewerFeed`, a render sink that keeps only the newest packet.

Geometry is made once: a fixed slot per hand (mesh and skeleton) whose vertex arrays are
overwritten in place each frame through NumPy views (``update_geometry`` then re-uploads
them); an absent hand is collapsed to a point (zero area, nothing drawn). The scene is
the camera frame (OpenCV axes), with the camera's frustum, its image plane showing the
video, a coordinate frame at the camera and a floor grid.

Keys: M mesh, S skeleton, U uncertainty heat map, T texture from the video, I video on
the image plane, R reset the view, V view from the camera, P or space pause, C or F12
screenshot, Q or Esc close (which stops the demo). The mouse orbits, pans and zooms.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from realtime.errors import RealtimeError
from realtime.render.overlay import HAND_COLORS, uncertainty_colors
from realtime.render.scene import (
    SKELETON_LINES,
    fit_intrinsics,
    frustum,
    ground_grid,
    image_plane_mesh,
    look_at_extrinsic,
)
from realtime.types import HandMesh, Packet

log = logging.getLogger(__name__)

GLFW_KEY_SPACE, GLFW_KEY_F12 = 32, 301
_SIDE_SLOT = {"right": 0, "left": 1}
_BACKGROUND = (0.12, 0.13, 0.15)


@dataclass(frozen=True)
class ViewerConfig:
    """The window and what it shows at start (keys toggle it later)."""

    window_name: str = "handmesh 3D"
    width: int = 800
    height: int = 600
    left: int = 50  # the window's top-left corner on the screen (the demo puts it beside
    top: int = 50  # the video window, not on top of it)
    max_hands: int = 2
    show_mesh: bool = True
    show_skeleton: bool = True
    uncertainty: bool = False
    texture: bool = False
    show_video: bool = True
    image_plane_depth_m: float = 0.9
    std_max_mm: float = 15.0
    video_width: int = 320  # the image plane's texture is the frame shrunk to this width
    screenshot_dir: Path = Path(".")
    visible: bool = True
    max_update_hz: float = 30.0
    # Open3D holds the GIL while it draws (software GL under Xvfb: 20-70 ms a frame), so
    # the viewer takes at most this share of the main thread's time, slowing down if needed
    max_busy_fraction: float = 0.15

    def __post_init__(self) -> None:
        if self.width < 64 or self.height < 64:
            raise ValueError(f"viewer window must be at least 64x64, got "
                             f"{self.width}x{self.height}")
        if self.max_hands < 1:
            raise ValueError(f"max_hands must be at least 1, got {self.max_hands}")
        if not self.image_plane_depth_m > 0.0:
            raise ValueError(f"image_plane_depth_m must be > 0, got {self.image_plane_depth_m}")
        if not 0.0 < self.max_busy_fraction <= 1.0:
            raise ValueError(f"max_busy_fraction must be in (0, 1], got "
                             f"{self.max_busy_fraction}")
        if not self.max_update_hz > 0.0:
            raise ValueError(f"max_update_hz must be > 0, got {self.max_update_hz}")


class ViewerFeed:
    """A render sink that keeps the newest packet for the viewer (drops older ones)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._packet: Packet | None = None
        self.received = 0

    def write(self, packet: Packet) -> None:
        with self._lock:
            self._packet = packet
            self.received += 1

    def take(self) -> Packet | None:
        with self._lock:
            packet, self._packet = self._packet, None
        return packet

    def close(self) -> None:
        pass


class _Slot:
    """One hand's geometry, made once and updated in place."""

    def __init__(self, o3d, faces: np.ndarray, n_vertices: int, side: str) -> None:
        self.side = side
        self.mesh = o3d.geometry.TriangleMesh(
            o3d.utility.Vector3dVector(np.zeros((n_vertices, 3))),
            o3d.utility.Vector3iVector(np.ascontiguousarray(faces, dtype=np.int32)))
        self.mesh.vertex_colors = o3d.utility.Vector3dVector(np.zeros((n_vertices, 3)))
        self.mesh.vertex_normals = o3d.utility.Vector3dVector(np.zeros((n_vertices, 3)))
        self.skeleton = o3d.geometry.LineSet(
            o3d.utility.Vector3dVector(np.zeros((21, 3))),
            o3d.utility.Vector2iVector(SKELETON_LINES))
        self.skeleton.colors = o3d.utility.Vector3dVector(np.ones((len(SKELETON_LINES), 3)))
        # NumPy views on Open3D's buffers: writing them is the in-place update
        self.v = np.asarray(self.mesh.vertices)
        self.c = np.asarray(self.mesh.vertex_colors)
        self.t = np.asarray(self.mesh.triangles)
        self.j = np.asarray(self.skeleton.points)
        self.jc = np.asarray(self.skeleton.colors)


class HandViewer:
    """An Open3D window showing the hands in 3D; call every method from one thread.

    ``faces_for`` maps "right"/"left" to (F,3) faces (left hands use the mirrored winding);
    ``K`` and ``image_size`` are the camera's, for the frustum, the image plane and the
    view from the camera.
    """

    def __init__(self, config: ViewerConfig, faces_for: dict[str, np.ndarray],
                 K: np.ndarray, image_size: tuple[int, int],  # noqa: N803
                 notify: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.faces_for = {k: np.ascontiguousarray(v, dtype=np.int32) for k, v in
                          faces_for.items()}
        self.n_vertices = int(max(int(f.max()) for f in self.faces_for.values())) + 1
        self.K = np.asarray(K, dtype=np.float64)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.notify = notify or log.info
        self.show_mesh = config.show_mesh
        self.show_skeleton = config.show_skeleton
        self.uncertainty = config.uncertainty
        self.texture = config.texture
        self._fuser = None  # realtime.mesh.texture.TextureFuser, made when the texture is first on
        self.show_video = config.show_video
        self.paused = False
        self.closed = False
        self.updates = 0
        self.screenshots = 0
        self._last: tuple[list[HandMesh], np.ndarray | None] = ([], None)
        self._vis = None
        self._o3d = None
        self._slots: list[_Slot] = []
        self._dirty = False
        self._axes = None
        self._axes_shown = False

    # -- lifecycle ---------------------------------------------------------------------
    def open(self) -> "HandViewer":
        """Create the window and the scene; RealtimeError when no window can be made."""
        import open3d as o3d

        self._o3d = o3d
        vis = o3d.visualization.VisualizerWithKeyCallback()
        if not vis.create_window(self.config.window_name, self.config.width,
                                 self.config.height, left=self.config.left,
                                 top=self.config.top, visible=self.config.visible):
            raise RealtimeError("Open3D could not create its window (no usable display or "
                                "OpenGL); run with --no-viewer")
        self._vis = vis
        opt = vis.get_render_option()
        opt.background_color = np.asarray(_BACKGROUND)
        opt.mesh_show_back_face = True
        opt.line_width = 2.0
        w, h = self.image_size
        pts, lines = frustum(self.K, w, h, self.config.image_plane_depth_m)
        cam = o3d.geometry.LineSet(o3d.utility.Vector3dVector(pts),
                                   o3d.utility.Vector2iVector(lines))
        cam.paint_uniform_color((0.95, 0.85, 0.3))
        gpts, glines = ground_grid(y_m=0.3, z_range_m=(0.0, 1.0))
        grid = o3d.geometry.LineSet(o3d.utility.Vector3dVector(gpts),
                                    o3d.utility.Vector2iVector(glines))
        grid.paint_uniform_color((0.35, 0.37, 0.4))
        axes = o3d.geometry.TriangleMesh.create_coordinate_frame(size=0.05)
        verts, tris, uvs = image_plane_mesh(self.K, w, h, self.config.image_plane_depth_m)
        plane = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(verts),
                                          o3d.utility.Vector3iVector(tris))
        plane.triangle_uvs = o3d.utility.Vector2dVector(uvs)
        plane.triangle_material_ids = o3d.utility.IntVector([0, 0])
        # normals tilted up, away from the lights at the camera: no glare on the video
        plane.vertex_normals = o3d.utility.Vector3dVector(np.tile([0.0, -0.8, -0.6], (4, 1)))
        plane.textures = [o3d.geometry.Image(self._blank_video())]
        self._plane = plane
        for geometry in (grid, axes, cam, plane):
            vis.add_geometry(geometry)
        self._axes, self._axes_shown = axes, True
        for i in range(self.config.max_hands):
            side = "left" if i == 1 else "right"
            slot = _Slot(o3d, self.faces_for[side], self.n_vertices, side)
            vis.add_geometry(slot.mesh, reset_bounding_box=False)
            vis.add_geometry(slot.skeleton, reset_bounding_box=False)
            self._slots.append(slot)
        self._register_keys(vis)
        self.reset_view()
        return self

    def close(self) -> None:
        if self._vis is not None:
            self._vis.destroy_window()
            self._vis = None
        self.closed = True

    def __enter__(self) -> "HandViewer":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- per frame -----------------------------------------------------------------------
    def show(self, hands: list[HandMesh], image: np.ndarray | None = None) -> None:
        """Put these hands (and the frame, BGR) into the scene; ignored while paused."""
        if self.paused or self._vis is None:
            return
        self._last = (list(hands), image)
        self._apply(list(hands), image)

    def poll(self) -> bool:
        """Handle window events and redraw; False once the window was closed."""
        if self._vis is None:
            return False
        alive = self._vis.poll_events()
        if self._dirty:  # render only when the scene changed (events redraw by themselves)
            self._vis.update_renderer()
            self._dirty = False
        if not alive:
            self.closed = True
        return alive

    def capture(self) -> np.ndarray:
        """The window's pixels now, (H,W,3) float RGB in [0,1]."""
        return np.asarray(self._vis.capture_screen_float_buffer(do_render=True))

    def screenshot(self, path: Path | None = None) -> Path:
        """Save the window as PNG (default: ``screenshot_dir/viewer_NNN.png``)."""
        if path is None:
            self.config.screenshot_dir.mkdir(parents=True, exist_ok=True)
            path = self.config.screenshot_dir / f"viewer_{self.screenshots:03d}.png"
        self._vis.capture_screen_image(str(path), do_render=True)
        self.screenshots += 1
        self.notify(f"viewer screenshot saved to {path}")
        return Path(path)

    # -- views -----------------------------------------------------------------------------
    def _window_size(self) -> tuple[int, int]:
        intr = self._vis.get_view_control().convert_to_pinhole_camera_parameters().intrinsic
        return int(intr.width), int(intr.height)

    def _set_camera(self, K: np.ndarray, extrinsic: np.ndarray) -> None:  # noqa: N803
        o3d = self._o3d
        w, h = self._window_size()
        params = o3d.camera.PinholeCameraParameters()
        params.intrinsic = o3d.camera.PinholeCameraIntrinsic(w, h, K[0, 0], K[1, 1], K[0, 2],
                                                             K[1, 2])
        params.extrinsic = extrinsic
        if not self._vis.get_view_control().convert_from_pinhole_camera_parameters(
                params, allow_arbitrary=True):
            log.warning("Open3D refused the view (window %dx%d)", w, h)

    def reset_view(self) -> None:
        """Above, behind and to the right of the camera, looking at the hands' space."""
        w, h = self._window_size()
        f = 0.5 * w / np.tan(np.radians(30.0))  # 60 degree horizontal field of view
        K = np.array([[f, 0.0, (w - 1) / 2.0], [0.0, f, (h - 1) / 2.0], [0.0, 0.0, 1.0]])
        depth = self.config.image_plane_depth_m
        eye = np.array([0.55, -0.38, -0.42]) * depth / 0.9
        self._show_axes(True)
        self._set_camera(K, look_at_extrinsic(eye, np.array([0.0, 0.0, 0.5 * depth])))

    def view_from_camera(self) -> None:
        """Look through the real camera: the hands land where the video shows them.

        Open3D's legacy view always puts the principal point at the window's centre, so an
        off-centre one (a calibrated camera) is met by turning the view toward it: exact
        at the centre, off by about ``offset * x^2`` toward the edges (x the normalised
        image coordinate, e.g. 2 px at the border for a 10 px offset).
        """
        size = self._window_size()
        K = fit_intrinsics(self.K, self.image_size, size)
        self._show_axes(False)  # the camera's axes would fill the view from inside
        centre = np.array([(size[0] - 1) / 2.0, (size[1] - 1) / 2.0])
        axis = np.linalg.solve(K, np.array([centre[0], centre[1], 1.0]))
        self._set_camera(K, look_at_extrinsic(np.zeros(3), axis))

    def _show_axes(self, show: bool) -> None:
        if show and not self._axes_shown:
            self._vis.add_geometry(self._axes, reset_bounding_box=False)
        elif not show and self._axes_shown:
            self._vis.remove_geometry(self._axes, reset_bounding_box=False)
        self._axes_shown = show
        self._dirty = True

    # -- internals ---------------------------------------------------------------------------
    def _blank_video(self) -> np.ndarray:
        w, h = self.image_size
        vh = max(1, round(h * self.config.video_width / w))
        return np.full((vh, self.config.video_width, 3), 40, dtype=np.uint8)

    def _assign(self, hands: list[HandMesh]) -> list[tuple[_Slot, HandMesh]]:
        """Right hands prefer slot 0, left hands slot 1; extra hands take what is free."""
        free = list(range(len(self._slots)))
        pairs: list[tuple[int, HandMesh]] = []
        later = []
        for hand in hands:
            want = _SIDE_SLOT.get(hand.handedness, 0)
            if want in free:
                free.remove(want)
                pairs.append((want, hand))
            else:
                later.append(hand)
        for hand in later:
            if free:
                pairs.append((free.pop(0), hand))
        return [(self._slots[i], h) for i, h in pairs]

    def _apply(self, hands: list[HandMesh], image: np.ndarray | None) -> None:
        pairs = [(s, h) for s, h in self._assign(hands) if len(h.vertices) == self.n_vertices]
        used = {id(s) for s, _ in pairs}
        fused = self._fuse([h for _, h in pairs], image)
        for slot, hand in pairs:
            if slot.side != hand.handedness and hand.handedness in self.faces_for:
                slot.t[:] = self.faces_for[hand.handedness]
                slot.side = hand.handedness
            if self.show_mesh:
                slot.v[:] = hand.vertices
                slot.c[:] = self._colors(hand, fused)
                slot.mesh.compute_vertex_normals()
            else:
                slot.v[:] = 0.0
            slot.j[:] = hand.joints if self.show_skeleton else 0.0
            slot.jc[:] = np.asarray(HAND_COLORS.get(hand.handedness, (1.0, 1.0, 1.0))) * 0.6 \
                + 0.4
        for slot in self._slots:
            if id(slot) not in used:
                slot.v[:] = 0.0
                slot.j[:] = 0.0
            self._vis.update_geometry(slot.mesh)
            self._vis.update_geometry(slot.skeleton)
        if image is not None and self.show_video:
            self._set_video(image)
        self.updates += 1
        self._dirty = True

    def _set_video(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        vw = self.config.video_width
        small = cv2.resize(image, (vw, max(1, round(h * vw / w))), interpolation=cv2.INTER_AREA)
        self._plane.textures = [self._o3d.geometry.Image(
            np.ascontiguousarray(small[:, :, ::-1]))]
        self._vis.update_geometry(self._plane)

    def _fuse(self, hands: list[HandMesh], image: np.ndarray | None) -> dict:
        """With the texture on, the fused colours (``realtime.mesh.texture``) of the hands that do
        not carry their own (the demo's ``--texture`` fuses them upstream), by track id."""
        todo = [h for h in hands if h.vertex_colors is None]
        if not (self.texture and todo and image is not None):
            return {}
        if self._fuser is None:
            from realtime.mesh.texture import TextureFuser

            self._fuser = TextureFuser(lambda side: self.faces_for[side])
        return self._fuser.update(image, self.K, todo, todo[0].frame_index)

    def _colors(self, hand: HandMesh, fused: dict) -> np.ndarray:
        if self.uncertainty and len(hand.vertex_std) == len(hand.vertices):
            return uncertainty_colors(hand.vertex_std, self.config.std_max_mm)
        if self.texture:
            colors = hand.vertex_colors
            if colors is None and hand.track_id in fused:
                colors = fused[hand.track_id].colors
            if colors is not None and len(colors) == self.n_vertices:
                return np.asarray(colors, dtype=np.float64)
        return np.asarray(HAND_COLORS.get(hand.handedness, HAND_COLORS["right"]))

    def _refresh(self) -> None:
        """Re-apply the last hands with the current toggles (works while paused)."""
        hands, image = self._last
        self._apply(hands, image)

    def _register_keys(self, vis) -> None:
        def toggle(attr: str, label: str):
            def cb(_vis) -> bool:
                setattr(self, attr, not getattr(self, attr))
                self.notify(f"viewer: {label} {'on' if getattr(self, attr) else 'off'}")
                self._refresh()
                return True
            return cb

        def pause(_vis) -> bool:
            self.paused = not self.paused
            self.notify(f"viewer: {'paused' if self.paused else 'running'}")
            return True

        def reset(_vis) -> bool:
            self.reset_view()
            return True

        def camera(_vis) -> bool:
            self.view_from_camera()
            return True

        def shot(_vis) -> bool:
            self.screenshot()
            return False

        keys = {
            ord("M"): toggle("show_mesh", "mesh"),
            ord("S"): toggle("show_skeleton", "skeleton"),
            ord("U"): toggle("uncertainty", "uncertainty heat map"),
            ord("T"): toggle("texture", "texture from the video"),
            ord("I"): toggle("show_video", "video on the image plane"),
            ord("R"): reset,
            ord("V"): camera,
            ord("P"): pause,
            GLFW_KEY_SPACE: pause,
            ord("C"): shot,
            GLFW_KEY_F12: shot,
        }
        for key, cb in keys.items():
            vis.register_key_callback(key, cb)


def open_viewer(config: ViewerConfig, faces_for: dict[str, np.ndarray], K: np.ndarray,  # noqa: N803
                image_size: tuple[int, int]) -> HandViewer | None:
    """The viewer's window, or None with one printed line saying why it was skipped."""
    try:
        return HandViewer(config, faces_for, K, image_size, notify=print).open()
    except (RealtimeError, ImportError, RuntimeError) as exc:
        print(f"3D viewer skipped: {exc}")
        return None


def viewer_poller(viewer: HandViewer, feed: ViewerFeed, stop: Callable[[str], None],
                  then: Callable[[], None] | None = None) -> Callable[[], None]:
    """The main thread's poll: newest hands into the viewer, events, redraw; closing the
    window (or Q/Esc in it) calls ``stop("viewer closed")``. ``then``: another poller
    (the 2D window) run after it."""

    period = 1.0 / viewer.config.max_update_hz
    next_at = [float("-inf")]

    def poll() -> None:
        t0 = time.monotonic()
        packet = feed.take() if t0 >= next_at[0] else None
        if packet is not None:
            viewer.show(list(packet.hands), packet.frame.image)
        if not viewer.closed and not viewer.poll():
            stop("viewer closed")
        if packet is not None:  # the next update waits for the rate and the busy share
            busy = time.monotonic() - t0
            next_at[0] = t0 + max(period, busy / viewer.config.max_busy_fraction)
        if then is not None:
            then()

    return poll
