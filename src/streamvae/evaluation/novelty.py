"""Does an expansion test find the task switches? Detection and false alarms from a run's events.

The learner never sees task boundaries; the evaluator does (``task_ends`` in metrics.jsonl rows).
This scores a novelty test (DEMC's, or any learner logging ``{"arrival", "expanded"}`` per check)
against them: a switch is *detected* when the check of the batch that straddles it (if any) or one
of the first ``window`` checks after it expands; every other expansion, apart from the first
cluster of an empty memory (logged with ``novelty: None``), is a *false alarm* of the task it
falls in.

    score = novelty_detection(run.events, run.task_ends, window=2)
    score["detection_rate"], score["false_alarms"], score["per_task"][j]["detected"]
"""
from __future__ import annotations


def _decided(event: dict) -> bool:
    """An expansion the test decided (the first cluster of an empty memory is logged with novelty None)."""
    return bool(event.get("expanded")) and event.get("novelty", 0.0) is not None


def novelty_detection(events: list[dict], task_ends: list[int], window: int = 2) -> dict:
    """Detection rate and false alarms per task.

    Args:
        events: one dict per novelty check, in stream order, with ``arrival`` (1-based count of
            arrivals observed, the check included) and ``expanded``; ``novelty: None`` marks the
            first cluster of an empty memory, which is neither a detection nor a false alarm.
        task_ends: arrival counts at which each task ends (the last one ends the stream). Task j
            covers arrivals ``(task_ends[j-1], task_ends[j]]``. The batch of arrival
            ``task_ends[j-1]`` may already end with the first images of task j (the evaluator
            counts a straddling batch in the task it starts in), so its check counts too.
        window: how many checks after a switch (after arrival ``task_ends[j-1]``) may expand and
            still count as detecting it.

    Returns:
        ``{"switches", "detected", "detection_rate", "false_alarms", "window", "per_task"}`` where
        ``per_task[j]`` holds ``task``, ``detected`` (None for the first task: no switch into it),
        ``delay`` (arrivals from ``task_ends[j-1]`` to the detecting expansion; None if missed),
        ``expansions`` and ``false_alarms`` of the arrivals of task j.
    """
    if window < 1:
        raise ValueError(f"window must be at least 1 check, got {window}")
    if not task_ends:
        raise ValueError("task_ends is empty: the run has no evaluation row yet")
    checks = sorted((e for e in events if "arrival" in e), key=lambda e: e["arrival"])
    counted: set[int] = set()  # indices into checks of the expansions that detect a switch
    per_task = []
    for j, end in enumerate(task_ends):
        start = task_ends[j - 1] if j else 0
        entry: dict = {"task": j, "detected": None, "delay": None}
        if j > 0:
            at = [i for i, e in enumerate(checks) if e["arrival"] == start]  # the straddling batch's check
            after = [i for i, e in enumerate(checks) if e["arrival"] > start][:window]
            hit = next((i for i in at + after if _decided(checks[i])), None)
            entry["detected"] = hit is not None
            if hit is not None:
                entry["delay"] = checks[hit]["arrival"] - start
                counted.add(hit)
        per_task.append(entry)
    for entry in per_task:
        entry["expansions"] = entry["false_alarms"] = 0
    for i, e in enumerate(checks):
        if not e.get("expanded"):
            continue
        j = next((k for k, end in enumerate(task_ends) if e["arrival"] <= end), len(task_ends) - 1)
        per_task[j]["expansions"] += 1
        if i not in counted and _decided(e):
            per_task[j]["false_alarms"] += 1
    switches = max(len(task_ends) - 1, 0)
    detected = sum(bool(t["detected"]) for t in per_task)
    return {"switches": switches, "detected": detected,
            "detection_rate": detected / switches if switches else None,
            "false_alarms": sum(t["false_alarms"] for t in per_task), "window": window, "per_task": per_task}
