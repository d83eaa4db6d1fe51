from mlplatform.core.data.ranges import stretches_around

DAYS = [f"2013-01-0{n}" for n in range(1, 8)]


def test_the_stretches_between_excluded_days_keep_their_order() -> None:
    assert stretches_around(DAYS, {"2013-01-03", "2013-01-07"}) == [DAYS[:2], DAYS[3:6]]


def test_adjacent_and_edge_exclusions_leave_no_empty_stretch() -> None:
    assert stretches_around(DAYS, {"2013-01-01", "2013-01-04", "2013-01-05"}) == [DAYS[1:3], DAYS[5:]]
    assert stretches_around(DAYS, set(DAYS)) == []
    assert stretches_around(DAYS, set()) == [DAYS]
