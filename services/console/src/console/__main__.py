from console.app import MIGRATIONS, create_app
from console.settings import ConsoleSettings
from shared.cli import run_cli


def main() -> None:
    run_cli("console", ConsoleSettings, create_app, MIGRATIONS)


if __name__ == "__main__":
    main()
