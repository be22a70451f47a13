"""condor_continue: ask the master to continue suspended jobs (see awq/cli/job_action.py)."""

from awq.cli.job_action import cli_for



def cli() -> None:
    """Console-script entry point."""
    cli_for("continue")


if __name__ == "__main__":
    cli()
