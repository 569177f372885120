from __future__ import annotations

from collectors.progress import Progress, newer


def test_the_checkpoint_moves_only_over_acknowledged_records() -> None:
    progress = Progress("10")
    first, second = progress.sent("11"), progress.sent("12")
    progress.acknowledged(second)
    assert progress.checkpoint == "10"  # 11 is still in flight
    progress.acknowledged(first)
    assert progress.checkpoint == "12"


def test_list_items_move_the_checkpoint_only_when_the_whole_list_is_acknowledged() -> None:
    progress = Progress()
    tickets = [progress.sent(None) for _ in range(3)]
    progress.reached("50")  # end of the list
    for ticket in tickets[:2]:
        progress.acknowledged(ticket)
    assert progress.checkpoint is None
    progress.acknowledged(tickets[2])
    assert progress.checkpoint == "50"


def test_bookmarks_move_the_checkpoint_once_earlier_records_are_acknowledged() -> None:
    progress = Progress("1")
    ticket = progress.sent("2")
    progress.reached("9")
    assert progress.checkpoint == "1"
    progress.acknowledged(ticket)
    assert progress.checkpoint == "9"


def test_a_failure_freezes_the_checkpoint_until_restart() -> None:
    progress = Progress("1")
    failed, later = progress.sent("2"), progress.sent("3")
    progress.failed(failed, "_MSG_TIMED_OUT")
    progress.acknowledged(later)
    assert progress.failure == "_MSG_TIMED_OUT"
    assert progress.checkpoint == "1"
    assert progress.restart() == "1"
    assert progress.failure is None
    assert progress.unacknowledged == 0


def test_reports_from_before_a_restart_are_ignored() -> None:
    progress = Progress("1")
    old = progress.sent("2")
    progress.restart()
    progress.failed(old, "late")
    assert progress.failure is None


def test_resource_versions_compare_as_integers_when_they_are() -> None:
    assert newer("10", "9")
    assert not newer("9", "9")
    assert not newer("8", "9")
    assert newer("8", None)
    assert newer("abc", "9")  # opaque: cannot tell, so treat as new
