from decimal import Decimal

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class KpiSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KPI_", extra="ignore", validate_default=True)

    service_name: str = "kpi"
    port: int = 8104

    # SPEC §5.5 prices (CNY) and §5.2 thresholds, configurable.
    order_fee_cny: Decimal = Decimal("8.26")
    consultation_package_1_cny: Decimal = Decimal("3.00")
    consultation_package_2_cny: Decimal = Decimal("2.00")
    disqualify_below: Decimal = Decimal("80")
    consultation_weights: dict[str, Decimal] = {"answer_rate": Decimal("0.4"), "availability": Decimal("0.3"),
                                                "transfer_back": Decimal("0.3")}

    @property
    def package_prices(self) -> dict[int, Decimal]:
        return {1: self.consultation_package_1_cny, 2: self.consultation_package_2_cny}
