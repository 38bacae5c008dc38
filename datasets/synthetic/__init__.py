"""The built-in synthetic video dataset: ray-cast scenes with exact ground truth.

No real dataset can be downloaded where this project runs, so the demo, the tests and the
benchmarks use video rendered here. Every frame comes with its exact z-depth, camera pose,
intrinsics and a mask of the independently moving objects, plus a deliberately imperfect
relative-depth prior standing in for LeReS (SC-Depth V3).

Two kinds of scene:

- ``driving`` (KITTI-like): a closed street — ground, building facades on both sides, a far
  wall and a high "sky" ceiling so that every ray hits geometry — with parked cars, poles,
  trees, kiosks and balconies. The camera, 1.4-1.7 m above the ground, moves forward
  0.3-1.0 m a frame with gentle yaw turns and small pitch/roll jitter; depth is 2-60 m.
- ``handheld``: a furnished room. The camera moves a few cm a frame and rotates several
  degrees a frame about all three axes (smooth random walks); depth is 0.5-8 m.
- ``nyu``: the same rooms with the degenerate hand-held motion the SC-Depth V2 paper
  describes for NYUv2 video: about 2 cm a frame while the camera pans and tilts by a few
  degrees and barely rolls, so rotation dominates the image motion. Each scene's measured
  motion (``camera_motion`` in summary.json) says how much.

Both have 1-3 objects that move on their own (cars and bouncing balls on the street, balls
and boxes in the room).

The package: ``scene`` (geometry, camera motion), ``textures``, ``raycast`` (rendering),
``writer`` (the dataset on disk). Rendering is vectorised numpy ray casting of analytic
primitives (an inner box for the room/street, boxes with a yaw, spheres, vertical
cylinders); textures are tileable images (fractal FFT noise, bricks, checkers, stripes,
tiles, windows and the three photos of demo/input), attached to the surfaces by their
(u, v) in metres, and sampled from a mip-mapped atlas with trilinear filtering
(cv2.remap), so that a static point keeps its colour from frame to frame. Shading is
Lambertian from a fixed light plus ambient (no shadows, so moving objects never change the
brightness of static points).

Layout written by :func:`generate_dataset` (docs/method.md, Data, plus ``poses.txt`` and
``dynamic/``)::

    DIR/training/<scene>/000000.jpg …  cam.txt  poses.txt  depth/*.png  leres_depth/*.png
                                       dynamic/*.png
    DIR/training/train.txt  val.txt
    DIR/testing/color/*.jpg  depth/*.png  seg_mask/*.png  seg_mask/dynamic_colors.txt
    DIR/README.txt  DIR/summary.json

Depth PNGs are 16-bit millimetres (the ``bonn``/``tum`` convention, ``--dataset_name
synthetic``); poses are camera-to-world 3×4 matrices relative to the first frame, one a line,
row-major (KITTI odometry format).
"""

from __future__ import annotations

from datasets.synthetic.raycast import render_frame
from datasets.synthetic.scene import (
    KINDS,
    MOTIONS,
    Primitive,
    RenderedFrame,
    SyntheticScene,
    build_scene,
    camera_motion,
)
from datasets.synthetic.writer import (
    DYNAMIC_COLORS,
    default_test_stride,
    generate_dataset,
    load_scene,
    make_prior,
)

__all__ = [
    "DYNAMIC_COLORS",
    "KINDS",
    "MOTIONS",
    "Primitive",
    "RenderedFrame",
    "SyntheticScene",
    "build_scene",
    "camera_motion",
    "default_test_stride",
    "generate_dataset",
    "load_scene",
    "make_prior",
    "render_frame",
]
