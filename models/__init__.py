"""The networks of SC-Depth: depth, pose and rectification (ARN) on a shared ResNet encoder;
import each module (``models.depth_net``, …). The systems that train them are in ``systems``."""
