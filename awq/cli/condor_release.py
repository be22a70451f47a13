"""condor_release: ask the master to release held jobs (see awq/cli/job_action.py)."""

from awq.cli.job_action import cli_for



def cli() -> None:
    """Console-script entry point."""
    cli_for("release")


if __name__ == "__main__":
    cli()
