"""Training losses (photometric, geometry, smoothness, V2/V3 terms) and depth metrics.

A plain list of re-exports (``name as name`` marks each one as public for ruff), one per line
so that each module can add its own without touching the others.
"""

from losses.photometric import SSIM as SSIM
from losses.photometric import PhotoGeometryLoss as PhotoGeometryLoss
from losses.photometric import masked_mean as masked_mean
from losses.smoothness import edge_aware_smoothness as edge_aware_smoothness
