"""The image in the endpoint's region, as the SageMaker SDK's own ``image_uris.retrieve`` gives it."""

from __future__ import annotations

import pytest

from narrate.aws import images
from narrate.aws.images import ImageRef, image_uri, sdk_image_uri
from narrate.errors import ConfigError


def sdk_retrieve(region: str, instance_type: str) -> str:
    from sagemaker.core import image_uris  # the SDK itself (3 s to import): the reference

    return image_uris.retrieve(
        "huggingface", region=region, version=images.TRANSFORMERS_VERSION,
        base_framework_version=f"pytorch{images.PYTORCH_VERSION}", py_version=images.PY_VERSION,
        instance_type=instance_type, image_scope="inference",
    )  # fmt: skip


@pytest.mark.parametrize(
    "instance_type", ["ml.g5.xlarge", "ml.g6.2xlarge", "ml.p4d.24xlarge", "ml.c5.xlarge"]
)
def test_every_region_of_the_table_gives_the_sdks_own_image(instance_type: str) -> None:
    regions = images.table_regions()
    assert len(regions) > 30
    ours = {region: sdk_image_uri(region, instance_type) for region in regions}
    assert ours == {region: sdk_retrieve(region, instance_type) for region in regions}


def test_regions_with_their_own_registry_account() -> None:
    assert ImageRef.parse(image_uri("us-east-1", "ml.g5.xlarge")).account == "763104351884"
    west = ImageRef.parse(image_uri("eu-west-1", "ml.g5.xlarge"))
    assert (west.account, west.region) == ("763104351884", "eu-west-1")
    zurich = ImageRef.parse(image_uri("eu-central-2", "ml.g5.xlarge"))
    assert (zurich.account, zurich.region) == ("380420809688", "eu-central-2")
    assert zurich.repository == "huggingface-pytorch-inference" and zurich.tag.startswith(
        "2.6.0-transformers4.49.0-gpu"
    )


def test_an_override_wins_and_a_bad_one_or_an_unknown_region_is_refused() -> None:
    mine = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-narrate:1"
    assert image_uri("us-east-1", "ml.g5.xlarge", mine) == mine
    with pytest.raises(ConfigError, match=r"NARRATE_IMAGE_URI='docker.io/me' is not an ECR image"):
        image_uri("us-east-1", "ml.g5.xlarge", "docker.io/me")
    with pytest.raises(ConfigError, match=r"NARRATE_REGION=mars-east-1: .* pick one of those"):
        image_uri("mars-east-1", "ml.g5.xlarge")
    with pytest.raises(ConfigError, match="Neuron image"):
        image_uri("us-east-1", "ml.inf2.xlarge")
