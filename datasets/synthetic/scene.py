"""The synthetic scenes: what is where and how the camera moves (driving, hand-held, and
hand-held panning as in NYUv2 video)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from datasets.synthetic.textures import TILE, _build_atlas, _load_photos, _Materials

KINDS = ("driving", "handheld", "nyu")
MOTIONS = ("mixed", *KINDS)


# --------------------------------------------------------------------------------------
# Scene description
# --------------------------------------------------------------------------------------
@dataclass
class Primitive:
    """One analytic object. Coordinates are world metres (OpenCV-like axes: y down).

    kind: "box" (half extents ``size``, rotated by ``yaw`` about the vertical axis),
    "sphere" (radius ``size[0]``) or "cylinder" (vertical; radius ``size[0]``, half height
    ``size[1]``). ``positions`` ``[F,3]`` holds the centre per frame for a moving object
    (``None``: static at ``center``). ``uv_offset`` shifts the texture so that objects that
    share a material do not look identical. ``group`` numbers the moving objects of a scene
    (0, 1, …; a car is two boxes of one group); -1 for static ones.
    """

    kind: str
    center: np.ndarray
    size: np.ndarray
    material: int
    yaw: float = 0.0
    positions: np.ndarray | None = None
    uv_offset: tuple[float, float] = (0.0, 0.0)
    group: int = -1

    @property
    def dynamic(self) -> bool:
        return self.positions is not None

    def center_at(self, index: int) -> np.ndarray:
        return self.center if self.positions is None else self.positions[index]

    def half_extent(self) -> np.ndarray:
        """Half extents ``[3]`` of the world axis-aligned bounding box."""
        if self.kind == "box":
            c, s = abs(math.cos(self.yaw)), abs(math.sin(self.yaw))
            hx, hy, hz = self.size
            return np.array([c * hx + s * hz, hy, s * hx + c * hz])
        if self.kind == "sphere":
            return np.full(3, self.size[0])
        return np.array([self.size[0], self.size[1], self.size[0]])


@dataclass
class SyntheticScene:
    """Everything needed to render any frame of one scene deterministically.

    K: ``[3,3]``; poses: ``[F,3,4]`` camera-to-world (world = internal scene frame);
    room_lo/room_hi: the inner box (``[3]``) the camera lives in; room_materials: material
    of its 6 faces (x-, x+, y- = ceiling, y+ = floor, z-, z+); atlas: mip-mapped texture
    atlas (uint8 ``[h,w,3]`` RGB); texels_per_m: ``[M]``.
    """

    name: str
    kind: str
    seed: int
    height: int
    width: int
    K: np.ndarray
    poses: np.ndarray
    room_lo: np.ndarray
    room_hi: np.ndarray
    room_materials: np.ndarray
    objects: list[Primitive]
    atlas: np.ndarray
    texels_per_m: np.ndarray
    level_y: np.ndarray
    material_names: list[str] = field(default_factory=list)
    _dirs: tuple[np.ndarray, ...] | None = field(default=None, repr=False)

    @property
    def num_frames(self) -> int:
        return len(self.poses)

    @property
    def dynamic_objects(self) -> list[int]:
        """Indices (into ``objects``) of the moving primitives."""
        return [i for i, p in enumerate(self.objects) if p.dynamic]

    @property
    def num_moving(self) -> int:
        """Number of independently moving objects (groups of primitives)."""
        return len({p.group for p in self.objects if p.dynamic})

    def relative_poses(self) -> np.ndarray:
        """Camera-to-world ``[F,3,4]`` relative to the first camera (what poses.txt holds)."""
        T = np.tile(np.eye(4), (self.num_frames, 1, 1))
        T[:, :3, :] = self.poses
        return (np.linalg.inv(T[0]) @ T)[:, :3, :]


@dataclass
class RenderedFrame:
    """image: uint8 ``[H,W,3]`` RGB; depth: float32 ``[H,W]`` z-depth in metres (centre
    sample); object_id: int16 ``[H,W]`` (0-5 faces of the room/street, 6+k object k);
    dynamic: bool ``[H,W]`` (a moving object is seen at the pixel centre)."""

    image: np.ndarray
    depth: np.ndarray
    object_id: np.ndarray
    dynamic: np.ndarray


# --------------------------------------------------------------------------------------
# Camera motion
# --------------------------------------------------------------------------------------
def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _smooth(rng: np.random.Generator, n: int, amp: float, min_period: float,
            max_period: float, terms: int = 3) -> np.ndarray:
    """A smooth random signal ``[n]``: a sum of sinusoids, peak amplitude about ``amp``."""
    k = np.arange(n, dtype=np.float64)
    out = np.zeros(n)
    for _ in range(terms):
        period = rng.uniform(min_period, max_period)
        out += np.sin(2 * np.pi * k / period + rng.uniform(0, 2 * np.pi))
    return out * amp / terms


def camera_motion(poses: np.ndarray) -> dict[str, float]:
    """How the camera moves between consecutive frames of camera-to-world poses ``[F,3,4]``.

    Returns the means over the F−1 steps of: the rotation angle (``rotation_deg``), the
    rotation about each camera axis (``|ω_x|``, ``|ω_y|``, ``|ω_z|`` of the rotation vector
    ω, in degrees: tilt, pan and roll with OpenCV axes) and the translation in cm.
    """
    R, t = poses[:, :, :3], poses[:, :, 3]
    rel = np.einsum("fji,fjk->fik", R[1:], R[:-1])  # R_{f+1}ᵀ · R_f
    cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos)
    skew = np.stack([rel[:, 2, 1] - rel[:, 1, 2], rel[:, 0, 2] - rel[:, 2, 0],
                     rel[:, 1, 0] - rel[:, 0, 1]], axis=1)
    # ω = θ / (2 sin θ) · skew, and → skew / 2 as θ → 0
    factor = np.where(angle > 1e-9, angle / (2.0 * np.sin(np.maximum(angle, 1e-9))), 0.5)
    omega = np.degrees(np.abs(skew * factor[:, None])).mean(axis=0)
    step = np.linalg.norm(t[1:] - t[:-1], axis=1)
    return {"rotation_deg": float(np.degrees(angle).mean()), "tilt_deg": float(omega[0]),
            "pan_deg": float(omega[1]), "roll_deg": float(omega[2]),
            "translation_cm": float(100.0 * step.mean())}


def _driving_trajectory(rng: np.random.Generator, frames: int, z_far_max: float
                        ) -> tuple[np.ndarray, float]:
    """Camera-to-world ``[F,3,4]`` and the travelled distance, camera starting at z = 0."""
    # forward speed 0.3-1.0 m/frame, capped so that the far wall stays within 60 m at the
    # start and more than 15 m ahead at the end
    speed = min(rng.uniform(0.3, 1.0), max(0.3, (z_far_max - 18.0) / max(frames - 1, 1)))
    steps = speed * (1.0 + _smooth(rng, frames, 0.12, 15, 40))
    z = np.concatenate([[0.0], np.cumsum(steps[:-1])])
    # gentle turns: the car follows a lateral sine (|x| <= 0.8 m), heading = path slope
    amp, wavelength = rng.uniform(0.2, 0.6), rng.uniform(20.0, 40.0)
    phase = rng.uniform(0, 2 * np.pi)
    x = amp * np.sin(2 * np.pi * z / wavelength + phase)
    slope = amp * 2 * np.pi / wavelength * np.cos(2 * np.pi * z / wavelength + phase)
    yaw = np.arctan(slope) + np.deg2rad(_smooth(rng, frames, 1.0, 10, 30))
    pitch = np.deg2rad(_smooth(rng, frames, 0.8, 6, 20))
    roll = np.deg2rad(_smooth(rng, frames, 0.6, 6, 20))
    y = _smooth(rng, frames, 0.02, 4, 12)
    poses = np.zeros((frames, 3, 4))
    for k in range(frames):
        poses[k, :, :3] = _rot_y(yaw[k]) @ _rot_x(pitch[k]) @ _rot_z(roll[k])
        poses[k, :, 3] = (x[k], y[k], z[k])
    return poses, float(z[-1])


def _handheld_trajectory(rng: np.random.Generator, frames: int, safe: np.ndarray,
                         panning: bool = False) -> np.ndarray:
    """Camera-to-world ``[F,3,4]`` inside ``|p| <= safe`` (room frame, centre at 0).

    panning=False: a few cm and several degrees a frame about every axis. panning=True (the
    ``nyu`` kind): the degenerate motion the V2 paper describes for hand-held indoor video,
    about 2 cm a frame while the camera pans (yaw) and tilts (pitch) by degrees and barely
    rolls, so rotation dominates the image motion.
    """
    pos = rng.uniform(-1.0, 1.0, 3) * safe
    vel = np.zeros(3)
    if panning:
        sigma_v, pull = np.array([0.008, 0.003, 0.008]), 0.002  # m/frame, 1/frame
        sigma_r = np.deg2rad([rng.uniform(3.0, 6.0), rng.uniform(2.0, 4.0),
                              rng.uniform(0.5, 1.0)])  # yaw, pitch, roll rates
        limits = np.deg2rad([np.inf, 40.0, 10.0])
    else:
        sigma_v, pull = np.array([0.03, 0.012, 0.03]), 0.01  # "a few cm a frame"
        sigma_r = np.deg2rad(rng.uniform(3.0, 5.0, 3))
        limits = np.deg2rad([np.inf, 50.0, 35.0])
    # AR(1) angular rates, pitch and roll pulled back towards upright so that the camera
    # stays a plausible hand-held one
    rho = 0.85
    angles = np.array([rng.uniform(-np.pi, np.pi), 0.0, 0.0])  # yaw, pitch, roll
    rates = rng.standard_normal(3) * sigma_r
    poses = np.zeros((frames, 3, 4))
    for k in range(frames):
        poses[k, :, :3] = _rot_y(angles[0]) @ _rot_x(angles[1]) @ _rot_z(angles[2])
        poses[k, :, 3] = pos
        vel = 0.8 * vel + 0.6 * sigma_v * rng.standard_normal(3) - pull * pos
        new = pos + vel
        out = np.abs(new) > safe
        vel[out] = -vel[out]
        pos = np.clip(pos + vel, -safe, safe)
        rates = rho * rates + math.sqrt(1 - rho**2) * sigma_r * rng.standard_normal(3)
        rates[1:] -= 0.06 * angles[1:]
        angles = angles + rates
        over = np.abs(angles) > limits
        rates[over] = -rates[over]
        angles = np.clip(angles, -limits, limits)
    return poses


# --------------------------------------------------------------------------------------
# Scene construction
# --------------------------------------------------------------------------------------
def _aabb_distance(points: np.ndarray, center: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Distance ``[N]`` from points ``[N,3]`` to an axis-aligned box."""
    d = np.maximum(np.abs(points - center) - half, 0.0)
    return np.linalg.norm(d, axis=-1)


def _boxes_overlap(c1: np.ndarray, h1: np.ndarray, c2: np.ndarray, h2: np.ndarray,
                   margin: float = 0.02) -> bool:
    return bool(np.all(np.abs(c1 - c2) < h1 + h2 + margin))


class _Placer:
    """Rejection sampling of object groups: keep a clearance from every camera centre,
    stay inside the room, and do not overlap what is placed (incl. the swept boxes of the
    moving objects)."""

    def __init__(self, cameras: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 clearance: float) -> None:
        self.cameras, self.lo, self.hi, self.clearance = cameras, lo, hi, clearance
        self.boxes: list[tuple[np.ndarray, np.ndarray]] = []

    @staticmethod
    def bounds(prims: list[Primitive]) -> tuple[np.ndarray, np.ndarray]:
        mins, maxs = [], []
        for p in prims:
            pos = p.positions if p.positions is not None else p.center[None]
            mins.append(pos.min(0) - p.half_extent())
            maxs.append(pos.max(0) + p.half_extent())
        lo, hi = np.min(mins, 0), np.max(maxs, 0)
        return (lo + hi) / 2, (hi - lo) / 2

    def ok(self, prims: list[Primitive], check_overlap: bool = True) -> bool:
        c, h = self.bounds(prims)
        if np.any(c - h < self.lo - 1e-6) or np.any(c + h > self.hi + 1e-6):
            return False
        for p in prims:
            if p.positions is not None:
                # moving object: clearance from the camera of the same frame
                dist = _aabb_distance(self.cameras, p.positions, p.half_extent())
            else:
                dist = _aabb_distance(self.cameras, p.center, p.half_extent())
            if np.any(dist < self.clearance):
                return False
        return not (check_overlap and any(_boxes_overlap(c, h, c2, h2)
                                          for c2, h2 in self.boxes))

    def add(self, prims: list[Primitive]) -> None:
        self.boxes.append(self.bounds(prims))


def _intrinsics(kind: str, height: int, width: int) -> np.ndarray:
    f = (0.8 if kind == "driving" else 0.9) * width
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=np.float64)


def _driving_scene(rng: np.random.Generator, frames: int, mats: _Materials
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[Primitive]]:
    cam_h = rng.uniform(1.4, 1.7)
    half_w = rng.uniform(5.8, 7.0)
    top = -(rng.uniform(6.0, 9.0) - cam_h)
    poses, travel = _driving_trajectory(rng, frames, 60.0)
    z_far = min(60.0, travel + rng.uniform(18.0, 30.0))
    lo = np.array([-half_w, top, -12.0])
    hi = np.array([half_w, cam_h, z_far])
    room_mats = np.array([
        mats.pick(["brick", "windows", "photo", "tiles"], 4.0, 8.0),   # left facade
        mats.pick(["brick", "windows", "noise", "stripes"], 4.0, 8.0),  # right facade
        mats.add("sky", rng.uniform(25.0, 40.0)),                       # "sky" ceiling
        mats.add("asphalt", rng.uniform(3.0, 5.0)),                     # ground
        mats.pick(["brick", "noise"], 5.0, 9.0),                        # back wall
        mats.pick(["photo", "windows", "brick"], 10.0, 18.0),           # far wall
    ], dtype=np.int64)
    obj_mats = [mats.pick(["checker", "stripes", "noise", "photo", "tiles"], 1.0, 3.0)
                for _ in range(6)]
    cameras = poses[:, :, 3]
    placer = _Placer(cameras, lo + np.array([0.0, 0.0, 0.5]), hi, clearance=0.8)
    objects: list[Primitive] = []
    ground = cam_h

    def box(c: Sequence[float], h: Sequence[float], m: int, yaw: float = 0.0) -> Primitive:
        return Primitive("box", np.asarray(c, float), np.asarray(h, float), m, yaw,
                         uv_offset=tuple(rng.uniform(0, 10, 2)))

    def car(x: float, z: float, m: int) -> list[Primitive]:
        hx, hy, hz = rng.uniform(0.8, 0.95), rng.uniform(0.45, 0.6), rng.uniform(1.9, 2.3)
        lift = 0.25  # the body floats over the (invisible) wheels
        body = box((x, ground - lift - hy, z), (hx, hy, hz), m, rng.uniform(-0.05, 0.05))
        cab_h = rng.uniform(0.3, 0.4)
        cab = box((x, ground - lift - 2 * hy - cab_h, z + rng.uniform(-0.4, 0.2)),
                  (hx * 0.85, cab_h, hz * 0.5), m, body.yaw)
        return [body, cab]

    # moving objects first (they need free lanes), 1-3 of them
    mid = frames // 2
    k = np.arange(frames) - mid
    n_moving = 0
    for i in range(int(rng.integers(1, 4))):
        m = mats.add("bold", rng.uniform(0.8, 1.6))  # a bold pattern makes the motion show
        for _ in range(200):
            style = "cross" if i == 0 else str(rng.choice(["cross", "car", "ball"]))
            z_mid = cameras[mid, 2] + rng.uniform(7.0, 20.0)
            if style == "cross":
                # goes back and forth across the street ahead: lateral motion, which a
                # static-world warp cannot explain (motion along the view barely shows)
                amp = rng.uniform(1.5, 3.5)
                speed = rng.uniform(0.15, 0.3)
                phase = rng.uniform(0, 2 * np.pi)
                xs = rng.uniform(-1.5, 1.5) + amp * (np.sin(speed / amp * k + phase)
                                                     - math.sin(phase))
                size = rng.uniform(0.35, 0.6)
                ys = np.full(frames, ground - 0.03 - size)
                pos = np.stack([xs, ys, np.full(frames, z_mid)], 1)
                if rng.random() < 0.5:
                    prims = [Primitive("sphere", pos[0].copy(), np.full(3, size), m,
                                       positions=pos, uv_offset=tuple(rng.uniform(0, 10, 2)))]
                else:
                    prims = [Primitive("box", pos[0].copy(), np.full(3, size), m,
                                       rng.uniform(0, np.pi), positions=pos,
                                       uv_offset=tuple(rng.uniform(0, 10, 2)))]
            else:
                lane_x = rng.choice([-1.0, 1.0]) * rng.uniform(2.4, 2.6)
                zs = z_mid + rng.choice([-1.0, 1.0]) * rng.uniform(0.12, 0.3) * k
                if style == "car":
                    prims = car(lane_x, 0.0, m)
                    for p in prims:
                        pos = np.repeat(p.center[None], frames, axis=0)
                        pos[:, 2] += zs
                        p.positions = pos
                else:  # a ball bouncing along a lane
                    r = rng.uniform(0.4, 0.7)
                    period = rng.uniform(8, 16)
                    bounce = rng.uniform(0.3, 1.0) * np.abs(np.sin(np.pi * k / period))
                    pos = np.stack([np.full(frames, lane_x), ground - 0.03 - r - bounce, zs], 1)
                    prims = [Primitive("sphere", pos[0].copy(), np.full(3, r), m,
                                       positions=pos, uv_offset=tuple(rng.uniform(0, 10, 2)))]
            if placer.ok(prims):
                placer.add(prims)
                for p in prims:
                    p.group = n_moving
                n_moving += 1
                objects += prims
                break

    # static street furniture along both sides
    z = lo[2] + 2.0
    while z < hi[2] - 2.0:
        for side in (-1.0, 1.0):
            r = rng.random()
            m = obj_mats[int(rng.integers(len(obj_mats)))]
            zz = z + rng.uniform(-2.0, 2.0)
            if r < 0.35:
                prims = car(side * rng.uniform(4.5, 4.7), zz, m)
            elif r < 0.55:
                rad, hh = rng.uniform(0.1, 0.25), rng.uniform(1.5, 3.0)
                prims = [Primitive("cylinder", np.array([side * (half_w - rng.uniform(0.5, 1.3)),
                                                         ground - hh, zz]),
                                   np.array([rad, hh, rad]), m,
                                   uv_offset=tuple(rng.uniform(0, 10, 2)))]
            elif r < 0.7:
                # tree: trunk and crown
                hh = rng.uniform(1.2, 2.0)
                x = side * (half_w - rng.uniform(1.0, 1.4))
                rad = rng.uniform(1.0, 1.6)
                prims = [Primitive("cylinder", np.array([x, ground - hh, zz]),
                                   np.array([0.2, hh, 0.2]), m),
                         Primitive("sphere", np.array([x, ground - 2 * hh - rad * 0.8, zz]),
                                   np.full(3, rad), obj_mats[int(rng.integers(6))],
                                   uv_offset=tuple(rng.uniform(0, 10, 2)))]
            elif r < 0.8:
                rad = rng.uniform(0.3, 0.6)
                prims = [Primitive("sphere", np.array([side * (half_w - rng.uniform(0.7, 1.3)),
                                                       ground - rad, zz]), np.full(3, rad), m,
                                   uv_offset=tuple(rng.uniform(0, 10, 2)))]
            else:
                h = (rng.uniform(0.8, 1.5), rng.uniform(1.0, 1.5), rng.uniform(1.0, 2.0))
                prims = [box((side * (half_w - 0.1 - h[0]),
                              ground - h[1], zz), h, m)]
            if placer.ok(prims):
                placer.add(prims)
                objects += prims
            # balconies / pillars on the facade give depth edges high up
            if rng.random() < 0.8:
                hh = (rng.uniform(0.4, 0.9), rng.uniform(0.1, 0.5), rng.uniform(1.0, 2.5))
                y = ground - rng.uniform(2.5, 6.0)
                prims = [box((side * (half_w - hh[0]), y, z + rng.uniform(-3, 3)), hh,
                             obj_mats[int(rng.integers(6))])]
                if placer.ok(prims):
                    placer.add(prims)
                    objects += prims
        z += rng.uniform(5.0, 9.0)
    return poses, lo, hi, room_mats, objects


def _handheld_scene(rng: np.random.Generator, frames: int, mats: _Materials,
                    panning: bool = False
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[Primitive]]:
    half_x, half_z = rng.uniform(2.5, 3.6), rng.uniform(3.5, 4.5)
    floor = rng.uniform(1.3, 1.6)
    ceiling = floor - rng.uniform(2.6, 3.1)
    lo = np.array([-half_x, ceiling, -half_z])
    hi = np.array([half_x, floor, half_z])
    # the camera stays >= 1.4 m from the walls and >= 1 m from floor and ceiling
    safe = np.array([half_x - 0.9, min(0.2, -ceiling - 1.0, floor - 1.0), half_z - 0.9])
    poses = _handheld_trajectory(rng, frames, np.maximum(safe, 0.05), panning)
    room_mats = np.array([
        mats.pick(["photo", "brick", "stripes", "noise"], 1.5, 3.0),
        mats.pick(["photo", "tiles", "stripes", "noise"], 1.5, 3.0),
        mats.pick(["tiles", "noise"], 1.5, 3.0),                      # ceiling
        mats.pick(["tiles", "checker", "stripes", "noise"], 1.0, 2.5),  # floor
        mats.pick(["photo", "brick", "noise"], 1.5, 3.0),
        mats.pick(["photo", "windows", "stripes"], 1.5, 3.5),
    ], dtype=np.int64)
    obj_mats = [mats.pick(["checker", "stripes", "noise", "photo", "tiles", "brick"], 0.5, 1.5)
                for _ in range(6)]
    cameras = poses[:, :, 3]
    placer = _Placer(cameras, lo, hi, clearance=0.6)
    objects: list[Primitive] = []

    def pick_mat() -> int:
        return obj_mats[int(rng.integers(len(obj_mats)))]

    def offset() -> tuple[float, float]:
        return tuple(rng.uniform(0, 10, 2))

    mid = frames // 2
    k = np.arange(frames) - mid
    for i in range(int(rng.integers(1, 4))):
        m = mats.add("bold", rng.uniform(0.5, 1.0))
        for attempt in range(300):
            size = rng.uniform(0.15, 0.3)
            if i == 0 and attempt < 200:
                # the first one crosses the middle frame's view, so that it is seen
                centre = cameras[mid] + poses[mid, :, 2] * rng.uniform(1.4, 2.6)
                centre += rng.uniform(-0.3, 0.3, 3)
            else:
                centre = rng.uniform(lo + 0.5, hi - 0.5)
            speed = rng.uniform(0.1, 0.25)
            period = rng.uniform(20, 40)
            direction = rng.standard_normal(3) * np.array([1.0, 0.3, 1.0])
            direction /= np.linalg.norm(direction)
            amp = speed * period / (2 * np.pi)
            phase = rng.uniform(0, 2 * np.pi)
            path = np.sin(2 * np.pi * k / period + phase) - math.sin(phase)
            pos = centre + amp * path[:, None] * direction
            if rng.random() < 0.6:
                prim = Primitive("sphere", pos[0].copy(), np.full(3, size), m,
                                 positions=pos, uv_offset=offset())
            else:
                prim = Primitive("box", pos[0].copy(), np.full(3, size), m,
                                 rng.uniform(0, np.pi), positions=pos, uv_offset=offset())
            if placer.ok([prim]):
                placer.add([prim])
                prim.group = len(objects)
                objects.append(prim)
                break

    def box(c: Sequence[float], h: Sequence[float], m: int, yaw: float = 0.0) -> Primitive:
        return Primitive("box", np.asarray(c, float), np.asarray(h, float), m, yaw,
                         uv_offset=offset())

    n_groups = int(rng.integers(9, 15))
    for _ in range(n_groups * 6):
        if n_groups <= 0:
            break
        r = rng.random()
        x, z = rng.uniform(lo[0] + 0.3, hi[0] - 0.3), rng.uniform(lo[2] + 0.3, hi[2] - 0.3)
        yaw = rng.uniform(0, np.pi)
        m = pick_mat()
        if r < 0.2:  # table: top and four legs
            hx, hz, height = rng.uniform(0.4, 0.8), rng.uniform(0.3, 0.6), rng.uniform(0.7, 0.8)
            c, s = math.cos(yaw), math.sin(yaw)
            prims = [box((x, floor - height, z), (hx, 0.03, hz), m, yaw)]
            for sx, sz in ((-1, -1), (-1, 1), (1, -1), (1, 1)):
                lx, lz = sx * (hx - 0.05), sz * (hz - 0.05)
                prims.append(box((x + c * lx + s * lz, floor - (height - 0.03) / 2,
                                  z - s * lx + c * lz), (0.03, (height - 0.03) / 2, 0.03),
                                 m, yaw))
        elif r < 0.4:  # cabinet
            h = (rng.uniform(0.25, 0.5), rng.uniform(0.4, 1.0), rng.uniform(0.25, 0.6))
            prims = [box((x, floor - h[1], z), h, m, yaw)]
        elif r < 0.55:  # ball on the floor
            rad = rng.uniform(0.15, 0.4)
            prims = [Primitive("sphere", np.array([x, floor - rad, z]), np.full(3, rad), m,
                               uv_offset=offset())]
        elif r < 0.7:  # pillar or barrel
            rad = rng.uniform(0.12, 0.3)
            hh = (floor - ceiling) / 2 if rng.random() < 0.5 else rng.uniform(0.2, 0.6)
            prims = [Primitive("cylinder", np.array([x, floor - hh, z]),
                               np.array([rad, hh, rad]), m, uv_offset=offset())]
        else:  # picture on a wall
            wall = int(rng.integers(4))
            w, h = rng.uniform(0.3, 0.8), rng.uniform(0.25, 0.6)
            y = rng.uniform(ceiling + h + 0.2, floor - h - 0.5)
            m = mats.add("photo", rng.uniform(0.6, 1.6)) if rng.random() < 0.5 else m
            if wall < 2:
                xw = (lo[0] + 0.02) if wall == 0 else (hi[0] - 0.02)
                prims = [box((xw, y, z), (0.02, h, w), m)]
            else:
                zw = (lo[2] + 0.02) if wall == 2 else (hi[2] - 0.02)
                prims = [box((x, y, zw), (w, h, 0.02), m)]
        if placer.ok(prims):
            placer.add(prims)
            objects += prims
            n_groups -= 1
    return poses, lo, hi, room_mats, objects


def build_scene(kind: str, seed: int, frames: int, height: int, width: int,
                name: str = "scene", moving_objects: bool = True) -> SyntheticScene:
    """Build one scene (geometry, textures, trajectory) deterministically from ``seed``.

    kind: "driving" | "handheld" | "nyu" (the hand-held room, camera panning: see
    :func:`_handheld_trajectory`). The camera intrinsics are ``fx = fy = 0.8 W`` (driving)
    or ``0.9 W`` (the rooms), ``cx = W/2``, ``cy = H/2``. ``moving_objects=False`` leaves the
    moving objects out of the same scene (the same seed gives the same room, static objects,
    textures and trajectory).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    rng = np.random.default_rng(seed)
    mats = _Materials(rng, _load_photos())
    if kind == "driving":
        poses, lo, hi, room_mats, objects = _driving_scene(rng, frames, mats)
    else:
        poses, lo, hi, room_mats, objects = _handheld_scene(rng, frames, mats,
                                                            panning=kind == "nyu")
    if not moving_objects:  # dropped after all draws, so the rest of the scene is unchanged
        objects = [p for p in objects if not p.dynamic]
    atlas, level_y = _build_atlas(mats.tiles)
    return SyntheticScene(
        name=name, kind=kind, seed=int(seed), height=int(height), width=int(width),
        K=_intrinsics(kind, height, width), poses=poses, room_lo=lo, room_hi=hi,
        room_materials=room_mats, objects=objects, atlas=atlas,
        texels_per_m=(TILE / np.array(mats.metres)).astype(np.float32), level_y=level_y,
        material_names=mats.names)

