"""Training jobs after launch: describe, stream logs, wait, stop (transform jobs too).

Every call goes through the project's own session for the configured region (never the default
credential chain's region), so logs come from where the job runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError
from .session import Aws, error_message, is_not_found

log = logging.getLogger(__name__)

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TERMINAL = ("Completed", "Failed", "Stopped")
POLL_SECONDS = 15.0


@dataclass
class JobInfo:
    name: str
    arn: str
    status: str
    secondary_status: str
    failure_reason: str
    instance: str
    image: str
    model_data: str
    checkpoint_uri: str
    billable_seconds: int
    final_metrics: dict[str, float] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def _described(aws: Aws, job_name: str) -> dict[str, Any]:
    client = aws.client("sagemaker")
    try:
        return dict(client.describe_training_job(TrainingJobName=job_name))
    except client.exceptions.ClientError as error:
        raise UsageError(
            f"training job {job_name!r} in {aws.settings.region}: {error_message(error)}"
        ) from None


def describe_job(aws: Aws, job_name: str) -> JobInfo:
    """The facts a user asks about a job, from one DescribeTrainingJob (and its tags)."""
    job = _described(aws, job_name)
    resources = job.get("ResourceConfig", {})
    tags = aws.client("sagemaker").list_tags(ResourceArn=job["TrainingJobArn"]).get("Tags", [])
    return JobInfo(
        name=job_name,
        arn=str(job["TrainingJobArn"]),
        status=str(job.get("TrainingJobStatus", "")),
        secondary_status=str(job.get("SecondaryStatus", "")),
        failure_reason=str(job.get("FailureReason", "")),
        instance=f"{resources.get('InstanceCount', '?')} x {resources.get('InstanceType', '?')}",
        image=str(job.get("AlgorithmSpecification", {}).get("TrainingImage", "")),
        model_data=str(job.get("ModelArtifacts", {}).get("S3ModelArtifacts", "")),
        checkpoint_uri=str(job.get("CheckpointConfig", {}).get("S3Uri", "")),
        billable_seconds=int(job.get("BillableTimeInSeconds") or 0),
        final_metrics={
            str(m["MetricName"]): float(m["Value"])
            for m in job.get("FinalMetricDataList", [])
            if "MetricName" in m and "Value" in m
        },
        data={
            c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
            for c in job.get("InputDataConfig", [])
            if "S3DataSource" in c.get("DataSource", {})
        },
        tags={t["Key"]: t["Value"] for t in tags},
    )


class LogReader:
    """New lines of a job's CloudWatch streams (one per instance), remembered between reads."""

    def __init__(self, aws: Aws, job_name: str) -> None:
        self.client = aws.client("logs")
        self.job_name = job_name
        self.tokens: dict[str, str | None] = {}

    def read(self) -> Iterator[str]:
        try:
            found = self.client.describe_log_streams(
                logGroupName=LOG_GROUP, logStreamNamePrefix=f"{self.job_name}/"
            )
        except self.client.exceptions.ResourceNotFoundException:
            return  # the group appears with the first job of an account/region
        for stream in sorted(s["logStreamName"] for s in found.get("logStreams", [])):
            while True:
                token = self.tokens.get(stream)
                page = self.client.get_log_events(
                    logGroupName=LOG_GROUP,
                    logStreamName=stream,
                    startFromHead=True,
                    **({"nextToken": token} if token else {}),
                )
                for event in page.get("events", []):
                    yield str(event.get("message", ""))
                self.tokens[stream] = page.get("nextForwardToken")
                if not page.get("events") or self.tokens[stream] == token:
                    break


def wait_for_job(aws: Aws, job_name: str) -> str:
    """Wait until the job ends (printing its log lines); returns the final status, and raises
    UsageError with the failure reason when it did not complete."""
    reader = LogReader(aws, job_name)
    last = ""
    while True:
        job = _described(aws, job_name)
        status = str(job.get("TrainingJobStatus", ""))
        secondary = str(job.get("SecondaryStatus", ""))
        for line in reader.read():
            print(line)
        if secondary != last:
            log.info("%s: %s (%s)", job_name, status, secondary)
            last = secondary
        if status in TERMINAL:
            break
        time.sleep(POLL_SECONDS)
    if status != "Completed":
        reason = job.get("FailureReason") or secondary
        raise UsageError(f"training job {job_name} {status.lower()}: {reason}")
    return status


def stop_job(aws: Aws, job_name: str) -> str:
    """Ask SageMaker to stop a running job; a job that already ended is left as it is."""
    job = _described(aws, job_name)
    status = str(job.get("TrainingJobStatus", ""))
    if status in TERMINAL or status == "Stopping":
        return status
    aws.client("sagemaker").stop_training_job(TrainingJobName=job_name)
    return "Stopping"


def stop_transform_job(aws: Aws, job_name: str) -> str:
    """Ask SageMaker to stop a running batch transform job (billed while it runs); one that
    already ended is left as it is."""
    client = aws.client("sagemaker")
    try:
        status = str(client.describe_transform_job(TransformJobName=job_name)["TransformJobStatus"])
    except client.exceptions.ClientError as error:
        raise UsageError(
            f"transform job {job_name!r} in {aws.settings.region}: {error_message(error)}"
        ) from None
    if status in TERMINAL or status == "Stopping":
        return status
    client.stop_transform_job(TransformJobName=job_name)
    return "Stopping"


def _is_transform_job(aws: Aws, job_name: str) -> bool:
    """Whether ``job_name`` names a transform job rather than a training job (a training job
    wins where both exist; neither: the training job's error is raised by the caller)."""
    client = aws.client("sagemaker")
    try:
        client.describe_training_job(TrainingJobName=job_name)
        return False
    except client.exceptions.ClientError as error:
        if not is_not_found(error):
            raise
    try:
        client.describe_transform_job(TransformJobName=job_name)
        return True
    except client.exceptions.ClientError as error:
        if not is_not_found(error):
            raise
        return False


def stop_any_job(aws: Aws, job_name: str) -> tuple[str, str]:
    """Stop the training or batch transform job ``job_name``: (its kind, its status)."""
    if _is_transform_job(aws, job_name):
        return "transform job", stop_transform_job(aws, job_name)
    return "training job", stop_job(aws, job_name)
