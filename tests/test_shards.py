"""The pure parts of several managers behind one front (awq/shards.py)."""

from __future__ import annotations

from awq.shards import TASKS_PER_MANAGER, choose_manager, divmod_id, managers_for


def test_auto_adds_a_manager_per_share_of_max_tasks():
    assert managers_for(1) == 1
    assert managers_for(10000) == 1            # upstream's default stays one manager
    assert managers_for(TASKS_PER_MANAGER) == 1
    assert managers_for(TASKS_PER_MANAGER + 1) == 2
    assert managers_for(50000) == 4


def test_a_task_goes_where_the_most_cores_are_free():
    assert choose_manager([3, 9, 1], [True, True, True], 0) == 1
    assert choose_manager([0, 0, 5], [True, True, True], 1) == 2


def test_a_tie_goes_to_the_first_from_the_turn_on():
    assert choose_manager([2, 2, 2], [True] * 3, 0) == 0
    assert choose_manager([2, 2, 2], [True] * 3, 2) == 2
    assert choose_manager([0, 0, 0], [True] * 3, 1) == 1


def test_a_manager_whose_workers_are_too_small_is_passed_over():
    assert choose_manager([8, 1], [False, True], 0) == 1
    # When no manager has a worker that fits, the free cores decide as before.
    assert choose_manager([8, 1], [False, False], 0) == 0


def test_a_task_id_names_its_manager_and_the_managers_own_id():
    for count in (1, 2, 3, 7):
        for index in range(count):
            for local in (1, 2, 99, 10 ** 6):
                assert divmod_id(local * count + index, count) == (index, local)
