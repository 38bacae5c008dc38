"""Training losses (photometric, geometry, smoothness, V2/V3 terms) and depth metrics.

A plain list of re-exports (``name as name`` marks each one as public for ruff), one per line
so that each module can add its own without touching the others.
"""

from losses.normals import NormalMatchingLoss as NormalMatchingLoss
from losses.normals import normal_matching_loss as normal_matching_loss
from losses.photometric import SSIM as SSIM
from losses.photometric import PhotoGeometryLoss as PhotoGeometryLoss
from losses.photometric import masked_mean as masked_mean
from losses.ranking import MaskRankingLoss as MaskRankingLoss
from losses.ranking import NormalRankingLoss as NormalRankingLoss
from losses.ranking import dynamic_confidence as dynamic_confidence
from losses.ranking import ranking_targets as ranking_targets
from losses.smoothness import edge_aware_smoothness as edge_aware_smoothness
