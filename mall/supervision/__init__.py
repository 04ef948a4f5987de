"""Risk indicators that open cases (在线监管): a catalogue of pure rules (docs/risk-indicators.md),
run incrementally after the events they read and in full nightly; every hit is a case the party
explains and the regulator closes or escalates."""

from mall.supervision import triggers as triggers
