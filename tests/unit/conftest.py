"""Hypothesis profiles for the unit tests, chosen by HYPOTHESIS_PROFILE.

`ci` (the default) is derandomized: every run draws the same examples, so a failure in CI
happens again on a laptop, and its falsifying example (with a `@reproduce_failure` blob) is
printed. `deep` is for bench/ and for a developer hunting bugs: random seeds, many more
examples (BATON_DEEP_EXAMPLES, 2,000 by default), no time limit per example; bench/properties.py
runs the engine's properties with it. `mutation` is `ci` with 10 examples per property and no
shrinking, for bench/mutation.py, which runs the tests once per mutant.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    print_blob=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# No shrinking: a mutant that fails a property is killed by the first failing example.
settings.register_profile(
    "mutation",
    settings.get_profile("ci"),
    max_examples=10,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
settings.register_profile(
    "deep",
    max_examples=int(os.environ.get("BATON_DEEP_EXAMPLES", "2000")),
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
