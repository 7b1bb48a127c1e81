from sla_timer.app import MIGRATIONS, create_app
from sla_timer.settings import SlaTimerSettings
from shared.cli import run_cli


def main() -> None:
    run_cli("sla-timer", SlaTimerSettings, create_app, MIGRATIONS)


if __name__ == "__main__":
    main()
