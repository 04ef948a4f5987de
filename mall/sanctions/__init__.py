"""Sanctions against suppliers, with due process: a buyer's violation report, the procurement
center's decision with reasons, a sanction (warning, suspension of 1–24 months, emergency
suspension, permanent ban) with its appeal, and the standing every selling path checks."""
