"""Endpoint autoscaling: Application Auto Scaling's target tracking on a variant's instance count.

What ``deploy --autoscale`` registers, what ``deploy --update`` reads before replacing a fleet and
puts back afterwards (or after a rollback), and what ``delete`` removes.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..errors import UsageError
from .names import VARIANT
from .registry import Removed
from .session import Aws, error_message, paged

log = logging.getLogger(__name__)


def _cli_option(member: str) -> str:
    """An API member as the AWS CLI spells its option: PolicyName -> policy-name."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", member).lower()


def _cli_value(value: Any) -> str:
    return shlex.quote(json.dumps(value) if isinstance(value, dict | list) else str(value))


@dataclass(frozen=True)
class Autoscaling:
    """Target tracking on invocations per instance, between ``minimum`` and ``maximum``."""

    minimum: int
    maximum: int
    invocations_per_instance: int = 100


SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def scaling_resource(endpoint_name: str) -> str:
    """The endpoint's variant as Application Auto Scaling names it (its ResourceId)."""
    return f"endpoint/{endpoint_name}/variant/{VARIANT}"


def _scaling_target(endpoint_name: str) -> dict[str, str]:
    return {
        "ServiceNamespace": "sagemaker",
        "ResourceId": scaling_resource(endpoint_name),
        "ScalableDimension": SCALABLE_DIMENSION,
    }


def parse_autoscaling(text: str, invocations: int) -> Autoscaling:
    """``MIN:MAX`` instances, e.g. ``1:4``."""
    low, sep, high = text.partition(":")
    try:
        minimum, maximum = int(low), int(high)
    except ValueError:
        raise UsageError(f"--autoscale expects MIN:MAX instance counts, got {text!r}") from None
    if not sep or minimum < 1 or maximum < minimum:
        raise UsageError(f"--autoscale needs 1 <= MIN <= MAX, got {text!r}")
    if invocations < 1:
        raise UsageError("--target-invocations must be at least 1")
    return Autoscaling(minimum, maximum, invocations)


def check_autoscaling(
    scaling: Autoscaling | None, *, serverless: bool, wait: bool, instance_count: int | None
) -> None:
    """``instance_count`` None: --update without --instance-count (the endpoint's current count,
    kept within MIN:MAX)."""
    if scaling is None:
        return
    if serverless or not wait:
        raise UsageError(
            "--autoscale needs an instance endpoint and waiting for InService "
            "(no --serverless-memory, no --no-wait)"
        )
    if instance_count is not None and not scaling.minimum <= instance_count <= scaling.maximum:
        raise UsageError(
            f"--instance-count {instance_count} is outside --autoscale {scaling.minimum}:{scaling.maximum}"
        )


@dataclass(frozen=True)
class ScalingSettings:
    """A variant's scaling target and policies as PutScalingPolicy takes them: what --autoscale
    asks for, or what an endpoint had before --update (put back after the switch or a rollback)."""

    minimum: int
    maximum: int
    policies: tuple[dict[str, Any], ...]

    def describe(self) -> str:
        return f"{self.minimum}-{self.maximum} instances"

    def commands(self, endpoint_name: str) -> str:
        """The AWS CLI commands that register these settings again, exactly (policies included):
        what a user runs when the commands here could not."""
        target = (
            f"--service-namespace sagemaker --resource-id {scaling_resource(endpoint_name)} "
            f"--scalable-dimension {SCALABLE_DIMENSION}"
        )
        lines = [
            f"`aws application-autoscaling register-scalable-target {target} "
            f"--min-capacity {self.minimum} --max-capacity {self.maximum}`"
        ]
        for policy in self.policies:
            options = " ".join(f"--{_cli_option(key)} {_cli_value(value)}" for key, value in policy.items())
            lines.append(f"`aws application-autoscaling put-scaling-policy {target} {options}`")
        return " then ".join(lines)

    @classmethod
    def of(cls, endpoint_name: str, scaling: Autoscaling) -> ScalingSettings:
        policy = {
            "PolicyName": f"{endpoint_name}-invocations",
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": float(scaling.invocations_per_instance),
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                },
                # Scale out quickly, scale in cautiously (instances take minutes to start).
                "ScaleOutCooldown": 60,
                "ScaleInCooldown": 300,
            },
        }
        return cls(scaling.minimum, scaling.maximum, (policy,))


def enable_autoscaling(aws: Aws, endpoint_name: str, scaling: Autoscaling | ScalingSettings) -> str:
    """Register the variant with Application Auto Scaling (endpoint must be InService). If a step
    fails, the target is deregistered again: a target without its policy pins the instance count
    between MIN and MAX but never scales, which would pass for autoscaling."""
    settings = ScalingSettings.of(endpoint_name, scaling) if isinstance(scaling, Autoscaling) else scaling
    client = aws.client("application-autoscaling")
    target = _scaling_target(endpoint_name)
    try:
        client.register_scalable_target(**target, MinCapacity=settings.minimum, MaxCapacity=settings.maximum)
        for policy in settings.policies:
            client.put_scaling_policy(**target, **policy)
    except BaseException:
        try:
            disable_autoscaling(aws, endpoint_name)
        except Exception as error:  # keep the original failure
            log.warning("could not deregister the incomplete scaling target of %s: %s", endpoint_name, error)
        raise
    return target["ResourceId"]


@cache
def _policy_fields() -> frozenset[str]:
    """The fields of a described scaling policy that PutScalingPolicy takes back (botocore's
    model), less the target's own."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("application-autoscaling")
    return frozenset(model.shape_for("PutScalingPolicyRequest").members) - {
        "ServiceNamespace",
        "ResourceId",
        "ScalableDimension",
    }


def read_autoscaling(aws: Aws, endpoint_name: str) -> ScalingSettings | None:
    """The endpoint variant's scaling target and policies, or None when it has none."""
    client = aws.client("application-autoscaling")
    target = _scaling_target(endpoint_name)
    found = client.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[target["ResourceId"]], ScalableDimension=SCALABLE_DIMENSION
    )["ScalableTargets"]
    if not found:
        return None
    fields = _policy_fields()
    policies = tuple(
        {key: value for key, value in policy.items() if key in fields}
        for policy in paged(client, "describe_scaling_policies", "ScalingPolicies", **target)
    )
    return ScalingSettings(int(found[0]["MinCapacity"]), int(found[0]["MaxCapacity"]), policies)


def disable_autoscaling(aws: Aws, endpoint_name: str) -> list[Removed]:
    client = aws.client("application-autoscaling")
    target = _scaling_target(endpoint_name)
    resource = target["ResourceId"]
    found = client.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource], ScalableDimension=SCALABLE_DIMENSION
    )["ScalableTargets"]
    if not found:
        return []
    # Deregistering the target also deletes its scaling policies.
    client.deregister_scalable_target(**target)
    return [Removed("autoscaling target", resource)]


def restore_autoscaling(aws: Aws, endpoint_name: str, scaling: ScalingSettings | None) -> str:
    """Put the scaling settings an update removed back; says how that went, as a clause ("" when
    there were none)."""
    if scaling is None:
        return ""
    try:
        enable_autoscaling(aws, endpoint_name, scaling)
    except Exception as error:
        return (
            f"its autoscaling ({scaling.describe()}) could not be restored ({aws_message(error)}): "
            f"add it with {scaling.commands(endpoint_name)}"
        )
    return f"its autoscaling ({scaling.describe()}) is restored"


def aws_message(error: BaseException) -> str:
    """A ClientError's code and message, else the error itself."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code", "")
        return f"{code}: {error_message(error)}" if code else error_message(error)
    return str(error)
