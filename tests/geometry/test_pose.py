"""Tests of geometry.pose: Euler angles and pose vectors."""

import math

import numpy as np
import torch

from geometry import euler2mat, pose_vec2mat


def test_euler2mat_orthonormal_with_unit_determinant():
    torch.manual_seed(0)
    R = euler2mat((torch.rand(5, 3) - 0.5) * 6)
    assert R.shape == (5, 3, 3)
    eye = torch.eye(3).expand(5, 3, 3)
    assert torch.allclose(R @ R.transpose(1, 2), eye, atol=1e-6)
    assert torch.allclose(torch.linalg.det(R), torch.ones(5), atol=1e-6)


def test_euler2mat_single_axes_hand_values():
    a = math.pi / 2
    R = euler2mat(torch.tensor([[a, 0.0, 0.0], [0.0, a, 0.0], [0.0, 0.0, a]]))
    Rx = torch.tensor([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    Ry = torch.tensor([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])
    Rz = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    assert torch.allclose(R[0], Rx, atol=1e-6)
    assert torch.allclose(R[1], Ry, atol=1e-6)
    assert torch.allclose(R[2], Rz, atol=1e-6)


def test_euler2mat_composes_x_then_y_then_z():
    # Rx(90°)·Ry(90°) by hand; Ry(90°)·Rx(90°) would be [[0,1,0],[0,0,-1],[-1,0,0]].
    a = math.pi / 2
    R = euler2mat(torch.tensor([[a, a, 0.0]]))[0]
    assert torch.allclose(R, torch.tensor([[0.0, 0, 1], [1, 0, 0], [0, 1, 0]]), atol=1e-6)

    rx, ry, rz = 0.3, -0.7, 1.1
    cx, sx, cy, sy, cz, sz = (math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry),
                              math.cos(rz), math.sin(rz))
    Rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    got = euler2mat(torch.tensor([[rx, ry, rz]], dtype=torch.float64))[0].numpy()
    np.testing.assert_allclose(got, Rx @ Ry @ Rz, atol=1e-12)


def test_euler2mat_gradcheck_float64():
    angles = torch.tensor([[0.3, -0.2, 0.5], [1.0, 0.1, -0.4]], dtype=torch.float64,
                          requires_grad=True)
    assert torch.autograd.gradcheck(euler2mat, (angles,))


def test_pose_vec2mat_layout():
    vec = torch.tensor([[1.0, -2.0, 3.0, 0.1, 0.2, -0.3], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    T = pose_vec2mat(vec)
    assert T.shape == (2, 3, 4)
    assert torch.allclose(T[:, :, 3], vec[:, :3])
    assert torch.allclose(T[:, :, :3], euler2mat(vec[:, 3:]))
    assert torch.allclose(T[1, :, :3], torch.eye(3))
