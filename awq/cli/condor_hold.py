"""condor_hold: ask the master to hold jobs (see awq/cli/job_action.py)."""

from awq.cli.job_action import cli_for



def cli() -> None:
    """Console-script entry point."""
    cli_for("hold")


if __name__ == "__main__":
    cli()
