"""condor_rm: ask the master to remove jobs (see awq/cli/job_action.py)."""

from awq.cli.job_action import cli_for



def cli() -> None:
    """Console-script entry point."""
    cli_for("rm")


if __name__ == "__main__":
    cli()
