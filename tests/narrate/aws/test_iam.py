"""The IAM policies narrate prints: every call the code makes is allowed, nothing else, nothing wild."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from narrate.aws.iam import UNSCOPED_ACTIONS, endpoint_role_policy, orchestrator_policy
from narrate.cli.main import main
from narrate.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
SERVICE = {
    "sagemaker": "sagemaker",
    "runtime": "sagemaker",
    "s3": "s3",
    "autoscaling": "application-autoscaling",
    "cloudwatch": "cloudwatch",
    "polly": "polly",
}
RENAMED = {
    "s3:UploadFile": "s3:PutObject",
    "s3:HeadBucket": "s3:ListBucket",
    "s3:PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "s3:PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
}
REQUIRED_BESIDES_CALLS = {
    "iam:PassRole",
    "iam:CreateServiceLinkedRole",
}  # create_model / autoscaling need them


def settings(**overrides: Any) -> Settings:
    base = {"role_arn": "arn:aws:iam::123456789012:role/narrate-endpoint", "bucket": "acme-narrate",
            "endpoint_name": "narrate-tts", "region": "eu-west-1"}  # fmt: skip
    return Settings(**(base | overrides))


def actions_the_code_calls() -> set[str]:
    calls = set()
    folders = ("narrate/endpoints", "narrate/aws/s3.py", "narrate/cli/endpoint.py",
               "narrate/synthesis/polly_speech.py", "tasks", "flows")  # fmt: skip
    pattern = r"\b(sagemaker|runtime|s3|autoscaling|cloudwatch|polly)\.([a-z_]+)\b"
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py") if (ROOT / folder).is_dir() else [ROOT / folder]:
            for client, method in re.findall(pattern, path.read_text()):
                if method == "meta":
                    continue
                action = f"{SERVICE[client]}:{''.join(w.title() for w in method.split('_'))}"
                calls.add(RENAMED.get(action, action))
    return calls


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    assert policy["Version"] == "2012-10-17"
    return policy["Statement"]


def test_the_orchestrator_may_make_exactly_the_calls_the_code_makes() -> None:
    policy = orchestrator_policy(settings(), "123456789012")
    allowed = {a for s in statements(policy) for a in s["Action"]}
    calls = actions_the_code_calls()
    assert calls, "the scan found no AWS calls"
    assert calls <= allowed, f"calls the policy does not allow: {calls - allowed}"
    assert allowed - calls <= REQUIRED_BESIDES_CALLS, f"allowed but never called: {allowed - calls}"


@pytest.mark.parametrize("build", [orchestrator_policy, endpoint_role_policy])
def test_no_wildcard_beyond_what_aws_requires(build: Any) -> None:
    for statement in statements(build(settings(kms_key_id="arn:aws:kms:eu-west-1:1:key/k"), "123456789012")):
        assert statement["Effect"] == "Allow"
        assert all("*" not in action for action in statement["Action"]), statement
        if "*" in statement["Resource"]:
            assert statement["Resource"] == ["*"] and set(statement["Action"]) <= UNSCOPED_ACTIONS, statement
        for resource in statement["Resource"]:
            assert (
                resource == "*"
                or "123456789012" in resource
                or resource.startswith(("arn:aws:s3:::acme-narrate", "arn:aws:ecr:", "arn:aws:kms:"))
            ), resource


def test_resources_are_the_named_endpoint_and_the_bucket_prefix() -> None:
    text = json.dumps(orchestrator_policy(settings(), "123456789012"))
    assert "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/narrate-tts" in text
    assert "arn:aws:s3:::acme-narrate/narrate/*" in text and "arn:aws:s3:::*" not in text
    role = json.dumps(endpoint_role_policy(settings(), "123456789012"))
    assert "acme-narrate/narrate/async-outputs/*" in role and "/aws/sagemaker/Endpoints/narrate-tts" in role


def test_the_command_prints_both_documents(capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> None:
    from narrate.settings import get_settings

    monkeypatch.setenv("NARRATE_ROLE_ARN", "arn:aws:iam::210987654321:role/narrate")
    get_settings.cache_clear()
    assert main(["iam-policy"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"orchestrator", "endpoint_execution_role"}
    assert "210987654321" in json.dumps(printed)
    monkeypatch.delenv("NARRATE_ROLE_ARN")
    get_settings.cache_clear()
    assert main(["iam-policy"]) == 2
    assert "--account" in capsys.readouterr().err
