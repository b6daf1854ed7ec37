// The handmesh browser viewer: both hands as shaded meshes in the camera's view and in an
// orbit view, skeletons, uncertainty colours, a small HUD; reconnects when the stream drops.
//
// Page parameters (?a=b&...): token (the gateway's --web-token), silhouette=1 (the camera
// view only, at the image's pixel size, hands flat white on black: for the screenshot test),
// freeze=SEQ (stop updating once the hands message SEQ was rendered), finish=0 (do not wait
// for the GPU after each frame), color=side|uncertainty|texture.
// window.handmesh exposes the counters; every rendered frame is echoed to the gateway as
// {"echo": {"seq", "t_render_ms"}} (wall-clock ms) so the publisher can measure
// publish -> rendered.

import * as THREE from "three";
import { OrbitControls } from "./vendor/OrbitControls.js";
import { decodeMessage, intrinsicsFromHands } from "./decoder.js";

const params = new URLSearchParams(location.search);
const SILHOUETTE = params.get("silhouette") === "1";
const FREEZE = params.has("freeze") ? Number(params.get("freeze")) : null;
const FINISH = params.get("finish") !== "0";
const TOPICS = SILHOUETTE ? "hands,topology" : "hands,topology,texture,status";
const SIDE_COLORS = { right: [0.35, 0.70, 0.95], left: [0.98, 0.62, 0.30] };
const STD_MAX_M = 0.015;  // the overlay's uncertainty scale: 0..15 mm
const NEAR = 0.01, FAR = 10;

const state = window.handmesh = {
  received: 0, rendered: 0, lastSeq: null, lastRenderedSeq: null, frozen: false,
  connected: false, connections: 0, errors: 0, lastError: null, topology: false,
  K: null, imageSize: null, hands: 0, publisherFps: null, latencyMs: null,
  colorMode: params.get("color") || "uncertainty",
};

// ---- scene ----------------------------------------------------------------------------------
const canvas = document.getElementById("view");
const renderer = new THREE.WebGLRenderer({ canvas, antialias: !SILHOUETTE,
                                           preserveDrawingBuffer: SILHOUETTE });
renderer.setPixelRatio(SILHOUETTE ? 1 : window.devicePixelRatio);
renderer.autoClear = false;
const scene = new THREE.Scene();
// OpenCV camera frame (x right, y down, z forward) -> three.js (y up, looking down -z): a
// half turn about x (det +1, so triangle winding is kept). Vertices go in unchanged.
const world = new THREE.Group();
world.scale.set(1, -1, -1);
scene.add(world);
if (!SILHOUETTE) {
  scene.add(new THREE.HemisphereLight(0xffffff, 0x404050, 1.2));
  const sun = new THREE.DirectionalLight(0xffffff, 1.6);
  sun.position.set(0.3, 0.6, 1.0);
  scene.add(sun);
}

const camView = new THREE.PerspectiveCamera(50, 4 / 3, NEAR, FAR);  // projection from K below
const orbit = new THREE.PerspectiveCamera(45, 1, NEAR, FAR);
orbit.position.set(0.6, 0.35, 0.25);
const controls = SILHOUETTE ? null : new OrbitControls(orbit, canvas);
if (controls) {
  controls.target.set(0, 0, -0.45);
  controls.update();
  controls.addEventListener("change", () => { dirty = true; });
}
let grid = null, frustum = null;
if (!SILHOUETTE) {
  grid = new THREE.GridHelper(1.0, 10, 0x556070, 0x333840);
  grid.position.set(0, -0.25, -0.5);
  scene.add(grid);
}

/** Per side: the mesh (and its skeleton), built when the topology arrives. */
const hands = {};
let topology = null;
let textures = {};  // track_id -> Float32Array RGB (the texture topic)

function turbo(t) {  // a polynomial fit of the turbo colormap (blue = sure, red = unsure)
  t = Math.min(1, Math.max(0, t));
  const r = 0.1357 + t * (4.5974 - t * (42.3277 - t * (130.5887 - t * (150.5666 - t * 58.1375))));
  const g = 0.0914 + t * (2.1856 + t * (4.8052 - t * (14.0195 - t * (4.2109 + t * 2.7747))));
  const b = 0.1067 + t * (12.5925 - t * (60.1097 - t * (109.0745 - t * (88.5066 - t * 26.8183))));
  return [Math.min(1, Math.max(0, r)), Math.min(1, Math.max(0, g)), Math.min(1, Math.max(0, b))];
}

function buildHands(topo) {
  for (const side of Object.keys(hands)) {
    world.remove(hands[side].mesh);
    if (hands[side].bones) world.remove(hands[side].bones);
    hands[side].mesh.geometry.dispose();
  }
  const faces = topo.arrays.faces;
  const V = topo.header.vertex_count;
  if (!faces || !Number.isInteger(V)) return false;
  const parents = topo.header.keypoint_parents || [];
  for (const side of ["right", "left"]) {
    const index = new Uint32Array(faces.data.length);
    for (let f = 0; f < faces.data.length; f += 3) {  // left hands are mirrored: reverse
      const [a, b, c] = [faces.data[f], faces.data[f + 1], faces.data[f + 2]];
      index.set(side === "right" ? [a, b, c] : [c, b, a], f);
    }
    const geom = new THREE.BufferGeometry();
    geom.setIndex(new THREE.BufferAttribute(index, 1));
    geom.setAttribute("position", new THREE.BufferAttribute(new Float32Array(V * 3), 3));
    geom.setAttribute("color", new THREE.BufferAttribute(new Float32Array(V * 3), 3));
    const material = SILHOUETTE
      ? new THREE.MeshBasicMaterial({ color: 0xffffff, side: THREE.DoubleSide })
      : new THREE.MeshStandardMaterial({ vertexColors: true, roughness: 0.65, metalness: 0,
                                         side: THREE.DoubleSide });
    const mesh = new THREE.Mesh(geom, material);
    mesh.frustumCulled = false;
    mesh.visible = false;
    world.add(mesh);
    let bones = null;
    if (!SILHOUETTE) {
      const pairs = [];
      parents.forEach((p, i) => { if (p >= 0) pairs.push(p, i); });
      const bg = new THREE.BufferGeometry();
      bg.setAttribute("position", new THREE.BufferAttribute(new Float32Array(pairs.length * 3), 3));
      bones = new THREE.LineSegments(bg, new THREE.LineBasicMaterial({
        color: side === "right" ? 0xc8ebff : 0xffe6c8, depthTest: false, transparent: true }));
      bones.renderOrder = 2;
      bones.frustumCulled = false;
      bones.visible = false;
      bones.userData.pairs = pairs;
      world.add(bones);
    }
    hands[side] = { mesh, bones, V };
  }
  return true;
}

function colorHand(h, hand, side) {
  const col = h.mesh.geometry.attributes.color.array;
  const std = hand.arrays.vertex_std;
  const tex = textures[hand.track_id];
  if (state.colorMode === "texture" && tex && tex.length === col.length) {
    col.set(tex);
  } else if (state.colorMode === "uncertainty" && std && std.data.length * 3 === col.length) {
    for (let i = 0; i < std.data.length; i++) col.set(turbo(std.data[i] / STD_MAX_M), 3 * i);
  } else {
    const c = SIDE_COLORS[side];
    for (let i = 0; i < col.length; i += 3) col.set(c, i);
  }
  h.mesh.geometry.attributes.color.needsUpdate = true;
}

function updateHands(msg) {
  const seen = new Set();
  for (const hand of msg.hands) {
    const side = hand.handedness === "left" ? "left" : "right";
    const h = hands[side];
    const verts = hand.arrays.vertices;
    if (!h || seen.has(side) || !verts || verts.data.length !== h.V * 3) continue;
    seen.add(side);
    const g = h.mesh.geometry;
    g.attributes.position.array.set(verts.data);
    g.attributes.position.needsUpdate = true;
    if (!SILHOUETTE) {
      g.computeVertexNormals();
      colorHand(h, hand, side);
    }
    h.mesh.visible = true;
    const joints = hand.arrays.joints;
    if (h.bones && joints) {
      const pos = h.bones.geometry.attributes.position.array;
      h.bones.userData.pairs.forEach((k, i) => pos.set(joints.data.subarray(3 * k, 3 * k + 3), 3 * i));
      h.bones.geometry.attributes.position.needsUpdate = true;
      h.bones.visible = true;
    }
  }
  for (const side of Object.keys(hands)) {
    if (!seen.has(side)) {
      hands[side].mesh.visible = false;
      if (hands[side].bones) hands[side].bones.visible = false;
    }
  }
  state.hands = seen.size;
}

// ---- the camera view: intrinsics ------------------------------------------------------------
function setIntrinsics(K, size) {
  const [W, H] = size;
  const { fx, fy, cx, cy } = K;
  // OpenCV pixels (centres at integer coordinates) -> clip space, see the module comment
  camView.projectionMatrix.set(
    2 * fx / W, 0, 1 - 2 * (cx + 0.5) / W, 0,
    0, 2 * fy / H, 2 * (cy + 0.5) / H - 1, 0,
    0, 0, -(FAR + NEAR) / (FAR - NEAR), -2 * FAR * NEAR / (FAR - NEAR),
    0, 0, -1, 0);
  camView.projectionMatrixInverse.copy(camView.projectionMatrix).invert();
  state.K = { fx, fy, cx, cy };
  state.imageSize = [W, H];
  if (!SILHOUETTE) drawFrustum(K, size);
  layout();
}

function drawFrustum({ fx, fy, cx, cy }, [W, H]) {
  if (frustum) { world.remove(frustum); frustum.geometry.dispose(); }
  const d = 0.15, pts = [];
  const corner = (u, v) => [(u - cx) / fx * d, (v - cy) / fy * d, d];
  const c = [corner(0, 0), corner(W, 0), corner(W, H), corner(0, H)];
  for (let i = 0; i < 4; i++) pts.push(0, 0, 0, ...c[i], ...c[i], ...c[(i + 1) % 4]);
  const g = new THREE.BufferGeometry();
  g.setAttribute("position", new THREE.Float32BufferAttribute(pts, 3));
  frustum = new THREE.LineSegments(g, new THREE.LineBasicMaterial({ color: 0x8890a0 }));
  world.add(frustum);
}

function cameraFor(msg) {
  const size = msg.header.image_size;
  if (!Array.isArray(size) || size.length !== 2) return;
  // the topology's camera (the source's intrinsics) when it is for this image size; else
  // a fit of K from the hands (keypoints_2d are the joints projected with K)
  const cam = topology && topology.header.camera;
  const K = cam && cam.width === size[0] && cam.height === size[1] ? cam
                                                                   : intrinsicsFromHands(msg.hands);
  const same = state.imageSize && state.imageSize[0] === size[0] && state.imageSize[1] === size[1];
  if (K && (!state.K || !same || Math.abs(K.fx - state.K.fx) > 0.5 || Math.abs(K.cx - state.K.cx) > 0.5
            || Math.abs(K.fy - state.K.fy) > 0.5 || Math.abs(K.cy - state.K.cy) > 0.5)) {
    setIntrinsics(K, size);
  } else if (!state.K) {  // no hand yet: a 60 degree horizontal field of view, centred
    const f = size[0] / 2 / Math.tan(Math.PI / 6);
    setIntrinsics({ fx: f, fy: f, cx: (size[0] - 1) / 2, cy: (size[1] - 1) / 2 }, size);
    state.K = null;  // estimated: replaced by the first hands' fit
  }
}

// ---- layout and drawing ---------------------------------------------------------------------
let camRect = { x: 0, y: 0, w: 640, h: 480 }, orbitRect = null, dirty = true;

function layout() {
  const [W, H] = state.imageSize || [640, 480];
  if (SILHOUETTE) {
    renderer.setSize(W, H, true);
    camRect = { x: 0, y: 0, w: W, h: H };
    orbitRect = null;
  } else {
    const total = Math.max(320, window.innerWidth), height = Math.max(240, window.innerHeight);
    const half = Math.floor(total / 2);
    const s = Math.min(half / W, height / H);
    camRect = { x: 0, y: Math.floor((height - H * s) / 2), w: Math.floor(W * s), h: Math.floor(H * s) };
    orbitRect = { x: half, y: 0, w: total - half, h: height };
    orbit.aspect = orbitRect.w / orbitRect.h;
    orbit.updateProjectionMatrix();
    renderer.setSize(total, height, true);
  }
  dirty = true;
}
window.addEventListener("resize", layout);

function draw() {
  const size = renderer.getSize(new THREE.Vector2());
  renderer.setScissorTest(false);
  renderer.setClearColor(SILHOUETTE ? 0x000000 : 0x15181d, 1);
  renderer.clear();
  renderer.setScissorTest(true);
  const view = (rect, camera, color) => {  // three's viewports count y from the bottom
    const y = size.y - rect.y - rect.h;
    renderer.setViewport(rect.x, y, rect.w, rect.h);
    renderer.setScissor(rect.x, y, rect.w, rect.h);
    renderer.setClearColor(color, 1);
    renderer.clear();
    renderer.render(scene, camera);
  };
  if (grid) grid.visible = false;
  if (frustum) frustum.visible = false;
  view(camRect, camView, SILHOUETTE ? 0x000000 : 0x0b0d10);
  if (orbitRect) {
    if (grid) grid.visible = true;
    if (frustum) frustum.visible = true;
    view(orbitRect, orbit, 0x1b1f26);
  }
  dirty = false;
}

function animate() {  // orbit interaction only: frames are drawn when they arrive
  if (dirty && !state.frozen) draw();
  requestAnimationFrame(animate);
}
requestAnimationFrame(animate);

// ---- HUD ------------------------------------------------------------------------------------
const hud = document.getElementById("hud");
const renderTimes = [];
function updateHud(msg) {
  if (!hud || SILHOUETTE) return;
  const now = performance.now();
  renderTimes.push(now);
  while (renderTimes.length && now - renderTimes[0] > 1000) renderTimes.shift();
  const sides = msg.hands.map((h) => `${h.handedness} ${(1000 * (h.mean_std || 0)).toFixed(1)} mm`);
  hud.textContent = [
    `${state.connected ? "live" : "reconnecting"} · ${renderTimes.length} FPS` +
      (state.publisherFps !== null ? ` (publisher ${state.publisherFps})` : ""),
    `latency ${state.latencyMs === null ? "–" : state.latencyMs.toFixed(1)} ms (publish → drawn)`,
    `hands ${msg.hands.length}${sides.length ? ": " + sides.join(", ") : ""}`,
    `seq ${state.lastRenderedSeq} · colour ${state.colorMode} (c)`,
  ].join("\n");
}
window.addEventListener("keydown", (e) => {
  if (e.key === "c") {
    const modes = ["uncertainty", "side", "texture"];
    state.colorMode = modes[(modes.indexOf(state.colorMode) + 1) % modes.length];
  }
});

// ---- the stream -----------------------------------------------------------------------------
let socket = null, retryMs = 500;

function onHands(msg, ws) {
  state.lastSeq = msg.header.seq;
  if (state.frozen || !topology) return;
  cameraFor(msg);
  updateHands(msg);
  draw();
  if (FINISH) renderer.getContext().finish();  // drawn by the GPU, not only queued
  const tRender = performance.timeOrigin + performance.now();
  state.rendered += 1;
  state.lastRenderedSeq = msg.header.seq;
  if (typeof msg.header.t_publish_wall === "number") {
    state.latencyMs = tRender - 1000 * msg.header.t_publish_wall;
  }
  if (ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify({ echo: { seq: msg.header.seq, t_render_ms: tRender } }));
  }
  if (FREEZE !== null && msg.header.seq >= FREEZE) {
    state.frozen = true;
    state.frozenSeq = msg.header.seq;
  }
  updateHud(msg);
}

function onMessage(ev, ws) {
  let msg;
  try {
    msg = decodeMessage(ev.data);
  } catch (e) {
    state.errors += 1;
    state.lastError = String(e.message || e);
    return;
  }
  state.received += 1;
  if (msg.topic === "topology") {
    if (!topology || topology.header.hand_model_sha256 !== msg.header.hand_model_sha256
        || topology.header.vertex_count !== msg.header.vertex_count) {
      state.topology = buildHands(msg);
    }
    topology = msg;
  } else if (msg.topic === "hands") {
    onHands(msg, ws);
  } else if (msg.topic === "status") {
    state.publisherFps = msg.header.fps;
  } else if (msg.topic === "texture") {
    textures = {};
    for (const h of msg.hands) {
      if (h.arrays.vertex_colors) textures[h.track_id] = h.arrays.vertex_colors.data.slice();
    }
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const q = new URLSearchParams({ topics: TOPICS });
  if (params.get("token")) q.set("token", params.get("token"));
  const ws = new WebSocket(`${scheme}://${location.host}/ws?${q}`);
  ws.binaryType = "arraybuffer";
  socket = ws;
  ws.onopen = () => { state.connected = true; state.connections += 1; retryMs = 500; };
  ws.onmessage = (ev) => onMessage(ev, ws);
  ws.onclose = () => {
    state.connected = false;
    if (hud && !SILHOUETTE) hud.textContent = `disconnected: reconnecting in ${retryMs} ms`;
    setTimeout(connect, retryMs);
    retryMs = Math.min(5000, retryMs * 2);
  };
}
connect();

// ---- optional WebXR (untested here: no headset, no XR runtime in the test machine) ----------
const xrButton = document.getElementById("xr");
if (xrButton && navigator.xr && !SILHOUETTE) {
  navigator.xr.isSessionSupported("immersive-vr").then((ok) => {
    if (!ok) return;
    xrButton.hidden = false;
    xrButton.onclick = async () => {
      const session = await navigator.xr.requestSession("immersive-vr",
                                                        { optionalFeatures: ["local-floor"] });
      renderer.xr.enabled = true;
      world.position.set(0, 1.4, 0);  // the camera's frame at about eye height
      await renderer.xr.setSession(session);
      renderer.setAnimationLoop(() => renderer.render(scene, orbit));
      session.addEventListener("end", () => {
        renderer.setAnimationLoop(null);
        renderer.xr.enabled = false;
        world.position.set(0, 0, 0);
        layout();
      });
    };
  });
}
layout();
