from kpi.app import MIGRATIONS, create_app
from kpi.settings import KpiSettings
from shared.cli import run_cli


def main() -> None:
    from kpi import replay

    run_cli("kpi", KpiSettings, create_app, MIGRATIONS, extra_commands={
        "replay": ("rebuild the fact tables from the order, SLA and routing topics (offset 0); "
                   "stop the service first, run 'kpi migrate' on a new database", replay.add_arguments, replay.run),
    })


if __name__ == "__main__":
    main()
