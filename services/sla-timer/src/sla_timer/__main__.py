from sla_timer.entrypoints.cli import main

if __name__ == "__main__":
    main()
