from orders.app import MIGRATIONS, create_app
from orders.entrypoints.cli import COMMANDS
from orders.settings import OrdersSettings
from shared.cli import run_cli


def main() -> None:
    run_cli("orders", OrdersSettings, create_app, MIGRATIONS, extra_commands=COMMANDS)


if __name__ == "__main__":
    main()
