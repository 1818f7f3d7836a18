"""Price dynamics of the synthetic market (pure): a latent mid-price with moods.

Owns the model state of one symbol's "fair" price: its volatility, its trend, and how both
react to large trades. It never emits events and never reads the clock: one call to
:meth:`MidModel.advance` is one market step, whatever the wall time between steps.

Rule 1: the mid is model state (a float of 1e-8 units), never an emitted value: quotes and
        trades are integers on the tick grid derived from it by synthetic.py.
Rule 2: volatility clusters: log-volatility is a slow AR(1) (half-life ~1,400 steps, about a
        minute at the demo's rate) that large shocks and large trades push up.
Rule 3: trends and reversals: a drift holds for a random regime (mean ~2,500 steps), then a
        new one is drawn, opposite to the last more often than not; a weak pull towards the
        start price keeps a day-long run within a plausible band.
Rule 4: every random draw comes from the generator's own ``random.Random``, in a fixed order,
        so a seed gives the same path (synthetic.py Rule 5).
"""

from __future__ import annotations

import math
import random

BASE_SIGMA = 2.0e-5  # per-step standard deviation of the log return in a calm market
VOL_PERSISTENCE = 0.9995  # AR(1) coefficient of log-volatility (Rule 2)
VOL_NOISE = 0.02  # innovation of log-volatility per step
VOL_SHOCK_FEEDBACK = 0.012  # a surprise |z| above its mean raises log-volatility (clustering)
LOG_VOL_BOUNDS = (-1.2, 2.6)  # volatility stays within ~0.3x .. ~13x the calm level
TREND_MEAN_STEPS = 2500.0  # mean length of a trend regime (Rule 3)
TREND_SCALE = 0.04  # drift of a regime, in units of the calm per-step sigma
REVERSAL_SHARE = 0.65  # share of regime changes that turn the trend around
ANCHOR_PULL = 2.0e-5  # per-step pull of the log price towards the start price
WHALE_VOL_KICK = 0.35  # log-volatility added by a trade of WHALE_KICK_NOTIONAL


class MidModel:
    """Latent mid-price with stochastic, clustered volatility and trending regimes."""

    def __init__(self, rng: random.Random, start_price: int) -> None:
        self.rng = rng
        self.start = float(start_price)
        self.mid = float(start_price)
        self.log_vol = 0.0
        self.drift = 0.0
        self.trend_left = int(rng.expovariate(1 / TREND_MEAN_STEPS)) + 1

    @property
    def vol_ratio(self) -> float:
        """Current volatility over the calm level: above ~1.5 the market is fast."""
        return math.exp(self.log_vol)

    def advance(self) -> None:
        """One market step: maybe a new trend regime, then a return and a volatility update."""
        self._regime()
        sigma = BASE_SIGMA * self.vol_ratio
        z = self.rng.gauss(0.0, 1.0)
        anchor = -ANCHOR_PULL * math.log(self.mid / self.start)
        self.mid *= math.exp(self.drift + anchor + sigma * z)
        surprise = VOL_SHOCK_FEEDBACK * (abs(z) - 0.798)  # E|z| of a standard normal
        self._set_log_vol(VOL_PERSISTENCE * self.log_vol + VOL_NOISE * self.rng.gauss(0.0, 1.0) + surprise)

    def impact(self, buy: bool, strength: float) -> None:
        """A large taker order moves the mid its way and stirs volatility (``strength`` ~ 0..3)."""
        move = BASE_SIGMA * self.vol_ratio * 3.0 * strength
        self.mid *= math.exp(move if buy else -move)
        self._set_log_vol(self.log_vol + WHALE_VOL_KICK * min(strength, 3.0))

    def buy_share(self) -> float:
        """Probability that a taker order buys: tilted by the trend."""
        tilt = self.drift / (BASE_SIGMA * TREND_SCALE) * 0.08
        return min(0.8, max(0.2, 0.5 + tilt))

    def _regime(self) -> None:
        self.trend_left -= 1
        if self.trend_left > 0:
            return
        self.trend_left = int(self.rng.expovariate(1 / TREND_MEAN_STEPS)) + 1
        size = abs(self.rng.gauss(0.0, 1.0)) * TREND_SCALE * BASE_SIGMA
        reverse = self.rng.random() < REVERSAL_SHARE
        sign = (-1.0 if self.drift > 0 else 1.0) if reverse else (1.0 if self.rng.random() < 0.5 else -1.0)
        self.drift = sign * size

    def _set_log_vol(self, value: float) -> None:
        low, high = LOG_VOL_BOUNDS
        self.log_vol = min(high, max(low, value))
