"""Rendering a synthetic scene: vectorised ray casting of its primitives, textured and shaded.

Rays go through the pixel centres of the scene's K exactly (pixel (row i, col j) at
(u, v) = (j, i), OpenCV camera axes); the direction of a ray is ``R · K⁻¹ [u, v, 1]ᵀ``, so
its parameter *is* the z-depth. Colour is the mean of 2×2 samples per pixel; depth, object
ids and the dynamic mask come from the centre sample (never averaged across an edge).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from datasets.synthetic.scene import Primitive, RenderedFrame, SyntheticScene
from datasets.synthetic.textures import TILE

# Supersampling: sample 0 is the pixel centre (depth, ids), samples 1-4 are averaged for colour.
_SAMPLE_OFFSETS = np.array([[0.0, 0.0], [-0.25, -0.25], [0.25, -0.25], [-0.25, 0.25],
                            [0.25, 0.25]], dtype=np.float32)
_LIGHT = np.array([0.35, -0.85, -0.40])
_LIGHT = _LIGHT / np.linalg.norm(_LIGHT)  # towards the light, world axes (y down)
_AMBIENT, _DIFFUSE = 0.42, 0.58
_SENSOR_NOISE = 0.5  # std of the additive noise, in 8-bit levels
_EPS_T = 1e-3


# --------------------------------------------------------------------------------------
# Ray casting
# --------------------------------------------------------------------------------------
def _camera_dirs(scene: SyntheticScene) -> tuple[np.ndarray, ...]:
    """Camera-frame ray directions ``(x, y, |d|)`` each ``[S,H,W]`` float32, z = 1."""
    if scene._dirs is None:
        H, W = scene.height, scene.width
        K = scene.K
        ii, jj = np.mgrid[0:H, 0:W].astype(np.float32)
        u = jj[None] + _SAMPLE_OFFSETS[:, 0, None, None]
        v = ii[None] + _SAMPLE_OFFSETS[:, 1, None, None]
        x = ((u - K[0, 2]) / K[0, 0]).astype(np.float32)
        y = ((v - K[1, 2]) / K[1, 1]).astype(np.float32)
        norm = np.sqrt(x * x + y * y + 1).astype(np.float32)
        scene._dirs = (x, y, norm)
    return scene._dirs


class _Hits:
    """Per-ray buffers ``[S,H,W]`` of the nearest hit found so far."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.t = np.full(shape, np.inf, np.float32)
        self.oid = np.zeros(shape, np.int16)
        self.mat = np.zeros(shape, np.int16)
        self.u = np.zeros(shape, np.float32)
        self.v = np.zeros(shape, np.float32)
        self.ndl = np.zeros(shape, np.float32)  # n · light
        self.cos = np.ones(shape, np.float32)  # |n · ray| / |ray|


def _hit_room(hits: _Hits, o: np.ndarray, D: tuple[np.ndarray, ...], norm: np.ndarray,
              scene: SyntheticScene) -> None:
    """Exit point of the rays from the inner box (camera inside)."""
    lo, hi = scene.room_lo - o, scene.room_hi - o
    ts = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for a in range(3):
            inv = np.float32(1.0) / D[a]
            ts.append(np.maximum(np.float32(lo[a]) * inv, np.float32(hi[a]) * inv))
    tx, ty, tz = ts
    is_x = (tx <= ty) & (tx <= tz)
    is_y = ~is_x & (ty <= tz)
    t = np.minimum(np.minimum(tx, ty), tz)
    P = [np.float32(o[a]) + t * D[a] for a in range(3)]
    hits.t[...] = t
    hits.u[...] = np.where(is_x, P[2], P[0])
    hits.v[...] = np.where(is_y, P[2], P[1])
    Da = np.where(is_x, D[0], np.where(is_y, D[1], D[2]))
    face = np.where(is_x, 0, np.where(is_y, 2, 4)) + (Da > 0)
    hits.oid[...] = face
    hits.mat[...] = scene.room_materials[face]
    # inward normals: +e_a on the low face, -e_a on the high face
    face_ndl = np.array([_LIGHT[0], -_LIGHT[0], _LIGHT[1], -_LIGHT[1], _LIGHT[2], -_LIGHT[2]],
                        dtype=np.float32)
    hits.ndl[...] = face_ndl[face]
    hits.cos[...] = np.abs(Da) / norm


def _screen_box(prim: Primitive, index: int, o: np.ndarray, R: np.ndarray, K: np.ndarray,
                H: int, W: int) -> tuple[int, int, int, int] | None:
    """Pixel rectangle (r0, r1, c0, c1) that may see ``prim``; None when it cannot be seen."""
    c, h = prim.center_at(index), prim.half_extent()
    corners = c + h * np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1)
                                for sz in (-1, 1)])
    cam = (corners - o) @ R  # world -> camera: R^T (p - o)
    z = cam[:, 2]
    if np.all(z <= 0):
        return None
    if np.any(z <= 0.05):
        return 0, H, 0, W
    u = K[0, 0] * cam[:, 0] / z + K[0, 2]
    v = K[1, 1] * cam[:, 1] / z + K[1, 2]
    c0, c1 = max(int(np.floor(u.min())) - 1, 0), min(int(np.ceil(u.max())) + 2, W)
    r0, r1 = max(int(np.floor(v.min())) - 1, 0), min(int(np.ceil(v.max())) + 2, H)
    if c0 >= c1 or r0 >= r1:
        return None
    return r0, r1, c0, c1


def _hit_object(hits: _Hits, oid: int, prim: Primitive, index: int, o: np.ndarray,
                D: tuple[np.ndarray, ...], norm: np.ndarray, block: tuple[slice, ...]) -> None:
    """Intersect one primitive with the rays of ``block`` and keep the nearer hits."""
    Dx, Dy, Dz = (d[block] for d in D)
    nb = norm[block]
    oc = o - prim.center_at(index)
    f32 = np.float32
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if prim.kind == "sphere":
            r = prim.size[0]
            b = Dx * f32(oc[0]) + Dy * f32(oc[1]) + Dz * f32(oc[2])
            a = nb * nb
            disc = b * b - a * f32(oc @ oc - r * r)
            t = (-b - np.sqrt(disc)) / a
            hit = (disc > 0) & (t > _EPS_T)
        elif prim.kind == "cylinder":
            r, hh = prim.size[0], prim.size[1]
            a = Dx * Dx + Dz * Dz
            b = Dx * f32(oc[0]) + Dz * f32(oc[2])
            disc = b * b - a * f32(oc[0] ** 2 + oc[2] ** 2 - r * r)
            t = (-b - np.sqrt(disc)) / a
            y = f32(oc[1]) + t * Dy
            hit = (disc > 0) & (t > _EPS_T) & (np.abs(y) <= hh)
            cap = None
            if abs(oc[1]) > hh:  # the camera is above or below: one cap faces it
                yc = -hh if oc[1] < 0 else hh
                tc = f32(yc - oc[1]) / Dy
                xc, zc = f32(oc[0]) + tc * Dx, f32(oc[2]) + tc * Dz
                cap = (tc > _EPS_T) & (xc * xc + zc * zc <= r * r) & (~hit | (tc < t))
                t = np.where(cap, tc, t)
                hit = hit | cap
        else:
            c, s = math.cos(prim.yaw), math.sin(prim.yaw)
            Dl = (f32(c) * Dx - f32(s) * Dz, Dy, f32(s) * Dx + f32(c) * Dz)
            ol = np.array([c * oc[0] - s * oc[2], oc[1], s * oc[0] + c * oc[2]])
            tmin, tmax = [], []
            for ax in range(3):
                inv = f32(1.0) / Dl[ax]
                t1 = f32(-prim.size[ax] - ol[ax]) * inv
                t2 = f32(prim.size[ax] - ol[ax]) * inv
                tmin.append(np.minimum(t1, t2))
                tmax.append(np.maximum(t1, t2))
            t = np.maximum(np.maximum(tmin[0], tmin[1]), tmin[2])
            tfar = np.minimum(np.minimum(tmax[0], tmax[1]), tmax[2])
            hit = (t <= tfar) & (t > _EPS_T)
        win = hit & (t < hits.t[block])
        if not win.any():
            return
        tw = t[win]
        dx, dy, dz, nw = Dx[win], Dy[win], Dz[win], nb[win]
        # local hit point (relative to the centre; object-attached texture coordinates)
        px, py, pz = f32(oc[0]) + tw * dx, f32(oc[1]) + tw * dy, f32(oc[2]) + tw * dz
        if prim.kind == "sphere":
            r = f32(prim.size[0])
            u = np.arctan2(pz, px) * r
            v = np.arccos(np.clip(py / r, -1, 1)) * r
            nx, ny, nz = px / r, py / r, pz / r
            ndl = nx * f32(_LIGHT[0]) + ny * f32(_LIGHT[1]) + nz * f32(_LIGHT[2])
            cos = np.abs(nx * dx + ny * dy + nz * dz) / nw
        elif prim.kind == "cylinder":
            r = f32(prim.size[0])
            on_cap = cap[win] if cap is not None else np.zeros(tw.shape, bool)
            u = np.where(on_cap, px, np.arctan2(pz, px) * r)
            v = np.where(on_cap, pz, py)
            nx = np.where(on_cap, 0, px / r)
            nz = np.where(on_cap, 0, pz / r)
            ny = np.where(on_cap, np.sign(oc[1]), 0).astype(np.float32)
            ndl = nx * f32(_LIGHT[0]) + ny * f32(_LIGHT[1]) + nz * f32(_LIGHT[2])
            cos = np.abs(nx * dx + ny * dy + nz * dz) / nw
        else:
            tm = [m[win] for m in tmin]
            is_x = (tm[0] >= tm[1]) & (tm[0] >= tm[2])
            is_y = ~is_x & (tm[1] >= tm[2])
            lx = f32(ol[0]) + tw * Dl[0][win]
            ly = f32(ol[1]) + tw * Dl[1][win]
            lz = f32(ol[2]) + tw * Dl[2][win]
            u = np.where(is_x, lz, lx)
            v = np.where(is_y, lz, ly)
            light_l = np.array([c * _LIGHT[0] - s * _LIGHT[2], _LIGHT[1],
                                s * _LIGHT[0] + c * _LIGHT[2]], dtype=np.float32)
            la = np.where(is_x, light_l[0], np.where(is_y, light_l[1], light_l[2]))
            pa = np.where(is_x, lx, np.where(is_y, ly, lz))
            da = np.where(is_x, Dl[0][win], np.where(is_y, Dl[1][win], Dl[2][win]))
            ndl = np.sign(pa) * la
            cos = np.abs(da) / nw
    sub = [buf[block] for buf in (hits.t, hits.oid, hits.mat, hits.u, hits.v, hits.ndl,
                                  hits.cos)]
    sub[0][win] = tw
    sub[1][win] = oid
    sub[2][win] = prim.material
    sub[3][win] = u + f32(prim.uv_offset[0])
    sub[4][win] = v + f32(prim.uv_offset[1])
    sub[5][win] = ndl
    sub[6][win] = cos


def _shade(scene: SyntheticScene, hits: _Hits, norm: np.ndarray) -> np.ndarray:
    """Colour of the 4 colour samples, averaged: float32 ``[H,W,3]`` in 0..1."""
    H, W = scene.height, scene.width
    t, mat, u, v = hits.t[1:], hits.mat[1:], hits.u[1:], hits.v[1:]
    cos, ndl, nb = hits.cos[1:], hits.ndl[1:], norm[1:]
    tpm = scene.texels_per_m[mat]
    levels = len(scene.level_y)
    # mip level from the texels one pixel covers (the 2×2 samples then only smooth edges);
    # at grazing angles the footprint is stretched, sqrt(cos) trades blur against aliasing
    spacing = np.float32(1.0 / scene.K[0, 0])
    foot = t / nb * spacing * tpm / np.sqrt(np.maximum(cos, np.float32(0.05)))
    lev = np.clip(np.log2(np.maximum(foot, np.float32(1.0))), 0, levels - 1.001)
    l0 = lev.astype(np.int64)
    frac = (lev - l0)[..., None].reshape(4 * H, W, 1)
    su, sv = u * tpm, v * tpm
    scales = (0.5 ** np.arange(levels + 1)).astype(np.float32)
    level_y = np.append(scene.level_y, 0).astype(np.float32)
    colours = []
    for lv in (l0, l0 + 1):
        scale = scales[lv]
        size = np.float32(TILE) * scale
        x, y = su * scale, sv * scale
        x = x - np.floor(x / size) * size + np.float32(0.5) + mat * (size + 2)
        y = y - np.floor(y / size) * size + np.float32(0.5) + level_y[lv]
        colours.append(cv2.remap(scene.atlas, x.reshape(4 * H, W).astype(np.float32),
                                 y.reshape(4 * H, W).astype(np.float32), cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE))
    c0 = colours[0].astype(np.float32)
    col = c0 + (colours[1].astype(np.float32) - c0) * frac
    shade = (np.float32(_AMBIENT) + np.float32(_DIFFUSE) * np.maximum(ndl, 0)).reshape(
        4 * H, W, 1)
    col = (col * shade).reshape(4, H, W, 3).mean(axis=0)
    return col / np.float32(255.0)


def render_frame(scene: SyntheticScene, index: int, dynamic: bool = True,
                 noise: bool = True) -> RenderedFrame:
    """Render frame ``index`` of ``scene``.

    dynamic=False leaves the moving objects out (what the static world looks like);
    noise=False skips the sensor noise. Returns a :class:`RenderedFrame` (image uint8
    ``[H,W,3]`` RGB, depth float32 ``[H,W]`` metres, object_id int16 ``[H,W]``,
    dynamic bool ``[H,W]``).
    """
    H, W = scene.height, scene.width
    x, y, norm = _camera_dirs(scene)
    R = scene.poses[index, :, :3]
    o = scene.poses[index, :, 3]
    Rf = R.astype(np.float32)
    D = tuple(Rf[a, 0] * x + Rf[a, 1] * y + Rf[a, 2] for a in range(3))
    hits = _Hits(x.shape)
    _hit_room(hits, o, D, norm, scene)
    for k, prim in enumerate(scene.objects):
        if prim.dynamic and not dynamic:
            continue
        box = _screen_box(prim, index, o, R, scene.K, H, W)
        if box is None:
            continue
        block = (slice(None), slice(box[0], box[1]), slice(box[2], box[3]))
        _hit_object(hits, 6 + k, prim, index, o, D, norm, block)
    colour = _shade(scene, hits, norm)
    if noise:
        rng = np.random.default_rng([scene.seed, index, 7])
        colour = colour + rng.standard_normal(colour.shape, np.float32) * np.float32(
            _SENSOR_NOISE / 255.0)
    image = np.clip(np.round(colour * 255), 0, 255).astype(np.uint8)
    oid = hits.oid[0]
    is_dyn = np.zeros(6 + len(scene.objects), bool)
    is_dyn[[6 + k for k in scene.dynamic_objects]] = True
    return RenderedFrame(image=image, depth=hits.t[0].copy(), object_id=oid.copy(),
                         dynamic=is_dyn[oid])

