"""Training losses (photometric, geometry, smoothness, V2's rotation losses, V3's normal and
ranking losses) and the depth metrics; import each module (``losses.photometric``, …)."""
