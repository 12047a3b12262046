"""Under `make test` (pytest-xdist, `--dist loadgroup`) the tests that share an expensive
end-to-end run are sent to one worker; were the groups lost (as pytest 9 loses them), each
worker would build the run again and the suite would take minutes longer."""

from __future__ import annotations

import pytest

from .conftest import SHARED_RUNS


def test_tests_sharing_a_run_are_grouped_for_one_worker(request):
    if not getattr(request.config.option, "loadgroup", False):  # (set on xdist's workers)
        pytest.skip("not run with --dist loadgroup (make test runs it so)")
    sharing = [item for item in request.session.items
               if set(item.fixturenames) & set(SHARED_RUNS)]
    if not sharing:
        pytest.skip("no test of this run uses a shared run")
    for item in sharing:
        groups = {SHARED_RUNS[name] for name in item.fixturenames if name in SHARED_RUNS}
        assert item.nodeid.endswith("@" + sorted(groups)[0]), item.nodeid
