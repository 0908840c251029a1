"""Small statistics for the rules: Poisson and gamma-Poisson tails, quantiles, distances.

Standard library only (no scipy in the deployment); tails are summed in log space with
``math.lgamma`` so large counts neither overflow nor lose precision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

EARTH_RADIUS_M = 6_371_008.8


def poisson_sf(count: int, lam: float) -> float:
    """Return P(X >= count) for X ~ Poisson(lam).

    >>> round(poisson_sf(3, 1.0), 6)
    0.080301
    >>> poisson_sf(0, 2.0)
    1.0
    """
    if count <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    # the lower sum P(X < count) is short when count is small, the upper tail when it is large
    if count <= lam + 1:
        return max(0.0, 1.0 - sum(_poisson_pmf(k, lam) for k in range(count)))
    total, k = 0.0, count
    while True:
        term = _poisson_pmf(k, lam)
        total += term
        if term == 0.0 or term < total * 1e-17 or k > count + 10_000:
            return min(1.0, total)
        k += 1


def negbin_sf(count: int, shape: float, rate: float) -> float:
    """Return P(X >= count) for X ~ Poisson(λ), λ ~ Gamma(shape, rate) (the predictive law).

    This is the distribution of a new window's count when λ is only known from a few
    weeks of baseline: heavier-tailed than Poisson with the same mean ``shape / rate``.

    >>> round(negbin_sf(3, 4.0, 4.0), 6)   # mean 1, as in poisson_sf(3, 1.0) but fatter
    0.09888
    """
    if count <= 0:
        return 1.0
    if shape <= 0:
        return 0.0
    p = rate / (rate + 1.0)  # success probability of the negative binomial
    log_p, log_q = math.log(p), math.log1p(-p)

    def pmf(k: int) -> float:
        return math.exp(math.lgamma(k + shape) - math.lgamma(shape) - math.lgamma(k + 1)
                        + shape * log_p + k * log_q)

    mean = shape / rate
    # past the mean the pmf only falls: the upper tail ends where its terms vanish (an
    # underflow to 0.0 included — far in the tail, where p is below any threshold anyway)
    if count <= mean + 1:
        return max(0.0, 1.0 - sum(pmf(k) for k in range(count)))
    total, k = 0.0, count
    while True:
        term = pmf(k)
        total += term
        if term == 0.0 or term < total * 1e-17 or k > count + 100_000:
            return min(1.0, total)
        k += 1


def _poisson_pmf(k: int, lam: float) -> float:
    return math.exp(k * math.log(lam) - lam - math.lgamma(k + 1))


def quantile(values: Sequence[float], q: float) -> float:
    """Return the q-quantile of values by linear interpolation (numpy's default rule).

    >>> quantile([1, 2, 3, 4, 5], 0.5)
    3.0
    >>> quantile([0, 10], 0.99)
    9.9
    """
    if not values:
        raise ValueError("quantile of no values")
    data = sorted(float(v) for v in values)
    pos = (len(data) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Return the great-circle distance in metres between two WGS-84 points.

    >>> round(haversine_m(120.0, 30.0, 120.0, 30.001))
    111
    """
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))
