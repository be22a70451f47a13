"""condor_suspend: ask the master to suspend jobs (see awq/cli/job_action.py)."""

from awq.cli.job_action import cli_for



def cli() -> None:
    """Console-script entry point."""
    cli_for("suspend")


if __name__ == "__main__":
    cli()
