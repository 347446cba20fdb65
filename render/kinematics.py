"""Forward kinematics over an MMD bone tree: skinning transforms of the bones a pose moves.

MMD bones have no rest orientation, only a rest position, so a bone's local transform is a
rotation about its own position. Parents may come after children in file order, and
append (付与) bones depend on their append parent too: both are ordered topologically. Only
the bones that a pose can move are evaluated; every other bone's skinning transform is the
identity. IK and physics are not evaluated (their bones stay at rest).

Append bones follow their append parent's local rotation (its own pose and its own append)
scaled by the ratio (a slerp from the identity, negative ratios included); `LOCAL_APPEND` is
treated like a normal append. Append translation scales the parent's translation likewise.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mmd_loader.model import Model

Transform = tuple[np.ndarray, np.ndarray]  # (3×3 rotation, 3 translation)


class Skeleton:
    """The bone tree of one model, ordered for evaluation."""

    def __init__(self, model: Model) -> None:
        bones = model.bones
        n = len(bones)
        self.count = n
        self.positions = np.array([b.position for b in bones], np.float64).reshape(n, 3)
        self.parents = np.array([b.parent if 0 <= b.parent < n else -1 for b in bones], np.int64)
        self.append_parent = np.array(
            [
                b.append_parent if (b.appends_rotation or b.appends_translation) else -1
                for b in bones
            ],
            np.int64,
        )
        self.append_parent[(self.append_parent >= n) | (self.append_parent == np.arange(n))] = -1
        self.append_ratio = np.array([b.append_ratio for b in bones], np.float64)
        self.append_rotates = np.array([b.appends_rotation for b in bones], bool)
        self.append_translates = np.array([b.appends_translation for b in bones], bool)
        self.dependents: list[list[int]] = [[] for _ in range(n)]
        for i in range(n):
            for p in (self.parents[i], self.append_parent[i]):
                if p >= 0:
                    self.dependents[p].append(i)
        self.order = self._topological_order()
        self.rank = np.empty(n, np.int64)
        self.rank[self.order] = np.arange(n)

    def _topological_order(self) -> np.ndarray:
        """Bones after their parent and append parent; a cycle is cut where it is met."""
        state = np.zeros(self.count, np.int8)  # 0 new, 1 expanded (on the stack), 2 placed
        order: list[int] = []
        for start in range(self.count):
            stack = [start]
            while stack:
                bone = stack[-1]
                if state[bone] == 0:
                    state[bone] = 1
                    for dep in (self.parents[bone], self.append_parent[bone]):
                        if dep >= 0 and state[dep] == 0:
                            stack.append(int(dep))
                    continue
                stack.pop()
                if state[bone] == 1:
                    state[bone] = 2
                    order.append(bone)
        return np.array(order, np.int64)

    def affected(self, roots: Iterable[int]) -> list[int]:
        """`roots` and every bone that depends on them (via parent or append), in eval order."""
        seen: set[int] = set()
        todo = [r for r in roots if 0 <= r < self.count]
        while todo:
            bone = todo.pop()
            if bone in seen:
                continue
            seen.add(bone)
            todo.extend(self.dependents[bone])
        return sorted(seen, key=lambda b: self.rank[b])

    def skinning(
        self, rotations: dict[int, np.ndarray], affected: list[int] | None = None
    ) -> dict[int, Transform]:
        """Skinning transforms (rest model space → posed model space) of the affected bones.

        `rotations` maps bone index → local 3×3 rotation. Bones not in the result have the
        identity transform.
        """
        if affected is None:
            affected = self.affected(rotations)
        local_rot: dict[int, np.ndarray] = {}
        local_move: dict[int, np.ndarray] = {}
        world: dict[int, Transform] = {}
        out: dict[int, Transform] = {}
        eye = np.eye(3)
        for b in affected:
            rot = rotations.get(b, eye)
            move = np.zeros(3)
            ap = self.append_parent[b]
            if ap >= 0:
                ratio = self.append_ratio[b]
                if self.append_rotates[b] and ap in local_rot:
                    rot = rot @ rotation_power(local_rot[ap], ratio)
                if self.append_translates[b] and ap in local_move:
                    move = move + ratio * local_move[ap]
            local_rot[b], local_move[b] = rot, move
            p = self.parents[b]
            offset = self.positions[b] - (self.positions[p] if p >= 0 else 0.0) + move
            if p in world:
                pr, pt = world[p]
                wr, wt = pr @ rot, pr @ offset + pt
            else:
                wr, wt = rot, offset + (self.positions[p] if p >= 0 else 0.0)
            world[b] = (wr, wt)
            out[b] = (wr, wt - wr @ self.positions[b])
        return out


def rotation_power(rotation: np.ndarray, ratio: float) -> np.ndarray:
    """`rotation` raised to `ratio` (the same axis, the angle scaled), i.e. slerp from I."""
    if ratio == 1.0:
        return rotation
    cos = np.clip((np.trace(rotation) - 1.0) / 2.0, -1.0, 1.0)
    angle = float(np.arccos(cos))
    if angle < 1e-12:
        return np.eye(3)
    axis = np.array(
        [
            rotation[2, 1] - rotation[1, 2],
            rotation[0, 2] - rotation[2, 0],
            rotation[1, 0] - rotation[0, 1],
        ]
    )
    norm = np.linalg.norm(axis)
    if norm < 1e-12:  # a half turn: the axis is the eigenvector for eigenvalue 1
        values, vectors = np.linalg.eigh((rotation + rotation.T) / 2.0)
        axis = vectors[:, int(np.argmax(values))]
    else:
        axis = axis / norm
    return axis_angle(axis, angle * ratio)


def axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues' rotation matrix about a unit `axis` by `angle` radians."""
    x, y, z = axis
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)
