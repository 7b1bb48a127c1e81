from decimal import Decimal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class KpiSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KPI_", extra="ignore", validate_default=True)

    service_name: str = "kpi"
    port: int = 8104

    # docs/kpis.md prices (CNY) and §5.2 thresholds, configurable.
    order_fee_cny: Decimal = Decimal("8.26")
    consultation_package_1_cny: Decimal = Decimal("3.00")
    consultation_package_2_cny: Decimal = Decimal("2.00")
    disqualify_below: Decimal = Decimal("80")
    consultation_weights: dict[str, Decimal] = {"answer_rate": Decimal("0.4"), "availability": Decimal("0.3"),
                                                "transfer_back": Decimal("0.3")}
    # docs/kpis.md composite index: peers are merchants of the same top-level category.
    # category → its top-level category (categories not listed are top-level themselves).
    category_parents: dict[str, str] = {}
    # the platinum benchmark needs at least this many merchants with a value in the category
    platinum_min_peers: int = Field(default=10, ge=1)
    # paid-transactions ingest: most items per request
    paid_transactions_max_items: int = Field(default=10000, ge=1, le=100000)
    # The facts consumer's fetch wait. Apache Kafka answers a fetch as soon as data is there,
    # else after this wait. The embedded broker polls its log instead: it reads every partition
    # of the fetch, then sleeps (half the time left while that is 250 ms or more, else all of
    # it) before it answers, data or not. 200 ms: answered within 200 ms after one or two reads;
    # 50 ms cost it four reads of the kpi's 16 partitions for each one at 200 ms (a fifth of its
    # CPU under the platform benchmark) for ~0.15 s less lag; the default 500 ms: 250-375 ms.
    kafka_fetch_max_wait_ms: int = Field(default=200, ge=1, le=5000)
    # Prometheus platform figures: recomputed from the counters this often
    metrics_refresh_s: float = Field(default=30.0, gt=0, le=3600)

    @property
    def package_prices(self) -> dict[int, Decimal]:
        return {1: self.consultation_package_1_cny, 2: self.consultation_package_2_cny}
