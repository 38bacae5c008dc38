"""Networks of SC-Depth: depth, pose and rectification (ARN) on a shared ResNet encoder."""

from models.depth_net import DepthNet
from models.pose_net import PoseNet
from models.rectify_net import RectifyNet
from models.resnet_encoder import (
    PretrainedWeightsError,
    ResnetEncoder,
    imagenet_weights_file,
    load_imagenet_state_dict,
)

__all__ = [
    "DepthNet",
    "PoseNet",
    "PretrainedWeightsError",
    "RectifyNet",
    "ResnetEncoder",
    "imagenet_weights_file",
    "load_imagenet_state_dict",
]
