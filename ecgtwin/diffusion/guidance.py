"""Two-scale classifier-free guidance (Ho & Salimans 2022, extended to person + condition).

With ``b`` the base vector (person) and ``c`` the target condition tokens::

    out = u(0,0) + s_p * (u(b,0) - u(0,0)) + s_c * (u(b,c) - u(b,0))
        = (1 - s_p) u(0,0) + (s_p - s_c) u(b,0) + s_c u(b,c)

``s_p = s_c = 1`` is the plain conditional model and ``s_p = s_c = 0`` the
unconditional one, exactly: terms with a zero weight are not evaluated, and a
lone term with weight 1 is returned as is. The needed evaluations run as one
batched network forward. Without a base vector (population model) ``u(b, .)``
equals ``u(0, .)`` and only ``s_c`` matters.

Guidance interval (Kynkaenniemi et al. 2024): with ``guidance_active`` given,
timesteps where it returns False use the plain conditional model ``u(b, c)``
alone (one evaluation instead of three): guidance matters at middle noise
levels, costs diversity at high ones and does little at low ones.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch


class ConditionalNet(Protocol):
    """The network signature guidance needs (:class:`ecgtwin.models.unet.UNet1D`)."""

    def __call__(self, x: torch.Tensor, t: torch.Tensor, base_vector: torch.Tensor | None = ...,
                 labels: torch.Tensor | None = ..., demographics: torch.Tensor | None = ...,
                 demographics_mask: torch.Tensor | None = ..., drop_condition: torch.Tensor | None = ...,
                 drop_base: torch.Tensor | None = ...) -> torch.Tensor: ...


def guidance_weights(guidance_person: float, guidance_condition: float, has_base: bool) -> dict[tuple[bool, bool], float]:
    """Weights of the evaluations ``(use_base, use_condition) -> weight`` with zero weights left out."""
    s_p, s_c = float(guidance_person), float(guidance_condition)
    if has_base:
        weights = {(False, False): 1.0 - s_p, (True, False): s_p - s_c, (True, True): s_c}
    else:
        weights = {(False, False): 1.0 - s_c, (False, True): s_c}
    return {key: w for key, w in weights.items() if w != 0.0}


class GuidedDenoiser:
    """``(x_t, t) -> v`` with two-scale classifier-free guidance, for the samplers.

    ``nfe`` counts network forward calls, ``evaluations`` the conditional
    evaluations they contained (``nfe * len(weights)``).
    """

    def __init__(
        self,
        net: ConditionalNet,
        labels: torch.Tensor,
        demographics: torch.Tensor,
        demographics_mask: torch.Tensor | None = None,
        base_vector: torch.Tensor | None = None,
        guidance_person: float = 1.0,
        guidance_condition: float = 1.0,
        guidance_active: Callable[[int], bool] | None = None,
    ) -> None:
        self.net = net
        self.labels = labels
        self.demographics = demographics
        self.demographics_mask = (
            torch.ones_like(demographics, dtype=torch.bool) if demographics_mask is None else demographics_mask
        )
        self.base_vector = base_vector
        self.weights = guidance_weights(guidance_person, guidance_condition, base_vector is not None)
        if not self.weights:
            raise ValueError("guidance weights are all zero")  # impossible: they sum to 1
        self.plain = {(base_vector is not None, True): 1.0}  # u(b, c), outside the guidance interval
        self.guidance_active = guidance_active
        self.nfe = 0
        self.evaluations = 0

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x: (B, leads, L), t: (B,) -> guided v (B, leads, L)."""
        batch = x.shape[0]
        if self.labels.shape[0] != batch:
            raise ValueError(f"the condition has batch size {self.labels.shape[0]}, x has {batch}")
        weights = self.weights
        if self.guidance_active is not None and not self.guidance_active(int(t.reshape(-1)[0])):
            weights = self.plain
        keys = list(weights)
        k = len(keys)
        drop_base = torch.cat([torch.full((batch,), not use_b, dtype=torch.bool) for use_b, _ in keys]).to(x.device)
        drop_cond = torch.cat([torch.full((batch,), not use_c, dtype=torch.bool) for _, use_c in keys]).to(x.device)
        base = None if self.base_vector is None else self.base_vector.repeat(k, 1)  # (k*B, base_dim)
        out = self.net(
            x.repeat(k, 1, 1),  # (k*B, leads, L)
            t.repeat(k),  # (k*B,)
            base_vector=base,
            labels=self.labels.repeat(k, 1),  # (k*B, V)
            demographics=self.demographics.repeat(k, 1),  # (k*B, 3)
            demographics_mask=self.demographics_mask.repeat(k, 1),  # (k*B, 3)
            drop_condition=drop_cond,
            drop_base=None if base is None else drop_base,
        )
        self.nfe += 1
        self.evaluations += k
        parts = out.chunk(k, dim=0)  # k x (B, leads, L)
        if k == 1 and weights[keys[0]] == 1.0:
            return parts[0]
        return sum(w * part for w, part in zip(weights.values(), parts))  # type: ignore[return-value]
