"""Argo Rollouts' Events on Rollout objects, as catalogue rows: one per message format. Pure.

Emitter: `rollouts-controller` (`utils/record/record.go`), core/v1 Events through client-go's
recorder. Format strings: `utils/conditions/conditions.go` and `rollout/sync.go`, `rollout/canary.go`,
unchanged from v1.0.0 to v1.10 except where a row says; <= v0.10 had other reasons
(`SetStepIndex`, `SettingStableRS`). See shared/reference/argo-events.md and docs/processors.md.
"""

from __future__ import annotations

from processors.rules import Effect, Family, Rule, integer, known, row, text

R = Family.ROLLOUT

ROLLOUT_RULES: tuple[Rule, ...] = (
    # --- Argo Rollouts v1.0+ (formats unchanged from v1.0.0 to v1.10) ------------------------------
    row(
        R,
        "RolloutUpdated",
        r"Rollout updated to revision (?P<revision>\d+)",
        "rollout.update_started",
        lambda m: {"revision": integer(m, "revision")},
        Effect.PROGRESSES,
    ),
    row(
        R,
        "RolloutStepCompleted",
        r"Rollout step (?P<i>\d+)/(?P<total>\d+) completed \((?P<step>.*)\)",
        "rollout.step_advanced",
        lambda m: {
            "step_index": integer(m, "i"),
            "step_total": integer(m, "total"),
            "step": m["step"],
            "legacy": False,
        },
        Effect.PROGRESSES,
    ),
    row(
        R,
        "RolloutPaused",
        r"Rollout is paused \((?P<reason>.*)\)",
        "rollout.paused",
        lambda m: {"pause_reason": m["reason"]},
    ),
    row(
        R,
        "RolloutResumed",
        r"Rollout is resumed",
        "rollout.resumed",
        lambda m: {},
        Effect.PROGRESSES,
    ),
    row(
        R,
        "RolloutAborted",
        r"Rollout aborted update to revision (?P<revision>\d+)(?:: (?P<detail>.*))?",
        "rollout.aborted",
        lambda m: {"revision": integer(m, "revision"), "detail": text(m["detail"])},
        Effect.ABORTS,
    ),
    row(
        R,
        "RolloutAborted",
        # rollout/sync.go, the progress-deadline path (utils/conditions: ReplicaSetTimeOutMessage,
        # RolloutTimeOutMessage); the revision is the rollout's as last seen (the interpreter's).
        r'(?:ReplicaSet|Rollout) "[^"]*" has timed out progressing\.',
        "rollout.aborted",
        lambda m: {"revision": None, "detail": m[0]},
        Effect.TIMES_OUT,
    ),
    row(
        R,
        "RolloutCompleted",
        r"Rollout completed update to revision (?P<revision>\d+) \((?P<hash>[^)]*)\): (?P<detail>.*)",
        "rollout.completed",
        lambda m: {
            "revision": integer(m, "revision"),
            "pod_hash": m["hash"],
            "detail": m["detail"],
            "legacy": False,
        },
        Effect.PROGRESSES,
    ),
    # --- Argo Rollouts <= v0.10 -----------------------------------------------------------------
    row(
        R,
        "SetStepIndex",
        r"Set Step Index to (?P<i>\d+)",
        "rollout.step_advanced",
        lambda m: {"step_index": integer(m, "i"), "step_total": None, "step": None, "legacy": True},
        Effect.PROGRESSES,
    ),
    row(
        R,
        "SettingStableRS",
        r"Completed all steps",
        "rollout.completed",
        lambda m: {"revision": None, "pod_hash": None, "detail": m[0], "legacy": True},
        Effect.PROGRESSES,
    ),
    known(R, "SettingStableRS", r"Setting StableRS to CurrentPodHash: StableRS hash: .*"),
)
