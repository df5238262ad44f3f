"""The families the contract suite checks: every registered one, and the example family of this
folder, registered at test time (the registry is patched, not the entry points)."""

import pytest

import peforge.sim.families as registry
from tests.contract import example_family

#: Families defined by the test suite, registered only while a contract test runs.
TEST_FAMILIES = {example_family.FAMILY.name: example_family.FAMILY}


def pytest_generate_tests(metafunc):
    if "family_name" in metafunc.fixturenames:
        metafunc.parametrize("family_name", [*registry.families(), *TEST_FAMILIES])


@pytest.fixture
def fam(family_name, monkeypatch):
    """The family under test, found through the registry as every caller finds it."""
    if family_name in TEST_FAMILIES:
        shipped = registry.families()
        monkeypatch.setattr(registry, "families",
                            lambda: {**shipped, family_name: TEST_FAMILIES[family_name]})
    return registry.family(family_name)
