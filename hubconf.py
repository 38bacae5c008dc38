"""torch.hub entry points: SC-Depth as a Python object, without going through a command line.

    import torch
    model = torch.hub.load("path/to/this/repository", "sc_depth", source="local",
                           ckpt_path="ckpts/run/version_0/last.ckpt")
    depth = model.predict("image.jpg")          # or an RGB array [H,W,3], or a PIL image

``depth`` is a float32 array ``[H,W]`` at the image's size, in the network's depth units
(its scale is unknown: multiply by a known scale for metres). ``model.predict([a, b])``
predicts a list of images as one batch. The object is ``tools.predictor.Predictor``: the
same inference path as inference.py, test.py and eval_pose.py.
"""

dependencies = ["torch", "torchvision", "numpy", "cv2", "scipy", "pytorch_lightning"]


def sc_depth(ckpt_path: str, device: str = "auto", precision: str = "32",
             img_height: int | None = None, img_width: int | None = None):
    """An SC-Depth checkpoint (V1, V2 or V3; ours or a published one) ready to predict depth.

    ckpt_path: the .ckpt file; device: "auto" (a GPU when there is one), "cpu", "cuda", …;
    precision: "32", "bf16-mixed" or "16-mixed" (GPUs); img_height, img_width: the network
    input size (default: the size the checkpoint was trained at).
    Returns a ``tools.predictor.Predictor``: ``predict(image) -> depth``.
    """
    from tools.predictor import Predictor

    return Predictor.from_checkpoint(ckpt_path, device, precision, img_height, img_width)
