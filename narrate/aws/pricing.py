"""What an instance hour costs, for the cost line of a render: the setting when given, else narrate's
table of published on-demand prices (SageMaker real-time inference, which async endpoints bill at),
else unknown, said as such, never guessed."""

from __future__ import annotations

from dataclasses import dataclass

# (instance type, region) -> USD per hour, as AWS's SageMaker pricing page gives it.
PUBLISHED_HOURLY_USD: dict[tuple[str, str], float] = {
    ("ml.g5.xlarge", "us-east-1"): 1.408,
}


@dataclass(frozen=True)
class HourlyPrice:
    usd: float | None
    source: str  # where the figure comes from, for the cost line

    def cost(self, seconds: float) -> float | None:
        return None if self.usd is None else round(seconds / 3600 * self.usd, 6)


def hourly_price(instance_type: str, region: str, setting: float | None) -> HourlyPrice:
    if setting is not None:
        return HourlyPrice(setting, f"${setting:g}/h from NARRATE_HOURLY_PRICE_USD")
    published = PUBLISHED_HOURLY_USD.get((instance_type, region))
    if published is not None:
        return HourlyPrice(
            published, f"${published:g}/h, {instance_type} in {region} (narrate's price table)"
        )
    return HourlyPrice(
        None, f"no price known for {instance_type} in {region}: set NARRATE_HOURLY_PRICE_USD for a cost"
    )
