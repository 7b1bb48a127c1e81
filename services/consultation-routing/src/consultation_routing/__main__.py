from consultation_routing.app import MIGRATIONS, create_app
from consultation_routing.settings import ConsultationRoutingSettings
from shared.cli import run_cli


def main() -> None:
    run_cli("consultation-routing", ConsultationRoutingSettings, create_app, MIGRATIONS)


if __name__ == "__main__":
    main()
