"""Float tolerances derived from the arithmetic they check, for tests that compare floats.

A tolerance here comes from a dtype's unit roundoff, the number of terms a result accumulates and,
for training, the learning rate and the number of steps: never from one CPU's result. The suite
must pass with any kernels (AVX2, AVX-512, AMX bf16, ARM, or none: `make test` runs the
`numeric` tests a second time under scripts/reduced_isa.py), and those kernels sum in different
orders and round bf16 in different places.
"""

from __future__ import annotations

import math

# Unit roundoff u of a dtype with p significant bits: 2^-p, so |fl(x) - x| <= u·|x|.
U32 = 2.0**-24  # float32 (24 bits)
U64 = 2.0**-53  # float64
U_BF16 = 2.0**-8  # bfloat16 (8 bits: 7 stored + the implicit one)


def adam_step_ratio(betas: tuple[float, float], step: int) -> float:
    """The largest |Adam update| / lr at ``step`` (1-based), whatever the gradients.

    Adam moves a weight by lr·m̂/(√v̂ + eps), with m = Σ a_i g_i, a_i = (1-β1)β1^(t-i), and
    v = Σ b_i g_i², b_i = (1-β2)β2^(t-i), each divided by its bias correction. By Cauchy–Schwarz
    |Σ a_i g_i| <= √(Σ a_i²/b_i)·√(Σ b_i g_i²), so m̂/√v̂ is at most
    √(1-β2^t)/(1-β1^t)·√(Σ_k (1-β1)²β1^(2k)/((1-β2)β2^k)) for any gradients (eps > 0 only
    shrinks the step). Step 1 gives exactly 1 (Adam's first step is lr·sign(g)); with THA1's
    β = (0.5, 0.999), steps 2 and 3 give 1.054 and 1.134.
    """
    b1, b2 = betas
    series = sum((1 - b1) ** 2 * b1 ** (2 * k) / ((1 - b2) * b2**k) for k in range(step))
    return math.sqrt(1 - b2**step) / (1 - b1**step) * math.sqrt(series)


def adam_reach(lr: float, betas: tuple[float, float], steps: int) -> float:
    """The farthest ``steps`` Adam steps can move one weight, for any gradients: lr·Σ ratios.

    Rounding noise in a gradient that is zero in exact arithmetic (a bias before instance norm,
    the weights of a constant input channel) is normalised by Adam into a step of up to this
    size, so two runs that differ only in rounding can end up 2·adam_reach apart on such weights:
    no tighter bound on single weights holds on every CPU.
    """
    return lr * sum(adam_step_ratio(betas, t) for t in range(1, steps + 1))


def weight_rounding(magnitude: float, steps: int) -> float:
    """The float32 rounding of ``steps`` updates of a weight of size up to ``magnitude``:
    each `w += Δ` rounds once, by at most u·|w|; the update's own few operations add a few u of
    Δ, covered by the factor 2."""
    return 2 * steps * U32 * magnitude


def conv_accumulation_lengths(model) -> list[int]:
    """Terms each convolution or linear layer of ``model`` sums per output: its fan-in
    (C_in/groups · kernel area; a transposed convolution's output sums at most C_out-side
    C_in · kernel area of them)."""
    import torch

    lengths = []
    for module in model.modules():
        if isinstance(module, torch.nn.modules.conv._ConvNd):
            lengths.append(module.in_channels // module.groups * math.prod(module.kernel_size))
        elif isinstance(module, torch.nn.Linear):
            lengths.append(module.in_features)
    return lengths


def bf16_roundings(model) -> int:
    """An upper bound on the bf16 roundings one training step of ``model`` makes along any path,
    under autocast: each convolution or linear layer rounds its input, its weight and its result
    forward (3) and its input gradient and weight gradient backward (2); every other leaf module
    (norm, activation) rounds its result forward and its gradient backward (2)."""
    import torch

    count = 0
    for module in model.modules():
        if any(True for _ in module.children()):
            continue
        conv = isinstance(module, torch.nn.modules.conv._ConvNd | torch.nn.Linear)
        count += 5 if conv else 2
    return count
