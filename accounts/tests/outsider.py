"""Objects owned by someone else, for the outsider harness (tests/test_outsider.py).

Each app lists, per router basename, how to make an object that belongs to `owner`.
"""

from accounts.tests.factories import CareTeamGrantFactory

OUTSIDER_FACTORIES = {
    "care-team-grant": lambda owner: CareTeamGrantFactory(patient=owner),
    "patient": lambda owner: owner,
}
