"""``narrate doctor [SCRIPT]``: every precondition of a render, read-only, one line each with what is
wrong and what to do. It makes only Get, List, Describe and Head calls."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from narrate.aws.iam import endpoint_role_policy
from narrate.aws.images import ImageRef, table_regions
from narrate.aws.package import handler_code_sha256
from narrate.aws.quotas import endpoint_quota
from narrate.aws.s3 import split_s3
from narrate.endpoints.deploy import CODE_HASH_KEY, EXECUTION_POLICY_NAME, role_name, trusts_sagemaker
from narrate.endpoints.preflight import unserved_voices
from narrate.endpoints.sagemaker_setup import EndpointSpec, bucket_exists, describe_endpoint
from narrate.errors import NarrateError
from narrate.prefect_api import BackgroundServer, configured_api_url, healthy, server_home

if TYPE_CHECKING:
    from narrate.aws.clients import AwsClients
    from narrate.settings import Settings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Doctor:
    settings: Settings
    clients: AwsClients
    script: Path | None = None

    def checks(self) -> list[Check]:
        runs: list[tuple[str, Callable[[], Check]]] = [
            ("credentials", self.credentials),
            ("region", self.region),
            ("image", self.image),
            ("quota", self.quota),
            ("role", self.role),
            ("bucket", self.bucket),
            ("model artifact", self.model_artifact),
            ("endpoint", self.endpoint),
            ("voices", self.voices),
            ("prefect", self.prefect),
        ]
        return [_guarded(name, run) for name, run in runs]

    def credentials(self) -> Check:
        identity = self.clients.sts.get_caller_identity()
        account, role_account = identity["Account"], self.settings.role_arn.split(":")[4]
        if account != role_account:
            detail = f"caller {identity['Arn']} is in account {account}, NARRATE_ROLE_ARN in {role_account}"
            return Check(
                "credentials", False, detail, "use credentials of the role's account, or fix NARRATE_ROLE_ARN"
            )
        return Check("credentials", True, f"{identity['Arn']} (account {account})")

    def region(self) -> Check:
        if self.settings.region not in table_regions():
            detail = f"{self.settings.region} has no Hugging Face PyTorch image in the SageMaker SDK's table"
            return Check("region", False, detail, "pick another NARRATE_REGION, or set NARRATE_IMAGE_URI")
        return Check("region", True, self.settings.region)

    def image(self) -> Check:
        image = ImageRef.parse(EndpointSpec.from_settings(self.settings).image_uri)
        if image.region != self.settings.region:
            detail = f"{image.repository} is in {image.region}, the endpoint in {self.settings.region}"
            return Check("image", False, detail, "unset NARRATE_IMAGE_URI, or give an image of the region")
        return Check("image", True, f"{image.account}.dkr.ecr.{image.region}/{image.repository}:{image.tag}")

    def quota(self) -> Check:
        quota = endpoint_quota(self.clients.quotas, self.settings.instance_type, self.settings.region,
                               self.settings.max_instances)  # fmt: skip
        return Check("quota", quota.ok, quota.describe(), "" if quota.ok else quota.fix())

    def role(self) -> Check:
        name = role_name(self.settings.role_arn)
        try:
            role = self.clients.iam.get_role(RoleName=name)["Role"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NoSuchEntity":
                raise
            return Check("role", False, f"{name} does not exist", "narrate deploy --create-role")
        if not trusts_sagemaker(role.get("AssumeRolePolicyDocument", {})):
            return Check(
                "role",
                False,
                f"{name} does not trust sagemaker.amazonaws.com",
                "narrate deploy --create-role",
            )
        try:
            document = self.clients.iam.get_role_policy(RoleName=name, PolicyName=EXECUTION_POLICY_NAME)
        except ClientError:
            fix = "narrate deploy --create-role (it adds the policy of `narrate iam-policy`)"
            return Check("role", False, f"{name} has no {EXECUTION_POLICY_NAME} policy", fix)
        missing = _actions(
            endpoint_role_policy(self.settings, self.settings.role_arn.split(":")[4])
        ) - _actions(document["PolicyDocument"])
        if missing:
            return Check(
                "role", False, f"{name} may not {', '.join(sorted(missing))}", "narrate deploy --create-role"
            )
        return Check("role", True, f"{name} trusts SageMaker and has its execution policy")

    def bucket(self) -> Check:
        s3, name = self.clients.s3, self.settings.bucket
        if not bucket_exists(s3, name, self.settings.s3_prefix):
            return Check("bucket", False, f"{name} does not exist", "narrate deploy (it creates it, private)")
        problems = []
        block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        if not all(block.values()):
            problems.append("public access is not blocked")
        try:
            s3.get_bucket_encryption(Bucket=name)
        except ClientError:
            problems.append("no default encryption")
        if str(s3.meta.endpoint_url).startswith("https://"):
            try:
                policy = json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])
            except ClientError:
                policy = {}
            if not any("aws:SecureTransport" in json.dumps(st) for st in policy.get("Statement", [])):
                problems.append("no policy refusing requests without TLS")
        if problems:
            fix = "set the bucket up as narrate deploy does (sagemaker_setup.ensure_bucket), or use a new one"
            return Check("bucket", False, f"{name}: {'; '.join(problems)}", fix)
        return Check("bucket", True, f"{name}: private, encrypted")

    def model_artifact(self) -> Check:
        bucket, key = split_s3(self.settings.model_data)
        try:
            head = self.clients.s3.head_object(Bucket=bucket, Key=key)
        except ClientError:
            return Check("model artifact", False, f"{self.settings.model_data} is missing", "narrate deploy")
        deployed = head.get("Metadata", {}).get(CODE_HASH_KEY)
        if deployed != handler_code_sha256():
            detail = f"{self.settings.model_data} holds another handler than this checkout's"
            return Check("model artifact", False, detail, "narrate deploy (uploads this one)")
        return Check("model artifact", True, f"{self.settings.model_data}: this checkout's handler")

    def endpoint(self) -> Check:
        spec = EndpointSpec.from_settings(self.settings)
        description = describe_endpoint(self.clients.sagemaker, spec.endpoint_name)
        if description is None:
            return Check("endpoint", False, f"{spec.endpoint_name} does not exist", "narrate deploy")
        status, config = description["EndpointStatus"], description["EndpointConfigName"]
        if status in {"Failed", "UpdateRollbackFailed"}:
            detail = f"{spec.endpoint_name} is {status}: {description.get('FailureReason')}"
            return Check("endpoint", False, detail, "fix the cause, then narrate deploy")
        if config != spec.config_name:
            detail = f"{spec.endpoint_name} runs {config}, these settings are {spec.config_name}"
            return Check(
                "endpoint", False, detail, "narrate deploy (a render may not roll a configuration out)"
            )
        return Check("endpoint", True, f"{spec.endpoint_name}: {status}, configured as these settings")

    def voices(self) -> Check:
        if self.script is None:
            return Check("voices", True, "no script given: not checked")
        from narrate.script import load_script

        narration = load_script(self.script, max_segment_chars=self.settings.max_segment_chars)
        voices = {"voice": narration.voice} | dict(narration.voices)
        problems = unserved_voices(voices, self.settings.server_config())
        return Check("voices", not problems, "; ".join(problems) or f"the endpoint speaks all {len(voices)}")

    def prefect(self) -> Check:
        api = configured_api_url()
        if not api:
            server = BackgroundServer.recorded(server_home())
            if server is not None and server.answers():
                return Check("prefect", True, f"the background server answers at {server.api_url}")
            return Check("prefect", True, "no PREFECT_API_URL: the next command starts a background server")
        if healthy(api):
            return Check("prefect", True, f"{api} answers")
        return Check(
            "prefect", False, f"PREFECT_API_URL={api} does not answer", "start that server, or unset it"
        )


def _actions(document: Any) -> set[str]:
    if isinstance(document, str):
        document = json.loads(urllib.parse.unquote(document))
    actions: set[str] = set()
    for statement in document.get("Statement", []):
        found = statement.get("Action", [])
        actions |= {found} if isinstance(found, str) else set(found)
    return actions


def _guarded(name: str, run: Callable[[], Check]) -> Check:
    """A check that could not even ask is a failed check, with AWS's answer."""
    try:
        return run()
    except (ClientError, BotoCoreError, NarrateError, OSError, ValueError) as exc:
        return Check(name, False, f"could not check: {exc}".splitlines()[0][:300], _fix_for(exc))


def _fix_for(exc: Exception) -> str:
    if isinstance(exc, ClientError) and "AccessDenied" in exc.response.get("Error", {}).get("Code", ""):
        return "give this caller the deploy policy of `narrate iam-policy`"
    if isinstance(exc, BotoCoreError):
        return "check credentials (boto3's usual chain) and the network"
    return ""
