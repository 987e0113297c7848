"""How ``deploy --update`` replaces a fleet: blue/green traffic shifting (all at once, canary or
linear) with a bake time and CloudWatch alarms that roll it back, checked before anything is made."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from .session import Aws, check_api_value


@dataclass(frozen=True)
class Rollout:
    """How ``deploy --update`` shifts traffic to the new fleet (UpdateEndpoint's blue/green
    DeploymentConfig) and which CloudWatch alarms roll it back."""

    traffic: str = "ALL_AT_ONCE"  # or CANARY, LINEAR
    step_percent: int = 0  # CANARY: the canary's share; LINEAR: each step's share of the new fleet
    wait_seconds: int = 0  # bake time after each shift, while the alarms are watched
    termination_wait_seconds: int = 0  # the old fleet stays this long after the last shift
    max_seconds: int | None = None  # the whole update's limit (SageMaker's default when None)
    alarms: tuple[str, ...] = ()
    options: tuple[str, ...] = ()  # the command-line options that chose it, for messages

    def request(self) -> dict[str, Any]:
        """UpdateEndpoint's DeploymentConfig."""
        routing: dict[str, Any] = {"Type": self.traffic, "WaitIntervalInSeconds": self.wait_seconds}
        if self.traffic != "ALL_AT_ONCE":
            size = {"Type": "CAPACITY_PERCENT", "Value": self.step_percent}
            routing["CanarySize" if self.traffic == "CANARY" else "LinearStepSize"] = size
        policy: dict[str, Any] = {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": self.termination_wait_seconds,
        }
        if self.max_seconds is not None:
            policy["MaximumExecutionTimeoutInSeconds"] = self.max_seconds
        config: dict[str, Any] = {"BlueGreenUpdatePolicy": policy}
        if self.alarms:
            config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in self.alarms]}
        return config

    def describe(self) -> str:
        shift = self.traffic.lower().replace("_", "-")
        if self.step_percent:
            shift += f" {self.step_percent}%"
        alarms = f"rollback on {', '.join(self.alarms)}" if self.alarms else "no rollback alarms"
        return f"{shift}, {self.wait_seconds} s bake, {alarms}"

    def waits(self) -> int:
        """Seconds the update spends baking and keeping the old fleet, at least."""
        steps = -(-100 // self.step_percent) if self.traffic == "LINEAR" else 1
        return steps * self.wait_seconds + self.termination_wait_seconds


STEP_PERCENT = {"canary": (1, 50), "linear": (10, 50)}
# With alarms or a partial shift, a bake time is what lets the alarms see the new fleet's errors
# before all traffic (or the old fleet) is gone; without them, waiting only doubles the bill.
DEFAULT_BAKE_SECONDS = 300


def plan_rollout(
    traffic: str | None,
    *,
    wait_seconds: int | None = None,
    termination_wait_seconds: int | None = None,
    max_seconds: int | None = None,
    alarms: Sequence[str] = (),
    update: bool,
    serverless: bool,
) -> Rollout | None:
    """Offline checks of the --update traffic options against botocore's limits; None where
    no DeploymentConfig is sent (a new endpoint, or a serverless one)."""
    given = [
        option
        for option, value in (
            ("--traffic", traffic),
            ("--traffic-wait", wait_seconds),
            ("--termination-wait", termination_wait_seconds),
            ("--max-update-time", max_seconds),
            ("--rollback-alarm", alarms or None),
        )
        if value is not None
    ]
    if given and not update:
        raise UsageError(
            f"{', '.join(given)}: these say how --update replaces the fleet; add --update or drop them"
        )
    if given and serverless:
        raise UsageError(
            f"serverless endpoints do not support blue/green traffic shifting or rollback alarms; "
            f"drop {', '.join(given)}"
        )
    if not update or serverless:
        return None
    kind, _, percent = (traffic or "all-at-once").partition(":")
    types = {"all-at-once": "ALL_AT_ONCE", "canary": "CANARY", "linear": "LINEAR"}
    if kind not in types or (kind == "all-at-once") != (not percent):
        raise UsageError(f"--traffic expects all-at-once, canary:PERCENT or linear:PERCENT, got {traffic!r}")
    step = 0
    if percent:
        step = int(percent) if percent.isdigit() else -1
        # SageMaker's limits (TrafficRoutingConfig in its API reference): a canary is at most half
        # the fleet, a linear step 10-50% of it.
        low, high = STEP_PERCENT[kind]
        if not low <= step <= high:
            raise UsageError(f"--traffic {traffic}: a {kind} step is {low} to {high} percent of the fleet")
    if wait_seconds is None:
        wait_seconds = DEFAULT_BAKE_SECONDS if (step or alarms) else 0
    check_api_value(wait_seconds, "WaitIntervalInSeconds", "--traffic-wait")
    termination = termination_wait_seconds or 0
    check_api_value(termination, "TerminationWaitInSeconds", "--termination-wait")
    rollout = Rollout(types[kind], step, wait_seconds, termination, max_seconds, tuple(alarms), tuple(given))
    if max_seconds is not None:
        check_api_value(max_seconds, "MaximumExecutionTimeoutInSeconds", "--max-update-time")
        if max_seconds <= rollout.waits():
            raise UsageError(
                f"--max-update-time {max_seconds} must exceed the update's waits ({rollout.waits()} s "
                "of --traffic-wait per step plus --termination-wait)"
            )
    _check_alarm_names(alarms)
    return rollout


def _check_alarm_names(alarms: Sequence[str]) -> None:
    """botocore's limits for AutoRollbackConfig's alarm list and names."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    most = int(model.shape_for("AlarmList").metadata.get("max", 10))
    longest = int(model.shape_for("AlarmName").metadata.get("max", 255))
    if len(alarms) > most:
        raise UsageError(f"--rollback-alarm given {len(alarms)} times; SageMaker takes at most {most} alarms")
    for alarm in alarms:
        if not alarm.strip() or len(alarm) > longest:
            raise UsageError(f"--rollback-alarm {alarm!r}: an alarm name of 1 to {longest} characters")


def check_rollout_alarms(aws: Aws, rollout: Rollout | None) -> None:
    """Before anything is created: every rollback alarm exists in the region (a misspelt one
    would never fire, so nothing would roll back)."""
    if rollout is None or not rollout.alarms:
        return
    found: set[str] = set()
    client = aws.client("cloudwatch")
    answer = client.describe_alarms(
        AlarmNames=list(rollout.alarms), AlarmTypes=["MetricAlarm", "CompositeAlarm"]
    )
    for kind in ("MetricAlarms", "CompositeAlarms"):
        found |= {alarm["AlarmName"] for alarm in answer.get(kind, [])}
    missing = [alarm for alarm in rollout.alarms if alarm not in found]
    if missing:
        raise UsageError(
            f"--rollback-alarm {', '.join(missing)}: no such CloudWatch alarm in {aws.settings.region} "
            "(create it first, e.g. on the endpoint's Invocation5XXErrors or ModelLatency)"
        )
