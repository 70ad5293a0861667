"""How a fit by optimisation ended: one record for every method fitted that way.

Each method fitted by minimising a convex objective (``vector``, ``matrix``, ``matrix-odir``,
``dirichlet-odir``, ``platt``, ``beta``, the weights of ``ets``) reports a :class:`FitOutcome`
under ``"fit"`` in its :meth:`~calibkit.calibrators.base.Calibrator.fit_details` and its JSON
document, so a user sees whether the optimum was reached and what it cost.

**Convergence** is one rule for all of them (:func:`gradient_converged`): the infinity norm of
the gradient of the *mean* objective (mean NLL per example plus the penalty, divided by the
number of examples when the penalty is on the sum) is at most :data:`GRADIENT_TOLERANCE`
times ``max(1, |objective|)``. An objective with no minimum (unregularised scaling on data that
one map separates: the NLL goes to 0 as the weights grow) never meets it: the fit stops at its
iteration limit and says so (``converged`` false, ``message`` the reason).

>>> out = FitOutcome(objective=0.5, gradient_norm=1e-10, iterations=7, passes=9)
>>> out.converged, out.relative_gradient
(True, 1e-10)
>>> out.to_dict()["converged"]
True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from calibkit.errors import InputError

__all__ = ["GRADIENT_TOLERANCE", "FitOutcome", "gradient_converged"]

#: The relative gradient at which a convex fit counts as converged (see the module docstring).
GRADIENT_TOLERANCE = 1e-8


def gradient_converged(gradient_norm: float, objective: float) -> bool:
    """``gradient_norm <= GRADIENT_TOLERANCE * max(1, |objective|)`` (finite values only)."""
    if not (math.isfinite(gradient_norm) and math.isfinite(objective)):
        return False
    return gradient_norm <= GRADIENT_TOLERANCE * max(1.0, abs(objective))


@dataclass(kw_only=True, frozen=True)
class FitOutcome:
    """How one fit ended.

    ``objective``: the final mean objective (mean NLL plus penalty); ``gradient_norm``: the
    infinity norm of its gradient there; ``iterations``: the optimiser's iterations;
    ``passes``: full reads of the data (each value/gradient or Hessian-vector evaluation that
    streams the data is one); ``solver``: what minimised it (``"newton"``, ``"l-bfgs-b"``,
    ``"trust-ncg"``, ...); ``message``: why it stopped, in words. ``converged`` is
    :func:`gradient_converged` unless given (a closed-form or exhaustive fit sets it).
    """

    objective: float
    gradient_norm: float
    iterations: int
    passes: int
    solver: str = ""
    message: str = ""
    converged: bool | None = None
    n: int | None = None

    def __post_init__(self) -> None:
        if self.converged is None:
            ok = gradient_converged(self.gradient_norm, self.objective)
            object.__setattr__(self, "converged", ok)

    @property
    def relative_gradient(self) -> float:
        """``gradient_norm / max(1, |objective|)``."""
        return self.gradient_norm / max(1.0, abs(self.objective))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (non-finite numbers as ``None``), with ``relative_gradient``."""
        d: dict[str, Any] = asdict(self)
        d["relative_gradient"] = self.relative_gradient
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()
        }

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "<calibrator>") -> FitOutcome | None:
        """The record of a calibrator document's ``"fit"`` (``None`` when absent)."""
        if doc is None:
            return None
        if not isinstance(doc, dict):
            raise InputError(source, "its 'fit' must be a JSON object")
        known = set(cls.__dataclass_fields__)
        kw = {k: v for k, v in doc.items() if k in known}
        for k in ("objective", "gradient_norm"):
            v = kw.get(k)
            kw[k] = float("nan") if v is None else v
            if isinstance(kw[k], bool) or not isinstance(kw[k], (int, float)):
                raise InputError(source, f"fit.{k} must be a number; got {v!r}")
            kw[k] = float(kw[k])
        for k in ("iterations", "passes"):
            if type(kw.get(k)) is not int:
                raise InputError(source, f"fit.{k} must be an integer; got {kw.get(k)!r}")
        return cls(**kw)
